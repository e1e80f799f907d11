"""Attention on jagged nested tensors: each sequence counted at its own length, through
the kernel a GPU would run, and its memory by what that kernel and autograd keep.

The stand-in is the multi-head attention of PyTorch's nested-tensor tutorial: a jagged
input of sequences of 20 and 44 positions of 16 features (64 in all), projected to q, k,
v of H=2 heads of E=Ev=8, attention, an output projection.
  linear qkv: 64 positions * 16 * 48 = 49,152 MACs;  out: 64 * 16 * 16 = 16,384 MACs
  attention, forward:  H * (20^2 + 44^2) * (E + Ev)   = 2 * 2,336 * 16 = 74,752 MACs
             backward: H * 2,336 * (3E + 2Ev)         = 2 * 2,336 * 40 = 186,880 MACs
Padded to 44 the attention would be 2 * 2 * 44^2 * 16 = 123,904 MACs: 66% more.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nested._internal.sdpa as jagged_sdpa
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode, flop_registry

import memflops
from memflops import TensorSpec
from memflops.errors import DataDependentError, UsageError
from memflops.report.model import Report

LENGTHS = (20, 44)
OFFSETS = [0, 20, 64]
JAGGED = "[20,44]x16"


class Attention(nn.Module):
    """Multi-head attention that takes dense or jagged (B, L, 16) inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(16, 48)
        self.out = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (t.unflatten(-1, [2, 8]).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
        attended = F.scaled_dot_product_attention(q, k, v)
        out: torch.Tensor = self.out(attended.transpose(1, 2).flatten(-2))
        return out


class Packs(nn.Module):
    """Packs dense values into a jagged tensor by its offsets inside forward."""

    def __init__(self) -> None:
        super().__init__()
        self.attention = Attention()

    def forward(self, values: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        packed = torch.nested.nested_tensor_from_jagged(values, offsets)
        out: torch.Tensor = self.attention(packed).values()
        return out


def train(model: nn.Module, inputs: Any, dtype: str = "bf16", **options: Any) -> Report:
    report: Report = memflops.analyze(model, inputs, mode="train", dtype=dtype, **options)
    assert report.uncounted_ops == () and report.warnings == ()
    return report


def attention_ops(report: Report) -> list[tuple[str, int]]:
    return [(r.op, r.cost.macs) for r in report.records  # type: ignore[union-attr]
            if "attention" in r.op]


@pytest.mark.parametrize(("dtype", "kernel"), [("bf16", "flash"), ("fp16", "flash"),
                                                ("fp32", "efficient")])
def test_each_sequence_counted_at_its_length_by_the_kernel_a_gpu_runs(
        dtype: str, kernel: str) -> None:
    # flash takes half precision only; the memory-efficient kernel float32 as well
    report = train(Attention(), JAGGED, dtype)
    assert attention_ops(report) == [(f"aten._{kernel}_attention_forward", 74_752),
                                     (f"aten._{kernel}_attention_backward", 186_880)]
    assert report.totals.costs.forward.macs == 49_152 + 16_384 + 74_752


def test_the_enabled_backends_are_honoured() -> None:
    with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION]):
        report = train(Attention(), JAGGED)
    assert [op for op, _ in attention_ops(report)] == [
        "aten._efficient_attention_forward", "aten._efficient_attention_backward"]


def test_flop_counter_mode_formulas_agree_on_the_real_offsets() -> None:
    # torch's own varlen formulas, given real (total, H, E) tensors and the offsets: 2 x MACs
    q = torch.empty(64, 2, 8)
    offsets = torch.tensor(OFFSETS, dtype=torch.int32)
    forward = flop_registry[torch.ops.aten._flash_attention_forward]
    backward = flop_registry[torch.ops.aten._flash_attention_backward]
    assert forward(q, q, q, offsets, offsets, 44, 44, 0.0, False, False,
                   out_shape=None) == 2 * 74_752
    assert backward(q, q, q, q, q, torch.empty(2, 64), offsets, offsets, 44, 44,
                    out_shape=None) == 2 * 186_880


def test_forward_equals_flop_counter_mode_on_each_sequence_run_dense_for_real() -> None:
    # FlopCounterMode on real CPU tensors, one dense sequence at a time (the math backend
    # runs attention as two bmm it counts), against memflops' jagged analysis in `2mac`
    model = Attention()
    counted = 0
    for length in LENGTHS:
        with sdpa_kernel([SDPBackend.MATH]), FlopCounterMode(display=False) as mode:
            model(torch.randn(1, length, 16))
        counted += mode.get_total_flops()
    report = memflops.analyze(model, JAGGED, convention="2mac")
    assert report.total("forward", "2mac") == counted == 2 * (49_152 + 16_384 + 74_752)


