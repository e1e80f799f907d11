"""The accelerator catalog shipped with the package (accelerators.csv).

Each row keeps its source and notes. Peak FLOP/s are dense (no 2:4
sparsity). `memory_gb` is the vendor's nominal capacity; memory comes in
binary sizes (an "80 GB" H100 has 80 x 2^30 bytes of HBM3), so it is read
as GiB. What a program can use is somewhat less: the CUDA context and the
allocator take their share (see `memflops.memory.fit`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

from memflops.errors import UsageError

GIB = 2**30
DTYPE_COLUMNS = ("fp32", "tf32", "fp16", "bf16", "fp8")


@dataclass(frozen=True)
class Accelerator:
    name: str
    memory_bytes: int
    bandwidth_bytes_per_s: int
    peak_flops: tuple[tuple[str, int], ...]
    """(dtype, dense peak FLOP/s) for the dtypes the chip supports."""
    source: str
    notes: str

    def peak(self, dtype: str) -> int | None:
        return dict(self.peak_flops).get(dtype)


def _number(text: str, scale: float) -> int | None:
    text = text.strip()
    return round(float(text) * scale) if text else None


@cache
def accelerators() -> tuple[Accelerator, ...]:
    text = resources.files("memflops.hardware").joinpath("accelerators.csv").read_text("utf-8")
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        peaks = []
        for dtype in DTYPE_COLUMNS:
            value = _number(row.get(f"{dtype}_tflops", ""), 1e12)
            if value is not None:
                peaks.append((dtype, value))
        rows.append(
            Accelerator(
                name=row["name"],
                memory_bytes=(_number(row["memory_gb"], 1) or 0) * GIB,
                bandwidth_bytes_per_s=_number(row["bandwidth_gbs"], 1e9) or 0,
                peak_flops=tuple(peaks),
                source=row.get("source", ""),
                notes=row.get("notes", ""),
            )
        )
    return tuple(rows)


def _normal(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def find_accelerator(name: str) -> Accelerator:
    """The catalog entry named `name`: an exact name, or a unique part of one ("H200")."""
    wanted = _normal(name)
    catalog = accelerators()
    exact = [a for a in catalog if _normal(a.name) == wanted]
    if exact:
        return exact[0]
    partial = [a for a in catalog if wanted and wanted in _normal(a.name)]
    if len(partial) == 1:
        return partial[0]
    if partial:
        names = "; ".join(a.name for a in partial)
        raise UsageError(f"accelerator {name!r} is ambiguous: it matches {names}")
    raise UsageError(
        f"unknown accelerator {name!r}; known: {'; '.join(a.name for a in catalog)}"
    )
