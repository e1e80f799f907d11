"""Target strings: `torchvision:NAME`, `timm:NAME`, `path/to/file.py:factory`,
`package.module:factory`.

Zoo models are built on the meta device: no weights are allocated or
downloaded. A user's factory is called as it is.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from memflops.analyze_options import TARGET_FORMS
from memflops.capture.inputs import TensorSpec
from memflops.errors import FactoryError, TargetNotFoundError, UsageError
from memflops.frontends.meta_init import build_without_weights


@dataclass(frozen=True)
class Loaded:
    module: nn.Module
    name: str
    default_input: tuple[int, ...] | dict[str, TensorSpec] | None = None
    make_inputs: Callable[[int, int], Any] | None = None
    """(batch, seq) -> keyword inputs, for models that take tokens (hf: targets)."""
    active_params_per_token: int | None = None
    """Parameters one token runs through, for mixture-of-experts models."""
    warnings: tuple[str, ...] = ()
    """What the frontend changed or assumed, for the report's warnings."""
    inference_only: bool = False
    """The model has no training step (transformers runs its forward under
    `torch.inference_mode`: SAM 2 Video's session step); only mode="inference" applies."""


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def _call_factory(factory: Callable[[], Any], label: str) -> nn.Module:
    try:
        module = factory()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise FactoryError(f"factory {label} raised {type(exc).__name__}: {first}") from exc
    if not isinstance(module, nn.Module):
        raise FactoryError(
            f"factory {label} returned {type(module).__name__}, expected a torch.nn.Module"
        )
    return module


def load_torchvision(name: str) -> Loaded:
    try:
        import torchvision
    except ImportError as exc:
        raise UsageError(
            "torchvision is not installed: pip install 'memflops[vision]'"
        ) from exc
    available = torchvision.models.list_models()
    if name not in available:
        raise TargetNotFoundError(
            f"torchvision has no model {name!r}{_did_you_mean(name, available)}"
        )

    builder = torchvision.models.get_model_builder(name)
    options: dict[str, Any] = {"weights": None}
    if "weights_backbone" in inspect.signature(builder).parameters:
        options["weights_backbone"] = None  # never download a pretrained backbone

    def build() -> nn.Module:
        module: nn.Module = build_without_weights(lambda: builder(**options))
        return module

    module = _call_factory(build, f"torchvision:{name}")
    if ".detection." in builder.__module__:
        from memflops.frontends.detection import make_shape_only

        info = make_shape_only(module)
        if info is not None:
            return Loaded(module, name, (1, 3, *info.image_size), warnings=info.warnings)
    size = 299 if name == "inception_v3" else 224
    return Loaded(module, name, (1, 3, size, size))


def load_timm(name: str) -> Loaded:
    try:
        import timm
    except ImportError as exc:
        raise UsageError("timm is not installed: pip install 'memflops[vision]'") from exc
    available = timm.list_models()
    if name not in available:
        raise TargetNotFoundError(f"timm has no model {name!r}{_did_you_mean(name, available)}")

    def build() -> nn.Module:
        with torch.device("meta"):
            module: nn.Module = timm.create_model(name, pretrained=False)
        return module

    module = _call_factory(build, f"timm:{name}")
    cfg = getattr(module, "pretrained_cfg", None) or {}
    size = cfg.get("input_size") if isinstance(cfg, dict) else None
    default = (1, *size) if size else None
    return Loaded(module, name, default)


def load_factory(location: str, attr: str) -> Loaded:
    if location.endswith(".py"):
        path = Path(location)
        if not path.is_file():
            raise TargetNotFoundError(f"no such file: {location} (target {location}:{attr})")
        mod_name = f"_memflops_user_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise TargetNotFoundError(f"cannot import {location}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise FactoryError(f"importing {location} raised {type(exc).__name__}: {exc}") from exc
    else:
        try:
            module = importlib.import_module(location)
        except ModuleNotFoundError as exc:
            raise TargetNotFoundError(
                f"cannot import module {location!r} ({exc}); expected {TARGET_FORMS}"
            ) from exc
    factory = getattr(module, attr, None)
    if factory is None:
        names = [n for n in dir(module) if not n.startswith("_")]
        raise TargetNotFoundError(
            f"{location} has no attribute {attr!r}{_did_you_mean(attr, names)}"
        )
    if isinstance(factory, nn.Module):
        return Loaded(factory, attr)
    if not callable(factory):
        raise TargetNotFoundError(f"{location}:{attr} is not callable")
    return Loaded(_call_factory(factory, f"{location}:{attr}"), attr)


def load_target(target: str) -> Loaded:
    """Resolve a target string to a module (see the module docstring for the forms)."""
    prefix, sep, rest = target.partition(":")
    if not sep or not prefix or not rest:
        raise TargetNotFoundError(f"bad target {target!r}: expected {TARGET_FORMS}")
    if prefix == "torchvision":
        return load_torchvision(rest)
    if prefix == "timm":
        return load_timm(rest)
    if prefix == "hf":
        from memflops.frontends.hf import load_hf

        return load_hf(rest)
    if prefix.endswith(".py") or "/" in prefix or "." in prefix or prefix.isidentifier():
        return load_factory(prefix, rest)
    raise TargetNotFoundError(f"bad target {target!r}: expected {TARGET_FORMS}")
