"""Meta builds keep small constants real (`frontends/meta_init.py`)."""

from __future__ import annotations

import torch

from memflops.frontends.meta_init import small_constants_on_cpu


def test_small_constant_stays_real_and_large_one_does_not() -> None:
    with torch.device("meta"), small_constants_on_cpu():
        stride = torch.tensor([2, 2])
        table = torch.tensor([[0.5] * 65])  # 65 elements: more than SMALL_CONSTANT (64)
    assert stride.device.type == "cpu" and stride.tolist() == [2, 2]
    assert table.is_meta


def test_constant_mixed_with_meta_tensors_joins_them_on_meta() -> None:
    # LayoutLMv3 concatenates its `cls_token_box` constant with boxes built on meta
    with torch.device("meta"), small_constants_on_cpu():
        cls_box = torch.tensor([[1, 1, 1000, 1000]])  # kept on the CPU
        boxes = torch.zeros(196, 4, dtype=torch.int64)  # meta
        joined = torch.cat([cls_box, boxes])
        scaled = boxes * torch.tensor(2)  # a 0-d CPU tensor mixes with any device
    assert cls_box.device.type == "cpu"
    assert joined.is_meta and joined.shape == (197, 4)
    assert scaled.is_meta and scaled.shape == (196, 4)


def test_meta_tensor_moved_to_a_cpu_constant_stays_on_meta() -> None:
    with torch.device("meta"), small_constants_on_cpu():
        scalar = torch.tensor(0.0)  # a small constant: kept on the CPU
        table = torch.zeros(3, 4).to(device=scalar.device, dtype=torch.float64)
    assert scalar.device.type == "cpu"
    assert table.is_meta and table.dtype == torch.float64 and table.shape == (3, 4)
