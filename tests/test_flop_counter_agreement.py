"""memflops `2mac` totals against torch.utils.flop_counter.FlopCounterMode.

FlopCounterMode (FCM) runs each model on REAL CPU tensors with random
weights, in train mode, with the math attention backend, loss = the sum of
every floating output; one counter around the forward, one around the
backward. memflops analyses the same model on fake tensors. The totals must
be equal, except where FCM itself is wrong; there the exact difference is
asserted and derived independently in the test:

(a) F.scaled_dot_product_attention runs the CPU flash kernel, which FCM
    counts as 0; under the math backend FCM sees the two bmm's of the full
    L x S matrix, so forwards agree, but the flash backward recomputes
    Q K^T: memflops' backward is larger by 2*B*H*L*S*E per call (2mac).
(b) aten.mkldnn_rnn_layer (nn.LSTM on CPU) and its backward count 0 in FCM:
    memflops is compared with the hand formula T*B*4H*(I + H) per layer
    and direction (backward twice that).
(c) FCM's convolution backward ignores `groups` for grad_weight, so every
    grouped or depthwise convolution's weight gradient is counted `groups`
    times: the overcount, 2*(g - 1)*MACs per call, is computed from the
    modules' attributes and output shapes.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torchvision
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import memflops
from memflops.capture.costing import cost_of
from memflops.flops import registry
from memflops.flops.registry import OpCost

# --- the two counters ----------------------------------------------------------


def floating_outputs(value: Any) -> list[torch.Tensor]:
    """Every floating tensor that requires grad in nested outputs (dicts, namedtuples)."""
    if isinstance(value, torch.Tensor):
        return [value] if value.is_floating_point() and value.requires_grad else []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in floating_outputs(item)]
    return []


@dataclass(frozen=True)
class Reference:
    """FCM's counts of one train step on real tensors, and its grouped-conv overcount."""

    forward: int
    backward: int
    grouped_overcount: int


@contextmanager
def grouped_conv_macs(model: nn.Module) -> Iterator[list[tuple[int, int]]]:
    """Record (groups, MACs) of every grouped convolution call, from module attributes.

    MACs = output elements * (Cin / groups) * prod(kernel): what the weight
    gradient truly multiplies; FCM counts it `groups` times.
    """
    calls: list[tuple[int, int]] = []

    def hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
        assert isinstance(module, nn.modules.conv._ConvNd)
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        calls.append((module.groups, output.numel() * per_output))

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.modules.conv._ConvNd) and m.groups > 1
    ]
    try:
        yield calls
    finally:
        for h in handles:
            h.remove()


@contextmanager
def one_thread() -> Iterator[None]:
    """These real runs are tiny: one thread is many times faster than a busy pool."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def reference(model: nn.Module, *inputs: torch.Tensor, mkldnn: bool = True) -> Reference:
    """FCM on a real train step (math attention backend)."""
    model.train()
    onednn = nullcontext() if mkldnn else torch.backends.mkldnn.flags(enabled=False)
    with grouped_conv_macs(model) as calls, sdpa_kernel(SDPBackend.MATH), onednn, one_thread():
        with FlopCounterMode(display=False) as forward:
            out = model(*inputs)
        loss = torch.stack([t.sum() for t in floating_outputs(out)]).sum()
        with FlopCounterMode(display=False) as backward:
            loss.backward()
    overcount = sum(2 * (groups - 1) * macs for groups, macs in calls)
    return Reference(forward.get_total_flops(), backward.get_total_flops(), overcount)


def counted(model: nn.Module, *inputs: torch.Tensor) -> tuple[int, int]:
    """memflops' 2mac forward and backward of a train step (fake tensors)."""
    report = memflops.analyze(model, list(inputs), mode="train", optimizer=None)
    return report.total("forward", "2mac"), report.total("backward", "2mac")


# --- torchvision ---------------------------------------------------------------


