"""Which ops' outputs to keep under selective checkpointing: a 0/1 knapsack.

Each item is one ATen op of one checkpointed block's forward (all its calls in the
block together): keeping its outputs costs their bytes (`weight`) and spares running it
again in backward (`value`: its FLOPs, or its seconds on the accelerator). Repeated
blocks give identical items, so an item comes with a `count` of identical copies, any
number of which may be kept. `most_kept` picks how many of each to keep for the largest
total value whose weights fit `capacity`, so the least is recomputed.

Exact when the Pareto frontier of (weight, value) pairs stays under `MAX_STATES` (a
block has a few dozen distinct ops, far below it); otherwise the classic bound: the
better of the greedy fill by value per byte and the single most valuable item that
fits, at least half the optimum (Kellerer, Pferschy and Pisinger, "Knapsack Problems",
2004, section 2.4). Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_STATES = 200_000
"""Frontier states kept before the exact search gives way to the bounded one."""


@dataclass(frozen=True)
class Item:
    name: str
    weight: int
    """Bytes kept for backward if one copy is kept."""
    value: float
    """What keeping one copy spares: FLOPs or seconds of recomputation."""
    count: int = 1
    """Identical copies (the same op of identical blocks)."""


@dataclass(frozen=True)
class Choice:
    kept: dict[str, int]
    """Copies kept of each item, by name (items with none kept are absent)."""
    weight: int
    value: float
    exact: bool
    """True: the optimum; False: at least half of it (the greedy bound)."""


def most_kept(items: Sequence[Item], capacity: int) -> Choice:
    """How many copies of each item to keep: the largest total value whose total weight
    is at most `capacity` (module docstring)."""
    free = {i.name: i.count for i in items if i.weight <= 0 < i.value and i.count > 0}
    free_value = sum(i.value * i.count for i in items if i.name in free)
    paid = [i for i in items if i.weight > 0 and i.value > 0 and i.weight <= capacity
            and i.count > 0]
    found = _frontier(paid, capacity)
    exact = found is not None
    kept, weight, value = found if found is not None else _bounded(paid, capacity)
    return Choice({**free, **kept}, weight, free_value + value, exact)


State = tuple[int, float, tuple[tuple[str, int], ...]]


def _frontier(items: Sequence[Item], capacity: int) -> tuple[dict[str, int], int, float] | None:
    """The exact optimum by the Pareto frontier (weight ascending, value strictly
    ascending); None when it grows past `MAX_STATES`."""
    states: list[State] = [(0, 0.0, ())]
    for item in items:
        grown = list(states)
        for w, v, kept in states:
            for k in range(1, item.count + 1):
                if w + k * item.weight > capacity:
                    break
                grown.append((w + k * item.weight, v + k * item.value,
                              (*kept, (item.name, k))))
        grown.sort(key=lambda s: (s[0], -s[1]))
        states = []
        for state in grown:
            if not states or state[1] > states[-1][1]:
                states.append(state)
        if len(states) > MAX_STATES:
            return None
    weight, value, kept = states[-1]
    return dict(kept), weight, value


def _bounded(items: Sequence[Item], capacity: int) -> tuple[dict[str, int], int, float]:
    """The better of the greedy fill by value per byte (as many copies as fit) and the
    best single copy: at least half the optimum."""
    kept: dict[str, int] = {}
    weight, value = 0, 0.0
    for item in sorted(items, key=lambda i: -i.value / i.weight):
        k = min(item.count, (capacity - weight) // item.weight)
        if k > 0:
            kept[item.name] = k
            weight += k * item.weight
            value += k * item.value
    single = max(items, key=lambda i: i.value, default=None)
    if single is not None and single.value > value:
        return {single.name: 1}, single.weight, single.value
    return kept, weight, value
