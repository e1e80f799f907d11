"""`torchvision:NAME`: a torchvision model built without weights.

Classification models take `(1, 3, 224, 224)` (299 for Inception v3);
detection models are made shape-only (`detection`) and take the size their
transform keeps.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from memflops.errors import TargetNotFoundError, did_you_mean
from memflops.frontends.loaded import Loaded, call_factory
from memflops.frontends.meta_init import build_without_weights
from memflops.frontends.zoos import not_installed


def names() -> list[str]:
    try:
        import torchvision
    except ImportError as exc:
        raise not_installed("torchvision") from exc
    return list(torchvision.models.list_models())


def load(name: str) -> Loaded:
    available = names()
    if name not in available:
        raise TargetNotFoundError(
            f"torchvision has no model {name!r}{did_you_mean(name, available)}"
        )
    import torchvision

    builder = torchvision.models.get_model_builder(name)
    options: dict[str, Any] = {"weights": None}
    if "weights_backbone" in inspect.signature(builder).parameters:
        options["weights_backbone"] = None  # never download a pretrained backbone

    def build() -> nn.Module:
        module: nn.Module = build_without_weights(lambda: builder(**options))
        return module

    module = call_factory(build, f"torchvision:{name}")
    if ".detection." in builder.__module__:
        from memflops.zoo.torchvision.detection import make_shape_only

        info = make_shape_only(module)
        if info is not None:
            return Loaded(module, name, (1, 3, *info.image_size), warnings=info.warnings)
    size = 299 if name == "inception_v3" else 224
    return Loaded(module, name, (1, 3, size, size))
