"""Top-k picks over unknown values assumed balanced (capture.values.picks)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import memflops
from memflops.capture.values.picks import balanced

TOKENS, HIDDEN, EXPERTS, K = 5, 4, 3, 2


BALANCED = [[0, 1], [2, 0], [1, 2], [0, 1], [2, 0]]


class TinyMoe(nn.Module):
    """Routes as Mixtral/Switch do: topk, one_hot, which experts were hit (nonzero), then
    `torch.where` per expert."""

    def __init__(self, forced: list[list[int]] | None = None) -> None:
        super().__init__()
        self.gate = nn.Linear(HIDDEN, EXPERTS, bias=False)
        self.experts = nn.ModuleDict(
            {f"e{i}": nn.Linear(HIDDEN, HIDDEN, bias=False) for i in range(EXPERTS)})
        self.forced = forced

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (T, H)
        probs = self.gate(x).softmax(-1)
        weights, picked = torch.topk(probs, K, dim=-1)
        if self.forced is not None:  # the real run: the balanced assignment by hand
            picked = torch.tensor(self.forced)
        mask = F.one_hot(picked, EXPERTS).permute(2, 1, 0)  # (E, k, T)
        out = torch.zeros_like(x)
        for hit in (mask.sum(dim=(1, 2)) > 0).nonzero():
            slot, token = torch.where(mask[hit[0]])
            y = self.experts[f"e{int(hit[0])}"](x[token]) * weights[token, slot, None]
            out = out.index_add(0, token, y)
        return out


def test_balanced_picks() -> None:
    assert balanced((TOKENS, EXPERTS), 1, K).tolist() == BALANCED
    # argmax over dim 0 of a (3, 2) tensor: rows are the 2 columns, row r picks r mod 3
    assert balanced((3, 2), 0, 1, keepdim=False).tolist() == [0, 1]


def test_topk_routing_counts_the_balanced_active_path() -> None:
    report = memflops.analyze(TinyMoe(), (TOKENS, HIDDEN), mode="train")
    forward = {m.path: m.forward.flops for m in report.modules}
    # expert e runs on its pairs: 4, 3, 3 rows; a bias-free linear: rows * 4 * (2 * 4 - 1)
    assert [forward[f"experts.e{i}"] for i in range(EXPERTS)] == [112, 84, 84]
    # every pair: 10 pairs * 4 * 7 = 280 (tokens * k, whatever the picks)
    assert sum(forward[f"experts.e{i}"] for i in range(EXPERTS)) == 280
    picks = [w for w in report.warnings if "top-k/argmax" in w]
    assert len(picks) == 1 and picks[0].startswith("1 top-k/argmax pick(s)")
    assert "(i*k+j) mod n" in picks[0]


def test_topk_routing_matches_a_real_balanced_run() -> None:
    report = memflops.analyze(TinyMoe(), (TOKENS, HIDDEN), mode="train")
    torch.manual_seed(0)
    real = TinyMoe(forced=BALANCED)
    counter = FlopCounterMode(display=False)
    with counter:
        forward = real(torch.randn(TOKENS, HIDDEN))
    forward_flops = counter.get_total_flops()
    # gate 2 * 5 * 4 * 3 = 120; experts 2 * 10 pairs * 4 * 4 = 320
    assert forward_flops == 440
    assert 2 * report.totals.costs.forward.macs == forward_flops  # the 2mac convention
    with counter:
        forward.sum().backward()
    # weight gradients only (the input needs none): 120 + 320 = 440
    assert counter.get_total_flops() == 440
    assert 2 * report.totals.costs.backward.macs == 440
