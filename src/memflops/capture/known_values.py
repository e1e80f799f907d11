"""Tensors whose values are known, computed for real where they steer the model.

The tensors of an analysis are fake: shapes without values. Some values are
known exactly all the same: what factory ops make (`arange`, `zeros`,
`full`, a `torch.tensor(...)` constant), inputs given with values (a
`TensorSpec` with `values`: an attention mask of ones, a vision tower's
`grid_thw`), and whatever ops compute from known tensors alone.
`KnownValues` keeps a small real CPU tensor beside each such fake tensor and
runs every op whose tensor arguments are all known on the real tensors too,
so that

- reading a value (`.item()`, `if mask.any()`, `int(n)`) gets its answer;
- an op whose output size depends on values (`nonzero`, indexing with a
  boolean mask, `repeat_interleave`, `unique`) gets its true size, and the
  fake computation goes on at that shape.

Only tensors of at most `LIMIT` elements are kept: a value that steers
control flow is small, and a 4096 x 4096 causal mask is not worth a copy. A
random op's output is never known. An in-place op that writes unknown values
into a known tensor's storage makes every tensor on that storage unknown.
FLOPs and bytes of these ops are counted as for any other op; the real
copies are bookkeeping and are not part of the analysed memory.

Values that depend on inputs memflops filled itself (not given by the user)
are marked, and reads of them are counted for the report's warnings.
"""

from __future__ import annotations

from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensor
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

from memflops.capture.tensor_table import TensorTable

LIMIT = 1 << 20
"""Largest known tensor kept, in elements."""

FACTORIES = frozenset({
    "aten.arange", "aten.zeros", "aten.ones", "aten.full", "aten.zeros_like",
    "aten.ones_like", "aten.full_like", "aten.new_zeros", "aten.new_ones", "aten.new_full",
    "aten.scalar_tensor", "aten.eye", "aten.tril_indices", "aten.triu_indices",
    "aten.linspace", "aten.logspace", "aten.lift_fresh", "aten.lift_fresh_copy",
    "aten.fill", "aten.fill_", "aten.zero", "aten.zero_",
    "aten.empty", "aten.empty_like", "aten.new_empty", "aten.empty_strided",
    "aten.new_empty_strided", "aten.empty_permuted",
})
"""Ops whose output values do not depend on their tensor arguments' values. Uninitialised
memory (`empty`) reads as zeros: a model that reads it before writing it would read
garbage on a GPU too, and one that fills it gets exactly what it wrote."""

_UNINITIALISED = frozenset(n for n in FACTORIES if "empty" in n)

_Entry = tuple[torch.Tensor, bool, int]
"""(real value, depends on a filled input, the fake tensor's storage)."""


def _storage(t: torch.Tensor) -> int:
    return int(t.untyped_storage()._cdata)


