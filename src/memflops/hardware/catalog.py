"""The accelerator catalog shipped with the package (accelerators.csv), and accelerators
a user describes.

Each row keeps its source and notes. Peak FLOP/s are dense (no 2:4
sparsity): tensor/matrix units for tf32, fp16, bf16, fp8 and int8 (int8 in
operations per second), and the vector (non-tensor) fp32 rate in the fp32
column. `memory_gb` is the vendor's nominal capacity; memory comes in
binary sizes (an "80 GB" H100 has 80 x 2^30 bytes of HBM3), so it is read
as GiB. What a program can use is somewhat less: the CUDA context and the
allocator take their share (see `memflops.memory.fit`). Bandwidths are
decimal (1 GB/s = 10^9 bytes/s): `bandwidth_gbs` the device memory's,
`interconnect_gbs` the accelerator-to-accelerator link's (NVLink, Infinity
Fabric, ICI, RoCE: total per device as the vendor states it), `pcie_gbs` the
host link's (both directions).

`accelerator(text)` reads what `analyze(gpu=...)` and `--gpu` take: a
catalog name (exact, or a unique part of one: "H200"), a description
`custom:fp16=300T,bw=1.5T,mem=40G` (`parse_custom`), or a JSON file with the
same keys.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from memflops.errors import UsageError, did_you_mean
from memflops.files import load_json, read_text

GIB = 2**30
DTYPE_COLUMNS = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8")
"""Peak columns: `<dtype>_tflops` (int8: `int8_tops`)."""


@dataclass(frozen=True)
class Accelerator:
    name: str
    memory_bytes: int
    bandwidth_bytes_per_s: int
    peak_flops: tuple[tuple[str, int], ...]
    """(dtype, dense peak FLOP/s, int8: operations/s) for the dtypes the chip supports."""
    source: str
    notes: str
    interconnect: str = ""
    """The accelerator-to-accelerator link ("NVLink 4", "ICI"), "" for none."""
    interconnect_bytes_per_s: int | None = None
    pcie_bytes_per_s: int | None = None

    def peak(self, dtype: str) -> int | None:
        return dict(self.peak_flops).get(dtype)


def _number(text: str, scale: float) -> int | None:
    text = text.strip()
    return round(float(text) * scale) if text else None


def _column(dtype: str) -> str:
    return "int8_tops" if dtype == "int8" else f"{dtype}_tflops"


@cache
def accelerators() -> tuple[Accelerator, ...]:
    text = resources.files("memflops.hardware").joinpath("accelerators.csv").read_text("utf-8")
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        peaks = []
        for dtype in DTYPE_COLUMNS:
            value = _number(row.get(_column(dtype), "") or "", 1e12)
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
                interconnect=row.get("interconnect", "") or "",
                interconnect_bytes_per_s=_number(row.get("interconnect_gbs", "") or "", 1e9),
                pcie_bytes_per_s=_number(row.get("pcie_gbs", "") or "", 1e9),
            )
        )
    return tuple(rows)


def _normal(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def find_accelerator(name: str) -> Accelerator:
    """The catalog entry named `name`: an exact name with or without its vendor ("L4"), a
    unique part of one ("H200"), or words all found in one name only ("A100 SXM 80GB")."""
    wanted = _normal(name)
    catalog = accelerators()
    exact = [a for a in catalog if wanted in (_normal(a.name), _normal(_short(a.name)))]
    if exact:
        return exact[0]
    partial = [a for a in catalog if wanted and wanted in _normal(a.name)]
    if len(partial) == 1:
        return partial[0]
    if partial:
        names = "; ".join(a.name for a in partial)
        raise UsageError(f"accelerator {name!r} is ambiguous: it matches {names}")
    words = [a for a in catalog if wanted and all(_normal(w) in _normal(a.name)
                                                   for w in name.split())]
    if len(words) == 1:
        return words[0]
    raise UsageError(
        f"unknown accelerator {name!r}{_suggestion(name, catalog)}"
        f" (`memflops gpus` lists them; or describe one: custom:fp16=300T,bw=1.5T,mem=40G)"
    )


def _short(name: str) -> str:
    """The name without its vendor: "A100 80GB SXM" for "NVIDIA A100 80GB SXM"."""
    return name.split(" ", 1)[1] if " " in name else name


def _suggestion(name: str, catalog: tuple[Accelerator, ...]) -> str:
    """"; did you mean ...?" over the names with and without their vendor's prefix."""
    short = {_short(a.name): a.name for a in catalog}
    close = difflib.get_close_matches(name, [*short, *short.values()], n=3, cutoff=0.5)
    names = list(dict.fromkeys(short.get(c, c) for c in close))
    return f"; did you mean {', '.join(names)}?" if names else ""


_PREFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}
_CUSTOM_KEYS = ("name", "mem", "bw", *DTYPE_COLUMNS, "interconnect", "pcie")


def _rate(key: str, text: str) -> int:
    """`300T` -> 3e14 (decimal prefixes K, M, G, T, P; `/s`, `FLOPS`, `B/s` ignored)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([kmgtp]?)\s*(?:flops?|b)?(?:/s)?\s*",
                         str(text), re.IGNORECASE)
    if not match:
        raise UsageError(f"custom accelerator: {key}={text!r}: expected a rate such as 300T or "
                         f"1.5e12")
    value = float(match.group(1)) * _PREFIX[match.group(2).lower()]
    if not 0 < value < float("inf"):
        raise UsageError(f"custom accelerator: {key} must be positive and finite, got {text!r}")
    return round(value)


def _memory(text: str) -> int:
    """`40G` -> 40 GiB (a nominal capacity, read as the catalog reads it); `40GB` -> 40e9,
    `40GiB` -> 40 GiB; a bare number is bytes."""
    from memflops.memory.fit import parse_memory

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt])\s*", str(text), re.IGNORECASE)
    if match:
        scale: int = 1024 ** ("kmgt".index(match.group(2).lower()) + 1)
        return round(float(match.group(1)) * scale)
    return int(parse_memory(str(text)))


def describe(fields: dict[str, object], origin: str) -> Accelerator:
    """An accelerator from `key: value` fields (`parse_custom`'s keys)."""
    unknown = [k for k in fields if k not in _CUSTOM_KEYS]
    if unknown:
        raise UsageError(f"{origin}: unknown key {unknown[0]!r}"
                         f"{did_you_mean(unknown[0], _CUSTOM_KEYS)} "
                         f"(keys: {', '.join(_CUSTOM_KEYS)})")
    peaks = tuple((d, _rate(d, str(fields[d]))) for d in DTYPE_COLUMNS if d in fields)
    if "bw" not in fields or not peaks:
        raise UsageError(f"{origin}: needs bw= (memory bandwidth) and at least one peak "
                         f"({', '.join(DTYPE_COLUMNS)}), e.g. custom:fp16=300T,bw=1.5T,mem=40G")
    return Accelerator(
        name=str(fields.get("name", "custom")),
        memory_bytes=_memory(str(fields["mem"])) if "mem" in fields else 0,
        bandwidth_bytes_per_s=_rate("bw", str(fields["bw"])),
        peak_flops=peaks,
        source=f"user: {origin}",
        notes="",
        interconnect="custom" if "interconnect" in fields else "",
        interconnect_bytes_per_s=(_rate("interconnect", str(fields["interconnect"]))
                                  if "interconnect" in fields else None),
        pcie_bytes_per_s=_rate("pcie", str(fields["pcie"])) if "pcie" in fields else None,
    )


def parse_custom(text: str) -> Accelerator:
    """`custom:fp16=300T,bw=1.5T,mem=40G[,name=...]`: peaks (FLOP/s) per dtype, memory
    bandwidth (bytes/s), memory (`40G` = 40 GiB), decimal prefixes for rates."""
    body = text.split(":", 1)[1]
    fields: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in body.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not value.strip():
            raise UsageError(f"custom accelerator {text!r}: expected key=value, got {part!r}")
        fields[key.strip().lower()] = value.strip()
    return describe(fields, text)


def accelerator(text: str) -> Accelerator:
    """What `--gpu` names: a catalog entry, `custom:...` or a JSON file of the same keys."""
    stripped = text.strip()
    if stripped.lower().startswith("custom:"):
        return parse_custom(stripped)
    if stripped.lower().endswith(".json"):
        path = Path(stripped)
        fields = load_json(read_text(path, f"accelerator file {text}"), f"accelerator file {text}")
        if not isinstance(fields, dict):
            raise UsageError(f"accelerator file {text}: expected a JSON object of key: value")
        return describe({str(k).lower(): v for k, v in fields.items()}, text)
    return find_accelerator(stripped)


def memory_of(text: str, option: str) -> int:
    """The bytes a capacity option (`fit`, `budget`) names: a size ("24GiB", "80GB"), or
    the memory of the accelerator `text` names (as `accelerator` reads it)."""
    if text.strip()[:1].isdigit():
        from memflops.memory.fit import parse_memory

        return parse_memory(text)
    acc = accelerator(text)
    if acc.memory_bytes <= 0:
        raise UsageError(f"{option}: {text!r} states no memory size; add mem=, e.g. "
                         f"custom:fp16=300T,bw=1.5T,mem=40G")
    return acc.memory_bytes
