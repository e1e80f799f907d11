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

from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import memflops
from memflops.errors import UsageError
from memory import nets, realrun

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


# --- gradient accumulation: FLOPs, calls, times of one optimizer step ----------------------
# M micro-batches of the same micro-batch shape. Per micro-batch, the loss is divided by M
# (1 FLOP, a scalar division) and its backward divides the seed gradient by M (1 FLOP);
# micro-batches 2..M add each parameter's fresh gradient into its .grad (1 FLOP per
# trainable element, autograd's in-place add_). So, with F, L, B and O the forward, loss,
# backward and optimizer FLOPs (exact) of the same micro-batch without accumulation, and P
# the trainable parameters:
#   forward  = M * F
#   loss     = M * (L + 1)
#   backward = M * (B + 1) + (M - 1) * P
#   step     = M * (F + L + B + 2) + (M - 1) * P + O

ACCUMULATED: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "mlp": (nets.ResidualMLP, (16, 64)),
    "cnn-bn": (nets.cnn, (8, 3, 32, 32)),
    "frozen-and-shared": (nets.FrozenShared, (16, 32)),
}


@pytest.mark.parametrize("micro_batches", [2, 5])
@pytest.mark.parametrize("name", list(ACCUMULATED))
def test_accumulated_step_flops_are_the_micro_batches_and_the_gradient_adds(
    name: str, micro_batches: int
) -> None:
    build, shape = ACCUMULATED[name]
    model, m = realrun.seeded(build), micro_batches
    one = memflops.analyze(model, shape, mode="train").totals
    report = memflops.analyze(model, shape, mode="train", grad_accumulation=m)
    costs, p = report.totals.costs, one.trainable_params
    f, loss, b, o = (one.costs.forward.flops, one.costs.loss.flops, one.costs.backward.flops,
                     one.costs.optimizer.flops)
    assert costs.forward.flops == m * f
    assert costs.loss.flops == m * (loss + 1)
    assert costs.backward.flops == m * (b + 1) + (m - 1) * p
    assert costs.optimizer.flops == o
    assert costs.step.flops == m * (f + loss + b + 2) + (m - 1) * p + o
    assert costs.forward.macs == m * one.costs.forward.macs
    acc = report.grad_accumulation
    assert acc is not None
    assert (acc.micro_batches, acc.micro_batch, acc.effective_batch) == (m, shape[0],
                                                                        m * shape[0])
    # micro-batch 1 has no gradient to add into; each later one adds P
    assert (acc.first.forward.flops, acc.first.loss.flops, acc.first.backward.flops) == (
        f, loss + 1, b + 1)
    assert (acc.later.forward.flops, acc.later.backward.flops) == (f, b + 1 + p)


@pytest.mark.parametrize("name", list(ACCUMULATED))
def test_accumulated_step_agrees_with_flop_counter_mode_over_a_real_loop(name: str) -> None:
    """FlopCounterMode around a real accumulation loop of 3 micro-batches on CPU tensors:
    forward, (loss / 3).backward() each time. It counts matrix products and convolutions
    (2 x MACs), so the gradient adds and divisions add nothing: memflops' `2mac` step
    without the optimizer must equal it."""
    build, shape = ACCUMULATED[name]
    model = realrun.seeded(build)
    x = torch.randn(shape)
    with FlopCounterMode(display=False) as mode:
        for _ in range(3):
            (model(x).sum() / 3).backward()
    report = memflops.analyze(model, shape, mode="train", convention="2mac",
                              grad_accumulation=3)
    costs = report.totals.costs
    assert 2 * (costs.forward.macs + costs.loss.macs + costs.backward.macs) == (
        mode.get_total_flops())


def test_accumulated_module_rows_count_every_micro_batch() -> None:
    """Module rows: FLOPs and calls per optimizer step (M x), output shapes and saved
    bytes per micro-batch (as without accumulation). FrozenShared calls `shared` twice
    per forward: 2 x 3 = 6 calls per step."""
    model = realrun.seeded(nets.FrozenShared)
    one = memflops.analyze(model, (16, 32), mode="train").by_module()
    three = memflops.analyze(model, (16, 32), mode="train", grad_accumulation=3).by_module()
    assert three["shared"].calls == 6 and one["shared"].calls == 2
    for path, row in one.items():
        assert three[path].calls == 3 * row.calls
        assert three[path].forward.flops == 3 * row.forward.flops
        assert three[path].output_shape == row.output_shape
        assert three[path].activation_bytes == row.activation_bytes


def test_accumulated_step_time_and_throughput_use_the_effective_batch() -> None:
    """The step's time is M micro-batches' and the optimizer's; samples/s divides the
    effective batch (M x 8) by it. Every forward op of micro-batch 2 is micro-batch 1's,
    so the forward time is 4 x the forward of one micro-batch."""
    model = realrun.seeded(nets.cnn)
    one = memflops.analyze(model, (8, 3, 32, 32), mode="train", gpu="H100 SXM").timing
    four = memflops.analyze(model, (8, 3, 32, 32), mode="train", gpu="H100 SXM",
                            grad_accumulation=4).timing
    assert one is not None and four is not None
    assert four.estimate.phases.forward == pytest.approx(4 * one.estimate.phases.forward,
                                                         rel=1e-12)
    assert four.estimate.phases.optimizer == one.estimate.phases.optimizer
    assert four.samples == 32
    assert four.samples_per_s == 32 / four.estimate.step
    # Kernels without an optimizer: those of one step (k), + 2 per micro-batch (the
    # division by M and its backward), + 10 adds into .grad in each later one (cnn's 10
    # trainable tensors: weight and bias of 2 convs, 2 BNs and the head).
    k, k4 = (memflops.analyze(model, (8, 3, 32, 32), mode="train", gpu="H100 SXM",
                              optimizer=None, grad_accumulation=m).timing
             for m in (1, 4))
    assert k is not None and k4 is not None
    assert k4.estimate.kernels == 4 * (k.estimate.kernels + 2) + 3 * 10
