"""`path/to/file.py:factory` and `package.module:factory`: a user's own model.

The factory is called as it is (or, when the name is a module instance,
that instance is taken); the user's file is imported under a private name.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from torch import nn

from memflops.analyze_options import TARGET_FORMS
from memflops.errors import FactoryError, TargetNotFoundError, did_you_mean
from memflops.frontends.loaded import Loaded, call_factory


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
            f"{location} has no attribute {attr!r}{did_you_mean(attr, names)}"
        )
    if isinstance(factory, nn.Module):
        return Loaded(factory, attr)
    if not callable(factory):
        raise TargetNotFoundError(f"{location}:{attr} is not callable")
    return Loaded(call_factory(factory, f"{location}:{attr}"), attr)
