"""The layer-list frontend: analyse a network from a YAML/JSON table, without torch.

`analyze_spec("examples/vgg16.yaml")` returns the same `Report` as
`memflops.analyze` gives for the equivalent PyTorch module. Each layer is
lowered to the ATen calls that module dispatches (`layerspec.layers`), and each
call is priced by the *same* rule of the FLOP registry, so parameters and
FLOPs per layer and per phase are identical by construction:

- inference: the forward of the `eval()` module;
- train: the `train()` forward, the loss (the sum of the output) and the
  backward as autograd runs it (`layerspec.walk` states how). The optimizer step
  is not counted here (`analyze(..., optimizer=None)` matches).

Memory is the reference article's estimate, not a timeline: each row's
`activation_bytes` is the layer's output feature map, B x C x H x W x
itemsize, counted only when the layer writes a new tensor (an in-place
activation, a view or an identity adds none, as the article says of
`ReLU(inplace=True)`); `totals.memory.seed_estimate` is the article's sum
(parameters x {1; SGD 2, momentum 3, Adam 4 in training} + feature maps x
{1; 2 in training}). `peak` and `activations` (saved for backward) need the
torch frontend and are 0 here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from memflops import aggregate, flops  # noqa: F401  (flops registers every rule; torch-free)
from memflops.capture.records import OpRecord, Phase
from memflops.conventions import Convention
from memflops.errors import SpecError, UsageError
from memflops.flops.registry import OpCost, Shape, integer_cost, lookup
from memflops.layerspec.layers import Call
from memflops.layerspec.load import DTYPE_ALIASES, ITEMSIZE, Spec, load_spec
from memflops.layerspec.walk import ROOT, LayerResult, SpecTrace, trace_spec
from memflops.memory.seed import seed_estimate
from memflops.report.assemble import assemble_report
from memflops.report.model import MemoryTotals, ModuleRow, Report
from memflops.tensor_spec import TensorSpec

__all__ = ["OPTIMIZER_STATES", "SpecTrace", "analyze_spec", "load_spec", "trace_spec"]

INT64_BYTES = 8

OPTIMIZER_STATES = {"none": 0, "sgd": 0, "sgd-momentum": 1, "nesterov": 1, "adam": 2,
                    "adamw": 2, "adagrad": 1, "rmsprop": 1}
"""State tensors per parameter, as the article counts them (SGD 2x, momentum 3x, Adam 4x)."""


def _cost(call: Call, failures: dict[str, str]) -> OpCost | None:
    """As `capture.costing.cost_of` prices the same call."""
    rule = lookup(call.op)
    cost = None
    if rule is not None:
        try:
            cost = rule.fn(*call.args, out=call.out)
        except Exception as exc:  # a rule's bug must not hide the rest of the network
            failures.setdefault(call.op, f"{type(exc).__name__}: {exc}")
            return None
    return integer_cost(cost) if call.integer else cost


def _groups(name: str) -> list[str]:
    """`a.b.c` -> [`a`, `a.b`]: the enclosing groups of a dotted layer name."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _rows(
    results: Iterable[LayerResult], records: list[OpRecord], output: Shape, itemsize: int
) -> tuple[ModuleRow, ...]:
    results = list(results)
    names = {r.layer.name for r in results}
    order: list[str] = [ROOT]
    members: dict[str, list[LayerResult]] = {ROOT: results}
    for r in results:
        for prefix in _groups(r.layer.name):
            if prefix in names:
                continue
            if prefix not in members:
                members[prefix] = []
                order.append(prefix)
            members[prefix].append(r)
        order.append(r.layer.name)
        members[r.layer.name] = [r]
    costs: dict[tuple[str, Phase], OpCost] = {}
    for rec in records:
        if rec.cost is None or rec.phase is Phase.LOSS:
            continue
        for path in {rec.module, *_groups(rec.module), ROOT}:
            costs[path, rec.phase] = costs.get((path, rec.phase), OpCost()) + rec.cost
    rows = []
    for path in order:
        group = members[path]
        leaf = len(group) == 1 and group[0].layer.name == path
        shape = output if path == ROOT else group[-1].lowered.out
        rows.append(ModuleRow(
            path=path,
            type=group[0].lowered.module if leaf else ("LayerSpec" if path == ROOT else "Group"),
            depth=0 if path == ROOT else path.count(".") + 1,
            params=sum(r.lowered.params for r in group),
            forward=costs.get((path, Phase.FORWARD), OpCost()),
            backward=costs.get((path, Phase.BACKWARD), OpCost()),
            output_shape=(tuple(shape),),
            calls=1,
            activation_bytes=sum(r.feature_map_elements for r in group) * itemsize,
        ))
    return tuple(rows)


