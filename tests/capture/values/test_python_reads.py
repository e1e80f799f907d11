"""Value reads Python makes behind the dispatch mode, answered while a capture runs
(capture.values.python_reads): known scalars in f-strings and in torch.tensor, patches undone."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import memflops


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


class Fails(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")


class UnknownFormat(nn.Module):
    """A value that is not known still formats as the fake tensor it is. What the forward
    saw goes to a list outside the module (the analysis puts back every attribute the
    forward sets on it)."""

    def __init__(self, seen: list[str]) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.seen = seen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = self.lin(x).sum()
        self.seen.append(f"{total}")
        return total


def test_known_scalars_format_as_their_values() -> None:
    report = memflops.analyze(NamedExperts(), (1, 4), mode="inference")
    forward = {m.path: m.forward.flops for m in report.modules}
    # a linear with bias: 2 * 4 * out; e0 (the balanced pick) 2 * 4 * 3, e1 (the constant) 2 * 4 * 5
    assert forward["experts.e0"] == 24
    assert forward["experts.e1"] == 40
    picks = [w for w in report.warnings if "top-k/argmax" in w]
    assert len(picks) == 1 and picks[0].startswith("1 top-k/argmax pick(s)")


def test_tensor_of_known_scalars() -> None:
    report = memflops.analyze(Windows(), (2, 8), mode="inference")
    forward = {m.path: m.forward.flops for m in report.modules}
    # the head sees 4 of the 8 columns: 2 rows * 3 outputs * 2 * 4 (bias) = 48
    assert forward["head"] == 48


def test_patches_are_undone() -> None:
    original = (torch.Tensor.__format__, torch.tensor, torch.as_tensor)
    memflops.analyze(Windows(), (2, 8), mode="inference")
    with pytest.raises(memflops.errors.MemflopsError):
        memflops.analyze(Fails(), (2, 8), mode="inference")
    assert (torch.Tensor.__format__, torch.tensor, torch.as_tensor) == original
    assert f"{torch.tensor(7)}" == "7"


def test_unknown_scalar_formats_as_before() -> None:
    seen: list[str] = []
    memflops.analyze(UnknownFormat(seen), (1, 4), mode="inference")
    assert seen and seen[0].startswith("FakeTensor(")
