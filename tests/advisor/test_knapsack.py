"""The knapsack of selective checkpointing: exact on small cases (checked against every
subset), and at least half the optimum when the frontier is too large."""

from __future__ import annotations

import itertools
import random

import pytest

from memflops.advisor import knapsack
from memflops.advisor.knapsack import Item, most_kept


def brute_force(items: list[Item], capacity: int) -> float:
    """The optimum over every number of copies of every item."""
    best = 0.0
    for counts in itertools.product(*(range(i.count + 1) for i in items)):
        if sum(k * i.weight for k, i in zip(counts, items, strict=True)) <= capacity:
            best = max(best, sum(k * i.value for k, i in zip(counts, items, strict=True)))
    return best


def test_a_hand_case() -> None:
    # capacity 10: {a, b} weighs 4 + 6 = 10 and spares 7 + 9 = 16; {c} alone weighs 9
    # and spares 15; {a, c} weighs 13, too much. The optimum keeps a and b.
    items = [Item("a", 4, 7), Item("b", 6, 9), Item("c", 9, 15)]
    choice = most_kept(items, 10)
    assert (choice.kept, choice.weight, choice.value, choice.exact) == (
        {"a": 1, "b": 1}, 10, 16, True)
    # an item that keeps nothing (weight 0) is always kept; one heavier than the
    # capacity never is
    choice = most_kept([*items, Item("view", 0, 3), Item("huge", 11, 100)], 10)
    assert choice.kept == {"a": 1, "b": 1, "view": 1} and choice.value == 19
    # copies: three identical blocks' (4 B, 5) items and one (7 B, 9). In 12 B, all three
    # copies (12 B) spare 15, one copy and the 7-byte item (11 B) 14: the copies win.
    # In 11 B, two copies (8 B) spare 10: one copy and the 7-byte item win with 14.
    items = [Item("blocks", 4, 5, count=3), Item("head", 7, 9)]
    assert (most_kept(items, 12).kept, most_kept(items, 12).value) == ({"blocks": 3}, 15)
    assert (most_kept(items, 11).kept, most_kept(items, 11).value) == (
        {"blocks": 1, "head": 1}, 14)


@pytest.mark.parametrize("seed", range(20))
def test_exact_on_random_cases_against_every_subset(seed: int) -> None:
    rng = random.Random(seed)
    items = [Item(f"op{i}", rng.randint(1, 50), rng.randint(0, 100), rng.randint(1, 3))
             for i in range(7)]
    capacity = rng.randint(0, 200)
    choice = most_kept(items, capacity)
    assert choice.exact and choice.weight <= capacity
    assert choice.value == brute_force(items, capacity)


@pytest.mark.parametrize("seed", range(10))
def test_bounded_when_the_frontier_is_too_large(seed: int, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    monkeypatch.setattr(knapsack, "MAX_STATES", 1)
    rng = random.Random(seed)
    items = [Item(f"op{i}", rng.randint(1, 50), rng.randint(1, 100), rng.randint(1, 3))
             for i in range(7)]
    capacity = rng.randint(50, 200)
    choice = most_kept(items, capacity)
    assert not choice.exact and choice.weight <= capacity
    assert choice.value >= brute_force(items, capacity) / 2
