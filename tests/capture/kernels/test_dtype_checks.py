"""Operands of different dtypes that a real kernel refuses are refused on fake tensors
too (`capture.kernels.dtype_checks`), each checked against the real run."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import memflops
from memflops.errors import ForwardError


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool])
@pytest.mark.parametrize(
    ("model", "shape"),
    [(nn.Linear(10, 5), (2, 10)), (nn.Conv2d(3, 4, 3), (1, 3, 8, 8))],
)
def test_integer_and_bool_inputs_into_float_layers(
    model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype
) -> None:
    with pytest.raises(RuntimeError):  # the real run refuses it
        model(torch.zeros(shape, dtype=dtype))
    with pytest.raises(ForwardError, match=r"must have the same dtype|should be the same"):
        memflops.analyze(model, [memflops.TensorSpec(shape, dtype)])


def test_same_dtypes_still_run() -> None:
    model = nn.Linear(10, 5).to(torch.bfloat16)
    model(torch.zeros(2, 10, dtype=torch.bfloat16))  # the real run accepts it
    report = memflops.analyze(model, [memflops.TensorSpec((2, 10), torch.bfloat16)])
    assert report.totals.params == 55  # 10 * 5 + 5
