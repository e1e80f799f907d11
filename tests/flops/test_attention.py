"""Variable-length attention (`torch.nn.attention.varlen`): exact with known offsets, the
max-length bound without.

The stand-in packs 64 tokens, projected to q, k, v of (64, H=2, E=8), in two sequences of
20 and 44 tokens (offsets [0, 20, 64]) and calls `varlen_attn` with max lengths 44:
  known offsets: forward MACs = H * (20^2 + 44^2) * (E + Ev) = 2 * 2,336 * 16 = 74,752
                 backward     = 2 * 2,336 * (3E + 2Ev)       = 2 * 2,336 * 40 = 186,880
  unknown:       each of the 2 sequences at 44 x 44:  2 * 2 * 1,936 * 16 = 123,904 forward,
                 2 * 2 * 1,936 * 40 = 309,760 backward (an upper bound)
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.attention.varlen import varlen_attn
from torch.utils.flop_counter import flop_registry

import memflops
from memflops import TensorSpec
from memflops.report.model import Report

OFFSETS = [0, 20, 64]


class Packed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(16, 48)

    def forward(self, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).view(x.shape[0], 3, 2, 8).unbind(1)  # each (total, H, E)
        out: torch.Tensor = varlen_attn(q, k, v, offsets, offsets, 44, 44)
        return out


def varlen_macs(offsets: TensorSpec) -> tuple[int, ...]:
    report: Report = memflops.analyze(Packed(), [(64, 16), offsets], mode="train",
                                      optimizer=None)
    assert report.uncounted_ops == ()
    return tuple(r.cost.macs for r in report.records  # type: ignore[union-attr]
                 if r.op.startswith("torch_attn._varlen_attn"))


@pytest.mark.parametrize(
    ("offsets", "macs"),
    [(TensorSpec((3,), torch.int32, values=OFFSETS), (74_752, 186_880)),
     (TensorSpec((3,), torch.int32), (123_904, 309_760))],
)
def test_varlen_attention(offsets: TensorSpec, macs: tuple[int, int]) -> None:
    assert varlen_macs(offsets) == macs


def test_varlen_known_offsets_agree_with_flop_counter_mode_formula() -> None:
    # torch's own formula, on real offsets: 2 x the MACs above
    q = k = v = torch.empty(64, 2, 8)
    offsets = torch.tensor(OFFSETS, dtype=torch.int32)
    formula = flop_registry[torch.ops.torch_attn._varlen_attn]
    assert formula(q, k, v, offsets, offsets, 44, 44, out_val=None) == 2 * 74_752
