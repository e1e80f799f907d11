"""Precision changes: each is the analysis of the step under that precision, and they
apply only to a float32 step without autocast."""

from __future__ import annotations

import memflops
from memflops.advisor.advise import measure

from .nets import small_net

INPUT = (2, 3, 16, 16)
PRECISIONS = ["amp-bf16", "amp-fp16", "bf16"]


def test_each_is_the_step_under_that_precision() -> None:
    net = small_net()
    advice = memflops.advise(net, INPUT, mode="train", only=PRECISIONS)
    for change, options in (("amp-bf16", {"autocast": "bf16"}),
                            ("amp-fp16", {"autocast": "fp16"}), ("bf16", {"dtype": "bf16"})):
        expected = measure(memflops.analyze(net, INPUT, mode="train", **options))
        assert advice.change(change).measured == expected, change
    bf16 = advice.change("bf16")
    # Every parameter, gradient and Adam state halves: the peak drops, the params do not.
    assert bf16.delta is not None and bf16.delta.peak < 0 and bf16.delta.params == 0


def test_only_a_float32_step_without_autocast() -> None:
    low = memflops.advise(small_net(), INPUT, mode="train", dtype="bf16", only=PRECISIONS)
    assert {c.reason for c in low.changes} == {"the parameters are bfloat16 already, not float32"}
    amp = memflops.advise(small_net(), INPUT, mode="train", autocast="fp16", only=PRECISIONS)
    assert {c.reason for c in amp.changes} == {"the step already runs under autocast fp16"}
