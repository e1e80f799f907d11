"""An independent measure of a step's memory on real CPU tensors, for the tests only.

It shares no code with memflops: the model runs on real, seeded random
weights, and a `TorchDispatchMode` notes every storage an op returns, keyed
by its data pointer, with a `weakref.finalize` on the storage to note its
free (CPython frees deterministically, and PyTorch keeps one Python object per
live storage, so the callback fires when the last tensor using it goes).
`saved_tensors_hooks` see what autograd keeps for backward.

A train step is measured in the steady state of a training loop: one
warm-up step first (forward, loss, backward, `optimizer.step()`,
`zero_grad(set_to_none=True)`), so the optimizer state exists and the
gradients are None; then the second step is measured. The bytes live before
it (parameters, buffers, inputs and the optimizer state kept on the device)
are the baseline. Non-fused PyTorch optimizers keep their scalar `step`
count on the host, so it is left out, as a GPU run would not allocate it.
The loss is the sum of the model's output, and the output itself is not
kept (`loss = model(x).sum()`), as in `loss = criterion(model(x), y)`.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


@dataclass(frozen=True)
class Measured:
    """Bytes of one real step: the peak, the baseline and what was saved for backward."""

    peak: int
    baseline: int
    saved: int


class _LiveBytes(TorchDispatchMode):
    """Live bytes by storage address; the most ever live is `peak`.

    `untracked` names op outputs never counted, as (op overload, position
    among the op's flattened outputs), e.g. ("aten.mkldnn_rnn_layer.default", 3).
    """

    def __init__(self, baseline: dict[int, int], untracked: frozenset[tuple[str, int]]) -> None:
        super().__init__()
        self.live = dict(baseline)
        self.current = sum(baseline.values())
        self.peak = self.current
        self.untracked = untracked
        self.ignored: set[int] = set()

    def _freed(self, address: int) -> None:
        self.current -= self.live.pop(address, 0)

    def _forget(self, address: int) -> None:
        self.ignored.discard(address)

    def note(self, t: torch.Tensor, ignore: bool) -> None:
        storage = t.untyped_storage()
        address, nbytes = storage.data_ptr(), storage.nbytes()
        if nbytes == 0 or address in self.live or address in self.ignored:
            return
        if ignore:
            self.ignored.add(address)
            weakref.finalize(storage, self._forget, address)
            return
        self.live[address] = nbytes
        self.current += nbytes
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._freed, address)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for i, t in enumerate(tree_flatten(out)[0]):
            if isinstance(t, torch.Tensor):
                self.note(t, (str(func), i) in self.untracked)
        return out


def _storages(tensors: Iterable[torch.Tensor]) -> dict[int, int]:
    found = {}
    for t in tensors:
        storage = t.untyped_storage()
        found[storage.data_ptr()] = storage.nbytes()
    return found


def _device_state(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """State tensors a GPU run keeps on the device: all but the host-side `step` scalars."""
    on_device_step = bool(optimizer.defaults.get("fused") or optimizer.defaults.get("capturable"))
    return [
        v
        for state in optimizer.state.values()
        for k, v in state.items()
        if isinstance(v, torch.Tensor) and (k != "step" or on_device_step)
    ]


def seeded(build: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    """`build()` with seeded random real weights on the CPU."""
    torch.manual_seed(seed)
    return build()


def _loss(output: Any) -> torch.Tensor:
    leaves = [t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor)]
    floating = [t for t in leaves if t.is_floating_point() and t.requires_grad]
    loss = floating[0].sum()
    for t in floating[1:]:
        loss = loss + t.sum()
    return loss


def _autocast(dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=dtype)


def train_step(
    model: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    make_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
    autocast: torch.dtype | None = None,
    untracked: frozenset[tuple[str, int]] = frozenset(),
) -> Measured:
    """Measure the second (steady-state) training step of `model` on `inputs`."""
    model.train()
    optimizer = make_optimizer(model.parameters())
    with _autocast(autocast):
        warm = _loss(model(*inputs))
    warm.backward()
    del warm
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)

    baseline = _storages(
        [*model.parameters(), *model.buffers(), *inputs, *_device_state(optimizer)]
    )
    saved: dict[int, int] = {}
    mode = _LiveBytes(baseline, untracked)

    def pack(t: torch.Tensor) -> torch.Tensor:
        address = t.untyped_storage().data_ptr()
        if address not in baseline and address not in mode.ignored:
            saved[address] = t.untyped_storage().nbytes()
        return t

    with mode:
        with torch.autograd.graph.saved_tensors_hooks(pack, _same), _autocast(autocast):
            loss = _loss(model(*inputs))
        loss.backward()
        del loss
        optimizer.step()
    return Measured(peak=mode.peak, baseline=sum(baseline.values()), saved=sum(saved.values()))


@dataclass(frozen=True)
class Accumulated:
    """Bytes of one real optimizer step with gradient accumulation over M micro-batches."""

    peak: int
    baseline: int
    saved: tuple[int, ...]
    """Bytes saved for backward by each micro-batch."""
    grads: int
    """Bytes of the parameters' `.grad` storages before `optimizer.step()`."""
    peak_micro_batch: int | None
    """The micro-batch (1-based) in which the peak was first reached; None: in the
    optimizer step."""
    grad_storages_kept: bool
    """Whether every `.grad` is the storage micro-batch 1 created (accumulated in place)."""


def accumulation_step(
    model: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    make_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
    micro_batches: int,
    untracked: frozenset[tuple[str, int]] = frozenset(),
) -> Accumulated:
    """Measure the second optimizer step of a gradient-accumulation loop: for each of
    `micro_batches` micro-batches (each the same `inputs`, resident as a data loader's
    batch is), `(loss / M).backward()`; then `optimizer.step()`. One whole warm-up
    step first, ending in `zero_grad(set_to_none=True)`, so the optimizer state exists
    and the gradients are None when the measured step starts."""
    model.train()
    optimizer = make_optimizer(model.parameters())

    def scaled(loss: torch.Tensor) -> torch.Tensor:
        return loss if micro_batches == 1 else loss / micro_batches

    for _ in range(micro_batches):
        scaled(_loss(model(*inputs))).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)

    baseline = _storages(
        [*model.parameters(), *model.buffers(), *inputs, *_device_state(optimizer)]
    )
    mode = _LiveBytes(baseline, untracked)
    saved: list[dict[int, int]] = []
    first_grads: dict[int, int] = {}
    peaks: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        address = t.untyped_storage().data_ptr()
        if address not in baseline and address not in mode.ignored:
            saved[-1][address] = t.untyped_storage().nbytes()
        return t

    with mode:
        for i in range(micro_batches):
            saved.append({})
            with torch.autograd.graph.saved_tensors_hooks(pack, _same):
                loss = scaled(_loss(model(*inputs)))
            loss.backward()
            del loss
            peaks.append(mode.peak)
            grads = {id(p): p.grad.untyped_storage().data_ptr()
                     for p in model.parameters() if p.grad is not None}
            if i == 0:
                first_grads = grads
        kept = grads == first_grads
        grad_bytes = sum(_storages(p.grad for p in model.parameters()
                                   if p.grad is not None).values())
        optimizer.step()
    first_at = next(i for i, p in enumerate(peaks) if p == peaks[-1])
    return Accumulated(
        peak=mode.peak, baseline=sum(baseline.values()),
        saved=tuple(sum(d.values()) for d in saved), grads=grad_bytes,
        peak_micro_batch=first_at + 1 if mode.peak == peaks[-1] else None,
        grad_storages_kept=kept,
    )


def inference(
    model: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    untracked: frozenset[tuple[str, int]] = frozenset(),
) -> Measured:
    """Measure one `eval()` forward under `no_grad`; the output is kept."""
    model.eval()
    baseline = _storages([*model.parameters(), *model.buffers(), *inputs])
    mode = _LiveBytes(baseline, untracked)
    with torch.no_grad(), mode:
        output = model(*inputs)
    del output
    return Measured(peak=mode.peak, baseline=sum(baseline.values()), saved=0)


def _same(t: torch.Tensor) -> torch.Tensor:
    return t
