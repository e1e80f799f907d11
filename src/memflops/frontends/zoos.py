"""The target prefixes of the model zoos, torch-free.

Each zoo is a module of `memflops.zoo` with two functions, `load(name) ->
Loaded` (and the keyword options its row lists) and `names() -> list[str]`;
the engine reaches it only through this table, by module name, so no engine
package imports a zoo.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from memflops.errors import UsageError


@dataclass(frozen=True)
class Zoo:
    prefix: str
    module: str
    """The `memflops.zoo` module that loads and lists its models."""
    install: str
    """What to install when the zoo's library is missing."""
    options: tuple[str, ...] = ()
    """The options its `load` takes besides the name (`analyze(attention=...)`)."""


ZOOS: dict[str, Zoo] = {
    zoo.prefix: zoo
    for zoo in (
        Zoo("torchvision", "memflops.zoo.torchvision", "pip install 'memflops[vision]'"),
        Zoo("timm", "memflops.zoo.timm", "pip install 'memflops[vision]'"),
        Zoo("hf", "memflops.zoo.hf", "pip install 'memflops[hf]'", options=("attention",)),
    )
}


def zoo_module(prefix: str) -> ModuleType:
    """The zoo's module, whose `load` and `names` need its library installed."""
    return importlib.import_module(ZOOS[prefix].module)


def not_installed(prefix: str) -> UsageError:
    return UsageError(f"{prefix} is not installed: {ZOOS[prefix].install}")


ADJUSTMENTS: dict[str, str] = {"transformers": "memflops.zoo.hf.eager_paths"}
"""Library (top-level package of a model's module classes) -> the zoo module whose
`during_analysis()` makes that library run on fake tensors as it runs eagerly."""


@contextmanager
def library_adjustments(model: Any) -> Iterator[None]:
    """Enter `during_analysis()` of each library the model's modules come from."""
    packages = {type(m).__module__.partition(".")[0] for m in model.modules()}
    with ExitStack() as stack:
        for package, module in ADJUSTMENTS.items():
            if package in packages:
                stack.enter_context(importlib.import_module(module).during_analysis())
        yield


TP_PLANS: dict[str, str] = {"transformers": "memflops.zoo.hf.tp_plan"}
"""Library -> the zoo module whose `plan(model, world_size)` gives a model of that
library its built-in tensor-parallel plan (or None)."""


def builtin_tp_plan(model: Any, world_size: int) -> dict[str, str] | None:
    """The tensor-parallel plan the model's library declares for it, None without one."""
    module = TP_PLANS.get(type(model).__module__.partition(".")[0])
    if module is None:
        return None
    found: dict[str, str] | None = importlib.import_module(module).plan(model, world_size)
    return found
