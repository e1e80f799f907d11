"""`memflops.advise`: each change of the step's options measured as an independent
`memflops.analyze` of that step, the batch's terms, the budget, the model left alone, and
bad input answered in one line."""

from __future__ import annotations

import copy
import json
import threading

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import memflops
from memflops.advisor.advise import measure
from memflops.errors import AnalysisError, UsageError
from memflops.memory.fit import fit_line

from .nets import small_net

INPUT = (4, 3, 16, 16)


def test_changes_of_the_step_are_analyses_of_that_step() -> None:
    net = small_net()
    advice = memflops.advise(net, INPUT, mode="train",
                             only=["batch-halved", "bf16", "amp-bf16", "adam8bit"])

    def analysed(inputs: tuple[int, ...] = INPUT, **options: object) -> object:
        return measure(memflops.analyze(net, inputs, mode="train", **options))  # type: ignore[arg-type]

    assert advice.baseline == analysed()
    assert advice.change("batch-halved").measured == analysed((2, 3, 16, 16))
    assert advice.change("bf16").measured == analysed(dtype="bf16")
    assert advice.change("amp-bf16").measured == analysed(autocast="bf16")
    assert advice.change("adam8bit").measured == analysed(optimizer="adam8bit")
    for result in advice.changes:
        assert result.delta is not None and result.measured is not None
        assert result.delta.peak == result.measured.peak - advice.baseline.peak
        assert result.measured.time_step is None  # no accelerator given: not timed


def test_the_batch_terms_and_the_largest_batch_fitting_the_budget() -> None:
    net = small_net()
    budget = 2**20
    advice = memflops.advise(net, INPUT, mode="train", only=["batch-halved"], budget=budget)
    terms = advice.change("batch-halved").batch_terms
    half = advice.change("batch-halved").measured
    assert terms is not None and half is not None
    # The line through (2, peak at batch 2) and (4, peak at batch 4).
    assert (terms.constant, terms.per_sample) == fit_line([(2, half.peak),
                                                           (4, advice.baseline.peak)])
    fitted = memflops.analyze(net, INPUT, mode="train", fit=budget).fit
    assert fitted is not None and terms.largest_fitting == fitted.largest > 4
    assert terms.budget == budget
    assert advice.fit is not None and advice.fit.fits and advice.fit.changes == ()


def test_a_budget_nothing_meets_shows_the_closest_combination() -> None:
    advice = memflops.advise(small_net(), INPUT, mode="train", budget=1000,
                             only=["bf16", "sgd-momentum", "checkpoint-blocks"])
    fit = advice.fit
    assert fit is not None and not fit.fits and fit.note.startswith("nothing fits")
    assert fit.measured is not None and fit.measured.peak > 1000
    assert fit.changes and fit.measured.peak == min(peak for _, peak in fit.tried)


def test_the_model_is_left_as_it_was() -> None:
    net = small_net().eval()
    state = copy.deepcopy(net.state_dict())
    modules = [(n, type(m)) for n, m in net.named_modules()]
    memflops.advise(net, INPUT, mode="train")
    assert [(n, type(m)) for n, m in net.named_modules()] == modules
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert not net.training
    assert not any("forward" in vars(m) for m in net.modules())
    assert not any(getattr(m, "inplace", False) for m in net.modules())


def test_the_advice_serialises_to_its_schema() -> None:
    advice = memflops.advise(small_net(), INPUT, mode="train", budget="64MiB",
                             only=["bf16", "conv-5x5-as-3x3", "bn-folded"])
    document = json.loads(json.dumps(advice.to_dict()))
    assert document["schema"] == "memflops.advice/1"
    assert document["baseline"]["peak"] == advice.baseline.peak
    assert document["budget"] == 64 * 2**20
    names = [c["name"] for c in document["changes"]]
    assert names == ["bf16", "conv-5x5-as-3x3", "bn-folded"]  # measured ranked, then n/a
    bn = document["changes"][2]
    assert bn["applies"] is False and bn["peak"] is None and bn["reason"]
    assert document["fit"]["fits"] is True


class Locked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.lock = threading.Lock()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(x))


def test_a_model_that_cannot_be_copied_is_one_clear_error() -> None:
    with pytest.raises(AnalysisError, match=r"advise changes a copy of the model, and "
                       r"copy.deepcopy\(Locked\) raised TypeError: cannot pickle"):
        memflops.advise(Locked(), (2, 4), mode="train", only=["inplace-activations"])
    # Changes of the step's options need no copy.
    advice = memflops.advise(Locked(), (2, 4), mode="train", only=["sgd-momentum"])
    assert advice.change("sgd-momentum").measured is not None