@dataclass(frozen=True)
class Vision:
    name: str
    shape: tuple[int, ...] = (2, 3, 64, 64)
    grouped: bool = False  # has grouped/depthwise convolutions (case (c) applies)
    kwargs: tuple[tuple[str, Any], ...] = ()

    def build(self) -> nn.Module:
        return torchvision.models.get_model(self.name, weights=None, **dict(self.kwargs))


VISION = [
    Vision("resnet18"),
    Vision("resnet50"),
    Vision("resnext50_32x4d", grouped=True),
    Vision("vgg11"),
    Vision("alexnet"),
    Vision("densenet121"),
    Vision("googlenet", kwargs=(("init_weights", False),)),
    Vision("inception_v3", (2, 3, 299, 299), kwargs=(("init_weights", False),)),
    Vision("squeezenet1_0"),
    Vision("mobilenet_v2", grouped=True),
    Vision("mobilenet_v3_small", grouped=True),
    Vision("mobilenet_v3_large", grouped=True),
    Vision("efficientnet_b0", grouped=True),
    Vision("efficientnet_v2_s", grouped=True),
    Vision("mnasnet0_5", grouped=True),
    Vision("shufflenet_v2_x0_5", grouped=True),
    Vision("regnet_y_400mf", grouped=True),
    Vision("convnext_tiny", grouped=True),
    Vision("swin_t"),
    Vision("r3d_18", (2, 3, 4, 32, 32)),
    Vision("deeplabv3_mobilenet_v3_large", grouped=True,
           kwargs=(("weights_backbone", None), ("num_classes", 5))),
]


@pytest.mark.parametrize("case", VISION, ids=lambda c: c.name)
def test_torchvision_matches_flop_counter(case: Vision) -> None:
    torch.manual_seed(0)
    model = case.build()
    x = torch.randn(case.shape)
    ref = reference(model, x)
    forward, backward = counted(model, x)
    assert forward == ref.forward
    assert ref.forward > 0
    # (c): FCM's backward exceeds the true one by its grouped grad_weight overcount.
    assert backward == ref.backward - ref.grouped_overcount
    assert (ref.grouped_overcount > 0) == case.grouped


def test_grouped_conv_backward_overcount_by_hand() -> None:
    # Depthwise 3x3 conv, 8 channels, groups 8, on (2, 8, 16, 16), padding 1.
    # Forward MACs: 2*8*16*16 outputs * (8/8 * 9) = 4,096 * 9 = 36,864 -> 2mac 73,728.
    # Backward: grad_weight only (the input needs no grad): 36,864 MACs -> 2mac 73,728.
    # FCM counts grad_weight as a dense conv: 36,864 * 8 = 294,912 -> 2mac 589,824.
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
    x = torch.randn(2, 8, 16, 16)
    ref = reference(conv, x)
    forward, backward = counted(conv, x)
    assert ref.forward == forward == 73_728
    assert ref.backward == 589_824
    assert backward == 73_728
    assert ref.grouped_overcount == 2 * 7 * 36_864 == ref.backward - backward


# --- attention -------------------------------------------------------------------


def test_small_vit_flash_backward_recomputes_scores() -> None:
    # 32x32 image, 8x8 patches: L = S = 16 + 1 (class token) = 17 tokens;
    # 2 heads of E = 32/2 = 16; 2 layers; batch 2.
    # (a): per layer, memflops' backward adds the recomputed Q K^T:
    # 2 * B*H*L*S*E = 2 * 2*2*17*17*16 = 36,992; two layers: 73,984.
    torch.manual_seed(0)
    model = torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
        num_classes=10,
    )
    x = torch.randn(2, 3, 32, 32)
    ref = reference(model, x)
    forward, backward = counted(model, x)
    assert forward == ref.forward
    assert backward == ref.backward + 73_984


