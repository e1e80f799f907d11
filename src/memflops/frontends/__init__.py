"""The engine's side of frontends: what turns a target string into a model.

`zoos` is the table of target prefixes (torch-free), `targets` resolves a
target string through it, `factory` loads a user's own file or module,
`loaded` is the record every loader returns, `meta_init` builds modules
without weights and `catalog` lists the models each zoo offers. The zoos
themselves (Hugging Face, torchvision, timm) live in `memflops.zoo`, which
this package reaches only through the table's module names.
"""
