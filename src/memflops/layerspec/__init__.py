"""The layer-list pipeline: a YAML/JSON list of layers (the reference article's
VGG-16 in `examples/`) analysed by the same FLOP rules, without torch.

`load` reads and checks the spec against the layer types and fields in
`fields`, `layers` lowers each layer to the ATen calls its module would
dispatch, `walk` runs them over the shapes, and `analyze` prices them and
assembles the Report.
"""
