"""Sharding over the GPUs of a node (FSDP2, fsdp=8): the change is the analysis of the
step under that layout, rank 0's numbers."""

from __future__ import annotations

import torch

import memflops
from memflops.advisor.advise import measure

from .nets import small_net

INPUT = (4, 3, 16, 16)


def test_fsdp_8_is_the_step_sharded_eight_ways() -> None:
    net = small_net()
    advice = memflops.advise(net, INPUT, mode="train", optimizer="adam", only=["fsdp-8"])
    result = advice.change("fsdp-8")
    sharded = memflops.analyze(net, INPUT, mode="train", optimizer="adam", parallel="fsdp=8")
    assert result.measured == measure(sharded)
    assert sharded.parallel is not None and sharded.parallel.world_size == 8
    assert result.preserves_function and result.delta is not None
    # Adam's two fp32 moments of every parameter, split eight ways (FSDP2 pads each
    # parameter's dim-0 to a multiple of 8): rank 0 holds an eighth of the baseline's
    # optimizer state plus that padding, well under a quarter of it.
    base = memflops.analyze(net, INPUT, mode="train", optimizer="adam")
    assert sharded.totals.memory.optimizer < base.totals.memory.optimizer // 4


def test_not_for_inference_nor_a_step_already_laid_out() -> None:
    inference = memflops.advise(small_net(), INPUT, mode="inference", only=["fsdp-8"])
    assert "inference keeps no gradients" in inference.change("fsdp-8").reason
    laid_out = memflops.advise(small_net(), INPUT, mode="train", parallel="fsdp=2",
                               only=["fsdp-8"])
    assert "already laid out as fsdp=2" in laid_out.change("fsdp-8").reason


def test_tried_only_when_asked_for() -> None:
    from memflops.advisor.changes import select

    assert "fsdp-8" not in [c.name for c in select()]
    assert [c.name for c in select(only=["fsdp-8", "bf16"])] == ["bf16", "fsdp-8"]


def test_advice_under_a_layout_says_whose_numbers_they_are() -> None:
    from memflops.advisor.table import render_advice

    advice = memflops.advise(small_net(), INPUT, mode="train", parallel="fsdp=2",
                             only=["bf16"])
    report = memflops.analyze(small_net(), INPUT, mode="train", parallel="fsdp=2")
    assert report.parallel is not None
    assert (advice.layout, advice.layout_rank) == (report.parallel.strategy,
                                                   report.parallel.rank) == ("fsdp=2", 0)
    assert advice.baseline == measure(report)
    header = " ".join(render_advice(advice).split("\n\n")[0].split())  # wrapped at 100
    assert "layout fsdp=2: every number is rank 0's" in header
    assert advice.to_dict()["layout"] == "fsdp=2" and advice.to_dict()["layout_rank"] == 0
    one_gpu = memflops.advise(small_net(), INPUT, mode="train", only=["bf16"])
    assert one_gpu.layout is None and "layout" not in render_advice(one_gpu).split("\n\n")[0]


def _mlp() -> torch.nn.Module:
    # four Linear(512, 512): 4 x (512 x 512 + 512) = 1,050,624 fp32 parameters, 4.2 MB;
    # with Adam, parameters + gradients + two moments are 16.8 MB of an ~21 MB peak
    torch.manual_seed(0)
    return torch.nn.Sequential(*[torch.nn.Linear(512, 512) for _ in range(4)])


def test_fewest_gpus_is_each_layouts_fewest_and_the_least_of_them() -> None:
    budget = 12_000_000
    net = _mlp()
    advice = memflops.advise(net, (2, 512), mode="train", optimizer="adam", budget=budget,
                             only=["fewest-gpus"])
    result = advice.change("fewest-gpus")

    def peak(layout: str | None) -> int:
        return memflops.analyze(net, (2, 512), mode="train", optimizer="adam",
                                parallel=layout).totals.memory.peak

    # the independent answer, each layout analysed by hand: ZeRO-2 and FSDP both fit at 4
    # GPUs and not at 2; plain DDP never shards and ZeRO-1 keeps the whole parameters and
    # gradients, so neither fits even at 64
    assert peak(None) > budget
    for layout in ("ddp=4,zero=2", "fsdp=4"):
        assert peak(layout) <= budget < peak(layout.replace("=4", "=2", 1))
    assert peak("ddp=64") > budget and peak("ddp=64,zero=1") > budget
    # the tie at 4 goes to ZeRO-2, which communicates less than full sharding
    assert result.applies and result.measured == measure(
        memflops.analyze(net, (2, 512), mode="train", optimizer="adam",
                         parallel="ddp=4,zero=2"))
    assert result.note.startswith("4 GPU(s) with ddp=4,zero=2, the fewest of: ")
    for answer in ("ddp: none up to 64", "zero=1: none up to 64", "zero=2: 4 (ddp=4,zero=2)",
                   "fsdp: 4 (fsdp=4)", "fsdp,tp=2 and fsdp,tp=4 and fsdp,tp=8: Sequential "
                   "has no built-in tensor-parallel plan"):
        assert answer in result.note


def test_fewest_gpus_needs_a_budget_that_one_gpu_does_not_meet() -> None:
    net = _mlp()
    without = memflops.advise(net, (2, 512), mode="train", only=["fewest-gpus"])
    assert "it needs a budget" in without.change("fewest-gpus").reason
    roomy = memflops.advise(net, (2, 512), mode="train", budget="1GiB", only=["fewest-gpus"])
    assert roomy.change("fewest-gpus").reason == "the step already fits the budget on one GPU"
    tight = memflops.advise(net, (2, 512), mode="train", optimizer="adam", budget=1_000_000,
                            only=["fewest-gpus"])
    assert tight.change("fewest-gpus").reason.startswith(
        "no layout fits the budget on up to 64 GPUs (ddp: none up to 64;")
