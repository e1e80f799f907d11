"""Batch sweeps and "what fits": the answer fits and one more does not, by the same analysis."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import memflops
from memflops.errors import UsageError
from memflops.hardware.catalog import find_accelerator
from memflops.memory.fit import fit_line, largest_fitting, parse_memory


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(16, 10),
    )


class TinyLM(nn.Module):
    """Embedding, one causal SDPA layer and a head: memory grows with the sequence."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 32)
        self.qkv = nn.Linear(32, 96)
        self.head = nn.Linear(32, 100)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, 2, 16).permute(2, 0, 3, 1, 4)
        a = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.head(x + a.transpose(1, 2).reshape(b, t, 32))


def peak(model: nn.Module, shape: tuple[int, ...], **kw: object) -> int:
    return memflops.analyze(model, shape, mode="train", **kw).totals.memory.peak  # type: ignore[arg-type]


def test_parse_memory_units() -> None:
    assert parse_memory("24GiB") == 24 * 2**30 == 25_769_803_776
    assert parse_memory("80GB") == 80 * 10**9
    assert parse_memory("1.5 GiB") == 3 * 2**29
    assert parse_memory("4096") == 4096
    with pytest.raises(UsageError, match="bad memory unit"):
        parse_memory("24 GiBs")


@pytest.mark.parametrize(
    "curve",
    [lambda n: 1000 + 37 * n, lambda n: 1000 + 37 * n + n * n // 100, lambda n: 5000 + 64 * n],
)
@pytest.mark.parametrize("capacity", [900, 5_000, 123_456, 10**6])
def test_largest_fitting_agrees_with_brute_force(curve: object, capacity: int) -> None:
    f = curve  # peak as a function of size, increasing
    fit = largest_fitting(f, capacity, limit=50_000)  # type: ignore[arg-type]
    brute = max((n for n in range(1, 50_001) if f(n) <= capacity), default=0)  # type: ignore[operator]
    assert fit.largest == brute
    if brute:
        assert fit.peak_at_largest == f(brute) <= capacity  # type: ignore[operator]
        assert fit.peak_at_next == f(brute + 1) > capacity  # type: ignore[operator]


def test_fit_line_is_exact_on_a_line() -> None:
    # peak = 1000 + 250 * batch
    assert fit_line([(1, 1250), (2, 1500), (4, 2000), (8, 3000)]) == (1000, 250)


def test_fit_batch_fits_and_one_more_does_not() -> None:
    model = cnn()
    capacity = 3 * 2**20  # 3 MiB
    report = memflops.analyze(model, (1, 3, 32, 32), mode="train", fit=capacity)
    fit = report.fit
    assert fit is not None and fit.dimension == "batch" and fit.largest >= 1
    n = fit.largest
    # the same analysis, run independently at n and n + 1
    at_n, at_next = peak(model, (n, 3, 32, 32)), peak(model, (n + 1, 3, 32, 32))
    assert at_n == fit.peak_at_largest <= capacity < at_next == fit.peak_at_next
    assert report.to_dict()["fit"]["largest"] == n


def test_fit_sequence_length() -> None:
    model = TinyLM()
    ids = memflops.TensorSpec((2, 16), torch.int64)
    capacity = 2 * 2**20
    report = memflops.analyze(
        model, ids, mode="train", fit=capacity, fit_dimension="seq", optimizer="sgd"
    )
    assert report.fit is not None
    t = report.fit.largest
    at_t = memflops.analyze(
        model, memflops.TensorSpec((2, t), torch.int64), mode="train", optimizer="sgd"
    ).totals.memory.peak
    at_next = memflops.analyze(
        model, memflops.TensorSpec((2, t + 1), torch.int64), mode="train", optimizer="sgd"
    ).totals.memory.peak
    assert at_t <= capacity < at_next


def test_fit_to_a_catalog_gpu() -> None:
    report = memflops.analyze(cnn(), (1, 3, 8, 8), mode="inference", fit="H200")
    assert report.fit is not None
    # the catalog's 141 GB of HBM3e read as GiB
    assert report.fit.capacity == find_accelerator("H200").memory_bytes == 141 * 2**30


def test_fit_to_an_accelerator_described_as_for_gpu() -> None:
    """--fit takes what --gpu takes: a custom accelerator's mem= (40G = 40 GiB, as the
    catalog reads nominal sizes) is the capacity; one without mem= is refused."""
    custom = "custom:fp16=300T,bw=1.5T,mem=40G"
    report = memflops.analyze(cnn(), (1, 3, 8, 8), mode="inference", fit=custom)
    assert report.fit is not None and report.fit.capacity == 40 * 2**30
    advice = memflops.advise(cnn(), (1, 3, 8, 8), mode="inference", budget=custom,
                             only=["batch-halved"])
    assert advice.budget == 40 * 2**30
    with pytest.raises(UsageError, match=r"^fit: 'custom:fp16=300T,bw=1\.5T' states no memory"):
        memflops.analyze(cnn(), (1, 3, 8, 8), mode="inference", fit="custom:fp16=300T,bw=1.5T")


def test_batch_sweep_points_are_independent_analyses() -> None:
    model = cnn()
    report = memflops.analyze(model, (1, 3, 16, 16), mode="train", batch_sweep=[1, 2, 4])
    assert report.sweep is not None
    for point in report.sweep.points:
        assert point.peak == peak(model, (point.size, 3, 16, 16))
    # memory is not proportional to batch: a constant part (params, grads, Adam state)
    assert report.sweep.constant > 0 and report.sweep.per_item > 0


def test_saturation_is_where_throughput_stops_rising() -> None:
    from memflops.memory.fit import SweepPoint, saturation

    def point(size: int, rate: float | None) -> SweepPoint:
        return SweepPoint(size, 0, 0, time_step_s=None if rate is None else size / rate,
                          samples_per_s=rate)

    # best 1,000/s; 960 is within 5% of it (>= 950), 900 is not: saturated at 64
    points = [point(8, 500.0), point(32, 900.0), point(64, 960.0), point(128, 1_000.0)]
    assert saturation(points) == 64
    # still rising by more than 5% at the largest size: not saturated
    assert saturation([point(8, 500.0), point(16, 800.0)]) is None
    assert saturation([point(8, None)]) is None  # no accelerator, no times


def test_fewest_fitting_searches_powers_of_two() -> None:
    from memflops.memory.fit import fewest_fitting

    tried: list[int] = []

    def peak(n: int) -> int:
        tried.append(n)
        return 1000 // n  # 1: 1000, 2: 500, 4: 250, 8: 125, ...

    fit = fewest_fitting(peak, 300, 64)
    assert (fit.dimension, fit.largest, fit.peak_at_largest, fit.peak_at_next) == (
        "ranks", 4, 250, 500)
    assert set(tried) <= {1, 2, 4, 8, 16, 32, 64} and fit.analyses == len(set(tried))
    assert fewest_fitting(peak, 10, 64).largest == 0  # 1000 // 64 = 15 > 10
    assert fewest_fitting(peak, 2000, 8).peak_at_next is None  # 1 rank fits


def test_a_plateau_does_not_send_the_search_to_the_limit() -> None:
    # A large model's train step: peak = max(10^9 + n, 4,096 n): the optimizer step's
    # (10^9 B, growing a byte a sample) dominates until the forward's 4,096 B a sample pass
    # it at n = 244,141. From 1 to 2 the peak grows by 1 B: as a line, about 10^9 fit.
    def peak(n: int) -> int:
        return max(10**9 + n, 4_096 * n)

    tried: list[int] = []

    def spy(n: int) -> int:
        tried.append(n)
        return peak(n)

    capacity = 2 * 10**9
    fit = largest_fitting(spy, capacity)
    # largest n with 4,096 n <= 2 x 10^9: 488,281 (4,096 x 488,281 = 1,999,998,976)
    assert (fit.largest, fit.reached_limit) == (488_281, False)
    assert fit.peak_at_next == peak(488_282) > capacity
    assert max(tried) <= 16 * fit.largest  # never far past the answer (was: 2^20 at once)
    assert fit.analyses == len(set(tried)) < 40


def test_every_size_fitting_is_no_limit_found() -> None:
    fit = largest_fitting(lambda n: 100, 1_000, limit=1_024)  # the peak never grows
    assert (fit.largest, fit.limit, fit.reached_limit, fit.peak_at_next) == (
        1_024, 1_024, True, None)
    assert fit.analyses < 10  # 1, 2, 32, 512, 1024


def test_a_limit_of_one() -> None:
    fit = largest_fitting(lambda n: 100 * n, 1_000, limit=1)
    assert (fit.largest, fit.reached_limit) == (1, True)
