"""Each layer type of a spec, lowered to the ATen calls its PyTorch module dispatches.

`lower(layer, operands, train)` infers the output shape, checks that the
shapes are possible, and lists, for that layer, the ATen ops PyTorch 2.x
runs on CPU with the *same arguments* the capture hands to a FLOP rule
(every schema argument positionally, defaults filled, each tensor replaced
by its `Shape`): the forward calls, and the backward calls its autograd
node makes. Running the registry's rules on these calls therefore gives the
numbers the torch frontend gives for the equivalent module, by
construction; tests/layerspec/test_layers.py checks it call by call against the
capture. Non-numeric arguments that have no shape (dtype, layout, device,
memory format) are passed by name ("uint8", "strided", "cpu",
"preserve_format"); rules do not read them.

What each layer stands for: its module; forward ops (eval, then what train
adds); backward ops.

- conv, dwconv: nn.Conv2d; convolution; convolution_backward.
- bn: nn.BatchNorm1d/2d; empty (reserve), native_batch_norm (train: add_
  on num_batches_tracked first); native_batch_norm_backward.
- relu: nn.ReLU; relu / relu_; threshold_backward.
- relu6: nn.ReLU6; hardtanh / hardtanh_; hardtanh_backward.
- leaky_relu: nn.LeakyReLU; leaky_relu / leaky_relu_; leaky_relu_backward.
- gelu, silu, sigmoid, tanh, hardswish, hardsigmoid: the module of that
  name; the op / op_; op_backward.
- maxpool: nn.MaxPool2d; max_pool2d_with_indices; its backward.
- avgpool: nn.AvgPool2d; avg_pool2d; avg_pool2d_backward.
- gap: nn.AdaptiveAvgPool2d(1); mean over dims (-1, -2); div of the
  expanded gradient.
- adaptive_avgpool: nn.AdaptiveAvgPool2d; _adaptive_avg_pool2d (1x1: as
  gap); _adaptive_avg_pool2d_backward.
- flatten: nn.Flatten; a view (no op; on a flat input, nothing at all).
- fc: nn.Linear; addmm (bias) / mm; two mm (+ sum for the bias).
- dropout: nn.Dropout; eval nothing; train empty_like, bernoulli_, div_,
  mul / mul_; mul.
- add: `a + b`; one add per extra operand; nothing.
- concat: torch.cat(dim=1); cat; nothing (the gradient is sliced: views).

In train mode, the in-place forms of hardtanh, silu, hardswish and
hardsigmoid are preceded by a clone: autograd differentiates them through
their original input, so PyTorch copies it first when it requires grad. Dropout on CPU is
`bernoulli_` noise (not `native_dropout`, which PyTorch uses only on
accelerators).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memflops.flops.registry import Shape, numel
from memflops.layerspec.load import Layer

SCALAR = Shape(())


@dataclass(frozen=True)
class Call:
    """One ATen call: op name, the arguments a rule receives, and the output shape(s).

    `integer`: every tensor it reads and writes is integer or boolean, so it costs
    0 FLOPs (`registry.integer_cost`), as the capture prices it.
    """

    op: str
    args: tuple[Any, ...]
    out: Any
    integer: bool = False


@dataclass(frozen=True)
class Operand:
    """A tensor a layer reads: its full shape (batch first) and whether it requires grad."""

    shape: Shape
    requires_grad: bool


@dataclass
class Lowered:
    """What one layer does to its operands.

    `alias`: "fresh" (a new output storage), "inplace" (written over its
    first operand), "view" (shares the operand's storage, with a new
    autograd node) or "identity" (returns its operand itself).
    `edges` lists the operands, by position, in the order its backward
    node sends them gradients. `saves_input` / `saves_result`: whether the
    backward node keeps its first operand / its output (an in-place write
    over a saved tensor is an error in PyTorch).
    """

    out: Shape
    module: str
    forward: list[Call] = field(default_factory=list)
    backward: list[Call] = field(default_factory=list)
    alias: str = "fresh"
    edges: list[int] = field(default_factory=lambda: [0])
    params: int = 0
    float_buffers: int = 0
    int_buffers: int = 0
    saves_input: bool = False
    saves_result: bool = False


def _spatial(layer: Layer, x: Shape) -> tuple[int, int, int, int]:
    if len(x) != 4:
        raise layer.error(
            None, f"a {layer.type} layer needs a (C, H, W) input, got {list(x[1:])} per sample"
        )
    return x[0], x[1], x[2], x[3]


def _window_out(
    layer: Layer, size: int, axis: str, k: int, s: int, p: int, d: int, ceil: bool
) -> int:
    """Output length of a sliding window (PyTorch's `pooling_output_shape`)."""
    span = d * (k - 1) + 1
    padded = size + 2 * p
    if span > padded:
        dilated = f" (dilated: {span})" if d > 1 else ""
        raise layer.error(
            "kernel", f"kernel {k}{dilated} is larger than the padded input {axis} "
            f"{size} + 2*{p} = {padded}"
        )
    out = (padded - span + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1  # the last window must start inside the input or its left padding
    return out


def _conv(layer: Layer, ops: list[Operand], groups: int, out_channels: int) -> Lowered:
    x = ops[0].shape
    b, c, h, w = _spatial(layer, x)
    if c % groups:
        raise layer.error("groups", f"{c} input channels are not divisible by groups={groups}")
    if out_channels % groups:
        raise layer.error("out", f"{out_channels} output channels are not divisible by "
                                 f"groups={groups}")
    (kh, kw), stride, pad, dil = layer["kernel"], layer["stride"], layer["padding"], \
        layer["dilation"]
    ho = _window_out(layer, h, "height", kh, stride[0], pad[0], dil[0], False)
    wo = _window_out(layer, w, "width", kw, stride[1], pad[1], dil[1], False)
    weight = Shape((out_channels, c // groups, kh, kw))
    bias = Shape((out_channels,)) if layer["bias"] else None
    y = Shape((b, out_channels, ho, wo))
    common = (list(stride), list(pad), list(dil), False, [0, 0], groups)
    rg = ops[0].requires_grad
    return Lowered(
        y, "Conv2d",
        forward=[Call("aten.convolution", (x, weight, bias, *common), y)],
        backward=[Call(
            "aten.convolution_backward",
            (y, x, weight, [out_channels] if bias else [0], *common, [rg, True, bias is not None]),
            (x if rg else None, weight, bias),
        )],
        params=numel(weight) + (out_channels if bias else 0),
        saves_input=True,
    )


def conv(layer: Layer, ops: list[Operand], train: bool) -> Lowered:
    return _conv(layer, ops, layer["groups"], layer["out"])


def dwconv(layer: Layer, ops: list[Operand], train: bool) -> Lowered:
    channels = _spatial(layer, ops[0].shape)[1]
    out = layer["out"] if layer["out"] is not None else channels
    return _conv(layer, ops, channels, out)


def bn(layer: Layer, ops: list[Operand], train: bool) -> Lowered:
    x, rg = ops[0].shape, ops[0].requires_grad
    if len(x) < 2:
        raise layer.error(None, "a bn layer needs at least a channel dimension")
    c = x[1]
    affine, track = layer["affine"], layer["track_running_stats"]
    batch_stats = train or not track
    if batch_stats and x[0] * numel(x[2:]) == 1:
        raise layer.error(
            None, f"batch statistics of one value per channel (input {list(x)}); "
            "use a batch > 1 or track_running_stats with inference mode"
        )
    vec = Shape((c,))
    weight = bias = vec if affine else None
    running = vec if track else None
    saved = vec if batch_stats else Shape((0,))
    forward = []
    if train and track:
        # num_batches_tracked += 1, on an int64 counter: 0 FLOPs
        forward.append(Call("aten.add_", (SCALAR, 1, 1), SCALAR, integer=True))
    forward += [
        Call("aten.empty", ([0], "uint8", "strided", "cpu", None, None), Shape((0,)),
             integer=True),
        Call(
            "aten.native_batch_norm",
            (x, weight, bias, running, running, batch_stats, layer["momentum"], layer["eps"]),
            (x, saved, saved),
        ),
    ]
    backward = [Call(
        "aten.native_batch_norm_backward",
        (x, x, weight, running, running, vec, vec, True, layer["eps"], [rg, affine, affine]),
        (x if rg else None, weight, bias),
    )]
    return Lowered(
        x, "BatchNorm2d" if len(x) == 4 else "BatchNorm1d", forward, backward,
        params=2 * c if affine else 0,
        float_buffers=2 * c if track else 0,
        int_buffers=1 if track else 0,
        saves_input=True,
    )


@dataclass(frozen=True)
class Activation:
    """An elementwise activation: its module, op, extra arguments and backward."""

    module: str
    op: str
    extra: Callable[[Layer], tuple[Any, ...]]
    backward_op: str
    backward_extra: Callable[[Layer, bool], tuple[Any, ...]]
    uses_result: bool
    """The backward reads the output (relu, sigmoid, tanh) rather than the input."""
    clone_inplace: bool = False
    """The in-place form copies its input first when it requires grad (autograd's original self)."""
    inplace_uses_result: bool = False


def _none(layer: Layer) -> tuple[Any, ...]:
    return ()


def _none2(layer: Layer, inplace: bool) -> tuple[Any, ...]:
    return ()


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("ReLU", "aten.relu", _none, "aten.threshold_backward",
                       lambda _, __: (0,), uses_result=True, inplace_uses_result=True),
    "relu6": Activation("ReLU6", "aten.hardtanh", lambda _: (0.0, 6.0), "aten.hardtanh_backward",
                        lambda _, __: (0.0, 6.0), uses_result=False, clone_inplace=True),
    "leaky_relu": Activation(
        "LeakyReLU", "aten.leaky_relu", lambda layer: (layer["negative_slope"],),
        "aten.leaky_relu_backward",
        lambda layer, inplace: (layer["negative_slope"], inplace),
        uses_result=False, inplace_uses_result=True,
    ),
    "gelu": Activation("GELU", "aten.gelu", lambda layer: (layer["approximate"],),
                       "aten.gelu_backward", lambda layer, _: (layer["approximate"],),
                       uses_result=False),
    "silu": Activation("SiLU", "aten.silu", _none, "aten.silu_backward", _none2,
                       uses_result=False, clone_inplace=True),
    "sigmoid": Activation("Sigmoid", "aten.sigmoid", _none, "aten.sigmoid_backward", _none2,
                          uses_result=True),
    "tanh": Activation("Tanh", "aten.tanh", _none, "aten.tanh_backward", _none2,
                       uses_result=True),
    "hardswish": Activation("Hardswish", "aten.hardswish", _none, "aten.hardswish_backward",
                            _none2, uses_result=False, clone_inplace=True),
    "hardsigmoid": Activation("Hardsigmoid", "aten.hardsigmoid", _none,
                              "aten.hardsigmoid_backward", _none2, uses_result=False,
                              clone_inplace=True),
}


def activation(layer: Layer, ops: list[Operand], train: bool) -> Lowered:
    act = ACTIVATIONS[layer.type]
    x, rg = ops[0].shape, ops[0].requires_grad
    inplace = bool(layer.fields.get("inplace", False))
    forward = []
    if inplace and act.clone_inplace and train and rg:
        forward.append(Call("aten.clone", (x, None), x))
    forward.append(Call(act.op + ("_" if inplace else ""), (x, *act.extra(layer)), x))
    uses_result = act.inplace_uses_result if inplace else act.uses_result
    return Lowered(
        x, act.module, forward,
        backward=[Call(act.backward_op, (x, x, *act.backward_extra(layer, inplace)), x)],
        alias="inplace" if inplace else "fresh",
        saves_input=not uses_result and not (inplace and act.clone_inplace),
        saves_result=uses_result,
    )


def _pool_args(layer: Layer, x: Shape) -> tuple[Shape, list[int], list[int], list[int]]:
    b, c, h, w = _spatial(layer, x)
    kernel, pad = layer["kernel"], layer["padding"]
    stride = layer["stride"] if layer["stride"] is not None else kernel
    dil = layer.fields.get("dilation", (1, 1))
    for axis, k, p in (("height", kernel[0], pad[0]), ("width", kernel[1], pad[1])):
        if 2 * p > k:
            raise layer.error("padding", f"padding {p} is more than half the kernel {k} "
                                         f"({axis}); PyTorch rejects it")
    ceil = layer["ceil_mode"]
    ho = _window_out(layer, h, "height", kernel[0], stride[0], pad[0], dil[0], ceil)
    wo = _window_out(layer, w, "width", kernel[1], stride[1], pad[1], dil[1], ceil)
    return Shape((b, c, ho, wo)), list(kernel), list(stride), list(pad)


def maxpool(layer: Layer, ops: list[Operand], train: bool) -> Lowered:
    x = ops[0].shape
    y, k, s, p = _pool_args(layer, x)
    d, ceil = list(layer["dilation"]), layer["ceil_mode"]
    return Lowered(
        y, "MaxPool2d",
        forward=[Call("aten.max_pool2d_with_indices", (x, k, s, p, d, ceil), (y, y))],
        backward=[Call("aten.max_pool2d_with_indices_backward", (y, x, k, s, p, d, ceil, y), x)],
        saves_input=True,
    )


def avgpool(layer: Layer, ops: list[Operand], train: bool) -> Lowered:
    x = ops[0].shape
    y, k, s, p = _pool_args(layer, x)
    rest = (layer["ceil_mode"], layer["count_include_pad"], None)
    return Lowered(
        y, "AvgPool2d",
        forward=[Call("aten.avg_pool2d", (x, k, s, p, *rest), y)],
        backward=[Call("aten.avg_pool2d_backward", (y, x, k, s, p, *rest), x)],
        saves_input=True,
    )


def gap(layer: Layer, ops: list[Operand], train: bool) -> Lowered:
    x = ops[0].shape
    b, c, h, w = _spatial(layer, x)
    y = Shape((b, c, 1, 1))
    return Lowered(
        y, "AdaptiveAvgPool2d",
        forward=[Call("aten.mean", (x, [-1, -2], True, None), y)],
        backward=[Call("aten.div", (x, h * w), x)],
    )


def adaptive_avgpool(layer: Layer, ops: list[Operand], train: bool) -> Lowered:
    if tuple(layer["out"]) == (1, 1):
        return gap(layer, ops, train)
    x = ops[0].shape
    b, c, _, _ = _spatial(layer, x)
    y = Shape((b, c, *layer["out"]))
    return Lowered(
        y, "AdaptiveAvgPool2d",
        forward=[Call("aten._adaptive_avg_pool2d", (x, list(layer["out"])), y)],
        backward=[Call("aten._adaptive_avg_pool2d_backward", (y, x), x)],
        saves_input=True,
    )


def flatten(layer: Layer, ops: list[Operand], train: bool) -> Lowered:
    x = ops[0].shape
    if len(x) <= 2:
        return Lowered(x, "Flatten", alias="identity")  # torch.flatten returns its input
    return Lowered(Shape((x[0], numel(x[1:]))), "Flatten", alias="view")


def fc(layer: Layer, ops: list[Operand], train: bool) -> Lowered:
    x, rg = ops[0].shape, ops[0].requires_grad
    if len(x) != 2:
        raise layer.error(
            None, f"an fc layer needs a flat input (features,), got {list(x[1:])} per sample; "
            "put {type: flatten} before it"
        )
    b, f = x
    if layer["in"] is not None and layer["in"] != f:
        raise layer.error("in", f"says {layer['in']} input features, but the previous layer "
                                f"gives {f}")
    out = layer["out"]
    weight_t = Shape((f, out))  # nn.Linear multiplies by weight.t()
    y = Shape((b, out))
    grad_input = Call("aten.mm", (y, Shape((out, f))), x)
    grad_weight = Call("aten.mm", (Shape((out, b)), x), Shape((out, f)))
    if layer["bias"]:
        forward = Call("aten.addmm", (Shape((out,)), x, weight_t, 1, 1), y)
        backward = [*([grad_input] if rg else []), grad_weight,
                    Call("aten.sum", (y, [0], True, None), Shape((1, out)))]
    else:
        forward = Call("aten.mm", (x, weight_t), y)
        backward = [grad_weight, *([grad_input] if rg else [])]
    return Lowered(
        y, "Linear", [forward], backward,
        params=f * out + (out if layer["bias"] else 0),
        saves_input=True,
    )


def dropout(layer: Layer, ops: list[Operand], train: bool) -> Lowered:
    x = ops[0].shape
    p = layer["p"]
    if not train or p == 0:
        return Lowered(x, "Dropout", alias="identity")
    keep = 1.0 - p
    inplace = layer["inplace"]
    return Lowered(
        x, "Dropout",
        forward=[
            Call("aten.empty_like", (x, None, None, None, None, None), x),
            Call("aten.bernoulli_", (x, keep, None), x),
            Call("aten.div_", (x, keep), x),
            Call("aten.mul_" if inplace else "aten.mul", (x, x), x),
        ],
        backward=[Call("aten.mul", (x, x), x)],
        alias="inplace" if inplace else "fresh",
    )


def add(layer: Layer, ops: list[Operand], train: bool) -> Lowered:
    first = ops[0].shape
    for i, op in enumerate(ops[1:], 1):
        if op.shape != first:
            raise layer.error(
                "from", f"cannot add shapes {list(first)} and {list(op.shape)} "
                f"(operand {i}: {layer['from'][i - 1]!r}); shapes must be equal"
            )
    calls = [Call("aten.add", (first, first, 1), first) for _ in ops[1:]]
    # a + b + c is two add nodes; autograd runs the last first, and each
    # sends gradients to (left, right) in order.
    n = len(ops)
    edges = [*range(n - 1, 1, -1), 0, 1] if n > 1 else [0]
    return Lowered(first, "Add", calls, edges=edges)


def concat(layer: Layer, ops: list[Operand], train: bool) -> Lowered:
    first = ops[0].shape
    for i, op in enumerate(ops[1:], 1):
        if len(op.shape) != len(first) or op.shape[2:] != first[2:] or op.shape[0] != first[0]:
            raise layer.error(
                "from", f"cannot concatenate {list(first)} and {list(op.shape)} along channels "
                f"(operand {i}: {layer['from'][i - 1]!r}); all other sizes must be equal"
            )
    y = Shape((first[0], sum(op.shape[1] for op in ops), *first[2:]))
    return Lowered(
        y, "Concat", [Call("aten.cat", ([op.shape for op in ops], 1), y)],
        edges=list(range(len(ops))),
    )


LOWER: dict[str, Callable[[Layer, list[Operand], bool], Lowered]] = {
    "conv": conv, "dwconv": dwconv, "bn": bn, **dict.fromkeys(ACTIVATIONS, activation),
    "maxpool": maxpool, "avgpool": avgpool, "gap": gap, "adaptive_avgpool": adaptive_avgpool,
    "flatten": flatten, "fc": fc, "dropout": dropout, "add": add, "concat": concat,
}


def lower(layer: Layer, ops: list[Operand], train: bool) -> Lowered:
    """The output shape and ATen calls of `layer` applied to `ops` (see the module docstring)."""
    return LOWER[layer.type](layer, ops, train)
