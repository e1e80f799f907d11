"""Run one step of a model on fake tensors and record every op and storage.

Inference: `eval()` and `no_grad`, one forward that frees as it goes.
Train: the steady state of a training loop, as in its second iteration:
optimizer state already exists, gradients were zeroed with
`set_to_none=True`; then `train()` forward, a scalar loss, backward and,
when an optimizer is given, its step. With gradient accumulation over M
micro-batches (`StepConfig.micro_batches`), the inputs are one micro-batch
and forward, loss / M and backward run twice before the optimizer step:
micro-batch 1 creates the gradients, micro-batch 2 adds into them (autograd's
in-place `add_` into `.grad`) with micro-batch 1's gradients live all through
it; micro-batches 3..M repeat micro-batch 2, so its records stand for M - 1
micro-batches (`records.MicroBatches`). Both run inside a `CaptureSession`
(`capture.session`), which swaps the model's weights for fake stand-ins and
puts them back, with the train/eval flags; what is particular to a step
(inputs with known values, the optimizer's warm-up, autocast, the tensors
saved for backward, loss, backward, optimizer step) is here.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nested._internal.nested_tensor import nested_view_from_values_offsets

from memflops.capture.checkpointing import regions_noted, selective_saves_marked
from memflops.capture.inputs import (
    InputSpecs,
    TensorSpec,
    dense_view,
    flatten_tensors,
    input_values,
    real_values,
)
from memflops.capture.recorder import OpRecorder, OptimizerScalars
from memflops.capture.records import MicroBatches, OpRecord, Phase
from memflops.capture.session import CaptureSession, StepWrapper
from memflops.capture.tracker import ROOT, ModuleTracker
from memflops.capture.values.assumptions import Assumptions
from memflops.capture.values.known import small_enough
from memflops.errors import AnalysisError, ForwardError, MemflopsError, UsageError
from memflops.memory.kinds import Kind
from memflops.memory.optimizers import OptimizerSpec, build_optimizer
from memflops.memory.storage import StorageTracker

LossSpec = str | Callable[[Any, Any], torch.Tensor]
LOSSES = ("sum", "cross_entropy")


@dataclass(frozen=True)
class StepConfig:
    """What one analysed step does."""

    train: bool
    dtype: torch.dtype | None = None
    optimizer: OptimizerSpec | None = None
    autocast: torch.dtype | None = None
    loss: LossSpec = "sum"
    targets: TensorSpec | None = None
    track_memory: bool = True
    wrapper: StepWrapper | None = None
    """Run the step on a distributed wrapping of the model (`capture.parallel`)."""
    micro_batches: int = 1
    """Gradient accumulation: forward and backward of this many micro-batches (the
    inputs are one) per optimizer step; 1 for none."""


@dataclass(frozen=True)
class Capture:
    records: tuple[OpRecord, ...]
    output_shapes: Mapping[str, list[tuple[int, ...]]]
    calls: Mapping[str, int]
    rule_failures: Mapping[str, str]
    feature_map_bytes: Mapping[str, int] = field(default_factory=dict)
    storages: StorageTracker | None = None
    grads: frozenset[int] = field(default_factory=frozenset)
    optimizer_state: frozenset[int] = field(default_factory=frozenset)
    assumptions: Assumptions = field(default_factory=Assumptions)
    """Values answered by assumption (`capture.values.assumptions`)."""
    recomputed: tuple[str, ...] = ()
    """Modules whose forward ran again in backward (activation checkpointing), in order."""
    checkpointed: tuple[str, ...] = ()
    """The module of each region the forward ran under activation checkpointing, in order
    (`capture.checkpointing.regions_noted`)."""
    parallel: Any = None
    """What `StepConfig.wrapper` found (`capture.parallel.ParallelCapture`); None without."""
    transient: frozenset[int] = field(default_factory=frozenset)
    """Storages that are temporaries even when autograd saved them (the wrapper's gathered
    parameters and communication buffers; `memory.timeline.classify`)."""
    module_tree: tuple[tuple[str, nn.Module], ...] = ()
    """`named_modules()` at the end of the step: a model may swap a submodule in as it
    runs, which the session removes again afterwards (`capture.isolation`)."""
    micro_batches: MicroBatches | None = None
    """Gradient accumulation: where the two captured micro-batches lie in `records`;
    `calls` then count every micro-batch of the step, `feature_map_bytes` one."""


def default_float_dtype(model: nn.Module, dtype: torch.dtype | None) -> torch.dtype:
    if dtype is not None:
        return dtype
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def input_dtype(
    spec: TensorSpec, float_dtype: torch.dtype, cast: torch.dtype | None = None
) -> torch.dtype:
    """An input's dtype: its own (or the model's), floating ones cast to `cast` if given."""
    dtype = spec.dtype or float_dtype
    return cast if cast is not None and dtype.is_floating_point else dtype


def _make_input(
    spec: TensorSpec, float_dtype: torch.dtype, cast: torch.dtype | None = None
) -> torch.Tensor:
    """The input tensor of `spec`; a leaf that requires grad when the spec says so."""
    dtype = input_dtype(spec, float_dtype, cast)
    if spec.requires_grad and not (dtype.is_floating_point or dtype.is_complex):
        raise UsageError(
            f"input {spec.describe()}: only a floating-point input can require grad, "
            f"not {str(dtype).removeprefix('torch.')}; drop ':grad' or give a float dtype"
        )
    tensor = torch.empty(spec.shape, dtype=dtype, device="cpu")
    if spec.lengths is not None:
        tensor = _jagged(tensor, spec)
    return tensor.requires_grad_() if spec.requires_grad else tensor


def _jagged(values: torch.Tensor, spec: TensorSpec) -> torch.Tensor:
    """A jagged nested tensor of `values` packed in sequences of `spec.lengths`: its
    offsets' values known to the capture (`_note_input_values`), its shortest and longest
    lengths given, as `torch.nested.nested_tensor` gives them, so that no kernel reads
    them."""
    assert spec.lengths is not None
    offsets = torch.tensor(spec.offsets, dtype=torch.int64)
    # what `torch.nested.nested_tensor_from_jagged` returns, without its check for fx
    # tracing, which logs a deprecation warning the user did not cause
    packed: torch.Tensor = nested_view_from_values_offsets(  # type: ignore[no-untyped-call]
        values, offsets, min_seqlen=min(spec.lengths), max_seqlen=max(spec.lengths))
    return packed.detach()  # a leaf, as the tensor a user makes is


def _note_input_values(
    recorder: OpRecorder, inputs: InputSpecs, args: list[torch.Tensor],
    kwargs: dict[str, torch.Tensor],
) -> None:
    """Tell the recorder the values of inputs that have known ones (`capture.values.known`).
    Only those small enough to be kept are built for real: a mask of 20,000 x 20,000 (or
    a million prompts of token ids) stays fake, its values unknown, rather than 3.8 GB."""
    named = [(f"input[{i}]", s, t) for i, (s, t) in enumerate(zip(inputs.args, args,
                                                                   strict=True))]
    named += [(name, s, kwargs[name]) for name, s in inputs.kwargs]
    for name, spec, tensor in named:
        if spec.lengths is not None:
            recorder.values.note(tensor._offsets,  # type: ignore[attr-defined]  # jagged
                                 torch.tensor(spec.offsets, dtype=torch.int64))
            continue
        values = input_values(name, spec)
        if values is not None and small_enough(tensor):
            recorder.values.note(tensor, real_values(spec, values, tensor.dtype),
                                 filled=spec.values is None)
        elif values is not None:
            recorder.unknown_inputs.append(f"{name} ({spec.describe()})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _loss(output: Any, config: StepConfig) -> torch.Tensor:
    floating = [t for t in flatten_tensors(output) if t.is_floating_point() and t.requires_grad]
    if not floating:
        raise AnalysisError(
            "train mode: the model's output has no floating tensor that requires grad, so there "
            "is nothing to differentiate (are all parameters frozen?)"
        )
    if callable(config.loss):
        targets = _make_input(config.targets, torch.float32) if config.targets else None
        try:
            loss = config.loss(output, targets)
        except MemflopsError:
            raise
        except Exception as exc:
            name = getattr(config.loss, "__qualname__", type(config.loss).__name__)
            raise AnalysisError(f"the loss function {name} raised {_first_line(exc)}") from exc
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            raise AnalysisError("the loss function must return a scalar tensor")
        return loss
    if config.loss == "cross_entropy":
        logits = dense_view(floating[0])  # a jagged output: its packed positions
        rows = tuple(logits.shape[:-1])
        shape = config.targets.shape if config.targets else rows
        if math.prod(shape) != math.prod(rows):
            raise UsageError(
                f"targets of shape {tuple(shape)}: cross_entropy takes one class index per row "
                f"of the output's {tuple(logits.shape)} logits, {math.prod(rows):,} of them "
                f"(targets of shape {rows})"
            )
        targets = torch.empty(shape, dtype=torch.int64)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    loss = floating[0].sum()
    for t in floating[1:]:
        loss = loss + t.sum()
    return loss


def check_loss(loss: LossSpec) -> None:
    if isinstance(loss, str) and loss not in LOSSES:
        known = ", ".join(LOSSES)
        raise UsageError(f"unknown loss {loss!r}; expected one of: {known} or a callable")


def capture(model: nn.Module, inputs: InputSpecs, config: StepConfig) -> Capture:
    """Run one step of `model` on fake tensors (see the module docstring)."""
    float_dtype = default_float_dtype(model, config.dtype)
    grads: frozenset[int] = frozenset()
    state: frozenset[int] = frozenset()
    split: _Split | None = None
    with CaptureSession(
        model, train=config.train, dtype=config.dtype, track_memory=config.track_memory,
        wrapper=config.wrapper,
    ) as session:
        with session.fake_mode:
            args = [_make_input(s, float_dtype, config.dtype) for s in inputs.args]
            kwargs = {k: _make_input(s, float_dtype, config.dtype) for k, s in inputs.kwargs}
            trainable = _unique_trainable(session.model) if config.train else []
            optimizer = _warm_optimizer(config.optimizer, trainable)
        _note_input_values(session.recorder, inputs, args, kwargs)
        session.note_weights_and_inputs([*args, *kwargs.values()])
        if optimizer is not None:
            _note_optimizer_state(session, optimizer)
        if config.train:
            grads, state, split = _train_step(session, args, kwargs, inputs, config, optimizer)
        else:
            _inference_step(session, args, kwargs, inputs, config)
        if session.storages is not None:
            session.storages.end_step()
        module_tree = tuple(model.named_modules())
    recorder, tracker = session.recorder, session.tracker
    parallel = session.wrapped_result()
    records, calls, feature_maps = tuple(recorder.records), tracker.calls, tracker.feature_map_bytes
    if split is not None:
        records, calls, feature_maps = split.per_step(records, calls, feature_maps)
    cap = Capture(
        records=records,
        output_shapes=dict(tracker.output_shapes),
        calls=dict(calls),
        rule_failures=dict(recorder.rule_failures),
        feature_map_bytes=dict(feature_maps),
        storages=session.storages,
        grads=grads,
        optimizer_state=state,
        assumptions=recorder.assumptions(),
        recomputed=tuple(tracker.recomputed),
        checkpointed=tuple(dict.fromkeys(session.checkpointed)),
        parallel=parallel,
        transient=parallel.transient if parallel is not None else frozenset(),
        module_tree=module_tree,
        micro_batches=split.micro_batches if split is not None else None,
    )
    return cap if config.wrapper is None else config.wrapper.finish(cap)


def _autocast(config: StepConfig) -> contextlib.AbstractContextManager[Any]:
    if config.autocast is None:
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=config.autocast)


def _inference_step(
    session: CaptureSession, args: list[torch.Tensor], kwargs: dict[str, torch.Tensor],
    inputs: InputSpecs, config: StepConfig,
) -> None:
    """One forward under no grad: each activation is freed once no op needs it."""
    with session.recording(), _autocast(config):
        _forward(session.model, session.tracker, args, kwargs, inputs)


def _train_step(
    session: CaptureSession, args: list[torch.Tensor], kwargs: dict[str, torch.Tensor],
    inputs: InputSpecs, config: StepConfig, optimizer: torch.optim.Optimizer | None,
) -> tuple[frozenset[int], frozenset[int], _Split | None]:
    """Forward, loss, backward (of each captured micro-batch), optimizer step; the serials
    of the gradients and of the optimizer state, and where the micro-batches lie (None
    without gradient accumulation)."""
    recorder, tracker = session.recorder, session.tracker
    state: frozenset[int] = frozenset()
    split = None
    with session.recording():
        _micro_batch(session, args, kwargs, inputs, config)
        if config.micro_batches > 1:
            split = _Split(config.micro_batches, len(recorder.records), dict(tracker.calls),
                           dict(tracker.feature_map_bytes))
            _micro_batch(session, args, kwargs, inputs, config)
            split.end = len(recorder.records)
        grads = session.serials([p.grad for p in _unique_trainable(session.model)]
                                + [t.grad for t in (*args, *kwargs.values()) if t.requires_grad])
        if optimizer is not None:
            recorder.phase = Phase.OPTIMIZER
            optimizer.step()
            state = session.serials(_state_tensors(optimizer))
    return grads, state, split


def _micro_batch(
    session: CaptureSession, args: list[torch.Tensor], kwargs: dict[str, torch.Tensor],
    inputs: InputSpecs, config: StepConfig,
) -> None:
    """Forward, loss and backward of one (micro-)batch; backward adds into the gradients
    a previous micro-batch left. Under accumulation the loss is divided by the number of
    micro-batches, as a training loop does to average over the effective batch."""
    recorder, tracker = session.recorder, session.tracker
    saving = contextlib.ExitStack()
    if session.storages is not None:
        saving.enter_context(torch.autograd.graph.saved_tensors_hooks(recorder.pack_saved, _unpack))
        saving.enter_context(selective_saves_marked(recorder.pack_saved))
        recorder.saving = recorder.pack_saved
    saving.enter_context(regions_noted(tracker, session.checkpointed))
    recorder.phase = Phase.FORWARD
    with saving:
        with _autocast(config):
            output = _forward(session.model, tracker, args, kwargs, inputs)
        recorder.phase = Phase.LOSS
        with _autocast(config):
            loss = _loss(output, config)
        if config.micro_batches > 1:
            loss = loss / config.micro_batches
        tracker.tag_nodes([loss], ROOT)
    recorder.saving = None
    if recorder.foreign_hooks is not None:
        raise AnalysisError(recorder.foreign_hooks)
    del output
    recorder.phase = Phase.BACKWARD
    _backward(loss, tracker)
    del loss


@dataclass
class _Split:
    """What the capture saw by the end of micro-batch 1 (`second` records, module calls,
    feature maps), and where micro-batch 2 ends (`end`)."""

    count: int
    second: int
    calls: dict[str, int]
    feature_maps: dict[str, int]
    end: int = 0

    @property
    def micro_batches(self) -> MicroBatches:
        return MicroBatches(self.count, self.second, self.end)

    def per_step(
        self, records: tuple[OpRecord, ...], calls: Mapping[str, int],
        feature_maps: Mapping[str, int],
    ) -> tuple[tuple[OpRecord, ...], dict[str, int], dict[str, int]]:
        """The records with micro-batch 2's repeated `count - 1` times; the module calls
        of every micro-batch of the step (micro-batch 1's, and micro-batch 2's `count - 1`
        times); the feature maps of one micro-batch (micro-batch 2's, the steady state)."""
        later = self.count - 1
        repeated = tuple(
            replace(rec, repeat=later) if self.second <= i < self.end else rec
            for i, rec in enumerate(records)
        )
        step_calls = {path: self.calls.get(path, 0) + later * (n - self.calls.get(path, 0))
                      for path, n in calls.items()}
        maps = {path: n - self.feature_maps.get(path, 0) for path, n in feature_maps.items()}
        return repeated, step_calls, maps


def _unpack(t: Any) -> Any:
    return t


def _unique_trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def _warm_optimizer(
    spec: OptimizerSpec | None, params: list[nn.Parameter]
) -> torch.optim.Optimizer | None:
    """Build the optimizer and take one step, so its state exists (steady state)."""
    if spec is None or not params:
        return None
    try:
        optimizer = build_optimizer(spec, params)
    except MemflopsError:
        raise
    except Exception as exc:
        name = getattr(spec, "__qualname__", type(spec).__name__)
        raise AnalysisError(f"the optimizer factory {name} raised {_first_line(exc)}") from exc
    for p in params:
        p.grad = torch.empty_like(p)
    try:
        with OptimizerScalars():  # type: ignore[no-untyped-call]
            optimizer.step()
    except MemflopsError:
        raise
    except Exception as exc:
        raise AnalysisError(
            f"optimizer {type(optimizer).__name__} cannot step on meta tensors: "
            f"{_first_line(exc)}"
        ) from exc
    optimizer.zero_grad(set_to_none=True)
    return optimizer


def _state_tensors(
    optimizer: torch.optim.Optimizer, *, on_device: bool = True
) -> list[torch.Tensor]:
    """State tensors on the accelerator (or, with `on_device=False`, on the host).

    PyTorch keeps the scalar `step` count of its non-fused, non-capturable
    optimizers on the host (a CPU tensor), so it takes no GPU memory.
    """
    device_steps = bool(optimizer.defaults.get("fused") or optimizer.defaults.get("capturable"))
    return [
        v for state in optimizer.state.values() for k, v in state.items()
        if isinstance(v, torch.Tensor) and (device_steps or k != "step") == on_device
    ]


def _note_optimizer_state(session: CaptureSession, optimizer: torch.optim.Optimizer) -> None:
    """The warm optimizer's state: host tensors never counted, the rest pre-existing."""
    if session.storages is None:
        return
    for t in _state_tensors(optimizer, on_device=False):
        session.storages.on_host(session.local(t))
    session.note_preexisting(Kind.OPTIMIZER, _state_tensors(optimizer))


def _forward(
    model: nn.Module, tracker: ModuleTracker, args: list[torch.Tensor],
    kwargs: dict[str, torch.Tensor], inputs: InputSpecs,
) -> Any:
    try:
        return model(*args, **kwargs)
    except MemflopsError:
        raise
    except Exception as exc:
        frame = tracker.failed_in(exc)
        if frame is None or frame.path == ROOT:
            given = ", ".join(f"{n}={s.describe()}" for n, s in inputs.all())
            where = f"forward of {type(model).__name__} failed given {given}"
        else:
            shapes = ", ".join("x".join(map(str, s)) or "scalar" for s in frame.input_shapes)
            where = (
                f"forward failed in module `{frame.path}` ({type(frame.module).__name__}) "
                f"given inputs of shapes [{shapes}]"
            )
        raise ForwardError(f"{where}: {_first_line(exc)}") from exc


def _backward(loss: torch.Tensor, tracker: ModuleTracker) -> None:
    try:
        loss.backward()  # type: ignore[no-untyped-call]
    except MemflopsError:
        raise
    except Exception as exc:
        where = tracker.backward_path or "<root>"
        raise ForwardError(f"backward failed in module `{where}`: {_first_line(exc)}") from exc
