"""The report: frozen dataclasses and their queries.

`Report.to_dict()` gives the JSON schema `memflops.report/1`, built by
`report/schema.py` (described in docs/report-schema.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memflops.capture.records import OpRecord, Phase
from memflops.conventions import Convention
from memflops.flops.registry import ZERO, OpCost
from memflops.hardware.catalog import Accelerator
from memflops.hardware.time_model import TimeConstants, TimeEstimate
from memflops.memory.fit import Fit, Sweep
from memflops.memory.reserved import ReservedMemory
from memflops.report import text
from memflops.report.schema import report_dict
from memflops.tensor_spec import TensorSpec
from memflops.units import format_bytes


@dataclass(frozen=True)
class PhaseCosts:
    """Costs of one step split by phase (loss is the scalar reduction after the forward)."""

    forward: OpCost = ZERO
    loss: OpCost = ZERO
    backward: OpCost = ZERO
    optimizer: OpCost = ZERO
    decode: OpCost = ZERO
    """Generation: every decode step of all new tokens (0 otherwise)."""
    recompute: OpCost = ZERO
    """Activation checkpointing: the forward ops run again in backward, a part of
    `backward` (not added to the step twice)."""

    @property
    def step(self) -> OpCost:
        return self.forward + self.loss + self.backward + self.optimizer + self.decode

    def arithmetic(self) -> PhaseCosts:
        """These costs without their traffic (bytes): MACs and FLOPs alone."""
        return PhaseCosts(*(getattr(self, f).arithmetic for f in PHASE_FIELDS))


PHASE_FIELDS = ("forward", "loss", "backward", "optimizer", "decode")


@dataclass(frozen=True)
class MemoryTotals:
    """Bytes. `activations` are the tensors saved for backward."""

    params: int = 0
    buffers: int = 0
    grads: int = 0
    optimizer: int = 0
    activations: int = 0
    peak: int = 0
    seed_estimate: int = 0
    kv_cache: int = 0
    reserved: int | None = None
    """The caching allocator's reserved peak, simulated (`memory.reserved`); None: not
    simulated (layer lists)."""
    device_total: int | None = None
    """What nvidia-smi shows: `reserved` + the CUDA context."""


@dataclass(frozen=True)
class MemoryDetail:
    """Where and when the peak happens, and what holds memory (bytes)."""

    peak_phase: str
    peak_op: str
    peak_module: str
    peak_by_kind: tuple[tuple[str, int], ...]
    baseline: int
    temporaries: int
    inputs: int
    feature_maps: int
    top_saved_modules: tuple[tuple[str, int], ...]
    allocator: ReservedMemory | None = None
    """The caching allocator's view of the steady-state step."""


@dataclass(frozen=True)
class GenerationTime:
    """Generation timed on an accelerator (seconds)."""

    prefill_s: float
    """The prompt's forward, which yields the first token: the time to first token."""
    decode_step_first_s: float
    decode_step_last_s: float
    decode_total_s: float
    """All `new_tokens` decode steps: new_tokens x (first + last) / 2."""
    decode_tokens_per_s: float
    """Tokens generated per second while decoding: batch x new_tokens / decode_total_s."""
    prefill_bound: str
    decode_bound: str
    """Where the last decode step's time goes most: compute, memory or overhead."""


@dataclass(frozen=True)
class TimelinePoint:
    """Bytes live per kind (in `MemoryTimeline.kinds` order) at one moment of the step."""

    op: int
    """The op record whose allocation or free made this moment (-1: before the step)."""
    bytes: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.bytes)


@dataclass(frozen=True)
class PhaseSpan:
    """A run of consecutive op records of one phase (`first` and `last` included)."""

    phase: str
    first: int
    last: int


@dataclass(frozen=True)
class MemoryTimeline:
    """Bytes live by kind over the op sequence of the step, bounded in size.

    The ops are cut into at most `memory.series.MAX_POINTS` equal spans; each
    span keeps the moment with the most bytes live in it (an upper envelope),
    so the step's peak is one of the points, exactly: `points[peak_point]`,
    whose total plus `overhead` is `totals.memory.peak`. Spans with no
    allocation or free have no point. The first point (op -1) is the
    baseline, before the step.
    """

    kinds: tuple[str, ...]
    ops: int
    """How many op records the step has (the x axis runs from 0 to `ops`)."""
    points: tuple[TimelinePoint, ...]
    peak_point: int
    """Index in `points` of the step's peak."""
    phases: tuple[PhaseSpan, ...]
    overhead: int = 0
    """Bytes live throughout and in no kind: the CUDA context with `allocator_overhead`."""


