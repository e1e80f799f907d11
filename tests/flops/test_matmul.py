"""Matrix-product rules (flops.matmul): triangular solves, grouped GEMMs, FP8 products."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

import memflops
from memflops.capture.costing import price

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


FP8 = torch.float8_e4m3fn


def fp8_operands(m: int, k: int, n: int) -> tuple[torch.Tensor, ...]:
    """Real CPU FP8 operands of (m, k) @ (k, n), `b` column-major as the kernel wants,
    and float32 tensor-wise scales."""
    a = torch.randn(m, k).to(FP8)
    b = torch.randn(n, k).to(FP8).t()
    return a, b, torch.tensor(1.0), torch.tensor(1.0)


def test_scaled_mm_counts_what_flop_counter_mode_counts() -> None:
    a, b, sa, sb = fp8_operands(48, 80, 112)
    with FlopCounterMode(display=False) as mode:
        torch._scaled_mm(a, b, sa, sb, out_dtype=torch.bfloat16)
    got = cost(aten._scaled_mm.default, a, b, sa, sb, out_dtype=torch.bfloat16)
    # 48*112 dot products of 80: 48*80*112 = 430,080 MACs; 2mac 860,160, FCM's figure
    assert got.macs == 430_080 and 2 * got.macs == mode.get_total_flops() == 860_160
    # exact: 48*112*(2*80 - 1) = 854,784, then each of the 5,376 outputs times the two
    # scales: + 2*5,376 = 865,536
    assert got.flops == 854_784 + 2 * 5_376 == 865_536
    bias = torch.randn(112).to(torch.bfloat16)
    biased = cost(aten._scaled_mm.default, a, b, sa, sb, bias, out_dtype=torch.bfloat16)
    assert biased.flops == got.flops + 5_376  # one add per output


def test_scaled_mm_bytes_are_fp8_bytes() -> None:
    a, b, sa, sb = fp8_operands(48, 80, 112)
    out = torch._scaled_mm(a, b, sa, sb, out_dtype=torch.bfloat16)
    cost, dtype = price(aten._scaled_mm.default, "aten._scaled_mm", (a, b, sa, sb),
                        {"out_dtype": torch.bfloat16}, out)
    assert cost is not None and dtype == FP8
    # read: a 48*80 + b 80*112 bytes (1 byte each) + two float32 scales;
    # written: 48*112 bfloat16 outputs (2 bytes each)
    assert cost.bytes_read == 48 * 80 + 80 * 112 + 2 * 4 == 12_808
    assert cost.bytes_written == 48 * 112 * 2 == 10_752


def test_scaled_grouped_mm_rule() -> None:
    rule = rule_of("aten._scaled_grouped_mm")
    # (M=6, K=4) x (G=3, K=4, N=5) -> (6, 5): 120 MACs as aten._grouped_mm; FLOPs
    # 2*120 - 30 = 210, + 2*30 for the two scales = 270
    cost = rule((6, 4), (3, 4, 5), (6,), (3, 5), (3,), out=(6, 5))
    assert (cost.macs, cost.flops) == (120, 270)


class Fp8Linear(torch.nn.Module):
    """A frozen FP8 weight (112, 80) applied with torch._scaled_mm, bfloat16 out."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(112, 80).to(FP8), requires_grad=False)
        self.register_buffer("scale", torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch._scaled_mm(x.to(FP8), self.weight.t(), self.scale, self.scale,
                                out_dtype=torch.bfloat16)


def test_fp8_weights_are_sized_at_one_byte() -> None:
    report = memflops.analyze(Fp8Linear(), (48, 80), convention="2mac").to_dict()
    assert report["totals"]["params"] == 112 * 80
    assert report["totals"]["memory"]["params"] == 112 * 80  # 8,960 bytes: 1 per element
    assert report["totals"]["flops"]["forward"] == 860_160
    assert report["uncounted_ops"] == []
