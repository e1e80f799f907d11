"""Reserved memory of whole steps: the caching allocator run over captured steps in
steady state (`memflops.memory.reserved`), and how the report, the fit and the command
line carry it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from torch import nn

import memflops
from memflops.capture.inputs import normalize_inputs
from memflops.capture.step import StepConfig, capture
from memflops.cli import main
from memflops.memory.allocator import AllocatorConfig
from memflops.memory.fit import CUDA_CONTEXT_BYTES
from memflops.memory.reserved import (
    CUBLAS_WORKSPACE_BYTES,
    StepEvent,
    simulate_steady,
    step_program,
)

from . import nets

FIXTURE = str(Path(__file__).parents[1] / "fixtures" / "tiny_model.py") + ":tiny"

MiB = 2**20


def test_the_steady_step_reserves_what_the_first_step_left_in_the_cache() -> None:
    # A parameter p (12 MiB) alive before the step; the step allocates an activation a and
    # a gradient g (12 MiB each), frees a, then the optimizer runs; its 12 MiB state s is
    # created lazily by the first step, when the optimizer starts (event 3).
    resident = [(0, 12 * MiB), (9, 12 * MiB)]  # p, s
    step = [StepEvent(1, 12 * MiB, True), StepEvent(2, 12 * MiB, True), StepEvent(1, 0, False)]
    alloc = simulate_steady(resident, step, AllocatorConfig(), deferred=(frozenset({9}), 3))
    # First step: p, a, g: three 12 MiB segments; a freed; s takes a's cached block: 36 MiB.
    # Between steps g goes (zero_grad). Second step: a takes g's block, g needs a fourth
    # segment: 48 MiB, which every later step reuses. The second step is reported.
    assert alloc.stats.reserved_peak == 48 * MiB
    assert alloc.stats.allocated_peak == 48 * MiB


def test_workspaces_are_allocated_once_and_kept() -> None:
    alloc = simulate_steady([], [StepEvent(1, 1000, True)], AllocatorConfig(), workspaces=2)
    # Two 32 MiB workspaces: >= 10 MiB, a segment each of exactly 32 MiB; 1000 B: a 2 MiB
    # small segment (the first pass's block, freed between passes, reused by the second).
    assert alloc.stats.reserved_peak == 2 * CUBLAS_WORKSPACE_BYTES + 2 * MiB


@pytest.mark.parametrize("conf", [None, "expandable_segments:True"])
def test_a_whole_models_reserved_gap_is_the_free_bytes_of_its_segments(conf: str | None) -> None:
    model, shape = nets.cnn(), (8, 3, 32, 32)
    cap = capture(model, normalize_inputs(shape), StepConfig(train=True, optimizer="adam"))
    assert cap.storages is not None
    program = step_program(cap.storages, cap.records, cap.optimizer_state)
    config = AllocatorConfig.parse(conf)
    stats = program.run(config).stats
    report = memflops.analyze(model, shape, mode="train", allocator_conf=conf)
    sim = report.memory_detail.allocator if report.memory_detail else None
    assert sim is not None and report.totals.memory.reserved == stats.reserved_peak
    # The allocator holds at least what the step's tensors need, rounded: reserved >=
    # allocated >= the peak of the step's own bytes (plus the cuBLAS workspaces).
    assert sim.reserved >= sim.allocated_at_reserved_peak
    assert sim.allocated_peak >= report.totals.memory.peak + sim.workspaces
    # Stop the same run at the moment of the reserved peak: the gap is exactly the free
    # bytes of the segments then, segment by segment.
    at_peak = program.run(config, stop_at=stats.tight_event)
    segments = at_peak.segments()
    assert at_peak.stats.reserved == sim.reserved
    assert sum(s.size for s in segments) == sim.reserved
    assert sum(s.size - s.allocated for s in segments) == sim.fragmentation
    assert len(segments) == sim.segments
    for pool, reserved, allocated, count in sim.by_pool:
        mine = [s for s in segments if s.pool == pool]
        assert (sum(s.size for s in mine), sum(s.allocated for s in mine), len(mine)) == (
            reserved, allocated, count,
        )
    if conf:  # one growing segment per pool
        assert all(s.expandable for s in segments) and len(segments) <= 2
    assert report.totals.memory.device_total == sim.reserved + CUDA_CONTEXT_BYTES


def test_inference_counts_one_cublas_workspace_and_training_two() -> None:
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 8))
    inference = memflops.analyze(model, (4, 32))
    train = memflops.analyze(model, (4, 32), mode="train")
    assert inference.memory_detail and inference.memory_detail.allocator
    assert train.memory_detail and train.memory_detail.allocator
    assert inference.memory_detail.allocator.workspaces == CUBLAS_WORKSPACE_BYTES
    assert train.memory_detail.allocator.workspaces == 2 * CUBLAS_WORKSPACE_BYTES


def test_the_json_report_carries_reserved_and_device_total() -> None:
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 8))
    doc = memflops.analyze(
        model, (4, 32), mode="train", allocator_conf="expandable_segments:True",
        batch_sweep=[1, 2],
    ).to_dict()
    memory, sim = doc["totals"]["memory"], doc["memory_detail"]["allocator"]
    assert memory["reserved"] == sim["reserved"] > 0
    assert memory["device_total"] == sim["device_total"] == sim["reserved"] + CUDA_CONTEXT_BYTES
    assert sim["conf"] == "expandable_segments:True"
    assert sim["fragmentation"] == sim["reserved"] - sim["allocated_at_reserved_peak"]
    assert sum(p["reserved"] for p in sim["pools"].values()) == sim["reserved"]
    assert all(p["reserved"] >= p["peak"] for p in doc["batch_sweep"]["points"])


def test_fit_against_reserved_says_so_and_holds_the_device_total() -> None:
    model = nn.Sequential(nn.Linear(256, 1024), nn.ReLU(), nn.Linear(1024, 256))
    capacity = CUDA_CONTEXT_BYTES + 200 * MiB
    by_peak = memflops.analyze(model, (8, 256), mode="train", fit=capacity)
    by_reserved = memflops.analyze(
        model, (8, 256), mode="train", fit=capacity, fit_against="reserved"
    )
    assert by_peak.fit is not None and by_reserved.fit is not None
    assert (by_peak.fit.against, by_reserved.fit.against) == ("allocated", "reserved")
    # The device total (context, workspaces, segments) is more than the peak: fewer fit.
    assert 0 < by_reserved.fit.largest < by_peak.fit.largest
    assert by_reserved.fit.peak_at_largest <= capacity
    assert by_reserved.fit.peak_at_next is not None and by_reserved.fit.peak_at_next > capacity


def test_the_command_line_takes_allocator_options(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([
        "analyze", FIXTURE, "--input", "2x3x4x4", "--format", "json",
        "--allocator-conf", "expandable_segments:True",
    ])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["memory_detail"]["allocator"]["conf"] == "expandable_segments:True"
    assert main(["analyze", FIXTURE, "--input", "2x3x4x4",
                 "--allocator-conf", "expandable_segment:True"]) == 2
    assert "did you mean expandable_segments" in capsys.readouterr().err


def test_generation_is_simulated_too() -> None:
    from capture.test_generate import CachedMoe

    report = memflops.analyze(CachedMoe(), mode="generate", prompt_len=4, new_tokens=3)
    sim = report.memory_detail.allocator if report.memory_detail else None
    assert sim is not None and report.totals.memory.reserved == sim.reserved > 0
    assert report.totals.memory.device_total == sim.reserved + CUDA_CONTEXT_BYTES