def test_functional_transformer_flash_backward(functional_transformer: Any) -> None:
    # B = 2, T = 16, 4 heads of E = 32/4 = 8, 2 layers, causal (the full matrix counts).
    # (a): 2 layers * 2 * B*H*L*S*E = 2 * 2 * 2*4*16*16*8 = 65,536 more in the backward.
    torch.manual_seed(0)
    model = functional_transformer(vocab=50, dim=32, heads=4, hidden=64, layers=2)
    ids = torch.randint(0, 50, (2, 16))
    ref = reference(model, ids)
    forward, backward = counted(model, ids)
    assert forward == ref.forward
    # Forward MACs per layer: qkv 2*16*32*96 = 98,304; scores and weighted sum
    # 2 * 2*4*16*16*8 = 32,768; proj 32,768; MLP 2 * 2*16*32*64 = 131,072
    # -> 294,912; head 2*16*32*50 = 51,200; total 2*294,912 + 51,200 = 641,024 MACs.
    assert forward == 2 * 641_024
    assert backward == ref.backward + 65_536


def test_grouped_query_attention() -> None:
    # q (2, 4, 8, 16), k and v (2, 2, 8, 16): 4 query heads share 2 key heads.
    # Forward: 2 products of B*H*L*S*E = 2*4*8*8*16 = 8,192 MACs -> 2mac 32,768.
    # (a): backward 5 products -> 2mac 81,920; the math backend's 4 -> 65,536.
    class GQA(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(16))

        def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            s = self.scale  # every input needs a gradient, as in a real layer
            return nn.functional.scaled_dot_product_attention(s * q, s * k, s * v, enable_gqa=True)

    q, k, v = torch.randn(2, 4, 8, 16), torch.randn(2, 2, 8, 16), torch.randn(2, 2, 8, 16)
    ref = reference(GQA(), q, k, v)
    forward, backward = counted(GQA(), q, k, v)
    assert ref.forward == forward == 32_768
    assert ref.backward == 65_536
    assert backward == 81_920


class SelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(32, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x)[0]  # need_weights: weights averaged over heads


def test_multihead_attention_inference_fast_path() -> None:
    # nn.MultiheadAttention(32, 4 heads of 8) on (2, 16, 32): in eval without grad it is
    # one op, aten._native_multi_head_attention, which FCM counts as 0.
    # MACs: in-projection 3 * 2*16 * 32*32 = 98,304; scores and weighted sum
    # 2*4*16*16 * (8 + 8) = 32,768; out-projection 2*16 * 32*32 = 32,768: 163,840.
    # Exact: biased projections 2 * (98,304 + 32,768) = 262,144; scores
    # 2*4*16*16 * (2*8 - 1) = 30,720; weighted sum 2*4*16*8 * (2*16 - 1) = 31,744;
    # scale 2,048; softmax 2*4*16 rows * (5*16 - 2) = 9,984; head average 2,048: 338,688.
    torch.manual_seed(0)
    model = SelfAttention().eval()
    x = torch.randn(2, 16, 32)
    with torch.no_grad(), FlopCounterMode(display=False) as fcm:
        model(x)
    assert fcm.get_total_flops() == 0
    inference = memflops.analyze(model, x)
    assert [r.op for r in inference.records] == ["aten._native_multi_head_attention"]
    assert inference.total("forward", "mac") == 163_840
    assert inference.total("forward") == 338_688
    # The train-mode forward decomposes into mm/bmm: the same MACs, and FCM agrees.
    forward, _ = counted(model, x)
    assert forward == reference(model, x).forward == 2 * 163_840


class MaskedAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(16))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        s = self.scale
        mask = torch.zeros(8, 10)
        return nn.functional.scaled_dot_product_attention(s * q, s * k, s * v, attn_mask=mask)


