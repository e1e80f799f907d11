"""Walking a layer list over shapes (layerspec.walk): references, shapes, in-place use."""

from __future__ import annotations

from pathlib import Path

from memflops.capture.records import Phase
from memflops.layerspec.analyze import analyze_spec, trace_spec

from .stand_ins import HEAD, LAYER_SPECS, spec_error, write_spec


def test_graph_backward_accumulates_gradients(tmp_path: Path) -> None:
    """A tensor read k times gets k gradients and k - 1 adds, charged to the sender.

    In the "graph" spec, `a` is read by b, c, s = c + b + a, and d = cat(a, s, c, a):
    five gradients, four adds; `c` is read by s and d: one add. Autograd runs the
    latest node first (d, s, c, b), and each node sends its gradients in operand
    order (s is two add nodes: (c + b) + a sends to a first, then c, then b), so
    the adds are charged to d (a), s (a), s (c), c (a), b (a). The unused branch
    gets no backward; the first conv's input (relu of the input) needs no gradient.
    """
    trace = trace_spec(write_spec(tmp_path, LAYER_SPECS["graph"]), mode="train")
    adds = [m for c, m, p in trace.calls
            if p is Phase.BACKWARD and c.op == "aten.add" and c.out == (2, 4, 6, 6)]
    assert adds == ["d", "s", "s", "c", "b"]
    backward_modules = {m for _, m, p in trace.calls if p is Phase.BACKWARD}
    assert "unused" not in backward_modules
    first_conv = next(c for c, m, p in trace.calls if c.op == "aten.convolution_backward"
                      and m == "a")
    assert first_conv.args[-1] == [False, True, True]  # no grad_input: relu(input) needs none


def test_kernel_larger_than_padded_input(tmp_path: Path) -> None:
    # after the first conv: 6x6; a 9x9 kernel with padding 1 sees 6 + 2*1 = 8
    message = spec_error(tmp_path, HEAD + "      - {type: conv, out: 4, kernel: 9, padding: 1}\n")
    assert message == (
        ":5: layers[1] (conv) field 'kernel': kernel 9 is larger than the padded input "
        "height 6 + 2*1 = 8"
    )


def test_fc_input_size_mismatch(tmp_path: Path) -> None:
    message = spec_error(tmp_path, HEAD + "      - {type: flatten}\n"
                                      "      - {type: fc, in: 100, out: 10}\n")
    # 4 * 6 * 6 = 144 features
    assert message == (
        ":6: layers[2] (fc) field 'in': says 100 input features, but the previous layer gives 144"
    )


def test_fc_needs_flat_input(tmp_path: Path) -> None:
    message = spec_error(tmp_path, HEAD + "      - {type: fc, out: 10}\n")
    assert message.startswith(":5: layers[1] (fc): an fc layer needs a flat input")


def test_add_of_mismatched_shapes(tmp_path: Path) -> None:
    message = spec_error(tmp_path, HEAD + "      - {type: add, from: input}\n")
    assert message.startswith(":5: layers[1] (add) field 'from': cannot add shapes "
                              "[1, 4, 6, 6] and [1, 3, 8, 8]")


def test_unknown_reference(tmp_path: Path) -> None:
    message = spec_error(tmp_path, HEAD + "      - {type: add, from: stme}\n")
    assert message.startswith(":5: layers[1] (add) field 'from': 'stme' names no earlier layer")


def test_overwritten_reference(tmp_path: Path) -> None:
    message = spec_error(tmp_path, HEAD + "      - {name: act, type: relu, inplace: true}\n"
                                      "      - {type: add, from: 0}\n")
    assert message.startswith(":6: layers[2] (add) field 'from': the output of '0' was "
                              "overwritten in place by layers[1]")


def test_inplace_over_a_saved_tensor_in_train(tmp_path: Path) -> None:
    # relu keeps its output for backward; writing over it in place breaks the backward
    text = HEAD + "      - {type: relu}\n      - {type: relu, inplace: true}\n"
    message = spec_error(tmp_path, text, mode="train")
    assert message.startswith(":6: layers[2] (relu) field 'inplace': overwrites a tensor that "
                              "layers[1] keeps")
    assert analyze_spec(write_spec(tmp_path, text, "ok.yaml")).totals.params == 112
