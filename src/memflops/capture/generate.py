"""Autoregressive generation with a KV cache: prefill, then one token at a time.

Three calls are captured, each in a capture session of its own
(`capture.session`: fake tensors, `eval()`, `no_grad`):

- the prefill of the `prompt_len`-token prompt, which builds the cache;
- the first decode step (cache of `prompt_len` tokens);
- the last decode step (cache of `prompt_len + new_tokens - 1` tokens),
  whose cache is built first by an unrecorded prefill of that length: the
  cache then has exactly the shapes the real loop would have reached.

Every call, the unrecorded one too, answers value reads as the other modes
do (known values, assumed picks, finiteness checks); the assumptions of the
three captured calls, added, are the report's warnings (`capture.values.assumptions`).

A decode step's FLOPs are affine in the cache length (attention reads every
cached position once; every other op is independent of it), so the FLOPs of
all `new_tokens` steps are exactly new_tokens x (first + last) / 2, the sum
of an arithmetic progression. The model must follow the Hugging Face causal
LM protocol: `model(input_ids=..., use_cache=True)` returns an object with
its KV cache, which a later call takes back: `cache` in transformers 5,
`past_key_values` before (`_cache_argument`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from memflops.capture.inputs import TensorSpec
from memflops.capture.recorder import OpRecorder
from memflops.capture.records import OpRecord, Phase
from memflops.capture.session import CaptureSession
from memflops.capture.tracker import ModuleTracker
from memflops.capture.values.assumptions import Assumptions
from memflops.errors import AnalysisError, ForwardError, MemflopsError, UsageError
from memflops.memory.allocator import AllocatorConfig
from memflops.memory.kinds import Kind
from memflops.memory.reserved import ReservedMemory, reserved_memory
from memflops.memory.timeline import Timeline, replay


@dataclass(frozen=True)
class CallCapture:
    """One captured call: its ops, its memory timeline, and its cache afterwards."""

    records: tuple[OpRecord, ...]
    timeline: Timeline
    cache_elements: int
    """Elements of the KV cache after the call (keys and values, all layers)."""
    output_shapes: Mapping[str, list[tuple[int, ...]]]
    calls: Mapping[str, int]
    rule_failures: Mapping[str, str]
    feature_map_bytes: Mapping[str, int]
    assumptions: Assumptions = field(default_factory=Assumptions)
    """Values the call answered by assumption (`capture.values.assumptions`)."""
    reserved: ReservedMemory | None = None
    """The caching allocator over the call repeated (`memory.reserved`); its cache as
    resident storage, so a decode step's is that of a run of steps at this length."""


@dataclass(frozen=True)
class GenerateCapture:
    prefill: CallCapture
    first_decode: CallCapture
    last_decode: CallCapture

    def assumptions(self) -> Assumptions:
        """Those of the recorded calls, added (the last decode once when it is the first)."""
        calls = [self.prefill, self.first_decode]
        if self.last_decode is not self.first_decode:
            calls.append(self.last_decode)
        total = Assumptions()
        for call in calls:
            total += call.assumptions
        return total


def cache_tensors(cache: Any) -> list[torch.Tensor]:
    """Every tensor a KV cache object holds (DynamicCache layers, legacy tuples, ...)."""
    found: list[torch.Tensor] = []
    seen: set[int] = set()

    def walk(obj: Any, depth: int) -> None:
        if depth > 6 or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            found.append(obj)
        elif isinstance(obj, Mapping):
            for value in obj.values():
                walk(value, depth + 1)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                walk(value, depth + 1)
        elif hasattr(obj, "__dict__") and not isinstance(obj, (nn.Module, type)):
            for value in vars(obj).values():
                walk(value, depth + 1)

    walk(cache, 0)
    return found


def _call_kwargs(model: nn.Module) -> dict[str, Any]:
    """Ask for the last position's logits only, as generation does, when supported."""
    params = inspect.signature(model.forward).parameters
    if "logits_to_keep" in params:
        return {"logits_to_keep": 1}
    if "num_logits_to_keep" in params:
        return {"num_logits_to_keep": 1}
    return {}


CACHE_NAMES = ("cache", "past_key_values")
"""The KV cache's name, as an argument and in a causal LM's output: transformers 5, then 4.x."""


def _cache_argument(model: nn.Module) -> str:
    """The name of the KV cache argument: transformers 5 calls it `cache` and warns on the
    older `past_key_values`, which 4.x takes."""
    new, old = CACHE_NAMES
    return new if new in inspect.signature(model.forward).parameters else old


def _past(output: Any) -> Any:
    cache = None
    for name in CACHE_NAMES:
        if cache is None:
            cache = getattr(output, name, None)
        if cache is None and isinstance(output, Mapping):
            cache = output.get(name)
    if cache is None:
        raise AnalysisError(
            "generate mode: the model returned no past_key_values with use_cache=True; "
            "it needs a Hugging Face causal-LM style KV cache"
        )
    return cache


