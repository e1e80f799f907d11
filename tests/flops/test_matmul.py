"""Matrix-product rules (flops.matmul): triangular solves, grouped GEMMs."""

from __future__ import annotations

from ._meta import aten, cost, meta, rule_of


def test_grouped_mm_rule() -> None:
    rule = rule_of("aten._grouped_mm")
    # (M=6, K=4) x (G=3, K=4, N=5) -> (6, 5): 6*5*4 = 120 MACs, 2*120 - 30 = 210 FLOPs
    cost = rule((6, 4), (3, 4, 5), (3,), out=(6, 5))
    assert (cost.macs, cost.flops) == (120, 210)
    # weight gradient: (K=4, M=6) x (M=6, N=5), M split in G=3 groups -> (3, 4, 5):
    # 4*6*5 = 120 MACs, 2*120 - 60 outputs = 180 FLOPs (each group sums its own rows)
    cost = rule((4, 6), (6, 5), (3,), out=(3, 4, 5))
    assert (cost.macs, cost.flops) == (120, 180)
    # batched (G=3, M=2, K=4) x (3, 4, 5) -> (3, 2, 5): 3*2*5*4 = 120 MACs
    assert rule((3, 2, 4), (3, 4, 5), None, out=(3, 2, 5)).macs == 120


def substitution_ops(n: int, rhs: int, unitriangular: bool) -> tuple[int, int, int]:
    """(multiplies, subtracts, divides) a forward substitution L x = b really performs."""
    muls = subs = divs = 0
    for _ in range(rhs):
        for i in range(n):
            for _j in range(i):  # x_i -= L[i, j] * x_j
                muls += 1
                subs += 1
            if not unitriangular:  # x_i /= L[i, i]
                divs += 1
    return muls, subs, divs


def test_solve_triangular_matches_substitution() -> None:
    a, b = meta(2, 5, 5), meta(2, 5, 3)  # a batch of 2 systems, 3 right-hand sides each
    muls, subs, divs = substitution_ops(5, 2 * 3, unitriangular=False)
    got = cost(aten.linalg_solve_triangular.default, a, b, upper=False)
    assert got.macs == muls == 2 * 3 * 10  # n(n-1)/2 = 10 per right-hand side
    assert got.flops == muls + subs + divs == 2 * 3 * 25  # n^2 per right-hand side
    unit = cost(aten.linalg_solve_triangular.default, a, b, upper=False, unitriangular=True)
    assert unit.flops == sum(substitution_ops(5, 6, unitriangular=True)) == 6 * 20


def test_solve_triangular_right_side() -> None:
    """X A = B: each of B's rows is one system of n."""
    a, b = meta(4, 4), meta(7, 4)
    got = cost(aten.linalg_solve_triangular.default, a, b, upper=True, left=False)
    assert got.flops == sum(substitution_ops(4, 7, unitriangular=False)) == 7 * 16
