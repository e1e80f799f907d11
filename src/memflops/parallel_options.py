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
  head); any model takes one given as `tp_plan`;
- `hsdp=RxS`: FSDP2 on a 2-D (replicate R, shard S) mesh (HSDP: sharded
  within each group of S, replicated R times, gradients all-reduced across
  replicas); `hsdp=RxS,tp=M` a 3-D mesh;
- `ddp=N`: data parallel, modelled (`memflops.capture.data_parallel`: DDP's
  gradient buckets; `gradient_as_bucket_view=on` makes the gradients views
  of them); `ddp=N,zero=1` ZeRO-1 (optimizer state split, modelled);
  `ddp=N,zero=2` runs FSDP2 with `reshard_after_forward` off, which FSDP
  documents as SHARD_GRAD_OP (torch/distributed/fsdp/api.py), and
  `ddp=N,zero=3` FSDP2 full shard, exactly `fsdp=N`;
- `mp=bf16|fp16` (with fsdp, hsdp, zero=2|3): FSDP2's mixed precision,
  parameters gathered and computed in that dtype, gradients reduced in
  float32;
- `pp=N`: pipeline parallel over N stages, modelled (`memflops.capture.pipeline`:
  the model's repeated blocks split evenly, the step captured at the
  micro-batch size and replayed by the schedule), with
  `microbatches=M` (default: the batch, micro-batches of one sample, as
  torchtitan's default), `schedule=gpipe|1f1b|interleaved` (default 1f1b)
  and, with interleaved, `virtual_stages=V` (model chunks per rank,
  default 2). `ddp=N,pp=P` runs N data-parallel replicas of the pipeline (DDP's
  buckets over each rank's own gradients, modelled); pp combines with nothing
  else here.

Torch-free: the command line's help reads `STRATEGIES`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from memflops.errors import UsageError

STRATEGIES = ("fsdp", "hsdp", "tp", "ddp", "pp")
"""The strategies `parallel` takes, outermost mesh dimension first."""
OPTIONS = ("reshard_after_forward", "zero", "gradient_as_bucket_view", "mp", "microbatches",
           "schedule", "virtual_stages")
PIPELINE_OPTIONS = ("microbatches", "schedule", "virtual_stages")
TP_STYLES = {
    "colwise": "ColwiseParallel: a Linear's output features split over the ranks",
    "rowwise": "RowwiseParallel: a Linear's input features split, outputs summed (all-reduce)",
    "embedding_rowwise": "RowwiseParallel of an Embedding: its rows (the vocabulary) split",
    "colwise_gather_output": "ColwiseParallel with the output gathered whole (an LM head)",
}
"""The styles of a tensor-parallel plan (the names Hugging Face's `tp_plan` uses)."""
MIXED_PRECISION = ("bf16", "fp16")
"""`mp=`: FSDP2's `MixedPrecisionPolicy(param_dtype=..., reduce_dtype=float32)`."""
ZERO_STAGES = (1, 2, 3)
_SWITCH = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}
SCHEDULES = {
    "gpipe": "GPipe (Huang et al. 2019): every micro-batch's forward, then every backward",
    "1f1b": "1F1B (PipeDream-Flush, Narayanan et al. 2021): stage s (of p) runs p - s - 1 "
            "forwards, then one forward and one backward in turn",
    "interleaved": "interleaved 1F1B (Narayanan et al. 2021, section 2.2): each rank holds "
                   "virtual_stages model chunks, Megatron-LM's order",
}
"""The pipeline schedules `schedule=` takes (`memflops.memory.pipeline`)."""


@dataclass(frozen=True)
class ParallelSpec:
    """One parsed `parallel` option: the device mesh's dimensions, outermost first
    (replicate and FSDP across, tensor parallel within, as torchtitan lays a mesh out)."""

    dims: tuple[tuple[str, int], ...]
    """(dimension, ranks) per mesh dimension, e.g. (("fsdp", 4), ("tp", 2)); HSDP's are
    ("replicate", R), ("fsdp", S); data parallel's ("ddp", N)."""
    reshard_after_forward: bool = True
    zero: int = 0
    """The ZeRO stage asked for with `ddp` (0: none)."""
    gradient_as_bucket_view: bool = False
    """DDP's `gradient_as_bucket_view` (modelled: the gradients are views of its buckets)."""
    mp: str | None = None
    """FSDP2's mixed-precision parameter dtype (`MIXED_PRECISION`), None: none."""
    microbatches: int = 0
    """Pipeline micro-batches per step (0: the batch, micro-batches of one sample)."""
    schedule: str = ""
    """The pipeline schedule (`SCHEDULES`), "" without pipeline parallel."""
    virtual_stages: int = 1
    """Model chunks per pipeline rank (interleaved; 1 otherwise)."""

    @property
    def world_size(self) -> int:
        """Ranks (GPUs) in all."""
        return math.prod(n for _, n in self.dims)

    def size(self, dim: str) -> int:
        """The ranks of one mesh dimension (1 without it)."""
        return dict(self.dims).get(dim, 1)

    @property
    def fsdp(self) -> bool:
        return "fsdp" in dict(self.dims)

    @property
    def hsdp(self) -> bool:
        return "replicate" in dict(self.dims)

    @property
    def tp(self) -> bool:
        return "tp" in dict(self.dims)

    @property
    def pipelined(self) -> bool:
        """Whether the layout is pipeline parallel (modelled: `memflops.capture.pipeline`)."""
        return "pp" in dict(self.dims)

    @property
    def modelled(self) -> bool:
        """Whether the layout is modelled by formulas (DDP, ZeRO-1, pipeline), not
        captured: PyTorch's DDP reducer needs real storage (see
        `memflops.memory.data_parallel`), its pipeline's send and receive real peers."""
        return "ddp" in dict(self.dims) or self.pipelined

    @property
    def data_parallel(self) -> str:
        """The mesh dimension data parallelism runs over: "fsdp" (also HSDP's shard) or
        "ddp"; "" without one."""
        return "fsdp" if self.fsdp else "ddp" if "ddp" in dict(self.dims) else ""

    def with_size(self, dim: str, ranks: int) -> ParallelSpec:
        """The same layout with `ranks` on mesh dimension `dim`."""
        return replace(self, dims=tuple((d, ranks if d == dim else n) for d, n in self.dims))

    @property
    def label(self) -> str:
        """The canonical text of this layout, e.g. "fsdp=4,tp=2" or "hsdp=2x4"."""
        dims = dict(self.dims)
        if self.zero:
            text = f"ddp={self.world_size},zero={self.zero}"
        elif self.hsdp:
            text = f"hsdp={dims['replicate']}x{dims['fsdp']}"
            text += f",tp={dims['tp']}" if self.tp else ""
        else:
            text = ",".join(f"{name}={n}" for name, n in self.dims)
        if (self.fsdp and not self.zero) and not self.reshard_after_forward:
            text += ",reshard_after_forward=off"
        if self.gradient_as_bucket_view:
            text += ",gradient_as_bucket_view=on"
        if self.mp:
            text += f",mp={self.mp}"
        if self.pipelined:
            text += f",microbatches={self.microbatches}" if self.microbatches else ""
            text += f",schedule={self.schedule}"
            text += f",virtual_stages={self.virtual_stages}" if self.virtual_stages > 1 else ""
        return text


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
        if key not in STRATEGIES:
            raise UsageError(
                f"parallel: unknown strategy or option {key!r}; expected one of: "
                f"{', '.join(STRATEGIES + OPTIONS)}"
            )
    if "zero" in items and "ddp" not in items:
        raise UsageError("parallel: zero=S needs the data-parallel ranks it partitions "
                         "over: ddp=N,zero=S (zero=3 is fsdp=N)")
    if not strategies:
        raise UsageError(f"parallel: give a strategy, e.g. 'fsdp=8' or 'tp=2' (got {text!r})")
    _check_combination(items)
    reshard = _switch(items, "reshard_after_forward", True)
    bucket_view = _switch(items, "gradient_as_bucket_view", False)
    mp = items.get("mp")
    if mp is not None and mp not in MIXED_PRECISION:
        raise UsageError(f"parallel: mp={mp!r}; expected one of: {', '.join(MIXED_PRECISION)}")
    if "pp" in items:
        return _pipeline(items)
    if "hsdp" in items:
        replicate, shard = _hsdp_sizes(items["hsdp"])
        dims: tuple[tuple[str, int], ...] = (("replicate", replicate), ("fsdp", shard))
        if "tp" in items:
            dims += (("tp", _world_size("tp", items["tp"])),)
        return ParallelSpec(dims, reshard, mp=mp)
    if "ddp" in items:
        ranks = _world_size("ddp", items["ddp"])
        stage = _zero_stage(items.get("zero"))
        if stage >= 2:  # FSDP2: see `zero_layout`
            return ParallelSpec((("fsdp", ranks),), stage == 3, zero=stage, mp=mp)
        return ParallelSpec((("ddp", ranks),), zero=stage, gradient_as_bucket_view=bucket_view)
    dims = tuple((s, _world_size(s, items[s])) for s in STRATEGIES if s in strategies)
    return ParallelSpec(dims, reshard, mp=mp)


def _check_combination(items: dict[str, str]) -> None:
    """Refuse what PyTorch cannot build, or what the options do not apply to."""
    has = set(items)
    if {"fsdp", "hsdp"} <= has:
        raise UsageError("parallel: give fsdp=N or hsdp=RxS, not both (hsdp is FSDP across "
                         "S ranks, replicated R times)")
    if "pp" in has and has & {"fsdp", "hsdp", "tp"}:
        others = ", ".join(sorted(has & {"fsdp", "hsdp", "tp"}))
        raise UsageError(f"parallel: pp combines with ddp=N only here ({others} given): "
                         f"pipeline parallel is modelled on the one-GPU step, which FSDP "
                         f"and tensor parallel are captured on")
    if "pp" in has and "zero" in has:
        raise UsageError("parallel: pp with zero=S is not modelled; pp=P,ddp=N gives DDP "
                         "over the pipeline's replicas")
    if has & set(PIPELINE_OPTIONS) and "pp" not in has:
        given = ", ".join(k for k in PIPELINE_OPTIONS if k in has)
        raise UsageError(f"parallel: {given} applies to pipeline parallel; add pp=N")
    if "ddp" in has and has & {"fsdp", "hsdp", "tp"}:
        raise UsageError("parallel: ddp combines with pp only here; for data parallel with "
                         "tensor parallel use fsdp=N,tp=M or hsdp=RxS,tp=M")
    if "reshard_after_forward" in has and not has & {"fsdp", "hsdp"}:
        raise UsageError("parallel: reshard_after_forward applies to fsdp and hsdp only "
                         "(zero=2 and zero=3 set it)")
    if "gradient_as_bucket_view" in has and ("ddp" not in has or "zero" in has):
        raise UsageError("parallel: gradient_as_bucket_view applies to ddp=N only")
    if "mp" in has and not (has & {"fsdp", "hsdp"} or items.get("zero") in ("2", "3")):
        raise UsageError("parallel: mp (FSDP2's mixed precision) applies to fsdp, hsdp and "
                         "ddp=N,zero=2|3")


def _pipeline(items: dict[str, str]) -> ParallelSpec:
    """`pp=N` with its micro-batches, schedule and virtual stages."""
    stages = _world_size("pp", items["pp"])
    microbatches = 0
    if "microbatches" in items:
        microbatches = _count("microbatches", items["microbatches"])
    schedule = items.get("schedule", "1f1b")
    if schedule not in SCHEDULES:
        raise UsageError(f"parallel: schedule={schedule!r}; expected one of: "
                         f"{', '.join(SCHEDULES)}")
    virtual = 1
    if "virtual_stages" in items:
        if schedule != "interleaved":
            raise UsageError(f"parallel: virtual_stages applies to schedule=interleaved, not "
                             f"{schedule}")
        virtual = _count("virtual_stages", items["virtual_stages"])
        if virtual < 2:
            raise UsageError(f"parallel: virtual_stages={virtual}: interleaving needs at least "
                             f"2 model chunks per rank (1 is schedule=1f1b)")
    elif schedule == "interleaved":
        virtual = 2
    dims: tuple[tuple[str, int], ...] = (("pp", stages),)
    if "ddp" in items:  # data parallel across the pipeline's replicas, outermost
        dims = (("ddp", _world_size("ddp", items["ddp"])), *dims)
    return ParallelSpec(dims, microbatches=microbatches, schedule=schedule,
                        virtual_stages=virtual,
                        gradient_as_bucket_view=_switch(items, "gradient_as_bucket_view", False))


def _count(key: str, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise UsageError(f"parallel: {key}={value!r} must be an integer") from None
    if n < 1:
        raise UsageError(f"parallel: {key}={n} must be at least 1")
    return n


def _switch(items: dict[str, str], key: str, default: bool) -> bool:
    if key not in items:
        return default
    value = items[key]
    if value not in _SWITCH:
        raise UsageError(f"parallel: {key}={value!r}; expected on or off")
    return _SWITCH[value]


def _hsdp_sizes(value: str) -> tuple[int, int]:
    replicate, sep, shard = value.partition("x")
    if not sep:
        raise UsageError(f"parallel: hsdp={value!r}; expected RxS, e.g. hsdp=2x8 (2 "
                         f"replicas of FSDP over 8 ranks)")
    return _world_size("hsdp replicas", replicate), _world_size("hsdp shards", shard)


def _zero_stage(value: str | None) -> int:
    if value is None:
        return 0
    if value not in {str(s) for s in ZERO_STAGES}:
        raise UsageError(f"parallel: zero={value!r}; expected a ZeRO stage, 1, 2 or 3")
    return int(value)


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
