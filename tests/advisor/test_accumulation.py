"""Gradient accumulation as a change: the batch split into micro-batches, the effective
batch kept. Its numbers are those of `memflops.analyze(grad_accumulation=M)` on the
micro-batch, made by hand here; on real tensors, accumulating mean losses over the
micro-batches gives the full batch's gradients (for a model without BatchNorm); the
budget search keeps the fewest micro-batches that fit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import memflops
from memflops.advisor.advise import measure

from .nets import small_net


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))


def test_the_change_is_the_analysis_of_the_finest_split() -> None:
    """small_net has BatchNorm, so micro-batches keep 2 samples at least: 16 = 8 x 2."""
    net = small_net()
    advice = memflops.advise(net, (16, 3, 32, 32), mode="train", only=["grad-accumulation"])
    result = advice.change("grad-accumulation")
    by_hand = memflops.analyze(net, (2, 3, 32, 32), mode="train", grad_accumulation=8)
    assert result.measured == measure(by_hand)
    # BatchNorm sees each micro-batch alone: the function is not the whole batch's
    assert result.kind == "memory" and not result.preserves_function
    assert result.note.startswith("micro-batch 16 -> 2, 8 micro-batches per optimizer step: "
                                  "the same effective batch of 16; BatchNorm normalises")
    assert result.delta is not None and result.delta.peak < 0


def test_without_batchnorm_the_split_goes_to_one_sample() -> None:
    """8 = 8 micro-batches of 1; a user's accumulation is multiplied: 2 x 8 = 16."""
    net = mlp()
    advice = memflops.advise(net, (8, 32), mode="train", grad_accumulation=2,
                             only=["grad-accumulation"])
    result = advice.change("grad-accumulation")
    by_hand = memflops.analyze(net, (1, 32), mode="train", grad_accumulation=16)
    assert result.measured == measure(by_hand)
    assert result.note == ("micro-batch 8 -> 1, 16 micro-batches per optimizer step: the "
                           "same effective batch of 16")
    assert result.preserves_function  # no BatchNorm: the mean loss's gradients are kept


def test_cross_entropy_targets_follow_the_micro_batch() -> None:
    net = mlp()
    advice = memflops.advise(net, (8, 32), mode="train", loss="cross_entropy",
                             targets=(8,), only=["grad-accumulation"])
    by_hand = memflops.analyze(net, (1, 32), mode="train", loss="cross_entropy",
                               targets=(1,), grad_accumulation=8)
    assert advice.change("grad-accumulation").measured == measure(by_hand)


def test_accumulated_mean_losses_give_the_full_batch_gradients() -> None:
    """What the change keeps, on real tensors: the mean loss of each of 4 micro-batches,
    divided by 4 and accumulated, is the full batch's mean loss, so its gradients are."""
    net = mlp()
    x, y = torch.randn(8, 32), torch.randint(0, 10, (8,))
    F.cross_entropy(net(x), y).backward()
    full = [p.grad.clone() for p in net.parameters() if p.grad is not None]
    net.zero_grad(set_to_none=True)
    for xs, ys in zip(x.chunk(4), y.chunk(4), strict=True):
        (F.cross_entropy(net(xs), ys) / 4).backward()
    for expected, p in zip(full, net.parameters(), strict=True):
        torch.testing.assert_close(p.grad, expected)


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"inputs": (16, 32)}, "inference has no gradients to accumulate"),
        ({"inputs": (3, 32), "mode": "train"},
         "a batch of 3 does not split into equal micro-batches"),
    ],
)
def test_not_applicable(arguments: dict[str, object], reason: str) -> None:
    inputs = arguments.pop("inputs")
    advice = memflops.advise(mlp(), inputs, only=["grad-accumulation"], **arguments)
    result = advice.change("grad-accumulation")
    assert not result.applies and result.reason == reason


def test_batchnorm_keeps_two_samples_per_micro_batch() -> None:
    advice = memflops.advise(small_net(), (2, 3, 16, 16), mode="train",
                             only=["grad-accumulation"])
    assert advice.change("grad-accumulation").reason == (
        "a batch of 2 does not split into equal micro-batches of 2 samples or more (BatchNorm)")


def test_the_budget_search_keeps_the_fewest_micro_batches_that_fit() -> None:
    """small_net at 16x3x32x32 (Adam): peaks by micro-batches, from the analyses
    by hand below: 2 -> 3.30 MB, 4 -> 1.68 MB, 8 -> 0.87 MB. A 2,000,000 B budget needs 4."""
    net = small_net()
    peaks = {m: memflops.analyze(net, (16 // m, 3, 32, 32), mode="train",
                                 grad_accumulation=m).totals.memory.peak for m in (2, 4, 8)}
    assert peaks[2] > 2_000_000 >= peaks[4] > peaks[8]
    advice = memflops.advise(net, (16, 3, 32, 32), mode="train", only=["grad-accumulation"],
                             budget=2_000_000)
    fit = advice.fit
    assert fit is not None and fit.fits
    assert (fit.changes, fit.micro_batches) == (("grad-accumulation",), 4)
    assert fit.measured is not None and fit.measured.peak == peaks[4]
    assert fit.note == "4 micro-batches per optimizer step are enough"
    assert advice.to_dict()["fit"]["micro_batches"] == 4


def test_with_a_gpu_the_change_costs_time() -> None:
    """8 micro-batches of 2 run 8 x the kernels of one: on the roofline with 4 us per
    kernel the step takes longer, and the change's time is that of the analysis by hand."""
    net = small_net()
    advice = memflops.advise(net, (16, 3, 32, 32), mode="train", gpu="H100 SXM",
                             only=["grad-accumulation"])
    result = advice.change("grad-accumulation")
    by_hand = memflops.analyze(net, (2, 3, 32, 32), mode="train", gpu="H100 SXM",
                               grad_accumulation=8)
    assert by_hand.timing is not None
    assert result.measured is not None and result.delta is not None
    assert result.measured.time_step == by_hand.timing.estimate.step
    assert result.delta.time_step is not None and result.delta.time_step > 0
