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
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils.flop_counter import FlopCounterMode

import memflops
from memflops.capture.costing import cost_of, integer_only, price
from memflops.flops.registry import ZERO, OpCost, Shape, integer_cost, lookup, op_name
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


# --- bytes read and written (the traffic model of docs/time-model.md) ---------------


def moved(op: Any, *args: Any, **kwargs: Any) -> tuple[int, int]:
    """(bytes read, bytes written) of one call on fake tensors, as the recorder prices it."""
    out = op(*args, **kwargs)
    cost, _ = price(op, op_name(op), args, kwargs, out)
    assert cost is not None
    return cost.bytes_read, cost.bytes_written


@pytest.fixture
def fake() -> Any:
    with FakeTensorMode() as mode:
        yield mode


def test_bytes_of_a_matmul_and_a_biased_linear(fake: Any) -> None:
    a, b = torch.empty(64, 32), torch.empty(32, 16)
    # mm: A and B read once, C written once: 4 * (64*32 + 32*16) = 10,240; 4 * 64*16 = 4,096
    assert moved(aten.mm.default, a, b) == (10_240, 4_096)
    # addmm(bias, x, W^T): the bias (16,) is read once at its real size, the transposed
    # weight (a view) at its own: 4 * (16 + 64*32 + 16*32) = 10,304
    w, bias = torch.empty(16, 32), torch.empty(16)
    assert moved(aten.addmm.default, bias, a, w.t()) == (10_304, 4_096)
    # bf16: 2 bytes an element: 2 * (64*32 + 32*16) = 5,120 read, 2 * 1,024 = 2,048 written
    assert moved(aten.mm.default, a.bfloat16(), b.bfloat16()) == (5_120, 2_048)


def test_bytes_of_a_convolution(fake: Any) -> None:
    x, w, bias = torch.empty(2, 3, 8, 8), torch.empty(5, 3, 3, 3), torch.empty(5)
    # read x 2*3*8*8 * 4 = 1,536, w 5*3*3*3 * 4 = 540, bias 20: 2,096;
    # write y (2, 5, 8, 8) * 4 = 2,560
    assert moved(aten.convolution.default, x, w, bias, [1, 1], [1, 1], [1, 1], False,
                 [0, 0], 1) == (2_096, 2_560)


def test_bytes_of_elementwise_ops_with_broadcast_and_repeats(fake: Any) -> None:
    x, row = torch.empty(4, 6), torch.empty(6)
    # x + row: x 4*6 * 4 = 96 and the broadcast row once at its size, 6 * 4 = 24; 96 written
    assert moved(aten.add.Tensor, x, row) == (120, 96)
    # an explicit expand (stride 0) reads the same 24 bytes, not 4 * 24
    assert moved(aten.add.Tensor, x, row.expand(4, 6)) == (120, 96)
    # x * x reads x once
    assert moved(aten.mul.Tensor, x, x) == (96, 96)
    # a transposed view is read at its own size: clone of x.t() reads 96, writes 96
    assert moved(aten.clone.default, x.t()) == (96, 96)


def test_bytes_of_in_place_and_out_writes(fake: Any) -> None:
    x, y = torch.empty(4, 6), torch.empty(4, 6)
    # x.add_(y): x and y read (192), x written once (96), not again as the output
    assert moved(aten.add_.Tensor, x, y) == (192, 96)
    assert moved(aten.relu_.default, x) == (96, 96)
    # copy_ overwrites its target without reading it; ones_like reads only a shape
    assert moved(aten.copy_.default, x, y) == (96, 96)
    assert moved(aten.ones_like.default, x) == (0, 96)
    # add(x, y, out=z): z is written, never read
    assert moved(aten.add.out, x, y, out=torch.empty(4, 6)) == (192, 96)