def test_cpu_flash_attention_exact_flops() -> None:
    # q (2, 4, 8, 16), k and v (2, 4, 10, 16), an additive mask: per (batch, head),
    # L = 8, S = 10, E = Ev = 16, and 2*4 = 8 (batch, head) pairs.
    # Forward: scores 2*8*10*16 - 80 = 2,480; weighted sum 2,560 - 8*16 = 2,432;
    # scale 80; mask 80; softmax 8 rows * (5*10 - 2) = 384: 5,456; * 8 = 43,648.
    # Backward: scores 2,480; dV 2,560 - 10*16 = 2,400; dP 2,480; dQ 2,432; dK 2,400
    # (12,192); scale 80, mask 80, exp(s - lse) 160, D = rowsum(dO * O) 8*(2*16 - 1)
    # = 248, dS = P * (dP - D) 160, dS * scale 80 (808): 13,000; * 8 = 104,000.
    report = memflops.analyze(MaskedAttention(), [(2, 4, 8, 16), (2, 4, 10, 16), (2, 4, 10, 16)],
                              mode="train", optimizer=None)
    fwd = report.by_operator("forward")["aten._scaled_dot_product_flash_attention_for_cpu"]
    bwd = report.by_operator("backward")[
        "aten._scaled_dot_product_flash_attention_for_cpu_backward"]
    assert fwd.cost.arithmetic == OpCost(macs=8 * 8 * 10 * 32, flops=43_648)
    assert bwd.cost.arithmetic == OpCost(macs=8 * 8 * 10 * 80, flops=104_000)


def test_lstm_exact_flops() -> None:
    # nn.LSTM(8 -> 16) on (T=5, B=2, 8): rows 10, G*H = 64, I = 8, H = 16.
    # Forward: biased projections 2*10*64*8 + 2*10*64*16 = 30,720; their sum 10*64 = 640;
    # cell 10*16*18 = 2,880: 34,240.
    # Backward: dX 10*(2*64*8 - 8) = 10,160; dh 10*(2*64*16 - 16) = 20,320;
    # dW_ih 2*10*512 - 512 = 9,728; dW_hh 2*10*1,024 - 1,024 = 19,456;
    # bias 64*(10 - 1) = 576; cell' 10*16*23 = 3,680: 63,920.
    report = memflops.analyze(nn.LSTM(8, 16), (5, 2, 8), mode="train", optimizer=None)
    fwd = report.by_operator("forward")["aten.mkldnn_rnn_layer"].cost
    bwd = report.by_operator("backward")["aten.mkldnn_rnn_layer_backward"].cost
    assert fwd.arithmetic == OpCost(macs=10 * 64 * 24, flops=34_240)
    assert bwd.arithmetic == OpCost(macs=2 * 10 * 64 * 24, flops=63_920)


# --- attention kernels of other devices, on meta tensors ---------------------------

B, H, L, S, E = 2, 4, 8, 10, 16
FORWARD_2MAC = 2 * 2 * B * H * L * S * E  # 2 * (QK^T + PV) = 2 * 2 * 10,240 = 40,960
BACKWARD_2MAC = 2 * 5 * B * H * L * S * E  # 2 * 5 products = 102,400


def _meta(*shape: int) -> torch.Tensor:
    return torch.empty(shape, device="meta")


def _calls() -> dict[str, Callable[[], Any]]:
    aten = torch.ops.aten
    q, k, v = _meta(B, H, L, E), _meta(B, H, S, E), _meta(B, H, S, E)
    o, go, lse = _meta(B, H, L, E), _meta(B, H, L, E), _meta(B, H, L)
    seed = torch.empty((), dtype=torch.int64, device="meta")

    def t(x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)  # (B, H, L, E) -> (B, L, H, E)

    return {
        "flash": lambda: aten._scaled_dot_product_flash_attention(q, k, v),
        "efficient": lambda: aten._scaled_dot_product_efficient_attention(q, k, v, None, True),
        "cudnn": lambda: aten._scaled_dot_product_cudnn_attention(q, k, v, None, True),
        "flash_forward": lambda: aten._flash_attention_forward(
            t(q), t(k), t(v), None, None, L, S, 0.0, False, False),
        "flash_backward": lambda: aten._scaled_dot_product_flash_attention_backward(
            go, q, k, v, o, lse, None, None, L, S, 0.0, False, seed, seed),
        "efficient_backward": lambda: aten._scaled_dot_product_efficient_attention_backward(
            go, q, k, v, None, o, lse, seed, seed, 0.0, [True, True, True, False]),
        "cudnn_backward": lambda: aten._scaled_dot_product_cudnn_attention_backward(
            go, q, k, v, o, lse, seed, seed, None, None, None, L, S, 0.0, False),
        "flash_kernel_backward": lambda: aten._flash_attention_backward(
            t(go), t(q), t(k), t(v), t(o), lse, None, None, L, S, 0.0, False, seed, seed),
        # FCM has no formula for these (it counts 0):
        "cpu_flash": lambda: aten._scaled_dot_product_flash_attention_for_cpu(q, k, v),
        "cpu_flash_backward": lambda: aten._scaled_dot_product_flash_attention_for_cpu_backward(
            go, q, k, v, o, lse, 0.0, False),
        "overrideable": lambda: aten._scaled_dot_product_fused_attention_overrideable(q, k, v),
        "overrideable_backward":
            lambda: aten._scaled_dot_product_fused_attention_overrideable_backward(
                go, q, k, v, None, [True, True, True, False], o, lse, None, None, L, S, 0.0,
                False, seed, seed),
    }


