"""Sharding over the GPUs of a node (FSDP2, fsdp=8): the change is the analysis of the
step under that layout, rank 0's numbers."""

from __future__ import annotations

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
