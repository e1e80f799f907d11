"""Shared stand-ins of the report tests: a tiny analysed model, a hand-made train report,
and the golden-file check."""


from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import memflops
from memflops.capture.inputs import TensorSpec
from memflops.conventions import Convention
from memflops.flops.registry import OpCost
from memflops.hardware.catalog import Accelerator
from memflops.hardware.time_model import PhaseTimes, TimeConstants, TimeEstimate
from memflops.memory.allocator import AllocatorConfig
from memflops.memory.fit import Fit, Sweep, SweepPoint
from memflops.memory.reserved import ReservedMemory
from memflops.report.model import (
    Checkpointing,
    MemoryDetail,
    MemoryTimeline,
    MemoryTotals,
    ModuleRow,
    PhaseCosts,
    PhaseSpan,
    Report,
    TimelinePoint,
    Timing,
    Totals,
    UncountedOp,
)

GOLDEN = Path(__file__).parent / "golden"


FIXTURE = Path(__file__).parents[1] / "fixtures" / "tiny_model.py"


REGEN = os.environ.get("MEMFLOPS_REGEN_GOLDEN") == "1"


def _check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if REGEN:
        path.write_text(actual, encoding="utf-8")
        return
    expected = path.read_text(encoding="utf-8") if path.exists() else ""
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"tests/report/golden/{name}",
                tofile="rendered",
            )
        )
        pytest.fail(
            f"{name} differs from its golden file (regenerate with "
            f"MEMFLOPS_REGEN_GOLDEN=1 pytest tests/report):\n{diff}"
        )


@pytest.fixture(scope="module")
def tiny_report() -> Report:
    return memflops.analyze(f"{FIXTURE}:tiny", (2, 3, 4, 4), name="tiny")


PEAK = 5 * 2**30 + 2**29
BASELINE = (2_469_134, 512, 4_096, 8_000_000)
"""Bytes of params, buffers, inputs and optimizer state before the step."""


def _point(op: int, grads: int = 0, activations: int = 0, temporaries: int = 0) -> TimelinePoint:
    return TimelinePoint(op, (*BASELINE, 0, grads, activations, temporaries))


HANDMADE_TIMELINE = MemoryTimeline(
    kinds=("params", "buffers", "inputs", "optimizer", "kv_cache", "grads", "activations",
           "temporaries"),
    ops=8,
    points=(
        _point(-1),
        _point(0, activations=2**30, temporaries=2**29),
        _point(1, activations=2 * 2**30, temporaries=2**29),
        _point(2, activations=3 * 2**30, temporaries=2**20),
        _point(4, grads=2_000_000, activations=3 * 2**30,
               temporaries=PEAK - sum(BASELINE) - 2_000_000 - 3 * 2**30),
        _point(5, grads=2_000_000, activations=2**30, temporaries=2**29),
        _point(7, grads=2_000_000),
    ),
    peak_point=4,
    phases=(PhaseSpan("forward", 0, 2), PhaseSpan("loss", 3, 3), PhaseSpan("backward", 4, 6),
            PhaseSpan("optimizer", 7, 7)),
)
"""The memory over a step of `handmade_report`: its peak is `totals.memory.peak`."""


TEST_GPU = Accelerator(
    name="Test GPU", memory_bytes=80 * 2**30, bandwidth_bytes_per_s=10**12,
    peak_flops=(("fp32", 20 * 10**12), ("bf16", 200 * 10**12)), source="made up", notes="",
)
"""1,000 GB/s; fp32 vector 20 TFLOP/s (ridge 20 FLOPs/B), bf16 tensor 200 TFLOP/s (ridge 200)."""

HANDMADE_TIMING = Timing(
    accelerator=TEST_GPU,
    constants=TimeConstants(),
    estimate=TimeEstimate(
        phases=PhaseTimes(forward=0.004, loss=0.0001, backward=0.008, optimizer=0.0009),
        modules={"": (0.004, 0.008), "encoder": (0.003, 0.006), "encoder.0": (0.003, 0.006),
                 "head": (0.001, 0.002)},
        by_bound=(("compute", 0.008), ("memory", 0.004), ("overhead", 0.001)),
        kernels=40,
        model_flops=18_000_000,  # 2 x 9,000,000 MACs
        peak_dtype="bf16",
        peak_flops=200 * 10**12,
    ),
    samples=8,
)
"""The handmade step on `TEST_GPU`: 13 ms (4 + 0.1 + 8 + 0.9), 8 samples."""

HANDMADE_ALLOCATOR = ReservedMemory(
    config=AllocatorConfig(),
    reserved=6 * 2**30,
    allocated_peak=PEAK + 64 * 2**20,
    requested_peak=PEAK,
    allocated_at_reserved_peak=PEAK + 64 * 2**20,
    segments=12,
    by_pool=(("small", 2 * 2**20, 2**20, 1), ("large", 6 * 2**30 - 2 * 2**20, PEAK, 11)),
    workspaces=64 * 2**20,
    num_alloc_retries=0,
)
"""Reserved 6 GiB at the peak of 5.5 GiB + 64 MiB of cuBLAS workspaces: 448 MiB free."""


