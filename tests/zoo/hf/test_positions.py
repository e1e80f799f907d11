"""A sequence past a model's learned positions is refused in every mode, and the
sequence fit stops at them ("no limit found up to 1,024", never 6,579 for GPT-2)."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

import memflops
from memflops.errors import UsageError

GPT2_POSITIONS = 1_024  # GPT-2's n_positions (wpe: 1,024 x 768)


def test_input_past_the_positions() -> None:
    with pytest.raises(UsageError, match="input input_ids of shape 1x1025:int64: 1025 tokens, "
                       "longer than hf:gpt2's 1,024 learned positions"):
        memflops.analyze("hf:gpt2", {"input_ids": (1, GPT2_POSITIONS + 1)})


def test_seq_past_the_positions() -> None:
    with pytest.raises(UsageError, match="longer than its 1024 learned positions"):
        memflops.analyze("hf:gpt2", seq=GPT2_POSITIONS + 1)


def test_generation_past_the_positions() -> None:
    with pytest.raises(UsageError, match="prompt_len 1000 \\+ new_tokens 25: 1025 tokens"):
        memflops.analyze("hf:gpt2", mode="generate", prompt_len=1_000, new_tokens=25)


def test_the_seq_fit_stops_at_the_positions() -> None:
    report = memflops.analyze("hf:gpt2", batch=1, seq=8, fit="H100 SXM", fit_dimension="seq")
    fit = report.fit
    assert fit is not None
    assert (fit.largest, fit.limit, fit.reached_limit) == (GPT2_POSITIONS, GPT2_POSITIONS, True)
    assert fit.limit_reason == "hf:gpt2's learned positions"
    document = report.to_dict()["fit"]
    assert (document["reached_limit"], document["limit"]) == (True, GPT2_POSITIONS)
