"""Generate mode's capture (capture.generate): prefill and KV-cached decode steps."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import memflops


class CachedMoe(nn.Module):
    """A causal LM with the Hugging Face cache protocol, an argmax router read as a value,
    and a finiteness guard."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.router = nn.Linear(4, 2, bias=False)
        self.experts = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
        self.head = nn.Linear(4, 10)

    def forward(self, input_ids: torch.Tensor, use_cache: bool = True,
                past_key_values: Any = None) -> dict[str, Any]:
        h = self.embed(input_ids)
        if torch.isnan(h).any():
            h = h.nan_to_num()
        expert = int(self.router(h).argmax(dim=-1)[0, -1])
        h = self.experts[expert](h)
        past = h if past_key_values is None else torch.cat([past_key_values, h], dim=1)
        return {"logits": self.head(h), "past_key_values": past}


def test_generate_mode_states_its_assumptions() -> None:
    report = memflops.analyze(CachedMoe(), mode="generate", prompt_len=4, new_tokens=3)
    # prefill, first and last decode: one finiteness check and one pick each
    assert any(w.startswith("3 check(s) for non-finite numbers") for w in report.warnings)
    assert any(w.startswith("3 top-k/argmax pick(s)") for w in report.warnings)
    # a single decode step is captured once: prefill and that step
    once = memflops.analyze(CachedMoe(), mode="generate", prompt_len=4, new_tokens=1)
    assert any(w.startswith("2 top-k/argmax pick(s)") for w in once.warnings)
