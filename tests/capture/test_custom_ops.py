"""Custom ops (`torch.library`): a memflops rule, a FlopCounterMode formula, or a clear
error when the op cannot run on fake tensors.

The op `memflops_custom::gemm(a, b)` is a matrix product (M, K) @ (K, N); here
(2, 8) @ (8, 3): 2*3*8 = 48 MACs, 2mac 96 FLOPs, exact 2*3*(2*8 - 1) = 90 FLOPs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn
from torch.utils import flop_counter

import memflops
from memflops.errors import AnalysisError
from memflops.flops.registry import OpCost, Shape, contraction, unregister

torch.library.define("memflops_custom::gemm", "(Tensor a, Tensor b) -> Tensor")
torch.library.impl("memflops_custom::gemm", "CompositeExplicitAutograd")(torch.mm)
torch.library.register_fake("memflops_custom::gemm")(
    lambda a, b: a.new_empty((a.shape[0], b.shape[1]))
)
torch.library.define("memflops_custom::unfaked", "(Tensor x) -> Tensor")
torch.library.impl("memflops_custom::unfaked", "CPU")(lambda x: x * 3)


@torch.library.custom_op("memflops_custom::twice", mutates_args=())
def twice(x: torch.Tensor) -> torch.Tensor:
    return x * 2


GEMM = torch.ops.memflops_custom.gemm


class Gemm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return GEMM(x, self.w)  # type: ignore[no-any-return]


@pytest.fixture
def fcm_formula() -> Iterator[None]:
    """A FlopCounterMode formula for the op, as a user registers it; removed after (the
    registry is torch's, global)."""

    @flop_counter.register_flop_formula(GEMM)
    def gemm_flop(a: torch.Size, b: torch.Size, *_: object, out_shape: object = None) -> int:
        return 2 * a[0] * a[1] * b[1]

    yield
    del flop_counter.flop_registry[GEMM]


def test_flop_counter_formula_is_used_for_2mac(fcm_formula: None) -> None:
    report = memflops.analyze(Gemm(), (2, 8), convention="2mac")
    assert report.to_dict()["totals"]["flops"]["forward"] == 96  # 2 * 48 MACs
    assert report.to_dict()["totals"]["macs"]["forward"] == 48
    assert report.uncounted_ops == ()
    assert any("memflops_custom.gemm (1 call(s))" in w and "register_flop_formula" in w
               for w in report.warnings)
    with flop_counter.FlopCounterMode(display=False) as mode:  # the same formula, in torch
        Gemm()(torch.randn(2, 8))
    assert mode.get_total_flops() == 96


def test_memflops_rule_wins_over_flop_counter_formula(fcm_formula: None) -> None:
    @memflops.register_formula("memflops_custom.gemm", formula="(M,K)@(K,N) as aten.mm")
    def gemm(a: Shape, b: Shape, *, out: Shape) -> OpCost:
        return contraction(a[0] * a[1] * b[1], a[0] * b[1])

    try:
        report = memflops.analyze(Gemm(), (2, 8))  # exact
        assert report.to_dict()["totals"]["flops"]["forward"] == 90  # 2*3*(2*8 - 1)
        assert not any("register_flop_formula" in w for w in report.warnings)
    finally:
        unregister("memflops_custom.gemm")


def test_without_formula_the_op_is_uncounted() -> None:
    report = memflops.analyze(Gemm(), (2, 8))
    assert [u.op for u in report.uncounted_ops] == ["memflops_custom.gemm"]


class Calls(nn.Module):
    def __init__(self, op: object) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(self.lin(x))  # type: ignore[operator,no-any-return]


@pytest.mark.parametrize(
    ("op", "schema"),
    [(torch.ops.memflops_custom.unfaked, "memflops_custom::unfaked"),  # torch.library.define
     (twice, "memflops_custom::twice")],  # torch.library.custom_op
)
def test_op_without_fake_kernel_names_register_fake(op: object, schema: str) -> None:
    with pytest.raises(AnalysisError) as info:
        memflops.analyze(Calls(op), (2, 4))
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 1
    assert f'torch.library.register_fake("{schema}")' in message
    assert message.startswith(f"custom op {schema.replace('::', '.')} in module `<root>` has "
                              "no fake implementation")
