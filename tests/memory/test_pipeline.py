"""Pipeline schedules and their bubble (`memflops.memory.pipeline`), against the papers'
formulas."""

from __future__ import annotations

from fractions import Fraction

import pytest

from memflops.memory.pipeline import (
    bubble_fraction,
    first_stage_factor,
    held_at_most,
    schedule_of,
)


@pytest.mark.parametrize("kind", ["gpipe", "1f1b", "interleaved"])
@pytest.mark.parametrize(("p", "m", "v"), [(2, 4, 2), (4, 8, 2), (4, 8, 3), (8, 16, 4),
                                           (4, 4, 2), (3, 1, 1)])
def test_every_forward_runs_once_before_its_backward(kind: str, p: int, m: int, v: int) -> None:
    if kind == "interleaved" and (m % p or v < 2):
        return
    v = v if kind == "interleaved" else 1
    for rank in range(p):
        actions = schedule_of(kind, p, rank, m, v)
        forwards = [(c, i) for k, c, i in actions if k == "F"]
        backwards = [(c, i) for k, c, i in actions if k == "B"]
        expected = {(c, i) for c in range(v) for i in range(m)}
        assert sorted(forwards) == sorted(expected) == sorted(backwards)
        for c, i in backwards:  # a backward after its own forward
            assert actions.index(("F", c, i)) < actions.index(("B", c, i))


@pytest.mark.parametrize(("p", "m"), [(2, 4), (4, 8), (4, 2), (8, 8), (8, 32)])
def test_micro_batches_held_gpipe_all_1f1b_p_minus_s(p: int, m: int) -> None:
    # GPipe holds every micro-batch; 1F1B stage s holds min(p - s, M) (Narayanan et al.
    # 2021, section 2.2.1: "at most p" in flight on the first stage)
    for s in range(p):
        assert held_at_most(schedule_of("gpipe", p, s, m)) == m
        assert held_at_most(schedule_of("1f1b", p, s, m)) == min(p - s, m)


@pytest.mark.parametrize(("p", "v", "m"), [(2, 2, 4), (4, 2, 8), (4, 3, 16), (8, 2, 16),
                                           (8, 4, 32), (16, 2, 32)])
def test_interleaved_first_stage_holds_korthikanti_factor(p: int, v: int, m: int) -> None:
    # Korthikanti et al. 2022, section 4.2.3: rank 0 holds p micro-batches of its layers
    # times 1 + (p - 1) / (p v); its layers are v chunks, so in chunk-forwards
    # p v (1 + (p - 1) / (p v)) = p v + p - 1, e.g. p = 4, v = 2: 8 + 3 = 11
    held = held_at_most(schedule_of("interleaved", p, 0, m, v))
    assert held == p * v * first_stage_factor(p, v) == p * v + p - 1
    # the last rank holds p v - (p - 1) x ... : Megatron's warm-up (v - 1) p, plus one
    assert held_at_most(schedule_of("interleaved", p, p - 1, m, v)) == (v - 1) * p + 1


def test_bubble_fractions() -> None:
    # Narayanan et al. 2021: (p - 1) / m; interleaved (p - 1) / (v m)
    assert bubble_fraction("1f1b", 4, 8) == Fraction(3, 8)
    assert bubble_fraction("gpipe", 4, 8) == Fraction(3, 8)
    assert bubble_fraction("interleaved", 4, 8, 2) == Fraction(3, 16)
    assert bubble_fraction("1f1b", 1, 8) == 0


def test_megatron_interleaved_order_of_chunks() -> None:
    # p = 2, v = 2, M = 4: forward k runs chunk (k mod 4) // 2 of micro-batch
    # (k // 4) x 2 + k mod 2: F(c0,m0) F(c0,m1) F(c1,m0) F(c1,m1) F(c0,m2) ...
    actions = schedule_of("interleaved", 2, 0, 4, 2)
    forwards = [(c, i) for k, c, i in actions if k == "F"]
    assert forwards == [(0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (0, 3), (1, 2), (1, 3)]
    backwards = [(c, i) for k, c, i in actions if k == "B"]
    assert backwards == [(1, 0), (1, 1), (0, 0), (0, 1), (1, 2), (1, 3), (0, 2), (0, 3)]
    # rank 0 warms up with (2 - 0 - 1) x 2 + (2 - 1) x 2 = 4 forwards
    assert [k for k, _, _ in actions[:6]] == ["F", "F", "F", "F", "F", "B"]
