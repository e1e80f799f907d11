"""Steps whose size depends on values memflops knows: indexing by a known boolean mask
(`capture.values.masks`), the data indexed being activations or gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import memflops
from memflops.capture.inputs import TensorSpec
from memflops.errors import DataDependentError
from memflops.report.model import ModuleRow

IDS = [[1, 0, 1], [0, 0, 1]]
"""Token ids of 2 sequences of 3; `ids == 1` is true at 3 positions."""


class Gather(nn.Module):
    """Projects the tokens an id mask selects: `proj(h[ids == 1])`."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 4)
        self.proj = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        return self.proj(h[ids == 1])


class Scatter(nn.Module):
    """Writes adapted selected tokens back (`out[mask] = adapter(h[mask])`, X-MOD's
    language adapters), then reads a value of the result."""

    def __init__(self) -> None:
        super().__init__()
        self.adapter = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        mask = ids == 1
        out = torch.zeros_like(x)
        out[mask] = self.adapter(x[mask])
        if out.sum() > 0:  # unknown: written from activations, no longer the known zeros
            return out * 2
        return out


def _inputs() -> dict[str, TensorSpec]:
    return {"x": TensorSpec((2, 3, 4)), "ids": TensorSpec((2, 3), torch.int64, values=IDS)}


def _row(report: memflops.Report, path: str) -> ModuleRow:
    return next(m for m in report.modules if m.path == path)


def test_known_mask_selects_its_true_positions_in_train_mode() -> None:
    report = memflops.analyze(Gather(), _inputs(), mode="train")
    proj, embed = _row(report, "proj"), _row(report, "embed")
    assert proj.output_shape == ((3, 5),)  # the 3 true positions of `ids == 1`
    # proj sees 3 selected tokens: 3 * 5 outputs * (2 * 4) with bias = 120
    assert proj.forward.flops == 120
    # embed sees all 2 * 3 tokens: 6 * 4 * (2 * 4) = 192
    assert embed.forward.flops == 192
    assert report.uncounted_ops == ()


def test_a_write_through_a_known_mask_makes_the_target_unknown() -> None:
    with pytest.raises(DataDependentError):
        memflops.analyze(Scatter(), _inputs(), mode="inference")


class Unknown(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[x > 0]


def test_a_mask_computed_from_activations_stays_data_dependent() -> None:
    with pytest.raises(DataDependentError):
        memflops.analyze(Unknown(), {"x": TensorSpec((2, 3))}, mode="inference")


def test_select_by_a_known_broadcast_mask_has_its_true_size() -> None:
    class Select(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mask = torch.ones(4, 1, dtype=torch.bool)
            mask[0] = False  # known: 3 of 4 rows
            picked = x.masked_select(mask)  # broadcast to (4, 3): 3 * 3 = 9 entries
            return picked * picked

    report = memflops.analyze(Select(), (4, 3), mode="inference")
    assert not report.uncounted_ops
    assert report.totals.costs.forward.flops == 9  # the square of 9 entries; the select: 0
