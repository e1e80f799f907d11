"""Formatting of counts and bytes, used only by reporters.

Binary units are powers of 1024 and say so (1 GiB = 2^30 bytes); decimal
units are powers of 1000 (1 GB = 10^9 bytes). FLOP counts use decimal
prefixes (1 GFLOP = 10^9 FLOPs).
"""

from __future__ import annotations

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_DECIMAL = ("", "K", "M", "G", "T", "P", "E")


def format_bytes(n: int, *, binary: bool = True) -> str:
    """Format a byte count: `format_bytes(3 * 2**30) == '3.00 GiB'`."""
    base = 1024 if binary else 1000
    units = _BINARY if binary else ("B", "kB", "MB", "GB", "TB", "PB")
    value = float(n)
    for unit in units:
        if abs(value) < base or unit == units[-1]:
            return f"{n} B" if unit == "B" else f"{value:.2f} {unit}"
        value /= base
    raise AssertionError("unreachable")


def format_count(n: int) -> str:
    """Format a count with a decimal prefix: `format_count(15_470_264_320) == '15.47 G'`."""
    value = float(n)
    for prefix in _DECIMAL:
        if abs(value) < 1000 or prefix == _DECIMAL[-1]:
            return f"{n}" if prefix == "" else f"{value:.2f} {prefix}"
        value /= 1000
    raise AssertionError("unreachable")


def format_int(n: int) -> str:
    """An exact integer with thousands separators: `format_int(138357544) == '138,357,544'`."""
    return f"{n:,}"


def format_rate(per_second: float) -> str:
    """A rate with three significant digits down to 0.01, thousands separated above:
    `format_rate(3398.4) == '3,398'`, `format_rate(7.17) == '7.17'`, `format_rate(0.53) ==
    '0.53'`."""
    if per_second >= 100:
        return f"{per_second:,.0f}"
    return f"{per_second:.1f}" if per_second >= 10 else f"{per_second:.2f}"


def format_seconds(seconds: float) -> str:
    """A duration with the unit that suits it: `format_seconds(0.0123) == '12.30 ms'`."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(seconds) >= scale or unit == "us":
            return f"{seconds / scale:.2f} {unit}"
    raise AssertionError("unreachable")
