"""Activation checkpointing: which modules re-ran their forward, and the step without it.

A capture marks every op a forward runs again inside backward (`OpRecord.recompute`) and
notes the modules whose forward re-ran (`Capture.recomputed`).
To say what checkpointing saves, the same step is captured again with checkpointing
turned into a plain call: every form in `torch.utils.checkpoint` (reentrant and
non-reentrant `checkpoint`, `checkpoint_sequential`, selective checkpointing through
`context_fn`, and Hugging Face's `gradient_checkpointing_enable`, which calls
`checkpoint`) goes through the module-level `_checkpoint_impl` in torch 2.14, so
replacing that one function for the length of a capture runs the checkpointed
functions as ordinary forwards, and the original is put back afterwards.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch.utils.checkpoint as torch_checkpoint
from torch import nn

from memflops.capture.tracker import ModuleTracker

_IMPL = "_checkpoint_impl"
_SAC_DETACH = "_detach_helper"
_SAC_HOOKS_WARNING = "A saved_tensors_hooks context .* selective activation checkpoint region"


def outermost(paths: Iterable[str]) -> tuple[str, ...]:
    """The paths not inside another of them, in their order ("" is the root)."""
    listed = list(dict.fromkeys(paths))
    return tuple(p for p in listed if not any(_inside(p, q) for q in listed))


def _inside(path: str, other: str) -> bool:
    return path != other and (other == "" or path.startswith(other + "."))


def can_turn_off() -> bool:
    """Whether this torch has the function `checkpointing_off` replaces."""
    return callable(getattr(torch_checkpoint, _IMPL, None))


@contextmanager
def checkpointing_off() -> Iterator[None]:
    """Run every `torch.utils.checkpoint` call as a plain call of its function."""
    original = getattr(torch_checkpoint, _IMPL)

    def plain_call(function: Any, args: Any, kwargs: Any, **options: Any) -> Any:
        return function(*args, **kwargs)

    setattr(torch_checkpoint, _IMPL, plain_call)
    try:
        yield
    finally:
        setattr(torch_checkpoint, _IMPL, original)


@contextmanager
def selective_saves_marked(pack: Callable[[Any], Any]) -> Iterator[None]:
    """Let `pack` see the op outputs selective checkpointing keeps for backward.

    Selective checkpointing (`create_selective_checkpoint_contexts`) caches the outputs
    its policy saves outside autograd's saved tensors, so saved-tensor hooks (which is
    how the capture marks activations) do not see them; in torch 2.14 each of them
    passes through `torch.utils.checkpoint._detach_helper` as it is cached, which this
    wraps for the length of the capture. It also silences the FutureWarning torch gives
    because the capture's own saved-tensor hooks are active around such a region.
    """
    original = getattr(torch_checkpoint, _SAC_DETACH, None)
    if not callable(original):
        yield
        return

    def detach_and_mark(x: Any) -> Any:
        detached = original(x)
        pack(detached)
        return detached

    setattr(torch_checkpoint, _SAC_DETACH, detach_and_mark)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_SAC_HOOKS_WARNING, category=FutureWarning)
            yield
    finally:
        setattr(torch_checkpoint, _SAC_DETACH, original)


def owner_of(function: Any) -> nn.Module | None:
    """The module a checkpointed function runs: the module itself, a bound method of it,
    or a `functools.partial` of either or of a method given the module first (Hugging
    Face checkpoints `partial(forward, layer)` so the layer's hooks stay outside)."""
    if isinstance(function, nn.Module):
        return function
    bound = getattr(function, "__self__", None)
    if isinstance(bound, nn.Module):
        return bound
    if isinstance(function, functools.partial):
        if function.args and isinstance(function.args[0], nn.Module):
            return function.args[0]
        return owner_of(function.func)
    return None


@contextmanager
def regions_noted(tracker: ModuleTracker, regions: list[str]) -> Iterator[None]:
    """Note each checkpointed region of the forward in `regions` (its module: the owner of
    the function, else the outermost modules it runs, else the module calling it), and run
    its function under that module, so the ops it runs outside any submodule's hooks,
    there and when backward recomputes it, belong to it."""
    original = getattr(torch_checkpoint, _IMPL, None)
    if not callable(original):
        yield
        return

    def noting(function: Any, args: Any, kwargs: Any, **options: Any) -> Any:
        owner = owner_of(function)
        owned = tracker.path_of(owner) if owner is not None else None
        path = owned if owned is not None else tracker.current
        first = len(tracker.entered)

        def region(*a: Any, **k: Any) -> Any:
            frame = tracker.enter_region(path, owner)
            try:
                return function(*a, **k)
            finally:
                tracker.leave_region(frame)

        try:
            return original(region, args, kwargs, **options)
        finally:
            inner = outermost(tracker.entered[first:])
            regions.extend((owned,) if owned is not None else inner or (path,))

    setattr(torch_checkpoint, _IMPL, noting)
    try:
        yield
    finally:
        setattr(torch_checkpoint, _IMPL, original)