class RuleCounter(torch.utils._python_dispatch.TorchDispatchMode):  # type: ignore[misc]
    """Sum memflops' rule costs of every op dispatched (views have none)."""

    def __init__(self) -> None:
        super().__init__()
        self.macs = 0
        self.ops: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        cost = cost_of(func, args, kwargs or {}, out)
        if cost is not None:
            self.macs += cost.macs
            self.ops.append(registry.op_name(func))
        return out


def both_counts(call: Callable[[], Any]) -> tuple[int, int]:
    """(FCM, memflops 2mac) of one direct kernel call on meta tensors."""
    with FlopCounterMode(display=False) as fcm, RuleCounter() as rules:
        call()
    assert len(rules.ops) == 1
    return fcm.get_total_flops(), 2 * rules.macs


@pytest.mark.parametrize("name", list(_calls()))
def test_attention_kernels_on_meta(name: str) -> None:
    fcm, ours = both_counts(_calls()[name])
    assert ours == (BACKWARD_2MAC if "backward" in name else FORWARD_2MAC)
    uncovered = name.startswith(("cpu_flash", "overrideable"))
    assert fcm == (0 if uncovered else ours)


def test_varlen_flash_counts_every_sequence_at_max_length() -> None:
    # 3 packed sequences, 20 query and 24 key tokens in all, longest 8 and 10:
    # each counts at 8 x 10: 3 * 4 heads * 8*10 * (16 + 16) = 30,720 MACs.
    q, k, v = _meta(20, 4, 16), _meta(24, 4, 16), _meta(24, 4, 16)
    cum = torch.empty(4, dtype=torch.int32, device="meta")
    fcm, ours = both_counts(lambda: torch.ops.aten._flash_attention_forward(
        q, k, v, cum, cum, 8, 10, 0.0, False, False))
    assert ours == fcm == 2 * 30_720


def test_efficient_attention_forward_layout() -> None:
    # _efficient_attention_forward takes (B, L, H, E). L = S = 8, H = 4, E = 16:
    # 2 products of B*H*L*S*E = 2*4*8*8*16 = 8,192 MACs -> 2mac 32,768.
    # FCM reads the tensors as (B, H, L, E): "heads" 8, "length" 4, so it
    # counts 2 * 2 * (2*8*4*4*16) = 16,384 (a factor H/L = 1/2 off).
    q = _meta(2, 8, 4, 16)
    fcm, ours = both_counts(lambda: torch.ops.aten._efficient_attention_forward(
        q, q, q, None, None, None, 8, 8, 0.0, 0, True))
    assert ours == 32_768
    assert fcm == 16_384


def test_attention_and_rnn_rules_name_real_ops() -> None:
    names = [op for rule in registry.rules() if rule.family in ("attention", "rnn")
             for op in rule.ops]
    assert len(names) >= 19
    # the modules that define higher_order.flex_* and torch_attn.*
    for module in ("torch.nn.attention.flex_attention", "torch.nn.attention.varlen"):
        importlib.import_module(module)

    def exists(name: str) -> bool:
        namespace, _, op = name.partition(".")
        return hasattr(getattr(torch.ops, namespace), op)

    missing = [n for n in names if not exists(n)]
    assert missing == []


