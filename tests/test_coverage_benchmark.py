"""A sample of the coverage benchmark, through its own code path (benchmarks/coverage.py).

One small model per zoo runs in this process; one more runs in the worker
pool, to check the pool, its time limit and the report. The full run is
`python benchmarks/coverage.py` (results in benchmarks/COVERAGE.md).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "coverage.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("memflops_bench_coverage", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


cov = _load()

SAMPLE = [
    ("torchvision", "squeezenet1_1"),
    ("timm", "test_vit"),
    ("hf", "bert"),
]


@pytest.mark.parametrize(("zoo", "name"), SAMPLE)
def test_sample_model_is_covered(zoo: str, name: str) -> None:
    pytest.importorskip({"torchvision": "torchvision", "timm": "timm", "hf": "transformers"}[zoo])
    assert cov.Case(zoo, name) in cov.cases(zoo, name)
    result = cov.run_case(cov.Case(zoo, name))
    assert result.status == "ok", result.error or result.uncounted
    assert result.params and result.forward_flops and result.step_flops
    assert result.step_flops > result.forward_flops  # train: forward + loss + backward + step


def test_squeezenet_params_are_exact() -> None:
    pytest.importorskip("torchvision")
    result = cov.run_case(cov.Case("torchvision", "squeezenet1_1"))
    assert result.params == 1_235_496  # torchvision's published count for SqueezeNet 1.1


def test_failure_is_a_result_with_a_grouped_reason() -> None:
    pytest.importorskip("torchvision")
    result = cov.run_case(cov.Case("torchvision", "no_such_model"))
    assert (result.status, result.error_type) == ("error", "TargetNotFoundError")
    assert cov.reason_key(result).startswith("TargetNotFoundError: torchvision has no model")


def test_pool_runs_a_worker() -> None:
    pytest.importorskip("torchvision")
    seen: list[str] = []
    results = cov.run_pool([cov.Case("torchvision", "squeezenet1_0")], workers=1, timeout=120.0,
                           on_result=lambda r: seen.append(r.name))
    assert seen == ["squeezenet1_0"]
    assert results[0].status == "ok", results[0].error
    assert results[0].params == 1_248_424  # torchvision's published count for SqueezeNet 1.0
    text = cov.render({(r.zoo, r.name): r for r in results}, [], {"torchvision": 121})
    assert "| torchvision | 121 | 1 | 0 | 1 | 0 | 0 | 100.0% | >= 100% | 100.0% |" in text


def test_pool_enforces_the_time_limit() -> None:
    # a fresh worker must import torch before anything: far longer than 0.2 s
    results = cov.run_pool([cov.Case("torchvision", "squeezenet1_0")], workers=1, timeout=0.2)
    assert [(r.status, r.error) for r in results] == [("timeout", "no result within 0.2 s")]


def test_transformers_own_build_failures_are_outside_the_target() -> None:
    pytest.importorskip("transformers")
    # timm_backbone's default config names no timm model: transformers raises by itself
    assert cov._transformers_cannot_build("timm_backbone")
    assert not cov._transformers_cannot_build("bert")
    results = [cov.Result("hf", "a", "ok", 1.0), cov.Result("hf", "b", "error", 1.0),
               cov.Result("hf", "c", "unbuildable", 1.0, error_type="FactoryError",
                          error="building X from its config raised ValueError: no backbone")]
    text = cov.render({(r.zoo, r.name): r for r in results}, [], {"hf": 3})
    # 1 of the 2 buildable models covered: 50%, not 1 of 3
    assert "| hf | 3 | 3 | 1 | 1 | 0 | 1 | 50.0% | >= 95% | 50.0% |" in text
    assert "Not buildable from a default config by transformers itself" in text


def test_render_lists_inference_only_models_and_notes() -> None:
    results = [
        cov.Result("hf", "sam2_video", "ok", 1.0, params=1, forward_flops=2, step_flops=2,
                   mode="inference"),
        cov.Result("hf", "vits", "error", 1.0, error_type="DataDependentError",
                   error="op aten.index in module `m` needs real tensor values"),
    ]
    cov.NOTES["vits"] = "its duration predictor sets the output length"
    try:
        text = cov.render({(r.zoo, r.name): r for r in results}, [], {"hf": 2})
    finally:
        del cov.NOTES["vits"]
    # 1 of 2 buildable covered
    assert "| hf | 2 | 2 | 0 | 1 | 0 | 1 | 50.0% | >= 95% | 50.0% |" in text
    assert "Analysed in inference mode" in text and "`sam2_video` (ok)" in text
    assert "- `vits`: its duration predictor sets the output length" in text
