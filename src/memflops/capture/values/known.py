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

Only small tensors are kept (`small_enough`): at most `LIMIT` = 2^20
elements, or `INDEX_LIMIT` = 2^22 for integer and boolean ones (32 MiB of
int64 at most, freed with the fake tensor). Values that steer control flow
and output sizes are indices, counts and masks, and most are small; a
mixture-of-experts router's `one_hot` mask of tokens x picks x experts, from
which the experts hit are found, is not: 128 tokens x 12 picks x 768 experts
(LongCat-Flash) is 1.18M elements, NLLB-MoE's 2.1M. Floating tensors made
from known values are additive attention masks and position tables, which
only feed arithmetic; at 2^22 a 2048 x 2048 bf16 mask kept per layer cost
Mixtral-8x7B (seq 2048, train) 256 MB of real copies, hence their lower limit.
A 4096 x 4096 causal mask (16.8M) is never computed for real, so the
Llama-2-70B benchmark at sequence 4096 is unchanged (6.1 s, 872 MB peak in
benchmarks/bench_analysis.py). A random op's output is never known. An
in-place op that writes unknown values into a known tensor's storage makes
every tensor on that storage unknown.
FLOPs and bytes of these ops are counted as for any other op; the real
copies are bookkeeping and are not part of the analysed memory.

Values that depend on inputs memflops filled itself (not given by the user)
are marked, and reads of them are counted for the report's warnings. So are
values that depend on indices picked from unknown values, assumed balanced
(`capture.values.picks`): `used_picks` holds the picks that steered a value
read or an output size.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensor
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

from memflops.capture.values.masks import index_by_positions
from memflops.capture.values.picks import is_pick, pick_indices
from memflops.capture.values.tensor_table import TensorTable

LIMIT = 1 << 20
"""Largest known floating tensor kept, in elements."""
INDEX_LIMIT = 1 << 22
"""Largest known integer or boolean tensor kept, in elements."""

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

def small_enough(t: torch.Tensor) -> bool:
    """Whether a known value of `t`'s size and dtype is kept (the module docstring)."""
    numel = t.numel()
    if numel <= LIMIT:
        return True
    return numel <= INDEX_LIMIT and not (t.is_floating_point() or t.is_complex())


_Entry = tuple[torch.Tensor, bool, int, frozenset[int]]
"""(real value, depends on a filled input, the fake tensor's storage, the assumed picks
it depends on)."""
_NO_PICKS: frozenset[int] = frozenset()


def _storage(t: torch.Tensor) -> int:
    return int(t.untyped_storage()._cdata)


