"""`Loaded`, what every loader returns, and building a module from a factory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from memflops.errors import FactoryError
from memflops.tensor_spec import TensorSpec


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
    max_seq: int | None = None
    """Longest token sequence the model's learned position table allows (GPT-2: 1,024);
    None: no such limit known. Every mode and the sequence fit keep within it."""
    inference_only: bool = False
    """The model has no training step (transformers runs its forward under
    `torch.inference_mode`: SAM 2 Video's session step); only mode="inference" applies."""


def call_factory(factory: Callable[[], Any], label: str) -> nn.Module:
    """`factory()`, which must return a module; whatever it raises (a `BaseException`
    subclass or `sys.exit()` too; Ctrl-C excepted) becomes a `FactoryError`."""
    try:
        module = factory()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise FactoryError(f"factory {label} {raised(exc)}") from exc
    if not isinstance(module, nn.Module):
        raise FactoryError(
            f"factory {label} returned {type(module).__name__}, expected a torch.nn.Module"
        )
    return module


def raised(exc: BaseException) -> str:
    """"raised TypeError: first line", or "called sys.exit(0)" for a `SystemExit`."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r}) instead of returning"
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"raised {type(exc).__name__}: {first}" if first else f"raised {type(exc).__name__}"
