"""Wording and number formats shared by the Markdown, CSV and HTML renderers.

Every function reads fields of the typed `Report` and formats them; none
derives a number. The report's dataclasses are imported for type checking
only: `report/model.py` renders itself in notebooks through `report/html.py`,
so a run-time import back would be a cycle.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from memflops.tensor_spec import dtype_name
from memflops.units import format_bytes, format_count, format_int

if TYPE_CHECKING:
    from memflops.flops.registry import OpCost
    from memflops.report.model import ModuleRow, Report

ROOT_LABEL = "(root)"
COUNT_UNITS = "K = 10^3, M = 10^6, G = 10^9, T = 10^12"
BYTE_UNITS = "1 KiB = 2^10 B, 1 MiB = 2^20 B, 1 GiB = 2^30 B"


def is_train(report: Report) -> bool:
    return report.mode == "train"


def shape_text(shape: Sequence[int]) -> str:
    """`8x3x224x224`; `scalar` for a 0-d tensor."""
    return "x".join(str(d) for d in shape) or "scalar"


def output_shape_text(row: ModuleRow) -> str:
    """`8x10`; `8x10, 8` for several output tensors; `-` for none."""
    if row.calls == 0:
        return "(not called)"
    if not row.output_shape:
        return "-"
    return ", ".join(shape_text(s) for s in row.output_shape)


def inputs_text(report: Report) -> str:
    """`input[0]=8x3x224x224:float32, ...` or `none`."""
    listed = ", ".join(
        f"{name}={shape_text(spec.shape)}:{dtype_name(spec.dtype)}" for name, spec in report.inputs
    )
    return listed or "none"


def header_facts(report: Report) -> list[str]:
    """Mode, optimizer (train), precision, convention, inputs."""
    facts = [f"mode {report.mode}"]
    if is_train(report):
        facts.append(f"optimizer {report.optimizer or 'none'}")
    facts += [
        f"precision {report.precision}",
        f"convention {report.convention.value}",
        f"inputs {inputs_text(report)}",
    ]
    return facts


def module_label(row: ModuleRow) -> str:
    return row.path or ROOT_LABEL


def exact_count(n: int) -> str:
    """`9,472 (9.47 K)`: the exact count, then its decimal-prefixed form when shorter."""
    short = format_count(n)
    return format_int(n) if short == str(n) else f"{format_int(n)} ({short})"


def exact_bytes(n: int) -> str:
    """`2.35 MiB (2,469,134 B)`; under 1 KiB just `512 B`."""
    human, exact = format_bytes(n), f"{format_int(n)} B"
    return exact if human == f"{n} B" else f"{human} ({exact})"


def phases(report: Report) -> Iterator[tuple[str, OpCost, bool]]:
    """Label, cost and whether its MACs are stated (those the schema's `totals.macs` has):
    forward, then in training loss, backward, optimizer step and the whole step (as the
    table renderer; generation's phases are in its own section)."""
    costs = report.totals.costs
    yield "forward", costs.forward, True
    if not is_train(report):
        return
    if costs.loss.under(report.convention):
        yield "loss", costs.loss, False
    yield "backward", costs.backward, True
    if costs.optimizer.under(report.convention):
        yield "optimizer step", costs.optimizer, False
    yield "whole step", costs.step, True


def memory_rows(report: Report) -> list[tuple[str, int]]:
    """(label, bytes) of every memory figure the report has, zeros left out."""
    memory, detail = report.totals.memory, report.memory_detail
    rows = [
        ("params", memory.params),
        ("buffers", memory.buffers),
        ("gradients", memory.grads),
        ("optimizer state", memory.optimizer),
        ("activations (saved for backward)", memory.activations),
        ("temporaries (most live at once)", detail.temporaries if detail is not None else 0),
        ("KV cache", memory.kv_cache),
        ("baseline (live before the step)", detail.baseline if detail is not None else 0),
        ("peak", memory.peak),
        ("seed estimate (article's formula)", memory.seed_estimate),
    ]
    return [(label, value) for label, value in rows if value]


def peak_where(report: Report) -> str | None:
    """`backward phase, op aten.add, module layer4.0.conv1`, or None without a peak."""
    detail = report.memory_detail
    if detail is None or not report.totals.memory.peak:
        return None
    module = detail.peak_module or ROOT_LABEL
    return f"{detail.peak_phase} phase, op {detail.peak_op}, module {module}"


def peak_by_kind(report: Report) -> list[tuple[str, int]]:
    """(kind, bytes) live at the peak, zeros left out."""
    detail = report.memory_detail
    if detail is None:
        return []
    return [(kind, n) for kind, n in detail.peak_by_kind if n]


def kind_label(kind: str) -> str:
    """A memory kind as a reader says it: `kv_cache` -> `KV cache`."""
    return {"kv_cache": "KV cache", "grads": "gradients", "optimizer": "optimizer state"}.get(
        kind, kind
    )
