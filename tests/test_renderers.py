"""Golden-file tests of the table and JSON renderers.

Each rendering is compared with a file in tests/golden/; a mismatch fails
with a unified diff. After an intended change of the output, regenerate the
files explicitly and review the diff before committing:

    MEMFLOPS_REGEN_GOLDEN=1 pytest tests/test_renderers.py

Two reports are rendered: the tiny model of tests/fixtures/tiny_model.py
analysed in inference mode (only a biased convolution and a biased linear
layer run, so its counts do not move when rules for other ops are added),
and a hand-built train-mode report that exercises every part of the table
(backward, loss and optimizer FLOPs, memory fields and the peak, a batch
sweep and a fit, frozen parameters, a module that returns two tensors, a
module never called, uncounted ops, warnings).
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import memflops
from memflops.capture.inputs import TensorSpec
from memflops.conventions import Convention
from memflops.flops.registry import OpCost
from memflops.memory.fit import Fit, Sweep, SweepPoint
from memflops.report.json import render_json
from memflops.report.model import (
    MemoryDetail,
    MemoryTotals,
    ModuleRow,
    PhaseCosts,
    Report,
    Totals,
    UncountedOp,
)
from memflops.report.table import render_table

GOLDEN = Path(__file__).parent / "golden"
FIXTURE = Path(__file__).parent / "fixtures" / "tiny_model.py"
REGEN = os.environ.get("MEMFLOPS_REGEN_GOLDEN") == "1"
WIDTH = 120


def check_golden(name: str, actual: str) -> None:
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
                fromfile=f"tests/golden/{name}",
                tofile="rendered",
            )
        )
        pytest.fail(
            f"{name} differs from its golden file (regenerate with "
            f"MEMFLOPS_REGEN_GOLDEN=1 pytest tests/test_renderers.py):\n{diff}"
        )


@pytest.fixture(scope="module")
def tiny_report() -> Report:
    return memflops.analyze(f"{FIXTURE}:tiny", (2, 3, 4, 4), name="tiny")


def handmade_report() -> Report:
    """A train-mode report of a two-layer model, numbers chosen to be easy to read."""
    fwd = OpCost(macs=3_000_000, flops=6_100_000)
    bwd = OpCost(macs=6_000_000, flops=12_300_000)
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
                forward=fwd, loss=OpCost(flops=1_023), backward=bwd, optimizer=OpCost(flops=777)
            ),
            memory=MemoryTotals(
                params=2_469_134,
                buffers=512,
                grads=2_000_000,
                optimizer=8_000_000,
                activations=3 * 2**30,
                peak=5 * 2**30 + 2**29,
                seed_estimate=4 * 2**30,
            ),
        ),
        modules=(
            ModuleRow("", "Net", 0, 1_234_567, fwd, bwd, ((8, 10), (8,)), 1, 4096),
            ModuleRow(
                "encoder", "Sequential", 1, 1_234_000, OpCost(2_000_000, 4_000_000),
                OpCost(4_000_000, 8_000_000), ((8, 512),), 1,
            ),
            ModuleRow(
                "encoder.0", "Linear", 2, 1_000_000, OpCost(2_000_000, 4_000_000),
                OpCost(4_000_000, 8_000_000), ((8, 512),), 1,
            ),
            ModuleRow("encoder.0.act", "GELU", 3, 0, OpCost(), OpCost(), ((8, 512),), 1),
            ModuleRow("head", "Head", 1, 567, OpCost(1_000_000, 2_100_000),
                      OpCost(2_000_000, 4_300_000), ((8, 10), (8,)), 1),
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
        ),
        sweep=Sweep(
            "batch", (SweepPoint(8, 5 * 2**30, 4 * 2**30), SweepPoint(16, 10 * 2**30, 8 * 2**30)),
            constant=0, per_item=5 * 2**27,
        ),
        fit=Fit("batch", 80 * 2**30, 128, 80 * 2**30, 80 * 2**30 + 5 * 2**27, 4),
    )


def test_tiny_table(tiny_report: Report) -> None:
    check_golden("tiny.table.txt", render_table(tiny_report, width=WIDTH))


def test_tiny_json(tiny_report: Report) -> None:
    rendered = render_json(tiny_report)
    assert json.loads(rendered) == tiny_report.to_dict()
    check_golden("tiny.json", rendered)


def test_handmade_table_train() -> None:
    check_golden("handmade.table.txt", render_table(handmade_report(), depth=2, width=WIDTH))


def test_handmade_json() -> None:
    check_golden("handmade.json", render_json(handmade_report()))


def test_depth_limits_the_tree() -> None:
    report = handmade_report()
    deep = render_table(report, depth=3, width=WIDTH)
    shallow = render_table(report, depth=0, width=WIDTH)
    assert "encoder.0.act" in deep
    assert "encoder" not in shallow.split("Totals")[0]  # only the root row above the footer


def test_natural_width_does_not_wrap() -> None:
    """Without a width the text is as wide as the module tree needs: no cell is cut."""
    report = handmade_report()
    assert "…" not in render_table(report, depth=3)
    assert "…" in render_table(report, depth=3, width=60)  # the same tree squeezed


def test_color_only_when_asked(tiny_report: Report) -> None:
    assert "\x1b[" not in render_table(tiny_report, width=WIDTH)
    assert "\x1b[" in render_table(tiny_report, width=WIDTH, color=True)


def test_output_shapes_of_scalars_and_no_output() -> None:
    """A 0-d output is `scalar`; several outputs are listed; no output is `-`."""
    report = handmade_report()
    rows = (
        ModuleRow("total", "Sum", 1, 0, OpCost(), OpCost(), ((),), 1),
        ModuleRow("pair", "Split", 1, 0, OpCost(), OpCost(), ((), (3,)), 1),
        ModuleRow("sink", "Log", 1, 0, OpCost(), OpCost(), (), 1),
    )
    text = render_table(replace(report, modules=report.modules + rows), width=WIDTH)
    row = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ")}
    assert row["total"].endswith("0 B   scalar")
    assert row["pair"].endswith("0 B   scalar, 3")
    assert row["sink"].endswith("0 B   -")


def test_table_reads_the_typed_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table formats the dataclasses, not the schema dict (so mypy checks every field)."""
    expected = render_table(handmade_report(), width=WIDTH)

    def no_dict(self: Report) -> None:
        raise AssertionError("render_table called Report.to_dict()")

    monkeypatch.setattr(Report, "to_dict", no_dict)
    assert render_table(handmade_report(), width=WIDTH) == expected


def test_schema_imports_no_report_model_at_run_time() -> None:
    """report/model.py imports report/schema.py; an import back would be a cycle."""
    code = (
        "import sys, memflops.report.schema\n"
        "assert 'memflops.report.model' not in sys.modules, 'schema imported model'\n"
        "import memflops.report.model\n"
    )
    src = str(Path(memflops.__file__).parents[1])  # the copy of memflops under test
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": src})
