"""Run one step of a model on fake tensors and record every op.

Inference: `eval()` and `no_grad`, one forward. Train: `train()`, forward, a
scalar loss (the sum of every floating output), backward. The model's own
weights are swapped for fake stand-ins for the duration and put back, and
its train/eval flags are restored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from memflops.capture.fake import fake_weights
from memflops.capture.inputs import InputSpecs, TensorSpec, flatten_tensors
from memflops.capture.recorder import OpRecorder
from memflops.capture.records import OpRecord, Phase
from memflops.capture.tracker import ROOT, ModuleTracker
from memflops.errors import AnalysisError, ForwardError, MemflopsError


@dataclass(frozen=True)
class Capture:
    records: tuple[OpRecord, ...]
    output_shapes: Mapping[str, list[tuple[int, ...]]]
    calls: Mapping[str, int]
    rule_failures: Mapping[str, str]


def default_float_dtype(model: nn.Module, dtype: torch.dtype | None) -> torch.dtype:
    if dtype is not None:
        return dtype
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def _make_input(spec: TensorSpec, float_dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(spec.shape, dtype=spec.dtype or float_dtype, device="cpu")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _loss(output: Any) -> torch.Tensor:
    floating = [t for t in flatten_tensors(output) if t.is_floating_point() and t.requires_grad]
    if not floating:
        raise AnalysisError(
            "train mode: the model's output has no floating tensor that requires grad, so there "
            "is nothing to differentiate (are all parameters frozen?)"
        )
    loss = floating[0].sum()
    for t in floating[1:]:
        loss = loss + t.sum()
    return loss


def capture(
    model: nn.Module, inputs: InputSpecs, *, train: bool, dtype: torch.dtype | None
) -> Capture:
    """Run the model once on fake tensors (forward, and backward when `train`)."""
    float_dtype = default_float_dtype(model, dtype)
    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    tracker = ModuleTracker(model, tag_backward=train)
    recorder = OpRecorder(tracker)
    flags = [(m, m.training) for m in model.modules()]
    model.train(train)
    try:
        with fake_weights(model, fake_mode, dtype), tracker:
            with fake_mode:
                args = [_make_input(s, float_dtype) for s in inputs.args]
                kwargs = {k: _make_input(s, float_dtype) for k, s in inputs.kwargs}
            with torch.set_grad_enabled(train), fake_mode, recorder:
                output = _forward(model, tracker, args, kwargs, inputs)
                if train:
                    recorder.phase = Phase.LOSS
                    loss = _loss(output)
                    tracker.tag_nodes([loss], ROOT)
                    recorder.phase = Phase.BACKWARD
                    _backward(loss, tracker)
    finally:
        for module, flag in flags:
            module.training = flag
    return Capture(
        records=tuple(recorder.records),
        output_shapes=dict(tracker.output_shapes),
        calls=dict(tracker.calls),
        rule_failures=dict(recorder.rule_failures),
    )


def _forward(
    model: nn.Module, tracker: ModuleTracker, args: list[torch.Tensor],
    kwargs: dict[str, torch.Tensor], inputs: InputSpecs,
) -> Any:
    try:
        return model(*args, **kwargs)
    except MemflopsError:
        raise
    except Exception as exc:
        frame = tracker.innermost()
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