@dataclass(frozen=True)
class Generation:
    """Autoregressive generation: prefill, then `new_tokens` decode steps with a KV cache."""

    batch: int
    prompt_len: int
    new_tokens: int
    cache_dtype: str
    prefill: OpCost
    decode_first: OpCost
    """The first decode step (cache of prompt_len tokens)."""
    decode_last: OpCost
    """The last decode step (cache of prompt_len + new_tokens - 1 tokens)."""
    decode_total: OpCost
    prefill_peak: int
    decode_peak: int
    """Peak of the last decode step, the largest of all decode steps."""
    kv_cache: int
    """Bytes of the KV cache at the end (prompt_len + new_tokens tokens)."""
    time: GenerationTime | None = None
    """With an accelerator: prefill and decode times."""


@dataclass(frozen=True)
class GradAccumulation:
    """Gradient accumulation: the inputs are one micro-batch, and `micro_batches` of them
    run forward, loss and backward before each optimizer step. The report's totals,
    module rows, calls and times are per optimizer step; its memory is the step's peak
    over the micro-batches, and the activations one micro-batch's."""

    micro_batches: int
    micro_batch: int | None
    """Samples per micro-batch: dimension 0 of the first input (None without one)."""
    first: PhaseCosts
    """Micro-batch 1 (forward, loss, backward): it starts without gradients."""
    later: PhaseCosts
    """Each of micro-batches 2..M: its backward also adds into the gradients."""
    peak_micro_batch: int | None
    """The captured micro-batch the peak falls in: 1, or 2 standing for each of 2..M;
    None when it falls in the optimizer step."""

    @property
    def effective_batch(self) -> int | None:
        """Samples per optimizer step."""
        return None if self.micro_batch is None else self.micro_batch * self.micro_batches


@dataclass(frozen=True)
class Timing:
    """The step timed on one accelerator under the time model's constants."""

    accelerator: Accelerator
    constants: TimeConstants
    estimate: TimeEstimate
    samples: int | None = None
    """Samples per step (the batch), None when the inputs have no batch dimension."""
    tokens: int | None = None
    """Tokens per step (batch x sequence of token-id inputs), None for other inputs."""

    @property
    def samples_per_s(self) -> float | None:
        return self._rate(self.samples)

    @property
    def tokens_per_s(self) -> float | None:
        return self._rate(self.tokens)

    def _rate(self, count: int | None) -> float | None:
        step = self.estimate.step
        return count / step if count is not None and step > 0 else None

    def module(self, path: str) -> tuple[float, float]:
        """(forward s, backward s) of the module at `path`, submodules included."""
        return self.estimate.modules.get(path, (0.0, 0.0))

    @property
    def ridge(self) -> float | None:
        """FLOPs per byte where the MFU unit's peak meets the memory bandwidth."""
        bandwidth = self.accelerator.bandwidth_bytes_per_s
        peak = self.estimate.peak_flops
        return peak / bandwidth if bandwidth and peak else None

    @property
    def bound_shares(self) -> tuple[tuple[str, float], ...]:
        """(compute, memory, overhead) with each one's fraction of the step's time."""
        step = self.estimate.step
        return tuple((name, seconds / step if step > 0 else 0.0)
                     for name, seconds in self.estimate.by_bound)


@dataclass(frozen=True)
class Roof:
    """One ceiling of a roofline: a compute unit's dense peak (datasheet) and the arithmetic
    intensity where it meets the memory bandwidth's slope."""

    unit: str
    """The peak's unit as the time model names it: "tf32", "bf16", "fp32 vector", ..."""
    flops_per_s: int
    ridge: float
    """FLOPs per byte where `flops_per_s` meets the bandwidth (peak / bandwidth)."""
    efficiency: float
    """The fraction of `flops_per_s` the time model lets a kernel on this unit achieve."""