class KnownValues:
    """Real values beside fake tensors (see the module docstring)."""

    def __init__(self) -> None:
        self._known: TensorTable[_Entry] = TensorTable(self._dropped)
        self._on_storage: dict[int, set[int]] = {}
        self.filled_reads = 0
        """Values read that depend on inputs memflops filled."""
        self.picks_made = 0
        self.used_picks: set[int] = set()
        """Assumed picks (by serial) that a value read or an output size depended on."""

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
             copy: bool = True, picks: frozenset[int] = _NO_PICKS) -> None:
        """Remember `real` as the value of `fake` (if small and of the same shape and dtype).

        `copy`: keep a copy of `real`, which someone else holds (an input, a model's
        constant). Without it, `real` is kept itself, so a real view of a known tensor
        shares its storage just as the fake view does, and writes through one reach both.
        """
        if (not small_enough(real) or tuple(real.shape) != tuple(fake.shape)
                or real.dtype != fake.dtype):
            return
        storage = _storage(fake)
        # A copy of its own: a real the model holds is never written, and an in-place op
        # on one known tensor cannot change another behind this tracker's back.
        if copy:
            with _disable_current_modes():  # a real copy, even inside the fake mode
                real = real.detach().clone()
        self._known.set(fake, (real, filled, storage, picks))
        self._on_storage.setdefault(storage, set()).add(id(fake))

    # --- ops ------------------------------------------------------------------------

    def read(self, t: Any) -> Any:
        """The Python value `.item()` of `t` gives, or None if unknown."""
        real = self.read_real(t)
        if real is None:
            return None
        with _disable_current_modes():
            return real.item()

    def read_real(self, t: Any) -> torch.Tensor | None:
        """`t`'s real value if known, counted as a value read (`capture.values.python_reads`
        copies it where PyTorch reads data behind the dispatch mode)."""
        real = self.real(t)
        if real is None:
            return None
        entry = self._entry(t)
        if entry is not None:
            if entry[1]:
                self.filled_reads += 1
            self.used_picks.update(entry[3])
        return real

    def observe(self, name: str, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                out: Any) -> None:
        """After `func` ran on fakes: compute its real output if every input is known."""
        if not self._may_know(name, args):
            self._forget_written(func, args, kwargs)
            return
        fakes, _ = tree_flatten(out)
        if not any(isinstance(t, torch.Tensor) and small_enough(t) for t in fakes):
            self._forget_written(func, args, kwargs)
            return  # nothing small enough to keep: never compute a large tensor for real
        results = self._run_real(name, func, args, kwargs)
        if results is None:
            self._forget_written(func, args, kwargs)
            return
        real_out, filled, external, picks = results
        reals, _ = tree_flatten(real_out)
        if len(fakes) != len(reals):
            return
        for fake, real in zip(fakes, reals, strict=True):
            if isinstance(fake, torch.Tensor) and isinstance(real, torch.Tensor):
                self.note(fake, real, filled, copy=external, picks=picks)

    def pick(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """After a pick (`topk`, `argmax`, ...) over unknown values: its indices are known,
        assumed balanced (`capture.values.picks`)."""
        if not is_pick(func) or self.real(args[0]) is not None:
            return
        found = pick_indices(func, args, kwargs, out, INDEX_LIMIT)  # int64 indices
        if found is not None:
            self.picks_made += 1
            self.note(found[0], found[1], copy=False, picks=frozenset({self.picks_made}))

    def shaped_output(self, name: str, func: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        """For an op whose output size depends on values: fake outputs at the true size
        (and their values noted), or None when an input is unknown."""
        if not self._may_know(name, args):
            return self._by_positions(name, func, args, kwargs)
        results = self._run_real(name, func, args, kwargs)
        if results is None:
            return self._by_positions(name, func, args, kwargs)
        real_out, filled, external, picks = results
        self.used_picks.update(picks)

        def fake_of(real: Any) -> Any:
            if not isinstance(real, torch.Tensor):
                return real
            fake = torch.empty_strided(tuple(real.shape), tuple(real.stride()),
                                       dtype=real.dtype, device="cpu")
            self.note(fake, real, filled, copy=external, picks=picks)
            return fake

        return tree_map(fake_of, real_out)

    def _by_positions(self, name: str, func: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        """Indexing by known masks of unknown data (`values.masks`), or None."""
        out = index_by_positions(self.mask_positions, name, func, args, kwargs)
        if out is not None:
            self._forget_written(func, args, kwargs)  # unknown values written (`x[m] = y`)
        return out

    def mask_positions(self, mask: Any) -> list[torch.Tensor] | None:
        """Fake int64 positions of known `mask`'s true entries, one tensor per dimension,
        their values known and marked as the mask's; None when `mask` is unknown."""
        real = self.real(mask)
        if real is None:
            return None
        entry = self._entry(mask)
        filled, picks = (entry[1], entry[3]) if entry is not None else (False, _NO_PICKS)
        self.used_picks.update(picks)  # an output size depends on them
        with _disable_current_modes():
            reals = real.nonzero().unbind(1)
        fakes = []
        for positions in reals:
            fake = torch.empty(tuple(positions.shape), dtype=torch.int64)  # fake in fake mode
            self.note(fake, positions, filled, copy=False, picks=picks)
            fakes.append(fake)
        return fakes

    def _run_real(self, name: str, func: Any, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> tuple[Any, bool, bool, frozenset[int]] | None:
        """(real output, depends on a filled input, may alias a tensor not this tracker's,
        the assumed picks it depends on), or None when an input is unknown. The caller has
        checked `_may_know`."""
        if torch.Tag.nondeterministic_seeded in func.tags:
            return None
        factory = name in FACTORIES
        written = {id(t) for t in _written(func, args, kwargs)}
        flat, spec = tree_flatten((args, kwargs))
        with _disable_current_modes(), torch.no_grad():  # real tensors, real kernels
            reals: list[Any] = []
            filled = external = False
            picks = _NO_PICKS
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
                if entry is not None:
                    filled = filled or entry[1]
                    picks = picks | entry[3]
                external = external or not owned
                reals.append(real)
            real_args, real_kwargs = tree_unflatten(reals, spec)
            try:
                real_out = func(*real_args, **real_kwargs)
                if name in _UNINITIALISED:
                    real_out.zero_()
                return real_out, filled, external, picks
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


_CURRENT: ContextVar[KnownValues | None] = ContextVar("memflops_known_values", default=None)
"""The known values of the capture recording now (`readable_values`), for code outside
the dispatch mode that must choose a path by whether a tensor's values can be read."""


@contextmanager
def readable_values(values: KnownValues) -> Iterator[None]:
    """While recording: `value_readable` answers from `values`."""
    token = _CURRENT.set(values)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def value_readable(t: Any) -> bool:
    """Whether the capture recording now can answer a read of `t`'s values (its real
    value is known); False outside a capture."""
    values = _CURRENT.get()
    return values is not None and values.real(t) is not None

