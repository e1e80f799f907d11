"""Whole models leave no op uncounted in a training step (which runs every forward op
of inference too, and the backward ops)."""

from __future__ import annotations

import pytest

import memflops


@pytest.mark.parametrize(
    ("target", "shape"),
    [
        ("torchvision:resnet18", (2, 3, 32, 32)),
        ("torchvision:mobilenet_v3_small", (2, 3, 32, 32)),
        ("torchvision:swin_t", (1, 3, 64, 64)),
    ],
)
def test_no_uncounted_ops(target: str, shape: tuple[int, ...]) -> None:
    pytest.importorskip("torchvision")
    report = memflops.analyze(target, shape, mode="train")
    assert [(u.op, u.reason) for u in report.uncounted_ops] == []
