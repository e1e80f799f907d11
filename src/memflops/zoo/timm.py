"""`timm:NAME`: a timm model built on the meta device, at its pretrained input size."""

from __future__ import annotations

import torch
from torch import nn

from memflops.errors import TargetNotFoundError, did_you_mean
from memflops.frontends.loaded import Loaded, call_factory
from memflops.frontends.zoos import not_installed


def names() -> list[str]:
    try:
        import timm
    except ImportError as exc:
        raise not_installed("timm") from exc
    return list(timm.list_models())


def load(name: str) -> Loaded:
    available = names()
    if name not in available:
        raise TargetNotFoundError(f"timm has no model {name!r}{did_you_mean(name, available)}")
    import timm

    def build() -> nn.Module:
        with torch.device("meta"):
            module: nn.Module = timm.create_model(name, pretrained=False)
        return module

    module = call_factory(build, f"timm:{name}")
    cfg = getattr(module, "pretrained_cfg", None) or {}
    size = cfg.get("input_size") if isinstance(cfg, dict) else None
    default = (1, *size) if size else None
    return Loaded(module, name, default)
