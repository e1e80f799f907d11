"""`analyze(parallel=...)`: the layout of one training step over several GPUs, parsed.

The text is a comma-separated list of `key=value` items, e.g. `fsdp=8` or
`fsdp=8,reshard_after_forward=off`:

- `fsdp=N`: PyTorch's FSDP2 (`fully_shard`) over N ranks, full shard: each
  block of the model's repeated layer lists is one unit, then the root, as
  torchtitan wraps (`memflops.capture.parallel`);
- `reshard_after_forward=on|off` (with `fsdp`; default on): whether each
  unit frees its gathered parameters after its forward and gathers them
  again for backward (on), or keeps them until backward (off);
- `fsdp=N,tp=M`: both, on a 2-D device mesh of N x M ranks (tensor parallel
  within each group of M, FSDP across them), as torchtitan composes them;
- `tp=N`: tensor parallel over N ranks with PyTorch's DTensor
  `parallelize_module`, by a plan: module name patterns (`*` matches one
  name) to one of `TP_STYLES`. Hugging Face decoders bring theirs
  (attention heads and MLP column- and row-wise, the embedding, the LM
  head); any model takes one given as `tp_plan`.

Torch-free: the command line's help reads `STRATEGIES`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from memflops.errors import UsageError

STRATEGIES = ("fsdp", "tp")
"""The strategies `parallel` runs (captured with PyTorch's own distributed code)."""
OPTIONS = ("reshard_after_forward",)
TP_STYLES = {
    "colwise": "ColwiseParallel: a Linear's output features split over the ranks",
    "rowwise": "RowwiseParallel: a Linear's input features split, outputs summed (all-reduce)",
    "embedding_rowwise": "RowwiseParallel of an Embedding: its rows (the vocabulary) split",
    "colwise_gather_output": "ColwiseParallel with the output gathered whole (an LM head)",
}
"""The styles of a tensor-parallel plan (the names Hugging Face's `tp_plan` uses)."""
_SWITCH = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}
LATER = ("ddp", "zero", "hsdp", "pp")
"""Strategies of the parallel issue this version does not run yet (a clear error)."""


@dataclass(frozen=True)
class ParallelSpec:
    """One parsed `parallel` option: the device mesh's dimensions, outermost first (FSDP
    across, tensor parallel within, as torchtitan lays a 2-D mesh out)."""

    dims: tuple[tuple[str, int], ...]
    """(strategy, ranks) per mesh dimension, e.g. (("fsdp", 4), ("tp", 2))."""
    reshard_after_forward: bool = True

    @property
    def world_size(self) -> int:
        """Ranks (GPUs) in all."""
        return math.prod(n for _, n in self.dims)

    def size(self, strategy: str) -> int:
        """The ranks of one mesh dimension (1 without it)."""
        return dict(self.dims).get(strategy, 1)

    @property
    def fsdp(self) -> bool:
        return "fsdp" in dict(self.dims)

    @property
    def tp(self) -> bool:
        return "tp" in dict(self.dims)

    @property
    def label(self) -> str:
        """The canonical text of this layout, e.g. "fsdp=4,tp=2"."""
        text = ",".join(f"{name}={n}" for name, n in self.dims)
        return text if self.reshard_after_forward else f"{text},reshard_after_forward=off"


def parse_parallel(text: str) -> ParallelSpec:
    """`text` (see the module docstring) as a `ParallelSpec`; a `UsageError` naming the
    bad item otherwise."""
    items: dict[str, str] = {}
    for raw in text.split(","):
        item = raw.strip()
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip().lower()
        if not sep or not key or not value:
            raise UsageError(
                f"parallel: {item!r} is not key=value; expected e.g. 'fsdp=8' or "
                f"'fsdp=8,reshard_after_forward=off'"
            )
        if key in items:
            raise UsageError(f"parallel: {key!r} is given twice in {text!r}")
        items[key] = value
    strategies = [k for k in items if k not in OPTIONS]
    for key in strategies:
        if key in LATER:
            raise UsageError(
                f"parallel: strategy {key!r} is not supported yet; supported: "
                f"{', '.join(STRATEGIES)}"
            )
        if key not in STRATEGIES:
            raise UsageError(
                f"parallel: unknown strategy or option {key!r}; expected one of: "
                f"{', '.join(STRATEGIES + OPTIONS)}"
            )
    if not strategies:
        raise UsageError(f"parallel: give a strategy, e.g. 'fsdp=8' or 'tp=2' (got {text!r})")
    if "fsdp" not in strategies and "reshard_after_forward" in items:
        raise UsageError("parallel: reshard_after_forward applies to fsdp only")
    dims = tuple((s, _world_size(s, items[s])) for s in STRATEGIES if s in strategies)
    reshard = True
    if "reshard_after_forward" in items:
        value = items["reshard_after_forward"]
        if value not in _SWITCH:
            raise UsageError(
                f"parallel: reshard_after_forward={value!r}; expected on or off"
            )
        reshard = _SWITCH[value]
    return ParallelSpec(dims, reshard)


def _world_size(strategy: str, value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        raise UsageError(
            f"parallel: {strategy}={value!r}: the number of ranks must be an integer"
        ) from None
    if size < 1:
        raise UsageError(f"parallel: {strategy}={size}: the number of ranks must be at least 1")
    return size


def check_tp_plan(plan: Mapping[str, str], where: str) -> dict[str, str]:
    """A tensor-parallel plan checked: names to styles of `TP_STYLES`; `where` names its
    source in the error."""
    if not isinstance(plan, Mapping) or not plan:
        raise UsageError(f"tp_plan ({where}): expected a mapping of module names to styles")
    for name, style in plan.items():
        if not isinstance(name, str) or style not in TP_STYLES:
            raise UsageError(
                f"tp_plan ({where}): {name!r}: {style!r} is not a style; expected one of: "
                f"{', '.join(TP_STYLES)}"
            )
    return dict(plan)


def read_tp_plan(plan: str | Mapping[str, str]) -> dict[str, str]:
    """`tp_plan` as given: a mapping, or a JSON file of one."""
    if not isinstance(plan, str):
        return check_tp_plan(plan, "given")
    path = Path(plan)
    try:
        loaded = json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"tp_plan: cannot read {plan}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"tp_plan: {plan} is not JSON: {exc.msg} (line {exc.lineno})") from None
    return check_tp_plan(loaded, plan)
