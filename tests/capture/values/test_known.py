"""Known values (capture.values.known): data-dependent steps on inputs and constants."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import memflops
from memflops.capture.inputs import TensorSpec
from memflops.capture.values.known import INDEX_LIMIT, LIMIT, small_enough
from memflops.errors import DataDependentError


class TrimsPadding(nn.Module):
    """Reads its attention mask, as models that trim padding or pick a mask-free path do."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        longest = int(attention_mask.sum(dim=1).max())  # a value read: 6 with a mask of ones
        kept = torch.nonzero(attention_mask[0])  # a size that depends on values: (6, 1)
        return self.fc(x[:, :longest]) * kept.shape[0]


def test_mask_of_ones_is_read() -> None:
    inputs = {"x": (2, 6, 8), "attention_mask": (2, 6)}
    report = memflops.analyze(TrimsPadding(), inputs)
    # the linear layer sees all 6 positions: 2 * 6 * 8 * 8 = 768 MACs
    assert report.by_module()["fc"].forward.macs == 768
    assert any(w.startswith("1 value(s) read from inputs memflops filled") for w in report.warnings)


class GlobalAttention(nn.Module):
    """Longformer's test for global attention on a mask it makes itself."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        global_mask = torch.zeros_like(ids)
        if (global_mask > 0).flatten().any().item():
            return ids.float() * 2
        positions = torch.arange(ids.shape[1]).expand_as(ids)  # constants: no warning
        return (ids + positions).float()


def test_constants_made_by_the_model_are_known() -> None:
    report = memflops.analyze(GlobalAttention(), {"ids": TensorSpec((2, 5), torch.int64)})
    assert "aten.mul" not in report.by_operator()  # the branch without global attention
    assert not any("memflops filled" in w for w in report.warnings)


class Grid(nn.Module):
    """A vision tower: how many patches each image has is in `grid` (t, h, w)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, patches: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        per_image = grid[:, 0] * grid[:, 1] * grid[:, 2]
        image_of_patch = torch.repeat_interleave(torch.arange(grid.shape[0]), per_image)
        return self.proj(patches[: image_of_patch.shape[0]])


def test_given_values_set_sizes() -> None:
    grid = TensorSpec((2, 3), torch.int64, values=[[1, 2, 3], [1, 4, 1]])  # 6 + 4 patches
    report = memflops.analyze(Grid(), {"patches": (12, 4), "grid": grid})
    # 10 patches reach the projection: 10 * 4 * 4 = 160 MACs
    assert report.by_module()["proj"].forward.macs == 160


class OverwritesMask(nn.Module):
    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.clone()
        mask.mul_((x > 0).long())  # unknown values written in: the mask is unknown now
        return x[:, : int(mask.sum())]


def test_unknown_writes_make_values_unknown() -> None:
    with pytest.raises(DataDependentError, match="needs real tensor values"):
        memflops.analyze(OverwritesMask(), {"x": (2, 6), "attention_mask": (2, 6)})


def test_values_must_match_the_shape() -> None:
    grid = TensorSpec((2, 3), torch.int64, values=[[1, 2, 3]])
    with pytest.raises(memflops.errors.SpecError, match=r"do not match the input's shape"):
        memflops.analyze(Grid(), {"patches": (12, 4), "grid": grid})


class SpatialShapes(nn.Module):
    """Deformable-attention detectors fill a table of level sizes element by element."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shapes = torch.empty((2, 2), dtype=torch.long)
        for level, (h, w) in enumerate([(4, 4), (2, 2)]):
            shapes[level, 0] = h  # writes through views of the table
            shapes[level, 1] = w
        tokens = int((shapes[:, 0] * shapes[:, 1]).sum())  # 16 + 4 = 20
        return x[:, :tokens] * 2


def test_writes_through_views_keep_values() -> None:
    report = memflops.analyze(SpatialShapes(), (3, 32))
    # the table's 2 products (h * w) are int64: 0 FLOPs (were 2); then one multiply per
    # kept element, 3 * 20: 60
    assert report.by_operator()["aten.mul"].count == 2
    assert report.by_operator()["aten.mul"].cost.flops == 60


class CodecPadding(nn.Module):
    """Audio codecs keep a conv's stride as a tensor buffer and pad by its value."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("stride", torch.tensor(4), persistent=False)
        self.conv = nn.Conv1d(1, 2, kernel_size=4, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = torch.ceil(torch.tensor(x.shape[-1]) / self.stride).to(torch.int64)
        extra = int(frames * self.stride) - x.shape[-1]  # a value read: 2 for 30 samples
        out: torch.Tensor = self.conv(nn.functional.pad(x, (0, extra)))
        return out


def test_constants_of_a_meta_build_stay_known() -> None:
    from memflops.frontends.meta_init import build_without_weights

    model = build_without_weights(CodecPadding)
    assert model.conv.weight.device.type == "meta" and model.stride.device.type == "cpu"
    report = memflops.analyze(model, (1, 1, 30))
    # padded to 32 samples: 8 positions x 2 channels x 4 taps = 64 MACs
    assert report.by_module()["conv"].forward.macs == 64
    with torch.device("meta"):  # without it the stride is a meta tensor: no value
        plain = CodecPadding()
    with pytest.raises(DataDependentError):
        memflops.analyze(plain, (1, 1, 30))


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