class KnownValues:
    """Real values beside fake tensors (see the module docstring)."""

    def __init__(self) -> None:
        self._known: TensorTable[_Entry] = TensorTable(self._dropped)
        self._on_storage: dict[int, set[int]] = {}
        self.filled_reads = 0
        """Values read that depend on inputs memflops filled."""

    # --- lookup ---------------------------------------------------------------------

    def _entry(self, t: Any) -> _Entry | None:
        """`t`'s own entry: a known fake tensor whose real copy this tracker holds."""
        return self._known.get(t)

    def _dropped(self, key: int, entry: _Entry) -> None:
        self._on_storage.get(entry[2], set()).discard(key)

    def real(self, t: Any) -> torch.Tensor | None:
        """`t`'s real value if known: a known fake tensor, a real tensor, or a fake constant."""
        if not isinstance(t, torch.Tensor):
            return None
        entry = self._entry(t)
        if entry is not None:
            return entry[0]
        if not isinstance(t, FakeTensor):
            return t  # a real tensor (a constant the model holds)
        constant = t.constant
        return constant if isinstance(constant, torch.Tensor) else None

    def note(self, fake: torch.Tensor, real: torch.Tensor, filled: bool = False,
             copy: bool = True) -> None:
        """Remember `real` as the value of `fake` (if small and of the same shape and dtype).

        `copy`: keep a copy of `real`, which someone else holds (an input, a model's
        constant). Without it, `real` is kept itself, so a real view of a known tensor
        shares its storage just as the fake view does, and writes through one reach both.
        """
        if (real.numel() > LIMIT or tuple(real.shape) != tuple(fake.shape)
                or real.dtype != fake.dtype):
            return
        storage = _storage(fake)
        # A copy of its own: a real the model holds is never written, and an in-place op
        # on one known tensor cannot change another behind this tracker's back.
        if copy:
            with _disable_current_modes():  # a real copy, even inside the fake mode
                real = real.detach().clone()
        self._known.set(fake, (real, filled, storage))
        self._on_storage.setdefault(storage, set()).add(id(fake))

    # --- ops ------------------------------------------------------------------------

    def read(self, t: Any) -> Any:
        """The Python value `.item()` of `t` gives, or None if unknown."""
        real = self.real(t)
        if real is None:
            return None
        entry = self._entry(t)
        if entry is not None and entry[1]:
            self.filled_reads += 1
        with _disable_current_modes():
            return real.item()

    def observe(self, name: str, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                out: Any) -> None:
        """After `func` ran on fakes: compute its real output if every input is known."""
        if not self._may_know(name, args):
            self._forget_written(func, args, kwargs)
            return
        fakes, _ = tree_flatten(out)
        if not any(isinstance(t, torch.Tensor) and t.numel() <= LIMIT for t in fakes):
            self._forget_written(func, args, kwargs)
            return  # nothing small enough to keep: never compute a large tensor for real
        results = self._run_real(name, func, args, kwargs)
        if results is None:
            self._forget_written(func, args, kwargs)
            return
        real_out, filled, external = results
        reals, _ = tree_flatten(real_out)
        if len(fakes) != len(reals):
            return
        for fake, real in zip(fakes, reals, strict=True):
            if isinstance(fake, torch.Tensor) and isinstance(real, torch.Tensor):
                self.note(fake, real, filled, copy=external)

    def shaped_output(self, name: str, func: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        """For an op whose output size depends on values: fake outputs at the true size
        (and their values noted), or None when an input is unknown."""
        if not self._may_know(name, args):
            return None
        results = self._run_real(name, func, args, kwargs)
        if results is None:
            return None
        real_out, filled, external = results

        def fake_of(real: Any) -> Any:
            if not isinstance(real, torch.Tensor):
                return real
            fake = torch.empty_strided(tuple(real.shape), tuple(real.stride()),
                                       dtype=real.dtype, device="cpu")
            self.note(fake, real, filled, copy=external)
            return fake

        return tree_map(fake_of, real_out)

    def _run_real(self, name: str, func: Any, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> tuple[Any, bool, bool] | None:
        """(real output, depends on a filled input, may alias a tensor not this tracker's),
        or None when an input is unknown. The caller has checked `_may_know`."""
        if torch.Tag.nondeterministic_seeded in func.tags:
            return None
        factory = name in FACTORIES
        written = {id(t) for t in _written(func, args, kwargs)}
        flat, spec = tree_flatten((args, kwargs))
        with _disable_current_modes(), torch.no_grad():  # real tensors, real kernels
            reals: list[Any] = []
            filled = external = False
            for item in flat:
                if not isinstance(item, torch.Tensor):
                    reals.append(item)
                    continue
                entry = self._entry(item)
                owned = entry is not None
                real = self.real(item)
                if id(item) in written and not owned:
                    real = None  # never write into a tensor the model or the fake mode holds
                if real is None:
                    if not factory:
                        return None
                    real = torch.empty(tuple(item.shape), dtype=item.dtype)  # values unused
                filled = filled or (entry is not None and entry[1])
                external = external or not owned
                reals.append(real)
            real_args, real_kwargs = tree_unflatten(reals, spec)
            try:
                real_out = func(*real_args, **real_kwargs)
                if name in _UNINITIALISED:
                    real_out.zero_()
                return real_out, filled, external
            except Exception:  # the real kernel refuses what the fake one took: stay unknown
                return None

    def _may_know(self, name: str, args: tuple[Any, ...]) -> bool:
        """False when an input is surely unknown, decided without flattening (most ops)."""
        if name in FACTORIES:
            return True
        if not self._known:
            return False
        return not any(isinstance(a, torch.Tensor) and self.real(a) is None for a in args)

    def _forget_written(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """An op wrote unknown values: its written arguments' storages are unknown now."""
        for t in _written(func, args, kwargs):
            if isinstance(t, FakeTensor):
                for key in self._on_storage.pop(_storage(t), ()):
                    self._known.pop(key)


_WRITES: dict[Any, tuple[tuple[int, str], ...]] = {}
"""(position, name) of the arguments each op overload writes into, computed once."""


def _written(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    """The tensor arguments `func` writes into (in-place ops, `out=`)."""
    writes = _WRITES.get(func)
    if writes is None:
        writes = _WRITES[func] = tuple(
            (i, arg.name) for i, arg in enumerate(func._schema.arguments)
            if arg.alias_info is not None and arg.alias_info.is_write
        )
    found = []
    for i, name in writes:
        value = args[i] if i < len(args) else kwargs.get(name)
        if isinstance(value, torch.Tensor):
            found.append(value)
    return found

