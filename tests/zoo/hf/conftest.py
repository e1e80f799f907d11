"""Shared stand-ins and helpers of the Hugging Face zoo tests, as fixtures: configs as the
input builders read them, shipped models built once, config files written, analyses run."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Literal

import pytest
import torch

import memflops
from memflops.capture.inputs import TensorSpec
from memflops.frontends.targets import Loaded, load_target


class ConfigStub:
    """A config as the builders read it: plain attributes; sub-configs have `to_dict`."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class ConfigStubs:
    """`config_stub(**fields)` makes a config; `config_stub.typed(model_type, **fields)` one
    of a class whose `model_type` is `model_type` (as transformers' config classes have)."""

    def __call__(self, **fields: Any) -> ConfigStub:
        return ConfigStub(**fields)

    def typed(self, model_type: str, **fields: Any) -> ConfigStub:
        cls = type(f"Config_{model_type}", (ConfigStub,), {"model_type": model_type})
        config: ConfigStub = cls(**fields)
        return config


@pytest.fixture
def config_stub() -> ConfigStubs:
    return ConfigStubs()


def auto_config(model_type: str) -> object:
    transformers = pytest.importorskip("transformers")
    return transformers.AutoConfig.for_model(model_type)


def load(tmp_path: Path, config: dict[str, Any]) -> Loaded:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return load_target(f"hf:{path}")


@functools.cache
def loaded(name: str) -> Loaded:
    """Each shipped model is built once per test session."""
    return load_target(f"hf:{name}")


def specs(target: Loaded, batch: int, seq: int) -> dict[str, TensorSpec]:
    assert target.make_inputs is not None
    made: dict[str, TensorSpec] = target.make_inputs(batch, seq)
    return made


def unique_params(module: torch.nn.Module) -> int:
    return sum({id(p): p.numel() for p in module.parameters()}.values())


def write(tmp_path: Path, config: dict[str, Any], name: str = "config.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return str(path)


def analyse(target: Loaded, batch: int, seq: int, mode: str = "inference") -> memflops.Report:
    report = memflops.analyze(target.module, specs(target, batch, seq), mode=mode)  # type: ignore[arg-type]
    assert report.uncounted_ops == ()
    assert report.totals.params == sum(p.numel() for p in target.module.parameters())
    return report


def row(report: memflops.Report, path: str) -> Any:
    return next(r for r in report.modules if r.path == path)


def make_of(target: Loaded, batch: int, seq: int) -> dict[str, TensorSpec]:
    assert target.make_inputs is not None
    specs: dict[str, TensorSpec] = target.make_inputs(batch, seq)
    return specs


def make(name: str, batch: int, seq: int) -> dict[str, TensorSpec]:
    make_inputs = loaded(name).make_inputs
    assert make_inputs is not None
    specs: dict[str, TensorSpec] = make_inputs(batch, seq)
    return specs


def analyse_shipped(
    name: str, batch: int, seq: int, mode: Literal["inference", "train"] = "inference"
) -> memflops.Report:
    return memflops.analyze(loaded(name).module, make(name, batch, seq), mode=mode)


@pytest.fixture(name="auto_config")
def _auto_config_fixture() -> Any:
    return auto_config


@pytest.fixture(name="load")
def _load_fixture() -> Any:
    return load


@pytest.fixture(name="loaded")
def _loaded_fixture() -> Any:
    return loaded


@pytest.fixture(name="specs")
def _specs_fixture() -> Any:
    return specs


@pytest.fixture(name="unique_params")
def _unique_params_fixture() -> Any:
    return unique_params


@pytest.fixture(name="write")
def _write_fixture() -> Any:
    return write


@pytest.fixture(name="analyse")
def _analyse_fixture() -> Any:
    return analyse


@pytest.fixture(name="row")
def _row_fixture() -> Any:
    return row


@pytest.fixture(name="make_of")
def _make_of_fixture() -> Any:
    return make_of


@pytest.fixture(name="make")
def _make_fixture() -> Any:
    return make


@pytest.fixture(name="analyse_shipped")
def _analyse_shipped_fixture() -> Any:
    return analyse_shipped