def test_bytes_of_a_reduction_and_gathers(fake: Any) -> None:
    # sum over dim 1 of (8, 16): 8*16 * 4 = 512 read, 8 * 4 = 32 written
    assert moved(aten.sum.dim_IntList, torch.empty(8, 16), [1]) == (512, 32)
    # embedding of (2, 3) ids in a (100, 8) table: the ids 6 * 8 = 48 and the 6 rows
    # copied, 6*8 * 4 = 192 (not the whole table); 192 written
    table, ids = torch.empty(100, 8), torch.empty(2, 3, dtype=torch.int64)
    assert moved(aten.embedding.default, table, ids) == (240, 192)
    # index_put_ of 3 rows of 4 into (10, 4): reads ids 3 * 8 and values 3*4 * 4 (72),
    # writes only the 48 bytes it scatters
    rows = torch.empty(3, dtype=torch.int64)
    assert moved(aten.index_put_.default, torch.empty(10, 4), [rows], torch.empty(3, 4)) \
        == (72, 48)


def test_bytes_of_attention(fake: Any) -> None:
    # q (2, 4, 8, 16), k and v (2, 4, 10, 16), fp32: read 4 * (1,024 + 2 * 1,280) = 14,336;
    # write the output 4 * 1,024 = 4,096 and the log-sum-exp (2, 4, 8) 4 * 64 = 256
    q, k, v = torch.empty(2, 4, 8, 16), torch.empty(2, 4, 10, 16), torch.empty(2, 4, 10, 16)
    assert moved(aten._scaled_dot_product_flash_attention_for_cpu.default, q, k, v) \
        == (14_336, 4_352)


def test_bytes_of_an_adam_step() -> None:
    # Linear(8, 16) + Linear(16, 4): P = 212 fp32 values, 848 bytes per state tensor.
    # torch's foreach Adam (host step counters): steps += 1 reads 4 counters and the
    # tensor 1.0 (20) and writes the counters (16); then lerp_(m, g) 2P | P, mul_(v) P | P,
    # addcmul_(v, g, g) 2P | P (g read once), sqrt(v) P | P, div_ P | P, add_(eps) P | P,
    # addcdiv_(p, m, denom) 3P | P: read 20 + 11 * 848 = 9,348, written 16 + 7 * 848 = 5,952
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    report = memflops.analyze(model, (2, 8), mode="train", optimizer="adam")
    optimizer = report.totals.costs.optimizer
    assert (optimizer.bytes_read, optimizer.bytes_written) == (9_348, 5_952)


def test_bytes_of_a_whole_model_against_a_hand_count() -> None:
    # Inference of Linear(32, 64) -> ReLU -> Linear(64, 10) on (B=8, 32), fp32, counted
    # layer by layer from the shapes alone:
    b, i, h, o = 8, 32, 64, 10
    fc1 = 4 * (h + b * i + h * i) + 4 * b * h  # addmm: bias, x, W1^T read; y written
    act = 4 * b * h + 4 * b * h  # relu: read y, write relu(y)
    fc2 = 4 * (o + b * h + o * h) + 4 * b * o  # 11,520 + 4,096 + 4,968 in all
    model = nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, o))
    report = memflops.analyze(model, (b, i))
    assert report.totals.costs.forward.bytes == fc1 + act + fc2 == 20_584
    rows = report.by_module()
    assert [rows[p].forward.bytes for p in ("0", "1", "2")] == [fc1, act, fc2]
    # per phase and per module sum to the same, and the JSON says so
    document = report.to_dict()
    assert document["totals"]["bytes"]["forward"] == document["modules"][0]["bytes"]["forward"]
    # intensity: exact FLOPs 2*8*32*64 + 8*64 + 2*8*64*10 = 43,520 over 20,584 bytes
    assert report.intensity("forward") == pytest.approx(43_520 / 20_584)


def test_a_layer_list_prices_no_bytes(tmp_path: Any) -> None:
    from memflops.layerspec.analyze import analyze_spec

    spec = tmp_path / "net.yaml"
    spec.write_text("name: net\ninput: [3, 8, 8]\nbatch: 2\nlayers:\n"
                    "  - {name: c, type: conv, out: 4, kernel: 3, padding: 1}\n")
    document = analyze_spec(spec).to_dict()
    assert document["totals"]["bytes"] is None
    assert document["modules"][0]["bytes"] is None
