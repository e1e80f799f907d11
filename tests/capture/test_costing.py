"""Pricing a dispatched call: a FLOP is a floating-point operation.

A call none of whose tensors, read or written, is floating-point or complex
(index math, counters, masks) costs 0 FLOPs and 0 MACs under every
convention, rule or no rule, and is not uncounted; the MACs the rule of an
integer matrix product counts are stated in the report's warnings instead.
A float op that reads integer indices is priced by its rule as before.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import memflops
from memflops.capture.costing import cost_of, integer_only
from memflops.flops.registry import ZERO, OpCost, Shape, integer_cost, lookup
from memflops.tensor_spec import TensorSpec

aten = torch.ops.aten
CONVENTIONS = ("exact", "2mac", "mac")


def meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device="meta")


def priced(op: Any, *args: Any, **kwargs: Any) -> OpCost | None:
    out = op(*args, **kwargs)
    return cost_of(op, args, kwargs, out)


# --- the rule, call by call ---------------------------------------------------------


def test_integer_and_bool_calls_cost_zero_rule_or_no_rule() -> None:
    ids, flags = meta(4, 6, dtype=torch.int64), meta(4, 6, dtype=torch.bool)
    # each of these has a rule, which would count 24 (one per element) on float tensors ...
    assert lookup("aten.add_") and lookup("aten.bitwise_and") and lookup("aten.ne")
    assert priced(aten.add.Tensor, meta(4, 6), meta(4, 6)) == OpCost(flops=24)
    # ... but on integers and bools they do no floating-point arithmetic: 0, not None
    assert priced(aten.add_.Scalar, meta(dtype=torch.int64), 1) == ZERO  # a counter
    assert priced(aten.add.Tensor, ids, ids) == ZERO  # index math
    assert priced(aten.mul.Scalar, ids, 3) == ZERO
    assert priced(aten.bitwise_and.Tensor, flags, flags) == ZERO  # a mask & a mask
    assert priced(aten.ne.Scalar, ids, 0) == ZERO  # a padding mask from ids
    assert priced(aten.cumsum.default, ids, 1) == ZERO  # positions from a mask
    # no rule at all: an integer call still costs 0 (it needs none) ...
    assert lookup("aten.gcd") is None
    assert priced(aten.gcd.default, ids, ids) == ZERO
    # ... while a float call with no rule stays unpriced (None: uncounted, never 0)
    assert lookup("aten.nextafter") is None
    assert priced(aten.nextafter.default, meta(4, 6), meta(4, 6)) is None


def test_which_calls_are_integer_only() -> None:
    ids, x = meta(3, dtype=torch.int64), meta(3)
    assert integer_only((ids, ids), {}, ids)
    assert integer_only((ids, 2), {}, meta(3, dtype=torch.bool))
    # an int read or written beside a float one: floating-point work happens
    assert not integer_only((ids, 0.5), {}, x)  # int * 0.5 promotes to float
    assert not integer_only((x,), {}, ids)  # argmax of floats: float compares
    assert not integer_only(([x, ids],), {}, ids)  # tensors inside a list count too
    assert not integer_only((ids,), {"weight": x}, ids)  # and keyword tensors
    assert not integer_only((meta(3, dtype=torch.complex64),), {}, x)


def test_float_ops_reading_integer_indices_are_priced_as_before() -> None:
    idx = torch.tensor([0, 2, 2, 1], dtype=torch.int64).to("meta")
    weight, grad = meta(5, 3), meta(4, 3)
    # embedding backward: 4 gradient rows of 3 added into a zeroed (5, 3) table: 12 adds
    assert priced(aten.embedding_dense_backward.default, grad, idx, 5, -1, False) \
        == OpCost(flops=12)
    # index_add: 4 rows of 3 added into `weight`: 12 adds
    assert priced(aten.index_add.default, weight, 0, idx, grad) == OpCost(flops=12)
    # the gathers themselves move data: 0 by their rule, as before (not None)
    assert priced(aten.embedding.default, weight, idx) == ZERO
    assert priced(aten.index_select.default, weight, 0, idx) == ZERO
    assert priced(aten.gather.default, weight, 1, meta(5, 2, dtype=torch.int64)) == ZERO
    # nll_loss on int64 targets: 4 picked values negated 4, mean 4: 8, as the rule says
    loss = priced(aten.nll_loss_forward.default, meta(4, 5), idx, None, 1, -100)
    assert loss == OpCost(flops=8)


def test_integer_cost_keeps_only_the_rules_macs_apart() -> None:
    # a rule's (M,K)@(K,N) = (2,3)@(3,4): MACs 24, FLOPs 2*24 - 8 = 40
    assert integer_cost(OpCost(macs=24, flops=40)) == OpCost(macs=0, flops=0, integer_macs=24)
    assert integer_cost(None) == ZERO
    for convention in memflops.Convention:
        assert integer_cost(OpCost(macs=24, flops=40)).under(convention) == 0


# --- integer matrix products --------------------------------------------------------


def test_int_mm_is_zero_flops_and_its_macs_are_integer_macs() -> None:
    a, b = meta(32, 64, dtype=torch.int8), meta(64, 16, dtype=torch.int8)
    with FlopCounterMode(display=False) as fcm:
        out = aten._int_mm.default(a, b)
    assert out.dtype == torch.int32
    # (32, 64) @ (64, 16): 32 * 16 * 64 = 32,768 MACs, on int8: no FLOPs, none in `macs`
    assert cost_of(aten._int_mm.default, (a, b), {}, out) == OpCost(integer_macs=32_768)
    # FlopCounterMode has no formula for _int_mm: 0, as our 2mac total
    assert fcm.get_total_flops() == 0


def test_int64_mm_is_zero_flops_where_flop_counter_mode_counts_it() -> None:
    a, b = meta(8, 5, dtype=torch.int64), meta(5, 3, dtype=torch.int64)
    with FlopCounterMode(display=False) as fcm:
        out = aten.mm.default(a, b)
    # 8 * 3 * 5 = 120 MACs: FlopCounterMode counts 2 * 120 = 240 whatever the dtype;
    # memflops counts no FLOPs and keeps the 120 as integer MACs
    assert fcm.get_total_flops() == 2 * 120
    assert cost_of(aten.mm.default, (a, b), {}, out) == OpCost(integer_macs=120)
    # the same product on floats: both count it, and agree (2mac)
    x, y = meta(8, 5), meta(5, 3)
    with FlopCounterMode(display=False) as fcm:
        out = aten.mm.default(x, y)
    cost = cost_of(aten.mm.default, (x, y), {}, out)
    assert cost is not None and fcm.get_total_flops() == cost.under(memflops.Convention.TWO_MAC)


class IntMM(nn.Module):
    """An int8 linear layer as quantised models run it: int8 activations, int8 weight."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Buffer(torch.ones(64, 16, dtype=torch.int8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch._int_mm(x, self.weight)  # (32, 64) @ (64, 16) -> int32
        return y.float() * 0.5  # dequantise: 32 * 16 = 512 multiplies