@dataclass(frozen=True)
class RooflinePoint:
    """One module of the step on the roofline: its forward and backward together."""

    path: str
    type: str
    flops: int
    """FLOPs under the report's convention, forward + backward."""
    bytes: int
    """Bytes read and written, forward + backward."""
    seconds: float
    """Its time under the time model, forward + backward."""
    share: float
    """Its fraction of the step's time (generate mode: of the prefill's)."""

    @property
    def intensity(self) -> float:
        """Arithmetic intensity: FLOPs per byte moved."""
        return self.flops / self.bytes

    @property
    def attained(self) -> float:
        """FLOP/s the time model says it attains: FLOPs over its time."""
        return self.flops / self.seconds


@dataclass(frozen=True)
class Roofline:
    """The step's modules against the accelerator's roofs (`Report.roofline`)."""

    accelerator: str
    bandwidth: int
    """Memory bandwidth, bytes/s (datasheet)."""
    roofs: tuple[Roof, ...]
    """The compute units the step's FLOPs run on, highest peak first."""
    points: tuple[RooflinePoint, ...]
    """Modules with FLOPs, bytes and time, in the report's module order."""
    memory_efficiency: float
    """The fraction of `bandwidth` the time model lets a kernel achieve."""
    scope: str = "forward and backward"
    """What each point times: "forward and backward" (train), "forward" (inference) or
    "prefill" (generate: the modules' times are the prompt's forward); `share` is of the
    step's time, or of the prefill's."""


@dataclass(frozen=True)
class CollectiveRow:
    """One collective of a distributed step, on the rank the report is for."""

    op: str
    """"all_gather" or "reduce_scatter"."""
    bytes: int
    """Its size: the gathered output of an all-gather, the input of a reduce-scatter."""
    group: str
    """The device mesh dimension it runs over."""
    group_size: int
    phase: str
    module: str
    sent_bytes: int
    """Bytes this rank sends under the ring algorithm: (N - 1) / N of the size."""


@dataclass(frozen=True)
class PipelineStage:
    """One pipeline rank's share of a step (`parallel=pp=N`, modelled): bytes are its own."""

    rank: int
    blocks: tuple[str, ...]
    """The blocks of its model chunks, in order (interleaved: every p-th chunk)."""
    params: int
    buffers: int
    grads: int
    optimizer: int
    activations: int
    """Saved for backward by one micro-batch through the rank's blocks (the activation it
    receives included)."""
    in_flight: int
    """The most forwards (micro-batch x model chunk) whose backward it has not run yet, at
    once: micro-batches of activations held (x `virtual_stages` chunks interleaved)."""
    peak: int
    send_forward: int
    """Bytes sent to the next stage per micro-batch: the activations of its chunks' outputs."""
    send_backward: int
    """Bytes sent to the previous stage per micro-batch: the gradients of its chunks' inputs."""
    time_microbatch_s: float | None = None
    """Its forward and backward of one micro-batch on the accelerator (None without)."""
    time_optimizer_s: float | None = None


@dataclass(frozen=True)
class Pipeline:
    """Pipeline parallel, modelled: the split, the schedule and every rank's share."""

    stages: int
    schedule: str
    microbatches: int
    micro_batch_size: int
    virtual_stages: int
    bubble: float
    """(p - 1) / M, interleaved (p - 1) / (v M): the idle time over the ideal compute
    time (Narayanan et al. 2021)."""
    block_list: str
    ranks: tuple[PipelineStage, ...]
    time_step_s: float | None = None
    """The step with the bubble: M x (1 + bubble) x the slowest rank's micro-batch time,
    then the slowest optimizer step (None without an accelerator)."""

    @property
    def worst(self) -> PipelineStage:
        """The rank with the highest peak (the first of equal ones)."""
        return max(self.ranks, key=lambda s: (s.peak, -s.rank))