def analyze_spec(
    spec: Spec | str | Path,
    *,
    mode: str = "inference",
    convention: str | Convention = "exact",
    batch: int | None = None,
    dtype: str | None = None,
    optimizer: str | None = "adam",
) -> Report:
    """Parameters, FLOPs per layer and phase, and feature maps of a layer-list spec.

    `spec` is a path to a YAML/JSON file or a loaded `Spec`. `batch` and
    `dtype` override the file's. `mode` is "inference" or "train" (forward,
    loss = sum of the output, backward; see the module docstring).
    `optimizer` sets only the memory estimate's state count
    (`OPTIMIZER_STATES`); its step is not counted.
    """
    conv = Convention.parse(convention)
    opt = "none" if optimizer is None else optimizer
    if opt not in OPTIMIZER_STATES:
        raise UsageError(f"unknown optimizer {optimizer!r} for a layer-list spec; expected one "
                         f"of: {', '.join(OPTIMIZER_STATES)}")
    trace = trace_spec(spec, mode=mode, batch=batch)
    precision = DTYPE_ALIASES.get(dtype, dtype) if dtype is not None else trace.spec.dtype
    if precision not in ITEMSIZE:
        raise SpecError(f"dtype: expected one of: {', '.join(ITEMSIZE)}, got {dtype!r}")
    itemsize = ITEMSIZE[precision]
    train = mode == "train"

    failures: dict[str, str] = {}
    records = [OpRecord(call.op, module, phase, _cost(call, failures))
               for call, module, phase in trace.calls]
    results = trace.layers
    params = sum(r.lowered.params for r in results)
    return assemble_report(
        model=trace.spec.name,
        mode=mode,
        convention=conv,
        precision=precision,
        inputs=(("input[0]", TensorSpec(trace.size, precision)),),
        params=params,
        trainable_params=params,
        buffers=sum(r.lowered.float_buffers + r.lowered.int_buffers for r in results),
        memory=_memory(results, itemsize, train, OPTIMIZER_STATES[opt]),
        modules=_rows(results, records, trace.output, itemsize),
        records=records,
        uncounted=aggregate.uncounted(records, failures),
        bytes_priced=False,
        notes=_notes(train, opt),
        optimizer=opt if train else None,
    )


def _memory(
    results: Sequence[LayerResult], itemsize: int, train: bool, states: int
) -> MemoryTotals:
    """The article's estimate: parameters, their gradients and `states` optimizer state
    tensors in training, and every layer's feature map."""
    param_bytes = sum(r.lowered.params for r in results) * itemsize
    trainable_bytes = param_bytes if train else 0
    state_bytes = states * param_bytes if train else 0
    return MemoryTotals(
        params=param_bytes,
        buffers=sum(r.lowered.float_buffers * itemsize
                    + r.lowered.int_buffers * INT64_BYTES for r in results),
        grads=trainable_bytes,
        optimizer=state_bytes,
        seed_estimate=seed_estimate(
            param_bytes=param_bytes,
            trainable_bytes=trainable_bytes,
            optimizer_state_bytes=state_bytes,
            feature_map_bytes=sum(r.feature_map_elements for r in results) * itemsize,
            train=train,
        ),
    )


def _notes(train: bool, optimizer: str) -> list[str]:
    notes = [
        "layer-list spec: memory is the article's estimate (seed_estimate) and per-layer "
        "feature maps; the peak needs the torch frontend"
    ]
    if train:
        notes.append(
            f"layer-list spec: the {optimizer} optimizer step is not counted in FLOPs; its state "
            f"is in memory ({OPTIMIZER_STATES[optimizer]} tensor(s) per parameter)"
        )
    return notes
