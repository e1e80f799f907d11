"""Batch sweeps and "what fits": peak memory as a function of batch or sequence.

Peak memory of a step is close to affine in the batch size: a constant
(parameters, gradients, optimizer state, workspaces) plus a per-sample part
(activations) — the article's point that memory is not proportional to the
batch. `sweep` fits that line by exact least squares over the analysed
points. `largest_fitting` predicts the largest size from two analyses, then
confirms with analyses that the answer fits and the next size does not.

Optional allocator overhead, for comparing with `nvidia-smi`:
- each allocation rounded up to 512 bytes, the CUDA caching allocator's
  granularity (`kMinBlockSize = 512` in c10/cuda/CUDACachingAllocator.cpp);
- a fixed CUDA context, which depends on the GPU, driver and loaded kernels;
  PyTorch's CUDA semantics notes speak of a few hundred MiB: 512 MiB is used
  as a round default (`CUDA_CONTEXT_BYTES`), override it to match your setup.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from memflops.errors import UsageError

SATURATION = 0.05
"""Throughput within this fraction of a sweep's best counts as saturated."""
ALLOCATION_GRANULARITY = 512
CUDA_CONTEXT_BYTES = 512 * 2**20

_UNITS = {
    "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}


def parse_memory(text: str) -> int:
    """`"24GiB"` -> 25769803776, `"80GB"` -> 80000000000, `"1024"` -> 1024 bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match:
        raise UsageError(f"bad memory size {text!r}: expected e.g. 24GiB, 80GB or a byte count")
    number, unit = match.groups()
    scale = _UNITS.get((unit or "b").lower())
    if scale is None:
        raise UsageError(
            f"bad memory unit {unit!r} in {text!r}: expected one of B, KB, MB, GB, TB "
            f"(powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)"
        )
    return int(Fraction(number) * scale)


@dataclass(frozen=True)
class SweepPoint:
    size: int
    peak: int
    seed_estimate: int
    reserved: int | None = None
    """The caching allocator's reserved peak at this size (None: not simulated)."""
    time_step_s: float | None = None
    """With an accelerator (`gpu=`): the step's time at this size."""
    samples_per_s: float | None = None


@dataclass(frozen=True)
class Sweep:
    """Peaks per size and the fitted line peak ≈ constant + per_item * size."""

    dimension: str
    points: tuple[SweepPoint, ...]
    constant: int
    per_item: int
    saturated_at: int | None = None
    """With an accelerator: the smallest size whose throughput is within
    `SATURATION` of the best of the sweep (where a bigger batch stops paying); None
    when throughput still rises at the largest size swept."""


def fit_line(points: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """Exact least-squares (constant, slope) of (size, bytes) points, rounded to bytes."""
    if len(points) == 1:
        return points[0][1], 0
    n = len(points)
    sx = sum(x for x, _ in points)
    sy = sum(y for _, y in points)
    sxx = sum(x * x for x, _ in points)
    sxy = sum(x * y for x, y in points)
    denominator = n * sxx - sx * sx
    if denominator == 0:
        return sy // n, 0
    slope = Fraction(n * sxy - sx * sy, denominator)
    constant = Fraction(sy, n) - slope * Fraction(sx, n)
    return round(constant), round(slope)


def saturation(points: Sequence[SweepPoint]) -> int | None:
    """The smallest size whose samples/s is within `SATURATION` of the best point's; None
    without times, or when that is the largest size swept (throughput still rising)."""
    rates = [(p.size, p.samples_per_s) for p in points if p.samples_per_s is not None]
    if not rates:
        return None
    best = max(rate for _, rate in rates)
    size = min(size for size, rate in rates if rate >= (1 - SATURATION) * best)
    return None if size == max(size for size, _ in rates) else size


@dataclass(frozen=True)
class Fit:
    """The largest size whose step fits in `capacity` bytes, with the evidence."""

    dimension: str
    capacity: int
    largest: int
    peak_at_largest: int
    peak_at_next: int | None
    """Peak at largest + 1 (when largest is 0: the peak at size 1; None past the search limit)."""
    analyses: int
    against: str = "allocated"
    """What was held against the capacity: "allocated" (the peak of the step's
    tensors) or "reserved" (the device total with the caching allocator simulated:
    a size fits when the allocator never fails to reserve a segment)."""
    time_step_s: float | None = None
    """With an accelerator (`gpu=`): the step's time at the largest size."""
    samples_per_s: float | None = None


def largest_fitting(
    peak_at: Callable[[int], int], capacity: int, *, dimension: str = "batch",
    limit: int = 2**20,
) -> Fit:
    """Largest n in [1, limit] with peak_at(n) <= capacity (peak grows with n).

    Memory is close to affine in n, so two analyses predict the answer; a
    bracketing search around the prediction then proves it: peak_at(n) fits
    and peak_at(n + 1) does not.
    """
    cache: dict[int, int] = {}

    def peak(n: int) -> int:
        if n not in cache:
            cache[n] = peak_at(n)
        return cache[n]

    if peak(1) > capacity:
        return Fit(dimension, capacity, 0, 0, peak(1), len(cache))
    slope = peak(2) - peak(1)
    guess = limit if slope <= 0 else min(limit, max(1, 1 + (capacity - peak(1)) // slope))
    # Bracket: lo fits, hi does not (or hi > limit).
    lo, hi = 1, limit + 1
    if peak(guess) <= capacity:
        lo = guess
        step = max(1, guess // 16)
        while lo + step <= limit and peak(lo + step) <= capacity:
            lo, step = lo + step, step * 2
        hi = min(lo + step, limit + 1)
    else:
        hi = guess
        step = max(1, guess // 16)
        while hi - step >= 1 and peak(hi - step) > capacity:
            hi, step = hi - step, step * 2
        lo = max(1, hi - step)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if peak(mid) <= capacity:
            lo = mid
        else:
            hi = mid
    nxt = peak(lo + 1) if lo + 1 <= limit else None
    return Fit(dimension, capacity, lo, peak(lo), nxt, len(cache))


def fewest_fitting(peak_at: Callable[[int], int], capacity: int, most: int) -> Fit:
    """The fewest ranks n, a power of two up to `most`, with peak_at(n) <= capacity (the
    peak per rank falls as ranks are added), proved by peak_at(n / 2) not fitting; a
    `Fit` of dimension "ranks" whose `largest` is that n (0: none up to `most`) and whose
    `peak_at_next` is the peak at n / 2 (None at n = 1, or when none fits)."""
    counts = [2**k for k in range(most.bit_length()) if 2**k <= most]
    cache: dict[int, int] = {}

    def peak(n: int) -> int:
        if n not in cache:
            cache[n] = peak_at(n)
        return cache[n]

    if peak(counts[-1]) > capacity:
        return Fit("ranks", capacity, 0, 0, None, len(cache))
    lo, hi = -1, len(counts) - 1  # counts[hi] fits; counts[lo] does not (or lo = -1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if peak(counts[mid]) <= capacity:
            hi = mid
        else:
            lo = mid
    fewest = counts[hi]
    before = peak(fewest // 2) if fewest > 1 else None
    return Fit("ranks", capacity, fewest, peak(fewest), before, len(cache))