@dataclass(frozen=True)
class Parallel:
    """A step over several GPUs (`analyze(parallel=...)`): the rank the report is for,
    its memory by the kinds of parallel training and its collectives."""

    strategy: str
    """The layout as asked, canonical (e.g. "fsdp=8")."""
    world_size: int
    rank: int
    engine: str
    """"captured": PyTorch's own distributed code ran on fake tensors; "modelled": the
    one-GPU step with the layout's formulas applied (DDP, ZeRO-1; `notes`)."""
    units: tuple[str, ...]
    """The modules wrapped as FSDP units, in order ("" is the root)."""
    by_kind: tuple[tuple[str, int], ...]
    """Bytes of each kind at the rank's peak (`memflops.memory.parallel`)."""
    collectives: tuple[CollectiveRow, ...]
    interconnect: str | None = None
    """The link `time_comm_s` is priced on, None without an accelerator."""
    time_comm_s: float | None = None
    """`communication_bytes` over the accelerator's interconnect bandwidth."""
    time_step_serial_s: float | None = None
    """The step's compute time plus `time_comm_s`: no communication overlapped."""
    time_step_overlapped_s: float | None = None
    """The larger of the two: every collective hidden behind compute, or the reverse."""
    notes: tuple[str, ...] = ()
    """What a modelled layout assumed, each formula with its source (empty when captured)."""
    pipeline: Pipeline | None = None
    """Pipeline parallel's stages (`pp=N`); None without."""

    @property
    def communication_bytes(self) -> int:
        """Bytes this rank sends in the step (the sum of `sent_bytes`)."""
        return sum(c.sent_bytes for c in self.collectives)

    def by_op(self) -> tuple[tuple[str, int, int], ...]:
        """(op, calls, their total size) per kind of collective, in order of first call."""
        totals: dict[str, tuple[int, int]] = {}
        for c in self.collectives:
            calls, size = totals.get(c.op, (0, 0))
            totals[c.op] = (calls + 1, size + c.bytes)
        return tuple((op, calls, size) for op, (calls, size) in totals.items())


@dataclass(frozen=True)
class Totals:
    params: int
    trainable_params: int
    buffers: int
    costs: PhaseCosts
    memory: MemoryTotals
    active_params: int | None = None
    """Mixture of experts: parameters one token runs through (None: every parameter)."""

    @property
    def frozen_params(self) -> int:
        """Parameters that do not train (`requires_grad` False)."""
        return self.params - self.trainable_params


@dataclass(frozen=True)
class ModuleRow:
    """One module; counts include its submodules."""

    path: str
    type: str
    depth: int
    params: int
    forward: OpCost
    backward: OpCost
    output_shape: tuple[tuple[int, ...], ...]
    calls: int
    activation_bytes: int = 0
    recompute: OpCost = ZERO
    """The part of `backward` that re-ran this module's forward (activation checkpointing)."""


@dataclass(frozen=True)
class Checkpointing:
    """Activation checkpointing in the analysed step: the outermost modules whose forward
    ran again in backward, and the same step captured with checkpointing turned off
    (None when it could not be: `note` says why)."""

    modules: tuple[str, ...]
    activations_without: int | None
    peak_without: int | None
    note: str = ""


@dataclass(frozen=True)
class UncountedOp:
    op: str
    count: int
    modules: tuple[str, ...]
    reason: str = "no rule"


@dataclass(frozen=True)
class OperatorRow:
    op: str
    count: int
    cost: OpCost


