"""Ops whose meta kernel refuses inputs a real kernel accepts (capture.kernels.meta_gaps)."""

from __future__ import annotations

import pytest
import torch

from memflops.capture.kernels.meta_gaps import output_for

aten = torch.ops.aten


@pytest.mark.parametrize(
    ("a", "b", "offs"),
    [((16, 8), (3, 8, 16), 3), ((8, 16), (16, 16), 3), ((3, 16, 8), (3, 8, 16), None),
     ((3, 16, 8), (8, 48), 3)],
)
def test_gap_output_matches_the_meta_kernel(a: tuple[int, ...], b: tuple[int, ...],
                                            offs: int | None) -> None:
    """fp32 outputs take the shape the meta kernel gives the same call in bf16."""

    def call(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        o = torch.empty(offs, dtype=torch.int32, device="meta") if offs else None
        return (torch.empty(a, dtype=dtype, device="meta"),
                torch.empty(b, dtype=dtype, device="meta"), o)

    expected = aten._grouped_mm.default(*call(torch.bfloat16))
    ours = output_for(aten._grouped_mm.default, call(torch.float32), {})
    assert ours.shape == expected.shape and ours.dtype == torch.float32
    assert output_for(aten._grouped_mm.default, call(torch.bfloat16), {}) is None