def _unrecorded_prefill(
    session: CaptureSession, batch: int, cache_len: int, new: int, extra: dict[str, Any]
) -> tuple[Any, torch.Tensor]:
    """The KV cache of a `cache_len`-token prompt (None for 0), and the `new` token ids of
    the call to record.

    The cache is built under a recorder of its own that answers known values as the
    recorded call's does; its records are dropped, and so are the module calls it saw.
    """
    builder = OpRecorder(session.tracker)
    session.note_constants(builder)
    with session.recording(builder):
        past = None
        if cache_len:
            prompt = torch.empty((batch, cache_len), dtype=torch.int64)
            past = _past(_invoke(session.model, session.tracker, prompt, None, extra))
        ids = torch.empty((batch, new), dtype=torch.int64)
    session.tracker.forget_calls()
    return past, ids


def _capture_call(
    model: nn.Module,
    batch: int,
    cache_len: int,
    new: int,
    dtype: torch.dtype | None,
    phase: Phase,
    allocator: AllocatorConfig,
) -> CallCapture:
    """Capture one call of `new` tokens after a cache of `cache_len` tokens (0: none)."""
    extra = _call_kwargs(model)
    with CaptureSession(model, train=False, dtype=dtype) as session:
        recorder, tracker = session.recorder, session.tracker
        recorder.phase = phase
        past, ids = _unrecorded_prefill(session, batch, cache_len, new, extra)
        session.note_weights_and_inputs([ids])
        prompt_cache = cache_tensors(past)
        session.note_preexisting(Kind.KV_CACHE, prompt_cache)
        # Hold the prompt cache's last tensor until the recorded call ends, as the code before
        # CaptureSession did by accident (a loop variable kept it): the decode peak counts it
        # even after the model has replaced it, where a real loop frees it. Dropping the hold
        # lowers the decode peak, so it is left to a change that means to change that number.
        held_by_accident = prompt_cache[-1:]
        del prompt_cache
        with session.recording():
            output = _invoke(model, tracker, ids, past, extra)
            cache = cache_tensors(_past(output))
            kv = session.serials(cache)
            del output
        del held_by_accident
        assert session.storages is not None
        timeline = replay(session.storages, recorder.records, frozenset(), frozenset(), kv_cache=kv)
        reserved = reserved_memory(session.storages, recorder.records, allocator)
    return CallCapture(
        records=tuple(recorder.records),
        timeline=timeline,
        cache_elements=sum(t.numel() for t in cache),
        output_shapes=dict(tracker.output_shapes),
        calls=dict(tracker.calls),
        rule_failures=dict(recorder.rule_failures),
        feature_map_bytes=dict(tracker.feature_map_bytes),
        assumptions=recorder.assumptions(),
        reserved=reserved,
    )


def _invoke(
    model: nn.Module, tracker: ModuleTracker, ids: torch.Tensor, past: Any, extra: dict[str, Any]
) -> Any:
    kwargs = dict(extra, use_cache=True)
    if past is not None:
        kwargs[_cache_argument(model)] = past
    try:
        return model(input_ids=ids, **kwargs)
    except MemflopsError:
        raise
    except Exception as exc:
        frame = tracker.failed_in(exc)
        where = f"module `{frame.path}`" if frame is not None and frame.path else "the model"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ForwardError(
            f"generate: forward of {where} failed for input_ids of shape "
            f"{TensorSpec(tuple(ids.shape)).describe()}: {type(exc).__name__}: {first}"
        ) from exc


def capture_generate(
    model: nn.Module, *, batch: int, prompt_len: int, new_tokens: int, dtype: torch.dtype | None,
    allocator: AllocatorConfig | None = None,
) -> GenerateCapture:
    """Capture prefill, first and last decode steps (see the module docstring); each is
    also run through the caching allocator with `allocator`'s options."""
    allocator = allocator or AllocatorConfig()
    for name, value in (("batch", batch), ("prompt_len", prompt_len), ("new_tokens", new_tokens)):
        if not isinstance(value, int) or value < 1:
            raise UsageError(f"generate mode: {name} must be a positive integer, got {value!r}")
    prefill = _capture_call(model, batch, 0, prompt_len, dtype, Phase.FORWARD, allocator)
    first = _capture_call(model, batch, prompt_len, 1, dtype, Phase.DECODE, allocator)
    last = (
        first
        if new_tokens == 1
        else _capture_call(
            model, batch, prompt_len + new_tokens - 1, 1, dtype, Phase.DECODE, allocator
        )
    )
    return GenerateCapture(prefill, first, last)
