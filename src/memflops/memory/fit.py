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


SEARCH_LIMIT = 2**20
"""The largest size a fit searches: 1,048,576."""


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
    limit: int = SEARCH_LIMIT
    """The largest size the search tried: `SEARCH_LIMIT` or a model's own limit (its
    learned positions). When `largest` equals it, every size up to it fits: no limit was
    found, and `largest` is not an answer (`reached_limit`)."""
    limit_reason: str = "the search limit"

    @property
    def reached_limit(self) -> bool:
        """Every size up to `limit` fits: "no limit found up to `limit`"."""
        return self.largest > 0 and self.largest == self.limit


GROWTH = 16
"""How far one step of the upward search may jump: 16 x the largest size known to fit.
A prediction from two sizes is only as good as the line through them; a peak that a
size-independent phase dominates at small sizes (the optimizer step of a large model)
grows by bytes from 1 to 2 and would predict a million."""


def largest_fitting(
    peak_at: Callable[[int], int], capacity: int, *, dimension: str = "batch",
    limit: int = SEARCH_LIMIT,
) -> Fit:
    """Largest n in [1, limit] with peak_at(n) <= capacity (peak grows with n).

    Memory is close to affine in n, so the line through two analysed sizes
    predicts the answer. Upward, each step tries that prediction, but at most
    `GROWTH` x the largest size known to fit, until a size does not fit (or
    `limit` does: then no limit was found, `Fit.reached_limit`). Between the
    largest size that fits and the smallest that does not, steps alternate
    between the line's prediction (checked with its neighbour) and bisection,
    so a curve that is not a line still ends in log2 steps. The answer is
    proven: peak_at(n) fits and peak_at(n + 1) does not.
    """
    cache: dict[int, int] = {}

    def peak(n: int) -> int:
        if n not in cache:
            cache[n] = peak_at(n)
        return cache[n]

    def fit(largest: int) -> Fit:
        nxt = peak(largest + 1) if largest and largest < limit else None
        at = peak(largest) if largest else 0
        return Fit(dimension, capacity, largest, at, nxt, len(cache), limit=limit)

    if peak(1) > capacity:
        return Fit(dimension, capacity, 0, 0, peak(1), len(cache), limit=limit)
    lo, below, hi = 1, None, None  # lo fits, below < lo fits too; hi does not fit
    while hi is None:
        if lo >= limit:
            return fit(limit)
        if below is None:
            candidate = lo + 1
        else:
            candidate = _predicted(below, peak(below), lo, peak(lo), capacity) or lo * GROWTH
        candidate = min(max(candidate, lo + 1), lo * GROWTH, limit)
        if peak(candidate) <= capacity:
            below, lo = lo, candidate
        else:
            hi = candidate
    interpolate = True
    while hi - lo > 1:
        guess = _predicted(lo, peak(lo), hi, peak(hi), capacity) if interpolate else None
        mid = min(max(guess or (lo + hi) // 2, lo + 1), hi - 1)
        if peak(mid) <= capacity:
            lo = mid
            if interpolate and mid + 1 < hi and peak(mid + 1) > capacity:
                hi = mid + 1
        else:
            hi = mid
            if interpolate and mid - 1 > lo and peak(mid - 1) <= capacity:
                lo = mid - 1
        interpolate = not interpolate
    return fit(lo)


def _predicted(x0: int, y0: int, x1: int, y1: int, capacity: int) -> int | None:
    """The largest size the line through (x0, y0) and (x1, y1) keeps within `capacity`;
    None when the line does not rise."""
    if y1 <= y0 or x1 == x0:
        return None
    return x0 + (capacity - y0) * (x1 - x0) // (y1 - y0)


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
