"""docs/conventions.md is generated from the registry and must be current."""

from __future__ import annotations

from pathlib import Path

from memflops.conventions import Convention
from memflops.flops import rules
from memflops.flops.docs import COMMAND, FLOATING_POINT, render_conventions

DOC = Path(__file__).resolve().parents[2] / "docs" / "conventions.md"


def test_conventions_doc_is_fresh() -> None:
    current = DOC.read_text(encoding="utf-8") if DOC.is_file() else ""
    assert current == render_conventions(), (
        f"{DOC} is stale: regenerate it with `{COMMAND}` from the repository root"
    )


def test_render_lists_every_op_and_convention_once() -> None:
    text = render_conventions()
    assert text == render_conventions()  # deterministic
    for convention in Convention:
        assert convention.sentence in text
    assert FLOATING_POINT.startswith("A FLOP is a floating-point operation: ")
    assert text.count(FLOATING_POINT) == 1
    tables, composites = text.split("## Composite ops")
    for rule in rules():
        for op in rule.ops:
            assert tables.count(f"`{op}`") == 1, op
    assert "| `aten.native_batch_norm`" in tables and "`torch.matmul`" in composites
