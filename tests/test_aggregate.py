"""Ops without a rule are reported, never counted as zero silently."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

import memflops
from memflops.flops.registry import OpCost, Shape, numel, unregister

# Three custom ops, each with a fake kernel so they run on fake tensors.
for _name in ("mystery", "broken", "scaled"):
    torch.library.define(f"memflops_tests::{_name}", "(Tensor x) -> Tensor")
    torch.library.impl(f"memflops_tests::{_name}", "CompositeExplicitAutograd")(
        lambda x: x * 2
    )
    torch.library.register_fake(f"memflops_tests::{_name}")(lambda x: torch.empty_like(x))


def _broken(x: Shape, *, out: Shape) -> OpCost:
    raise ZeroDivisionError("a rule's bug")


def _scaled(x: Shape, *, out: Shape) -> OpCost:
    return OpCost(flops=numel(out))


@pytest.fixture(autouse=True, scope="module")
def _custom_rules() -> Iterator[None]:
    """Register the test rules for this module only: the registry is global."""
    memflops.register_formula("memflops_tests.broken", formula="raises (a rule's bug)")(_broken)
    memflops.register_formula("memflops_tests.scaled", formula="1 multiply per element")(_scaled)
    yield
    unregister("memflops_tests.broken", "memflops_tests.scaled")


class Custom(nn.Module):
    def __init__(self, op: str) -> None:
        super().__init__()
        self.op = getattr(torch.ops.memflops_tests, op)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)  # type: ignore[no-any-return]


def model(op: str) -> nn.Sequential:
    # linear 8 -> 8, custom op, linear 8 -> 8, custom op: the op runs twice.
    return nn.Sequential(nn.Linear(8, 8), Custom(op), nn.Linear(8, 8), Custom(op))


def test_op_without_rule_is_reported() -> None:
    report = memflops.analyze(model("mystery"), (2, 8))
    (entry,) = report.uncounted_ops
    assert (entry.op, entry.count, entry.modules) == ("memflops_tests.mystery", 2, ("1", "3"))
    assert entry.reason == "no rule"
    assert any("memflops_tests.mystery" in w and "2 op call(s)" in w for w in report.warnings)
    assert report.to_dict()["uncounted_ops"] == [
        {"op": "memflops_tests.mystery", "count": 2, "modules": ["1", "3"], "reason": "no rule"}
    ]
    # The counted part is still there: two biased linears, 2 * (2 * 2*8*8) = 512.
    assert report.total("forward") == 512


def test_rule_that_fails_is_reported_with_its_error() -> None:
    report = memflops.analyze(model("broken"), (2, 8))
    (entry,) = report.uncounted_ops
    assert (entry.op, entry.count) == ("memflops_tests.broken", 2)
    assert entry.reason == "rule failed: ZeroDivisionError: a rule's bug"


def test_registered_formula_counts_a_custom_op() -> None:
    report = memflops.analyze(model("scaled"), (2, 8))
    assert report.uncounted_ops == ()
    # 512 for the linears + 2 calls * 16 elements = 544.
    assert report.total("forward") == 544
    assert report.by_module()["1"].forward.arithmetic == OpCost(flops=16)
