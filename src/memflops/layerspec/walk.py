"""Walk a spec's layers as PyTorch would run them: shapes, checks, and every ATen call.

Each layer is lowered by `layerspec.layers`; this module keeps the tensors
between layers and mirrors autograd for train mode:

- a tensor requires grad when its layer has parameters or reads a tensor
  that requires grad (the network input does not), and only such a layer
  gets an autograd node;
- the loss is the sum of the output; backward runs the nodes reachable from
  it, latest first (autograd's order on one device), each sending gradients
  to its operands in order; a tensor read by k layers receives k gradients
  and k - 1 `add`s, each charged to the layer whose gradient arrives second
  or later (as the capture charges it);
- an identity (dropout in eval, flatten of a flat tensor) passes its
  operand itself; a view (flatten) shares its storage; an in-place layer
  writes over it. Referring to a tensor after an in-place write over it is
  an error, and so is an in-place write over a tensor a backward node keeps
  (PyTorch would fail in backward).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from memflops.capture.records import Phase
from memflops.errors import AnalysisError, SpecError, UsageError
from memflops.flops.registry import Shape, numel
from memflops.layerspec.layers import SCALAR, Call, Lowered, Operand, lower
from memflops.layerspec.load import INPUT_NAME, Layer, Spec, load_spec

MODES = ("inference", "train")
ROOT = ""


@dataclass(eq=False)
class _Value:
    """A tensor during the walk. Identity layers pass the same object on."""

    shape: Shape
    requires_grad: bool
    node: _Node | None
    storage: int
    overwritten_by: int | None = None


@dataclass(eq=False)
class _Node:
    """The autograd node of one layer: its backward calls and where its gradients go."""

    order: int
    layer: Layer
    backward: list[Call]
    edges: list[_Value]


@dataclass
class _Walk:
    """State of one analysis."""

    train: bool
    records: list[tuple[Call, str, Phase]] = field(default_factory=list)
    values: dict[str, _Value] = field(default_factory=dict)
    saved: dict[int, int] = field(default_factory=dict)  # storage -> layer index saving it
    nodes: list[_Node] = field(default_factory=list)
    storages: int = 0

    def new_storage(self) -> int:
        self.storages += 1
        return self.storages


@dataclass(frozen=True)
class LayerResult:
    """One layer as the walk saw it: its operand shapes and what it lowered to."""

    layer: Layer
    inputs: tuple[Shape, ...]
    lowered: Lowered
    feature_map_elements: int
    """Elements of the output when the layer writes a new tensor, else 0."""


def _resolve(walk: _Walk, layer: Layer, ref: str, field_name: str) -> _Value:
    value = walk.values.get(ref)
    if value is None:
        known = [n for n in walk.values if not n.isdigit()]
        close = difflib.get_close_matches(ref, known, n=2)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise layer.error(field_name, f"{ref!r} names no earlier layer{hint}")
    if value.overwritten_by is not None:
        raise layer.error(
            field_name, f"the output of {ref!r} was overwritten in place by "
            f"layers[{value.overwritten_by}]; refer to that layer, or make it not in-place"
        )
    return value


def _operands(walk: _Walk, layer: Layer, current: _Value) -> list[_Value]:
    first = current if layer.input is None else _resolve(walk, layer, layer.input, "input")
    extra = [_resolve(walk, layer, ref, "from") for ref in layer.fields.get("from", ())]
    return [first, *extra]


def _check_inplace(walk: _Walk, layer: Layer, target: _Value) -> None:
    saver = walk.saved.get(target.storage)
    if walk.train and saver is not None:
        raise layer.error(
            "inplace", f"overwrites a tensor that layers[{saver}] keeps for the backward pass "
            "(PyTorch fails in backward); set inplace: false"
        )


def _step(walk: _Walk, layer: Layer, current: _Value) -> tuple[_Value, LayerResult]:
    """Apply one layer: record its forward calls, make its output and autograd node."""
    operands = _operands(walk, layer, current)
    lowered = lower(layer, [Operand(v.shape, v.requires_grad) for v in operands], walk.train)
    first = operands[0]
    if lowered.alias == "inplace":
        _check_inplace(walk, layer, first)
    for call in lowered.forward:
        walk.records.append((call, layer.name, Phase.FORWARD))
    if lowered.alias == "identity":
        out = first
    else:
        needs = lowered.params > 0 or any(v.requires_grad for v in operands)
        requires_grad = walk.train and needs
        storage = walk.new_storage() if lowered.alias == "fresh" else first.storage
        node = None
        if requires_grad:
            edges = [operands[i] for i in lowered.edges]
            node = _Node(len(walk.nodes), layer, lowered.backward, edges)
            walk.nodes.append(node)
        out = _Value(lowered.out, requires_grad, node, storage)
        if lowered.alias == "inplace":
            for value in walk.values.values():
                if value.storage == first.storage:
                    value.overwritten_by = layer.index
        if requires_grad:
            if lowered.saves_input:
                walk.saved.setdefault(first.storage, layer.index)
            if lowered.saves_result:
                walk.saved.setdefault(out.storage, layer.index)
    walk.values[layer.name] = out
    walk.values.setdefault(str(layer.index), out)
    fresh = lowered.alias == "fresh"
    shapes = tuple(v.shape for v in operands)
    return out, LayerResult(layer, shapes, lowered, numel(out.shape) if fresh else 0)


def _backward(walk: _Walk, output: _Value) -> None:
    """Mirror autograd: reachable nodes, latest first; accumulate repeated gradients."""
    walk.records.append((Call("aten.sum", (output.shape, None), SCALAR), ROOT, Phase.LOSS))
    walk.records.append((
        Call("aten.ones_like", (SCALAR, None, None, None, False, "preserve_format"), SCALAR),
        ROOT, Phase.BACKWARD,
    ))
    reachable: set[int] = set()
    pending = [output.node] if output.node is not None else []
    while pending:
        node = pending.pop()
        if node.order in reachable:
            continue
        reachable.add(node.order)
        pending.extend(v.node for v in node.edges if v.requires_grad and v.node is not None)
    has_grad: set[int] = {id(output.node)}
    for node in reversed(walk.nodes):
        if node.order not in reachable:
            continue
        for call in node.backward:
            walk.records.append((call, node.layer.name, Phase.BACKWARD))
        for value in node.edges:
            if not value.requires_grad:
                continue
            key = id(value.node)  # one gradient buffer per producing node
            if key in has_grad:
                walk.records.append((
                    Call("aten.add", (value.shape, value.shape, 1), value.shape),
                    node.layer.name, Phase.BACKWARD,
                ))
            has_grad.add(key)


@dataclass(frozen=True)
class SpecTrace:
    """Every ATen call one step of a spec makes, with its layer and phase, before pricing."""

    spec: Spec
    mode: str
    size: tuple[int, ...]
    calls: tuple[tuple[Call, str, Phase], ...]
    layers: tuple[LayerResult, ...]
    output: Shape


def trace_spec(spec: Spec | str | Path, *, mode: str = "inference",
               batch: int | None = None) -> SpecTrace:
    """Walk the layers: shapes, checks, and the ATen calls of one step (see the module doc)."""
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}; expected one of: {', '.join(MODES)}")
    loaded = spec if isinstance(spec, Spec) else load_spec(spec)
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise SpecError(f"batch: expected an integer >= 1, got {batch!r}")
    train = mode == "train"
    size = (batch or loaded.batch, *loaded.input)
    walk = _Walk(train)
    current = _Value(Shape(size), False, None, walk.new_storage())
    walk.values[INPUT_NAME] = current
    results = []
    for layer in loaded.layers:
        current, result = _step(walk, layer, current)
        results.append(result)
    if train:
        if not current.requires_grad:
            raise AnalysisError(
                f"{loaded.file}: train mode: the output depends on no parameter, so there is "
                "nothing to differentiate"
            )
        _backward(walk, current)
    return SpecTrace(loaded, mode, size, tuple(walk.records), tuple(results), current.shape)
