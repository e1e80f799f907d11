"""Checks for non-finite numbers are read as 'every number is finite' (capture.values.finite)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import memflops
from memflops.errors import DataDependentError


class Guarded(nn.Module):
    """The guards transformers models use (DETR's clamp, NaN asserts, inf tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        if not torch.isfinite(h).all():  # decomposes into abs, != inf, x == x, mul, all
            h = h.clamp(-1e4, 1e4)
        if torch.isinf(h).any() or torch.isnan(h).any():
            raise AssertionError("not finite")
        assert h.isnan().sum() == 0
        if (h != h).any():
            raise AssertionError("NaN")
        return h


def test_guards_read_as_finite() -> None:
    report = memflops.analyze(Guarded(), (4, 16), mode="train")
    ops = set(report.by_operator())
    assert "aten.clamp" not in ops  # the branch a finite model takes
    assert any(w.startswith("5 check(s) for non-finite numbers") for w in report.warnings)
    # the forward's matmul is that of a real run on finite numbers
    with FlopCounterMode(display=False) as counter:
        Guarded()(torch.randn(4, 16))
    real = counter.get_total_flops()
    assert report.total("forward", convention="2mac") == real == 2 * 4 * 16 * 16


class ReadsData(nn.Module):
    def __init__(self, test: str) -> None:
        super().__init__()
        self.test = test

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.test == "sum" and x.sum() > 0:  # a value, not a finiteness test
            return x * 2
        if self.test == "mask" and (x == float("-inf")).any():  # masks hold -inf legitimately
            return x * 3
        return x


@pytest.mark.parametrize("test", ["sum", "mask"])
def test_other_value_reads_still_fail(test: str) -> None:
    with pytest.raises(DataDependentError, match="needs real tensor values"):
        memflops.analyze(ReadsData(test), (4, 16))


def test_no_guard_no_warning() -> None:
    report = memflops.analyze(nn.Linear(16, 16), (4, 16), mode="train")
    assert not any("non-finite" in w for w in report.warnings)