class ReadsItsConvWeight(nn.Module):
    """Its forward reads `self.conv.weight`, which a rewritten conv no longer has."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.conv2d(x, self.conv.weight, self.conv.bias, padding=1))


def test_a_change_that_breaks_the_forward_is_named_and_the_others_go_on() -> None:
    advice = memflops.advise(ReadsItsConvWeight(), INPUT, mode="train",
                             only=["conv-depthwise-separable", "bn-removed"])
    broken = advice.change("conv-depthwise-separable")
    assert broken.failed and broken.measured is None
    assert broken.reason.startswith("conv-depthwise-separable: the changed model could not be "
                                    "analysed")
    assert "weight" in broken.reason
    assert broken.modules == ("conv",)
    assert advice.change("bn-removed").measured is not None


def test_bad_requests_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="mode generate is not advised"):
        memflops.advise(small_net(), INPUT, mode="generate")
    with pytest.raises(UsageError, match="did you mean bn-folded"):
        memflops.advise(small_net(), INPUT, skip=["bn-fold"])
    with pytest.raises(UsageError, match="bad memory unit"):
        memflops.advise(small_net(), INPUT, budget="3 parsecs")
    with pytest.raises(UsageError, match="budget: expected a positive byte count"):
        memflops.advise(small_net(), INPUT, budget=0)


class AtMostBatch8(nn.Module):
    """Its forward refuses batches over 8 (as a model with a fixed-size buffer would)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > 8:
            raise ValueError(f"batch {x.shape[0]} > 8")
        return self.linear(x)


def test_when_only_the_batch_search_fails_the_advice_goes_on_and_says_why() -> None:
    advice = memflops.advise(AtMostBatch8(), (4, 8), mode="train", budget="1GiB",
                             only=["batch-halved", "sgd-momentum"])
    assert advice.baseline == measure(memflops.analyze(AtMostBatch8(), (4, 8), mode="train"))
    assert advice.warnings[-1].startswith("the largest batch fitting the budget was not found")
    assert "> 8" in advice.warnings[-1]
    terms = advice.change("batch-halved").batch_terms
    assert terms is not None and terms.largest_fitting is None
    assert advice.change("sgd-momentum").measured is not None


def test_the_batch_search_looks_no_further_than_64_times_the_batch() -> None:
    # Linear(256, 256) at batch 128 peaks far under 64 MiB (its parameters, gradients and
    # Adam state are 4 * 65,792 * 4 B = 1 MiB); the search stops at 64 * 2 = 128 instead of
    # analysing batches up to 2**20.
    net = nn.Linear(256, 256)
    advice = memflops.advise(net, (2, 256), mode="train", budget="64MiB",
                             only=["batch-halved"])
    terms = advice.change("batch-halved").batch_terms
    assert terms is not None and terms.largest_fitting == 64 * 2


def test_a_batch_sweep_gives_the_batch_terms_and_progress_names_each_analysis() -> None:
    net = small_net()
    calls: list[tuple[str, int, int | None]] = []
    advice = memflops.advise(net, INPUT, mode="train", batch_sweep=[1, 2, 8],
                             only=["batch-halved", "bf16"],
                             progress=lambda task, done, total: calls.append((task, done, total)))
    sweep = memflops.analyze(net, INPUT, mode="train", batch_sweep=[1, 2, 8]).sweep
    terms = advice.change("batch-halved").batch_terms
    assert sweep is not None and terms is not None
    assert (terms.constant, terms.per_sample) == (sweep.constant, sweep.per_item)
    # The baseline's sweep reports its own three analyses; then the baseline and each change.
    assert calls[-3:] == [("advice", 1, 3), ("advice", 2, 3), ("advice", 3, 3)]


def test_with_an_accelerator_each_step_is_timed() -> None:
    net = small_net()
    advice = memflops.advise(net, INPUT, mode="train", gpu="A100 80GB SXM", only=["bf16"])
    timing = memflops.analyze(net, INPUT, mode="train", gpu="A100 80GB SXM",
                              dtype="bf16").timing
    bf16 = advice.change("bf16")
    assert timing is not None and bf16.measured is not None and bf16.delta is not None
    assert bf16.measured.time_step == timing.estimate.step
    assert advice.baseline.time_step is not None
    assert bf16.delta.time_step == bf16.measured.time_step - advice.baseline.time_step
    assert advice.accelerator == "NVIDIA A100 80GB SXM" == advice.to_dict()["accelerator"]
