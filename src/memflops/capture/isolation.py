"""What keeps an analysis from changing the caller's world, and the caller's world from
changing the analysis.

- `module_state_kept`: every attribute a forward creates or replaces on a module of the
  model while it runs on fake tensors (a buffer registered on the first call, a cached
  table, a parameter swapped, a plain attribute holding a tensor) is removed or put back
  on exit, success or failure, so the next real forward sees the model as it was.
- `ambient_neutral`: the caller's ambient torch state that would change the numbers or
  break the fake world is set aside for the analysis and restored after: their
  dispatch modes (their own `FakeTensorMode`, a `FlopCounterMode`), torch-function modes
  (`with torch.device("meta")`), `inference_mode`, anomaly detection (its checks would be
  counted as FLOPs) and CPU autocast (memflops enters its own when asked); and torch's
  log of a failing meta kernel, an error memflops reports itself in one line.
- `ambient_neutral` also seeds Python's, NumPy's and torch's random generators with 0
  for the analysis and puts the caller's states back after: a model that draws real
  random numbers to choose its work (wav2vec2-style time masking picks how many spans
  to mask with NumPy) then costs the same on every analysis, and the caller's next draw
  is the one it would have been.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import nn
from torch.overrides import _get_current_function_mode_stack, _pop_mode, _push_mode
from torch.utils._python_dispatch import _disable_current_modes

_SLOTS = ("_parameters", "_buffers", "_modules")
"""The dicts of a module's registered members, kept besides its `__dict__`."""


def _snapshot(module: nn.Module) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(the live dict, a shallow copy of it) for the module's `__dict__` and its slots."""
    live = [module.__dict__, *(module.__dict__[s] for s in _SLOTS if s in module.__dict__)]
    return [(d, dict(d)) for d in live]


def _put_back(live: dict[str, Any], saved: dict[str, Any]) -> None:
    """`live` made equal to `saved` again, entry by entry (same objects, same order)."""
    same = live.keys() == saved.keys() and all(live[k] is v for k, v in saved.items())
    if not same:
        live.clear()
        live.update(saved)


@contextmanager
def module_state_kept(model: nn.Module) -> Iterator[None]:
    """Put back, on exit, every module's attributes and registered members as they were."""
    snapshots = [(_snapshot(m), set(m.__dict__.get("_non_persistent_buffers_set", ())))
                 for m in model.modules()]
    modules = list(model.modules())
    try:
        yield
    finally:
        for module, (dicts, non_persistent) in zip(modules, snapshots, strict=True):
            for live, saved in dicts:
                _put_back(live, saved)
            kept = module.__dict__.get("_non_persistent_buffers_set")
            if isinstance(kept, set) and kept != non_persistent:
                kept.clear()
                kept.update(non_persistent)


@contextmanager
def _function_modes_off() -> Iterator[None]:
    """The caller's torch-function modes (`with torch.device(...)`) popped, pushed back
    after."""
    depth = len(_get_current_function_mode_stack())  # type: ignore[no-untyped-call]
    popped = [_pop_mode() for _ in range(depth)]  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        for mode in reversed(popped):
            _push_mode(mode)  # type: ignore[no-untyped-call]


@contextmanager
def ambient_neutral() -> Iterator[None]:
    """The caller's modes, inference mode, anomaly detection and autocast set aside."""
    with ExitStack() as stack:
        stack.enter_context(_disable_current_modes())
        stack.enter_context(_function_modes_off())
        stack.enter_context(torch.inference_mode(False))
        stack.enter_context(torch.autograd.set_detect_anomaly(False))
        stack.enter_context(_autocast_off())
        stack.enter_context(_fake_tensor_log_off())
        stack.enter_context(_random_seeded())
        yield


SEED = 0
"""The seed of every random generator during an analysis (`_random_seeded`)."""


@contextmanager
def random_state_kept() -> Iterator[None]:
    """Python's, NumPy's (when installed) and torch's CPU generator states put back on exit:
    whatever an analysis draws, the caller's next draw is the one it would have been."""
    import random

    try:
        import numpy
    except ImportError:  # numpy is optional
        numpy = None  # type: ignore[assignment]
    python = random.getstate()
    numpy_state = numpy.random.get_state() if numpy is not None else None
    torch_state = torch.random.get_rng_state()
    try:
        yield
    finally:
        random.setstate(python)
        if numpy is not None:
            numpy.random.set_state(numpy_state)
        torch.random.set_rng_state(torch_state)


@contextmanager
def _random_seeded() -> Iterator[None]:
    """Python's, NumPy's and torch's CPU generators seeded with `SEED`, the caller's states
    restored after."""
    import random

    with random_state_kept():
        random.seed(SEED)
        try:
            import numpy
            numpy.random.seed(SEED)
        except ImportError:
            pass
        torch.default_generator.manual_seed(SEED)  # the CPU one only: no CUDA seed queued
        yield


class _Drop(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextmanager
def _fake_tensor_log_off() -> Iterator[None]:
    """torch logs a failing meta kernel's full traceback ("failed while attempting to run
    meta for aten.mm") before raising; memflops reports that error itself, in one line
    naming the module, so the log is dropped while the analysis runs (a filter on the
    logger, removed after)."""
    logger = logging.getLogger("torch._subclasses.fake_tensor")
    drop = _Drop()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


@contextmanager
def _autocast_off() -> Iterator[None]:
    """The caller's CPU autocast switched off and its nesting taken to 0, so that the
    analysis' own autocast, when asked, clears its cast cache on exit as at top level
    (a disabled `torch.autocast` around it would keep the nesting up and its weight
    copies alive into backward); both put back after."""
    if not torch.is_autocast_enabled("cpu"):
        yield
        return
    torch.set_autocast_enabled("cpu", False)
    levels = 1
    while torch.autocast_decrement_nesting() > 0:
        levels += 1
    try:
        yield
    finally:
        for _ in range(levels):
            torch.autocast_increment_nesting()
        torch.set_autocast_enabled("cpu", True)