def test_jagged_costs_what_its_sequences_cost_one_by_one() -> None:
    # the jagged analysis (flash, packed) against dense analyses of each sequence (the
    # batch-1 CPU kernel): the sum over the sequences, but for two things in backward
    jagged = train(Attention(), JAGGED)
    dense = [train(Attention(), (1, length, 16)) for length in LENGTHS]
    for phase in ("forward", "backward"):
        for convention in ("exact", "2mac", "mac"):
            alone = sum(d.total(phase, convention) for d in dense)
            if (phase, convention) == ("backward", "exact"):
                # each weight and bias gradient is one sum over 64 positions, not two over
                # 20 and 44: one add more per element, 16 * 48 + 48 + 16 * 16 + 16 = 1,088;
                # and the loss's sum of a jagged tensor multiplies its gradient by ones on
                # the way back, 64 * 16 = 1,024
                alone += 1_088 + 1_024
            assert jagged.total(phase, convention) == alone


def test_a_tensor_passed_in_is_analysed_as_its_lengths() -> None:
    tensor = torch.nested.nested_tensor([torch.randn(20, 16), torch.randn(44, 16)],
                                        layout=torch.jagged)
    assert train(Attention(), (tensor,)).to_dict() == train(Attention(), JAGGED).to_dict()


def test_built_inside_forward_from_known_offsets() -> None:
    report = train(Packs(), {"values": (64, 16),
                             "offsets": TensorSpec((3,), torch.int64, values=OFFSETS)})
    assert [macs for _, macs in attention_ops(report)] == [74_752, 186_880]


def test_built_inside_forward_from_unknown_offsets_says_what_to_give() -> None:
    with pytest.raises(DataDependentError) as info:
        memflops.analyze(Packs(), {"values": (64, 16), "offsets": "3:int64"})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("a jagged nested tensor in module `attention` needs its "
                              "sequence lengths")
    assert "--input [3,7]x64" in message and "values=[0, 3, 10]" in message


def test_memory_is_what_the_kernel_and_autograd_keep() -> None:
    # bf16, train. Saved for backward (one storage each):
    #   qkv's output, whose q, k, v views flash keeps     64 * 48 * 2 =  6,144
    #   cumulative offsets of q and of k, v, int32 (3,)     2 * 3 * 4 =     24
    #   flash's output (64, 2, 8), kept by it and by `out`  64 * 16 * 2 =  2,048
    #   its log-sum-exp, float32 (H, total) = (2, 64)        2 * 64 * 4 =    512
    #   its RNG state: seed uint64 (2,), offset int64 ()         16 + 8 =     24
    #   `out`'s output, kept by the loss's sum (a jagged sum keeps its input)  2,048
    # The input's values (64 * 16 * 2 = 2,048) and offsets (3 * 8 = 24) are inputs.
    report = train(Attention(), JAGGED)
    memory = report.totals.memory
    assert memory.activations == 6_144 + 24 + 2_048 + 512 + 24 + 2_048
    assert report.to_dict()["memory_detail"]["inputs"] == 2_048 + 24


def test_an_input_gradient_is_a_jagged_tensor_of_the_same_values() -> None:
    # dX = dY W of qkv: (64, 48) @ (48, 16), 49,152 more MACs; 2,048 bytes more of grads
    plain, grad = train(Attention(), JAGGED), train(Attention(), JAGGED + ":grad")
    assert grad.totals.costs.backward.macs - plain.totals.costs.backward.macs == 49_152
    assert grad.totals.memory.grads - plain.totals.memory.grads == 2_048
    assert grad.to_dict()["inputs"] == [{"name": "input[0]", "shape": [64, 16],
                                         "dtype": "bfloat16", "requires_grad": True,
                                         "lengths": [20, 44]}]


def test_module_outputs_are_given_by_their_packed_values() -> None:
    rows = train(Attention(), JAGGED).by_module()
    assert rows["qkv"].output_shape == ((64, 48),)
    assert rows["out"].output_shape == ((64, 16),)


def test_the_backend_choice_is_put_back() -> None:
    before = jagged_sdpa._select_sdp_backend
    train(Attention(), JAGGED)
    assert jagged_sdpa._select_sdp_backend is before


@pytest.mark.parametrize(("options", "option"), [
    ({"batch_sweep": [1, 2]}, "batch_sweep"), ({"fit": "80GB"}, "fit"),
    ({"parallel": "pp=2"}, "parallel")])
def test_options_that_resize_a_jagged_input_are_refused(options: dict[str, Any],
                                                         option: str) -> None:
    with pytest.raises(UsageError) as info:
        memflops.analyze(Attention(), JAGGED, mode="train", **options)
    assert str(info.value).startswith(f"{option}: input input[0] ([20,44]x16) is a jagged "
                                      f"tensor, whose sequences have lengths of their own")