@dataclass(frozen=True)
class Report:
    """Everything one analysis found. Renderers format it; they compute nothing."""

    model: str
    mode: str
    convention: Convention
    precision: str
    inputs: tuple[tuple[str, TensorSpec], ...]
    totals: Totals
    modules: tuple[ModuleRow, ...]
    uncounted_ops: tuple[UncountedOp, ...]
    warnings: tuple[str, ...]
    shared_params: tuple[tuple[str, str], ...] = ()
    optimizer: str | None = None
    memory_detail: MemoryDetail | None = None
    sweep: Sweep | None = None
    fit: Fit | None = None
    generation: Generation | None = None
    checkpointing: Checkpointing | None = None
    memory_timeline: MemoryTimeline | None = None
    records: tuple[OpRecord, ...] = field(default=(), repr=False, compare=False)
    timing: Timing | None = None
    """With an accelerator (`analyze(gpu=...)`): the step's time on it."""
    parallel: Parallel | None = None
    """With `analyze(parallel=...)`: the layout, rank and collectives; `totals.memory` is
    then that rank's."""
    grad_accumulation: GradAccumulation | None = None
    """With `analyze(grad_accumulation=M)`, M > 1: the micro-batches of one step."""
    bytes_priced: bool = True
    """Whether the ops' bytes were priced (a layer-list spec, which has shapes and no
    tensors, does not price them: its bytes fields are null)."""

    # --- queries -----------------------------------------------------------

    def total(self, phase: str | Phase | None = None, convention: str | None = None) -> int:
        """FLOPs of one phase ("forward", "loss", "backward") or of the step (None)."""
        conv = Convention.parse(convention) if convention is not None else self.convention
        costs = self.totals.costs
        cost = costs.step if phase is None else getattr(costs, Phase(phase).value)
        return cost.under(conv)

    def intensity(self, phase: str | Phase | None = None) -> float | None:
        """Arithmetic intensity: FLOPs (under the report's convention) per byte moved, of
        one phase or the step; None when no byte was priced."""
        costs = self.totals.costs
        cost = costs.step if phase is None else getattr(costs, Phase(phase).value)
        if not self.bytes_priced or cost.bytes == 0:
            return None
        return cost.under(self.convention) / cost.bytes

    def by_module(self) -> dict[str, ModuleRow]:
        """Module rows keyed by dotted path ("" is the root)."""
        return {row.path: row for row in self.modules}

    def chart_modules(self, max_rows: int = 48) -> tuple[tuple[ModuleRow, ...], int]:
        """The modules a per-module chart shows, and how many it would show without `max_rows`.

        The deepest cut of the module tree with at most `max_rows` modules:
        each module at depth d, and each shallower module whose children (down
        to depth d) have neither parameters nor forward FLOPs — a leaf, or a
        layer whose work is its own (a Linear with an activation inside);
        modules with neither are left out. When even depth 1 has too many,
        its first `max_rows` are shown.
        """
        rows = self.modules
        if len(rows) <= 1:
            return rows, len(rows)
        children: dict[int, list[int]] = {i: [] for i in range(len(rows))}
        parents: list[int] = []
        for i, row in enumerate(rows):
            while parents and rows[parents[-1]].depth >= row.depth:
                parents.pop()
            if parents:
                children[parents[-1]].append(i)
            parents.append(i)

        def cut(i: int, depth: int) -> list[ModuleRow]:
            row = rows[i]
            below = [] if row.depth == depth else [
                r for c in children[i] for r in cut(c, depth)
            ]
            if below:
                return below
            return [row] if row.params or row.forward.under(self.convention) else []

        deepest = max(row.depth for row in rows)
        for depth in range(deepest, 1, -1):
            chosen = [r for c in children[0] for r in cut(c, depth)]
            if len(chosen) <= max_rows:
                return tuple(chosen), len(chosen)
        chosen = [r for c in children[0] for r in cut(c, 1)]
        return tuple(chosen[:max_rows]), len(chosen)

    def roofline(self, max_points: int = 400) -> Roofline | None:
        """The roofline of the step: each module of the deepest cut of the tree with at most
        `max_points` modules (`chart_modules`), forward and backward together (generate
        mode: the prefill), at its
        arithmetic intensity and attained FLOP/s, under the roofs of the units it computes
        on (the MFU's tensor unit and the fp32 vector unit). None without an accelerator or
        without priced bytes."""
        timing = self.timing
        if timing is None or not self.bytes_priced:
            return None
        acc, est, conv = timing.accelerator, timing.estimate, self.convention
        bandwidth = acc.bandwidth_bytes_per_s
        generate = self.mode == "generate"
        step = est.phases.forward if generate else est.step
        scope = "prefill" if generate else "forward and backward" if self.mode == "train" \
            else "forward"
        if bandwidth <= 0 or step <= 0:
            return None
        rows, _ = self.chart_modules(max_points)
        points = []
        for row in rows:
            flops = row.forward.under(conv) + row.backward.under(conv)
            nbytes = row.forward.bytes + row.backward.bytes
            seconds = sum(timing.module(row.path))
            if flops > 0 and nbytes > 0 and seconds > 0:
                points.append(RooflinePoint(row.path, row.type, flops, nbytes, seconds,
                                            seconds / step))
        units = [est.peak_dtype] if est.peak_dtype else []
        units.append("fp32")
        c = timing.constants
        roofs = []
        for unit in dict.fromkeys(units):
            peak = acc.peak(unit)
            if not peak:
                continue
            if unit != "fp32":
                roofs.append(Roof(f"{unit} tensor", peak, peak / bandwidth, c.matmul_efficiency))
            elif est.peak_dtype == "fp32":  # fp32 matmuls without TF32 run at the vector rate
                roofs.append(Roof("fp32", peak, peak / bandwidth, c.matmul_efficiency))
            else:
                roofs.append(Roof("fp32 vector", peak, peak / bandwidth, c.vector_efficiency))
        roofs.sort(key=lambda r: -r.flops_per_s)
        if not points or not roofs:
            return None
        return Roofline(acc.name, bandwidth, tuple(roofs), tuple(points), c.memory_efficiency,
                        scope)

    def by_operator(self, phase: str | Phase | None = None) -> dict[str, OperatorRow]:
        """Counted ops aggregated by ATen op name, largest FLOPs first."""
        wanted = None if phase is None else Phase(phase)
        acc: dict[str, tuple[int, OpCost]] = {}
        for rec in self.records:
            if rec.cost is None or (wanted is not None and rec.phase is not wanted):
                continue
            count, cost = acc.get(rec.op, (0, OpCost()))
            acc[rec.op] = (count + rec.repeat, cost + rec.cost * rec.repeat)
        rows = [OperatorRow(op, n, c) for op, (n, c) in acc.items()]
        rows.sort(key=lambda r: (-r.cost.under(self.convention), r.op))
        return {r.op: r for r in rows}

    # --- display -------------------------------------------------------------

    def __repr__(self) -> str:
        """A few readable lines: the model, the step, and its headline numbers."""
        conv = self.convention
        lines = [
            f"<memflops Report: {self.model}>",
            "  " + " · ".join(text.header_facts(self)),
            f"  params {text.exact_count(self.totals.params)}",
        ]
        for label, cost, _ in text.phases(self):
            lines.append(f"  {label} {text.exact_count(cost.under(conv))} FLOPs")
        memory = self.totals.memory
        if memory.peak:
            where = text.peak_where(self)
            lines.append(f"  peak memory {format_bytes(memory.peak)}"
                         + (f" ({where})" if where else ""))
        if self.fit is not None:
            answer = (f"{self.fit.largest}" if not self.fit.reached_limit
                      else f"no limit found up to {self.fit.limit} ({self.fit.limit_reason})")
            lines.append(f"  largest {self.fit.dimension} that fits "
                         f"{format_bytes(self.fit.capacity)}: {answer}")
        lines.append(f"  {len(self.modules)} module(s), {len(self.uncounted_ops)} uncounted op "
                     f"kind(s), {len(self.warnings)} warning(s)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The HTML report (charts included), as Jupyter shows it in a cell."""
        from memflops.report.html import html_fragment

        return html_fragment(self)

    def plot_timeline(self) -> Any:
        """The memory timeline as a matplotlib figure (`pip install 'memflops[plot]'`)."""
        from memflops.report.plot import plot_timeline

        return plot_timeline(self)

    def plot_modules(self) -> Any:
        """Parameters and FLOPs per module as a matplotlib figure."""
        from memflops.report.plot import plot_modules

        return plot_modules(self)

    def plot_sweep(self) -> Any:
        """Peak memory against batch size as a matplotlib figure (needs a sweep or a fit)."""
        from memflops.report.plot import plot_sweep

        return plot_sweep(self)

    def plot_roofline(self) -> Any:
        """Each module's arithmetic intensity against its attained FLOP/s, under the
        accelerator's roofs, as a matplotlib figure (needs `gpu=`)."""
        from memflops.report.plot import plot_roofline

        return plot_roofline(self)

    # --- serialisation -----------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The report as schema `memflops.report/1` (JSON-ready; see `report/schema.py`)."""
        return report_dict(self)
