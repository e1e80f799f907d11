"""Parsing `analyze(parallel=...)` (`memflops.parallel_options`)."""

from __future__ import annotations

import pytest

from memflops.errors import UsageError
from memflops.parallel_options import ParallelSpec, parse_parallel


def test_fsdp_with_and_without_resharding() -> None:
    assert parse_parallel("fsdp=8") == ParallelSpec("fsdp", 8, True)
    spec = parse_parallel(" FSDP=4 , reshard_after_forward=off")
    assert spec == ParallelSpec("fsdp", 4, False)
    assert spec.label == "fsdp=4,reshard_after_forward=off"
    assert parse_parallel("fsdp=2,reshard_after_forward=on").label == "fsdp=2"


@pytest.mark.parametrize(("text", "message"), [
    ("fsdp=0", "at least 1"),
    ("fsdp=eight", "must be an integer"),
    ("fsdp", "is not key=value"),
    ("fdsp=8", "unknown strategy or option 'fdsp'"),
    ("tp=2", "'tp' is not supported yet"),
    ("zero=3", "'zero' is not supported yet"),
    ("fsdp=8,fsdp=4", "given twice"),
    ("reshard_after_forward=off", "exactly one strategy"),
    ("fsdp=8,reshard_after_forward=maybe", "expected on or off"),
])
def test_bad_layouts_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_parallel(text)
