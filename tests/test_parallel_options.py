"""Parsing `analyze(parallel=...)` (`memflops.parallel_options`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memflops.errors import UsageError
from memflops.parallel_options import ParallelSpec, parse_parallel, read_tp_plan


def test_fsdp_with_and_without_resharding() -> None:
    assert parse_parallel("fsdp=8") == ParallelSpec((("fsdp", 8),), True)
    spec = parse_parallel(" FSDP=4 , reshard_after_forward=off")
    assert spec == ParallelSpec((("fsdp", 4),), False)
    assert spec.label == "fsdp=4,reshard_after_forward=off"
    assert parse_parallel("fsdp=2,reshard_after_forward=on").label == "fsdp=2"


@pytest.mark.parametrize(("text", "message"), [
    ("fsdp=0", "at least 1"),
    ("fsdp=eight", "must be an integer"),
    ("fsdp", "is not key=value"),
    ("fdsp=8", "unknown strategy or option 'fdsp'"),
    ("pp=2,tp=2", r"pp combines with ddp=N only here \(tp given\)"),
    ("pp=2,ddp=2,zero=1", "pp with zero=S is not modelled"),
    ("zero=3", "zero=S needs the data-parallel ranks"),
    ("fsdp=8,fsdp=4", "given twice"),
    ("reshard_after_forward=off", "give a strategy"),
    ("fsdp=8,reshard_after_forward=maybe", "expected on or off"),
])
def test_bad_layouts_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_parallel(text)


def test_tensor_parallel_and_its_plan_file(tmp_path: Path) -> None:
    assert parse_parallel("tp=2") == ParallelSpec((("tp", 2),))
    with pytest.raises(UsageError, match="applies to fsdp and hsdp only"):
        parse_parallel("tp=2,reshard_after_forward=off")
    good = tmp_path / "plan.json"
    good.write_text(json.dumps({"layers.*.fc1": "colwise", "layers.*.fc2": "rowwise"}))
    assert read_tp_plan(str(good)) == {"layers.*.fc1": "colwise", "layers.*.fc2": "rowwise"}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match=r"bad\.json is not JSON"):
        read_tp_plan(str(bad))
    with pytest.raises(UsageError, match="cannot read"):
        read_tp_plan(str(tmp_path / "missing.json"))
    with pytest.raises(UsageError, match="'sideways' is not a style"):
        read_tp_plan({"fc1": "sideways"})


def test_fsdp_and_tp_make_a_2d_mesh_fsdp_outermost() -> None:
    spec = parse_parallel("tp=2,fsdp=4")
    assert spec.dims == (("fsdp", 4), ("tp", 2))
    assert (spec.world_size, spec.size("fsdp"), spec.size("tp")) == (8, 4, 2)
    assert spec.label == "fsdp=4,tp=2"


def test_hsdp_ddp_zero_and_mixed_precision() -> None:
    spec = parse_parallel("hsdp=2x4,tp=2,mp=bf16")
    assert spec.dims == (("replicate", 2), ("fsdp", 4), ("tp", 2))
    assert (spec.world_size, spec.hsdp, spec.modelled, spec.mp) == (16, True, False, "bf16")
    assert spec.label == "hsdp=2x4,tp=2,mp=bf16"
    ddp = parse_parallel("ddp=8,gradient_as_bucket_view=on")
    assert (ddp.dims, ddp.modelled, ddp.gradient_as_bucket_view) == ((("ddp", 8),), True, True)
    assert parse_parallel("ddp=8,zero=1") == ParallelSpec((("ddp", 8),), zero=1)
    # ZeRO-2 and -3 run FSDP2: reshard after forward off (SHARD_GRAD_OP) and on (FULL_SHARD)
    assert parse_parallel("ddp=8,zero=2") == ParallelSpec((("fsdp", 8),), False, zero=2)
    assert parse_parallel("zero=3,ddp=8") == ParallelSpec((("fsdp", 8),), True, zero=3)
    assert parse_parallel("ddp=8,zero=3").label == "ddp=8,zero=3"
