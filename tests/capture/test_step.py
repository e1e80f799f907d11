"""The train step: inputs that need their gradient.

The model is one convolution 3 -> 4, 3x3, no padding, on a 1x3x8x8 input:
output 1x4x6x6 = 144 elements, each a dot product of 3*3*3 = 27.
  forward MACs                    144 * 27 = 3,888
  weight gradient MACs            144 * 27 = 3,888 (the same products, reduced over space)
  input gradient MACs             144 * 27 = 3,888 (each output's gradient spread back)
An input that requires grad adds exactly the input gradient: 2 * 3,888 = 7,776 FLOPs to
the backward under `2mac`, and its gradient, 1*3*8*8 float32 = 768 bytes, to `grads`.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import memflops
from memflops.errors import UsageError

INPUT_GRAD_MACS = 144 * 27  # 3,888
INPUT_GRAD_BYTES = 1 * 3 * 8 * 8 * 4  # 768


def conv() -> nn.Module:
    return nn.Conv2d(3, 4, 3)


def fcm_train_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FlopCounterMode's count of forward + backward on real CPU tensors."""
    with FlopCounterMode(display=False) as mode:
        model(x).sum().backward()
    return int(mode.get_total_flops())


def test_input_gradient_flops_and_memory() -> None:
    model = conv()
    plain = memflops.analyze(model, (1, 3, 8, 8), mode="train", optimizer=None,
                             convention="2mac").to_dict()
    grad = memflops.analyze(model, "1x3x8x8:grad", mode="train", optimizer=None,
                            convention="2mac").to_dict()
    assert grad["inputs"][0]["requires_grad"] and not plain["inputs"][0]["requires_grad"]
    assert grad["totals"]["flops"]["forward"] == plain["totals"]["flops"]["forward"]
    added = grad["totals"]["flops"]["backward"] - plain["totals"]["flops"]["backward"]
    assert added == 2 * INPUT_GRAD_MACS
    grads = grad["totals"]["memory"]["grads"] - plain["totals"]["memory"]["grads"]
    assert grads == INPUT_GRAD_BYTES
    # independently: FlopCounterMode on real tensors, with and without the input's grad
    real = fcm_train_flops(model, torch.randn(1, 3, 8, 8, requires_grad=True))
    assert real == grad["totals"]["flops"]["step"]
    assert real - fcm_train_flops(model, torch.randn(1, 3, 8, 8)) == added


def test_tensor_with_requires_grad_keeps_it() -> None:
    model = conv()
    by_tensor = memflops.analyze(model, torch.randn(1, 3, 8, 8, requires_grad=True),
                                 mode="train", optimizer=None)
    by_text = memflops.analyze(model, "1x3x8x8:grad", mode="train", optimizer=None)
    assert by_tensor.to_dict() == by_text.to_dict()


def test_integer_input_cannot_require_grad() -> None:
    model = nn.Embedding(10, 4)
    with pytest.raises(UsageError, match=r"input 2x5:int64:grad: only a floating-point input "
                                         r"can require grad, not int64"):
        memflops.analyze(model, "2x5:int64:grad", mode="train", optimizer=None)
