"""Number formats of the renderers (`memflops.units`)."""

from __future__ import annotations

from memflops.units import format_bytes, format_rate, format_seconds


def test_rates_keep_three_significant_digits_down_to_hundredths() -> None:
    # a decode at 0.53 samples/s must not read "1/s" or "0/s"; an image model's 3,398.4
    # reads as the whole number
    assert [format_rate(x) for x in (3398.4, 104.9, 29.35, 7.17, 0.53)] == [
        "3,398", "105", "29.4", "7.17", "0.53"]


def test_bytes_and_seconds() -> None:
    assert format_bytes(2**30) == "1.00 GiB" and format_bytes(10**9, binary=False) == "1.00 GB"
    assert format_seconds(0.0123) == "12.30 ms" and format_seconds(1.12) == "1.12 s"
