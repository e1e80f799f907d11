"""Capture gaps: known values read behind the dispatch mode, large known masks, and the
assumption warnings of generate mode."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import memflops
from memflops.capture.values.known import INDEX_LIMIT, LIMIT, small_enough


class NamedExperts(nn.Module):
    """Picks its expert by name, as Switch Transformers and NLLB-MoE do: f"e{index}"."""

    def __init__(self) -> None:
        super().__init__()
        self.router = nn.Linear(4, 2, bias=False)
        self.experts = nn.ModuleDict({"e0": nn.Linear(4, 3), "e1": nn.Linear(4, 5)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (1, 4)
        picked = self.router(x).argmax(dim=-1)  # one row: picks 0 (balanced)
        constant = torch.tensor(1)
        first = self.experts[f"e{picked[0]}"](x)
        second = self.experts[f"e{constant:d}"](x)
        return first.sum() + second.sum()


def test_known_scalars_format_as_their_values() -> None:
    report = memflops.analyze(NamedExperts(), (1, 4), mode="inference")
    forward = {m.path: m.forward.flops for m in report.modules}
    # a linear with bias: 2 * 4 * out; e0 (the balanced pick) 2 * 4 * 3, e1 (the constant) 2 * 4 * 5
    assert forward["experts.e0"] == 24
    assert forward["experts.e1"] == 40
    picks = [w for w in report.warnings if "top-k/argmax" in w]
    assert len(picks) == 1 and picks[0].startswith("1 top-k/argmax pick(s)")


class Windows(nn.Module):
    """Qwen3-ASR's window lengths: `torch.tensor` of a list of known 0-d tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (2, 8)
        lens = torch.arange(4)  # known: 0, 1, 2, 3
        windows = torch.tensor([lens[1], lens[3]])  # int64, like the tensors it holds
        assert windows.dtype == torch.int64
        halves = torch.as_tensor((lens[2], lens[2]))
        width = int(windows.sum()) + int(halves.sum()) - 4  # 1 + 3 + 2 + 2 - 4 = 4
        return self.head(x[:, :width])


def test_tensor_of_known_scalars() -> None:
    report = memflops.analyze(Windows(), (2, 8), mode="inference")
    forward = {m.path: m.forward.flops for m in report.modules}
    # the head sees 4 of the 8 columns: 2 rows * 3 outputs * 2 * 4 (bias) = 48
    assert forward["head"] == 48


class Fails(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")


def test_patches_are_undone() -> None:
    original = (torch.Tensor.__format__, torch.tensor, torch.as_tensor)
    memflops.analyze(Windows(), (2, 8), mode="inference")
    with pytest.raises(memflops.errors.MemflopsError):
        memflops.analyze(Fails(), (2, 8), mode="inference")
    assert (torch.Tensor.__format__, torch.tensor, torch.as_tensor) == original
    assert f"{torch.tensor(7)}" == "7"


class UnknownFormat(nn.Module):
    """A value that is not known still formats as the fake tensor it is."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.seen = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = self.lin(x).sum()
        self.seen = f"{total}"
        return total


def test_unknown_scalar_formats_as_before() -> None:
    model = UnknownFormat()
    memflops.analyze(model, (1, 4), mode="inference")
    assert model.seen.startswith("FakeTensor(")


TOKENS, EXPERTS = 2048, 600


class WideOneHot(nn.Module):
    """A router mask larger than 2^20 elements: one_hot(2048 picks of 600) is 1,228,800."""

    def __init__(self) -> None:
        super().__init__()
        self.router = nn.Linear(4, EXPERTS, bias=False)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (TOKENS, 4)
        picked = self.router(x).argmax(dim=-1)
        mask = F.one_hot(picked, EXPERTS)
        hit = (mask.sum(dim=0) > 0).nonzero()  # balanced: token t picks t mod 600, all hit
        return self.head(x[: hit.shape[0]])


def test_router_masks_above_a_million_elements_are_known() -> None:
    assert LIMIT < TOKENS * EXPERTS <= INDEX_LIMIT
    report = memflops.analyze(WideOneHot(), (TOKENS, 4), mode="inference")
    forward = {m.path: m.forward.flops for m in report.modules}
    # the head runs on the 600 experts hit: 600 rows * 3 outputs * 2 * 4 (bias) = 14400
    assert forward["head"] == 14400


def test_large_floating_values_are_not_kept() -> None:
    # 2^21 elements: an int64 or bool mask is kept, a float one (an additive mask) is not
    assert small_enough(torch.empty(1 << 21, dtype=torch.int64, device="meta"))
    assert small_enough(torch.empty(1 << 21, dtype=torch.bool, device="meta"))
    assert not small_enough(torch.empty(1 << 21, dtype=torch.bfloat16, device="meta"))
    assert small_enough(torch.empty(1 << 20, dtype=torch.float32, device="meta"))
    assert not small_enough(torch.empty((1 << 22) + 1, dtype=torch.int64, device="meta"))


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
