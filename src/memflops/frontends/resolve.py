"""`analyze`'s model argument, a live module or a target string, resolved to what the
analysis needs: the module, the name the report gives it, and what its frontend knows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn
from torch.nn.parameter import UninitializedTensorMixin  # type: ignore[attr-defined]

from memflops.errors import UsageError
from memflops.frontends.targets import ATTENTION_APPLIES, load_target


@dataclass(frozen=True)
class ResolvedModel:
    module: nn.Module
    label: str
    """The report's name for the model: `name` if given, else the target string or the
    module's class name."""
    default_input: Any = None
    """The frontend's inputs when none are given (zoo targets); None: the caller must give them."""
    make_inputs: Callable[[int, int], Any] | None = None
    """(batch, seq) -> inputs, for targets that know their input form (hf: text models)."""
    warnings: tuple[str, ...] = ()
    """What the frontend changed or assumed."""
    active_params: int | None = None
    """Mixture of experts: parameters one token runs through."""
    max_seq: int | None = None
    """Longest token sequence the model's learned positions allow; None: no known limit."""


def resolve_model(model: nn.Module | str, name: str | None = None,
                  attention: str | None = None) -> ResolvedModel:
    """A module as it is, or a target string loaded by its frontend (`load_target`, with
    `attention` for a Hugging Face target); its parameters must be initialised
    (`check_initialised`)."""
    resolved = _resolve(model, name, attention)
    check_initialised(resolved.module)
    return resolved


def check_initialised(model: nn.Module) -> None:
    """A lazy module's parameters have no shape until a real forward: refused, by name."""
    for path, module in model.named_modules():
        lazy = [n for n, t in (*module.named_parameters(recurse=False),
                               *module.named_buffers(recurse=False))
                if isinstance(t, UninitializedTensorMixin)]
        if lazy:
            raise UsageError(
                f"module `{path or '(root)'}` ({type(module).__name__}) has uninitialised "
                f"parameters ({', '.join(lazy)}): a lazy module gets its shapes from a first "
                f"real forward; run one (or build the module with its sizes) before analysing"
            )


def _resolve(model: nn.Module | str, name: str | None, attention: str | None) -> ResolvedModel:
    if isinstance(model, str):
        loaded = load_target(model, attention)
        return ResolvedModel(
            loaded.module,
            name or (model if attention is None else f"{model} (attention {attention})"),
            loaded.default_input,
            loaded.make_inputs,
            loaded.warnings,
            loaded.active_params_per_token,
            loaded.max_seq,
        )
    if isinstance(model, nn.Module):
        if attention is not None:
            raise UsageError(f"{ATTENTION_APPLIES}; a module you pass keeps the attention you "
                             f"built it with")
        return ResolvedModel(model, name or type(model).__name__)
    raise UsageError(
        f"model: expected a torch.nn.Module or a target string, got {type(model).__name__}"
    )