def test_int_mm_is_stated_in_the_warnings_not_the_totals() -> None:
    report = memflops.analyze(IntMM(), [TensorSpec((32, 64), torch.int8)])
    for convention in CONVENTIONS:
        # only the dequantising multiply: 512 FLOPs exact, no MACs
        assert report.total("forward", convention) == (512 if convention == "exact" else 0)
    assert report.totals.costs.forward.macs == 0
    assert report.totals.costs.forward.integer_macs == 32 * 16 * 64 == 32_768
    assert report.uncounted_ops == ()
    (warning,) = [w for w in report.warnings if "integer" in w]
    assert "aten._int_mm 32768 in 1 call(s)" in warning
    assert warning.startswith("32768 multiply-accumulate(s) on integer tensors")
    assert "in no FLOP or MAC total" in warning


# --- whole models -------------------------------------------------------------------


class IndexMath(nn.Module):
    """Integer and boolean work beside one float op: positions, masks, a counter."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = nn.Buffer(torch.zeros((), dtype=torch.int64))

    def forward(self, ids: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self.steps += 1  # aten.add_ on an int64 counter
        keep = (ids != 0) & (ids < 100)  # aten.ne, aten.lt, aten.bitwise_and on bools
        positions = keep.long().cumsum(-1) * 2 + 1  # aten.cumsum, aten.mul, aten.add
        shifted = torch.gcd(positions, ids) << 1  # no rules: gcd and a left shift
        return x * (shifted > 3)  # the one floating-point op: (2, 8) multiplies


def test_integer_ops_cost_nothing_and_are_not_uncounted() -> None:
    ids = TensorSpec((2, 8), torch.int64)
    report = memflops.analyze(IndexMath(), {"ids": ids, "x": (2, 8)})
    ops = report.by_operator("forward")
    for op in ("aten.add_", "aten.ne", "aten.lt", "aten.bitwise_and", "aten.cumsum",
               "aten.gcd"):
        assert op in ops, op  # recorded, and priced at 0
        assert ops[op].cost.arithmetic == ZERO, op
    # x * mask: 2 * 8 = 16 multiplies, the only FLOPs, under exact; no MACs anywhere
    assert report.total("forward") == 16
    assert report.total("forward", "2mac") == report.total("forward", "mac") == 0
    assert report.uncounted_ops == ()
    assert report.warnings == ()  # index math does no MACs: no integer warning


@pytest.mark.parametrize("mode", ["inference", "train"])
def test_float_models_with_integer_inputs_count_as_before(mode: str) -> None:
    """Embedding lookups and a cross-entropy on int64 targets keep their float FLOPs."""
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 5))
    ids = TensorSpec((2, 3), torch.int64)
    report = memflops.analyze(model, [ids], mode=mode, optimizer=None)
    # Linear (2, 12) -> 5 with bias: 2 * 2*12 * 5 = 240; the lookup itself moves data: 0
    assert report.total("forward") == 240
    if mode == "train":
        # embedding backward scatters 2 * 3 rows of 4 into the table: 24 adds
        assert report.by_operator("backward")["aten.embedding_dense_backward"].cost.arithmetic \
            == OpCost(flops=24)
    assert report.uncounted_ops == ()


def test_integer_cost_on_plain_shapes() -> None:
    """The spec pipeline calls `integer_cost` on plain shapes, as on captured ones."""
    rule = lookup("aten.mm")
    assert rule is not None
    # (4, 6) @ (6, 2): 48 MACs
    assert integer_cost(rule.fn(Shape((4, 6)), Shape((6, 2)), out=Shape((4, 2)))) \
        == OpCost(integer_macs=48)