def _bytes(read: int, written: int) -> dict[str, int]:
    return {"bytes_read": read, "bytes_written": written}


@pytest.fixture
def handmade_report() -> Report:
    """A train-mode report of a two-layer model with activation checkpointing, timed on
    `TEST_GPU`, the caching allocator simulated; numbers chosen to be easy to read."""
    fwd = OpCost(macs=3_000_000, flops=6_100_000, **_bytes(3_000_000, 1_000_000))
    bwd = OpCost(macs=6_000_000, flops=12_300_000, **_bytes(6_000_000, 2_000_000))
    recompute = OpCost(macs=2_000_000, flops=4_000_000, **_bytes(2_000_000, 1_000_000))
    enc_fwd = OpCost(2_000_000, 4_000_000, **_bytes(2_000_000, 1_000_000))
    enc_bwd = OpCost(4_000_000, 8_000_000, **_bytes(4_000_000, 2_000_000))
    return Report(
        model="handmade",
        mode="train",
        convention=Convention.EXACT,
        precision="bfloat16",
        inputs=(("input[0]", TensorSpec((8, 128), torch.bfloat16)),),
        totals=Totals(
            params=1_234_567,
            trainable_params=1_000_000,
            buffers=256,
            costs=PhaseCosts(
                forward=fwd, loss=OpCost(flops=1_023), backward=bwd, optimizer=OpCost(flops=777),
                recompute=recompute,
            ),
            memory=MemoryTotals(
                params=2_469_134,
                buffers=512,
                grads=2_000_000,
                optimizer=8_000_000,
                activations=3 * 2**30,
                peak=PEAK,
                seed_estimate=4 * 2**30,
                reserved=HANDMADE_ALLOCATOR.reserved,
                device_total=HANDMADE_ALLOCATOR.device_total,
            ),
        ),
        modules=(
            ModuleRow("", "Net", 0, 1_234_567, fwd, bwd, ((8, 10), (8,)), 1, 4096),
            ModuleRow(
                "encoder", "Sequential", 1, 1_234_000, enc_fwd, enc_bwd, ((8, 512),), 1,
                recompute=recompute,
            ),
            ModuleRow(
                "encoder.0", "Linear", 2, 1_000_000, enc_fwd, enc_bwd, ((8, 512),), 1,
                recompute=recompute,
            ),
            ModuleRow("encoder.0.act", "GELU", 3, 0, OpCost(), OpCost(), ((8, 512),), 1),
            ModuleRow("head", "Head", 1, 567,
                      OpCost(1_000_000, 2_100_000, **_bytes(750_000, 250_000)),
                      OpCost(2_000_000, 4_300_000, **_bytes(1_500_000, 500_000)),
                      ((8, 10), (8,)), 1),
            ModuleRow("unused", "Dropout", 1, 0, OpCost(), OpCost(), (), 0),
        ),
        uncounted_ops=(
            UncountedOp("aten.gelu", 2, ("encoder.0.act",)),
            UncountedOp("aten.my_op", 1, ("head",), "rule failed: IndexError: tuple index"),
        ),
        warnings=(
            "3 op call(s) of 2 kind(s) have no FLOP rule and are not counted: aten.gelu, "
            "aten.my_op",
            "parameter head.weight is the same tensor as encoder.0.weight: counted once",
        ),
        shared_params=(("head.weight", "encoder.0.weight"),),
        optimizer="adam",
        memory_detail=MemoryDetail(
            peak_phase="backward",
            peak_op="aten.mm",
            peak_module="encoder.0",
            peak_by_kind=(("params", 2_469_134), ("grads", 0), ("activations", 3 * 2**30)),
            baseline=10_469_646,
            temporaries=2**20,
            inputs=4_096,
            feature_maps=2**30,
            top_saved_modules=(("encoder.0", 3 * 2**30),),
            allocator=HANDMADE_ALLOCATOR,
        ),
        sweep=Sweep(
            "batch",
            (SweepPoint(8, 5 * 2**30, 4 * 2**30, reserved=11 * 2**29, time_step_s=0.01,
                        samples_per_s=800.0),
             SweepPoint(16, 10 * 2**30, 8 * 2**30, reserved=11 * 2**30, time_step_s=0.019,
                        samples_per_s=16 / 0.019)),
            constant=0, per_item=5 * 2**27,
            saturated_at=8,  # 800/s is within 5% of 842.1/s
        ),
        fit=Fit("batch", 80 * 2**30, 128, 80 * 2**30, 80 * 2**30 + 5 * 2**27, 4,
                time_step_s=0.15, samples_per_s=128 / 0.15),
        checkpointing=Checkpointing(("encoder",), 4 * 2**30, 6 * 2**30),
        memory_timeline=HANDMADE_TIMELINE,
        timing=HANDMADE_TIMING,
    )


@pytest.fixture
def golden() -> Callable[[str, str], None]:
    """Compares a rendering with its golden file (`MEMFLOPS_REGEN_GOLDEN=1` rewrites it)."""
    return _check_golden