# --- recurrent layers ----------------------------------------------------------------


def test_lstm_against_hand_formula(recurrent: Any) -> None:
    # nn.LSTM(16 -> 32), 2 layers, bidirectional, batch_first, input (B=2, T=6, 16).
    # (b): one mkldnn_rnn_layer per layer and direction, T*B*4H*(I + H) MACs each:
    # layer 0: 12 * 128 * (16 + 32) = 73,728; layer 1 reads 2*32 = 64: 12*128*96 = 147,456;
    # two directions: 2 * (73,728 + 147,456) = 442,368 MACs; backward twice that.
    torch.manual_seed(0)
    model = recurrent(nn.LSTM(16, 32, num_layers=2, bidirectional=True, batch_first=True))
    x = torch.randn(2, 6, 16)
    ref = reference(model, x)  # FCM sees only the head
    forward, backward = counted(model, x)
    assert ref.forward == 2 * 12 * 64 * 5  # head: 12 rows, 64 -> 5
    assert forward == ref.forward + 2 * 442_368
    assert backward == ref.backward + 2 * 2 * 442_368


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
def test_lstm_against_decomposed_lstm(recurrent: Any) -> None:
    # With oneDNN off, nn.LSTM runs as addmm/mm that FCM counts: same forward.
    # Its autograd skips what nobody needs, which the fused backward computes:
    # dX of layer 0 (the input needs no grad), T*B*4H*I = 12*128*16 = 24,576 per
    # direction, and dh0 (h0 is zeros), B*4H*H = 2*128*32 = 8,192 per layer and
    # direction: 2*24,576 + 4*8,192 = 81,920 MACs -> 2mac 163,840.
    torch.manual_seed(0)
    model = recurrent(nn.LSTM(16, 32, num_layers=2, bidirectional=True, batch_first=True))
    x = torch.randn(2, 6, 16)
    ref = reference(model, x, mkldnn=False)
    forward, backward = counted(model, x)
    assert forward == ref.forward
    assert backward == ref.backward + 163_840


def test_lstm_without_bias_seq_first(recurrent: Any) -> None:
    # nn.LSTM(16 -> 32, bias=False), input (T=6, B=2, 16): 12 * 128 * 48 = 73,728 MACs.
    torch.manual_seed(0)
    model = recurrent(nn.LSTM(16, 32, bias=False))
    x = torch.randn(6, 2, 16)
    ref = reference(model, x)
    forward, backward = counted(model, x)
    assert forward == ref.forward + 2 * 73_728
    assert backward == ref.backward + 4 * 73_728


@pytest.mark.parametrize(
    ("rnn", "macs"),
    [
        # GRU: T*B*3H*(I + H) = 12 * 96 * 48 = 55,296 per direction of layer 0,
        # 12 * 96 * 96 = 110,592 for layer 1 (reads 64): 2 * 165,888 = 331,776.
        (nn.GRU(16, 32, num_layers=2, bidirectional=True, batch_first=True), 331_776),
        # RNN tanh, 1 layer: 12 * 32 * 48 = 18,432.
        (nn.RNN(16, 32, batch_first=True), 18_432),
        # RNN relu, 2 layers, bidirectional: 2 * (12*32*48 + 12*32*96) = 110,592.
        (nn.RNN(16, 32, num_layers=2, nonlinearity="relu", bidirectional=True,
                batch_first=True), 110_592),
    ],
    ids=["gru", "rnn_tanh", "rnn_relu_bidirectional"],
)
def test_gru_and_rnn_match_flop_counter(rnn: nn.RNNBase, macs: int, recurrent: Any) -> None:
    # On CPU these decompose into addmm/mm, which both counters see.
    torch.manual_seed(0)
    model = recurrent(rnn)
    x = torch.randn(2, 6, 16)  # batch_first: B = 2, T = 6
    ref = reference(model, x)
    forward, backward = counted(model, x)
    head = 2 * 12 * model.head.in_features * 5
    assert forward == ref.forward == 2 * macs + head
    assert backward == ref.backward
