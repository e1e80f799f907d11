"""Time on an accelerator: a roofline per op, summed per module and phase.

Each priced op record (its FLOPs, MACs, bytes and dtype) runs as one kernel,
one after another, as eager PyTorch runs them:

    compute = 2 x MACs / (tensor peak of its dtype x matmul_efficiency)
              + other FLOPs / (vector fp32 peak x vector_efficiency)
    memory  = bytes read and written / (memory bandwidth x memory_efficiency)
    time    = max(compute, memory) + kernel_overhead_s

and is called compute-, memory- or overhead-bound by the largest of the
three. Matrix work (an op with MACs: matmuls, convolutions, attention) runs
on the tensor unit of its dtype (bf16, fp16, fp8; fp32 on TF32 where
PyTorch's defaults enable it: convolutions yes, matmuls no; int8 MACs at the
int8 peak); every other FLOP on the vector unit at the fp32 rate, and so are
a depthwise convolution's (one input channel per group: no reduction over
channels for a matrix unit to tile; PyTorch runs it with its own
`conv_depthwise2d`/`3d` kernels, which accumulate in fp32, unless cuDNN's
fp16 heuristics take it). An op that
moves no byte and does no arithmetic (`empty`) launches no kernel and takes
no time. The constants (`TimeConstants`) are global, stated with their
sources in docs/time-model.md and in every report that uses them,
overridable, and never fitted to a model.

Torch-free: it reads op records and the catalog.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

from memflops.capture.records import OpRecord, Phase
from memflops.errors import UsageError, did_you_mean
from memflops.hardware.catalog import Accelerator

BOUNDS = ("compute", "memory", "overhead")


@dataclass(frozen=True)
class TimeConstants:
    """The time model's global constants (docs/time-model.md gives each one's source)."""

    matmul_efficiency: float = 0.75
    """Fraction of the dense tensor peak a matmul/convolution kernel achieves."""
    vector_efficiency: float = 0.5
    """Fraction of the vector fp32 peak elementwise and reduction kernels achieve."""
    memory_efficiency: float = 0.85
    """Fraction of the memory bandwidth a streaming kernel achieves."""
    kernel_overhead_s: float = 4e-6
    """Seconds added per kernel: launch and the gap between back-to-back kernels."""
    tf32_matmul: bool = False
    """fp32 matmuls on TF32 tensor cores (`torch.backends.cuda.matmul.allow_tf32`)."""
    tf32_conv: bool = True
    """fp32 convolutions on TF32 tensor cores (`torch.backends.cudnn.allow_tf32`)."""

    def check(self) -> TimeConstants:
        for name in ("matmul_efficiency", "vector_efficiency", "memory_efficiency"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise UsageError(f"time constant {name}={value}: a fraction must be in (0, 1]")
        if self.kernel_overhead_s < 0:
            raise UsageError(
                f"time constant kernel_overhead_s={self.kernel_overhead_s}: must be >= 0"
            )
        return self


_ALIASES = {"matmul": "matmul_efficiency", "vector": "vector_efficiency",
            "memory": "memory_efficiency", "overhead": "kernel_overhead_s",
            "tf32": "tf32_matmul"}
_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "µs": 1e6, "ns": 1e9}
"""Units of a duration, as how many make a second."""


def parse_constants(given: str | Mapping[str, object] | TimeConstants | None) -> TimeConstants:
    """`"matmul=0.6,memory=0.8,overhead=5us,tf32_matmul=on"` (or a mapping of the field
    names, or `TimeConstants`) over the defaults."""
    if given is None:
        return TimeConstants()
    if isinstance(given, TimeConstants):
        return given.check()
    items: Iterable[tuple[str, object]]
    if isinstance(given, str):
        pairs = [p.partition("=") for p in filter(None, (s.strip() for s in given.split(",")))]
        bad = [k for k, sep, _ in pairs if not sep]
        if bad:
            raise UsageError(f"time constants {given!r}: expected key=value, got {bad[0]!r}")
        items = [(k.strip(), v.strip()) for k, _, v in pairs]
    else:
        items = list(given.items())
    known = {f.name: f for f in fields(TimeConstants)}
    values: dict[str, object] = {}
    for key, value in items:
        name = _ALIASES.get(key, key)
        if name not in known:
            raise UsageError(f"unknown time constant {key!r}"
                             f"{did_you_mean(key, [*known, *_ALIASES])}; known: "
                             f"{', '.join(known)}")
        values[name] = _value(name, value)
    return replace(TimeConstants(), **values).check()  # type: ignore[arg-type]


def _value(name: str, value: object) -> float | bool:
    if name.startswith("tf32"):
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text not in ("on", "off", "true", "false", "1", "0"):
            raise UsageError(f"time constant {name}={value!r}: expected on or off")
        return text in ("on", "true", "1")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = re.fullmatch(r"\s*([0-9.eE+-]+)\s*(s|ms|us|µs|ns)?\s*", str(value))
    try:
        number = float(match.group(1)) if match else float("nan")
    except ValueError:
        number = float("nan")
    if number != number:
        raise UsageError(f"time constant {name}={value!r}: expected a number")
    return number / _PER_SECOND[match.group(2)] if match and match.group(2) else number


@dataclass(frozen=True)
class PhaseTimes:
    """Seconds per phase of the analysed step."""

    forward: float = 0.0
    loss: float = 0.0
    backward: float = 0.0
    optimizer: float = 0.0
    decode: float = 0.0
    idle: float = 0.0
    """Pipeline parallel: the time this rank waits, in its schedule's bubble and for slower
    stages (`with_idle`); 0 otherwise."""

    @property
    def step(self) -> float:
        return (self.forward + self.loss + self.backward + self.optimizer + self.decode
                + self.idle)


@dataclass(frozen=True)
class TimeEstimate:
    """Time of one analysed step (or call) on one accelerator."""

    phases: PhaseTimes
    modules: Mapping[str, tuple[float, float]]
    """Module path -> (forward s, backward s), each including its submodules."""
    by_bound: tuple[tuple[str, float], ...]
    """Seconds of ops of each class (compute, memory, overhead)."""
    kernels: int
    """Kernels launched (ops that move bytes or do arithmetic)."""
    model_flops: int
    """FLOPs under `2mac` (the MFU numerator) of the timed ops."""
    peak_dtype: str
    """The unit most MACs ran on (the MFU denominator's peak), e.g. "bf16"."""
    peak_flops: int
    warnings: tuple[str, ...] = ()

    @property
    def step(self) -> float:
        return self.phases.step

    @property
    def bound(self) -> str:
        """The class that took the most time."""
        return max(self.by_bound, key=lambda kv: kv[1])[0] if self.by_bound else "compute"

    def with_idle(self, wall_s: float) -> TimeEstimate:
        """This estimate inside a step that takes `wall_s` (a pipeline schedule's): the
        difference is idle time, a phase and a class of its own."""
        idle = max(wall_s - self.step, 0.0)
        return replace(self, phases=replace(self.phases, idle=idle),
                       by_bound=(*self.by_bound, ("idle", idle)))

    def mfu(self) -> float | None:
        """Model FLOPs utilisation: 2mac FLOPs / (time x dense peak)."""
        if self.step <= 0 or self.peak_flops <= 0:
            return None
        return self.model_flops / (self.step * self.peak_flops)


@dataclass(frozen=True)
class OpTime:
    compute_s: float
    memory_s: float
    overhead_s: float
    unit: str
    """The peak it computes at: "bf16", "tf32", "fp32 vector", ... ("" for none)."""

    @property
    def total(self) -> float:
        return max(self.compute_s, self.memory_s) + self.overhead_s

    @property
    def bound(self) -> str:
        if self.overhead_s > max(self.compute_s, self.memory_s):
            return "overhead"
        return "compute" if self.compute_s >= self.memory_s else "memory"


_UNIT_OF_DTYPE = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "int8": "int8",
                  "uint8": "int8"}
CONVOLUTIONS = re.compile(r"convolution")


@dataclass
class TimeModel:
    """Prices op records on `accelerator` under `constants`."""

    accelerator: Accelerator
    constants: TimeConstants = field(default_factory=TimeConstants)
    _fallbacks: dict[str, int] = field(default_factory=dict)

    def tensor_unit(self, op: str, dtype: str | None, integer: bool) -> str:
        """The catalog column matrix work of `op` in `dtype` runs at."""
        if integer:
            unit = "int8"
        elif dtype is None:
            unit = "fp32"
        elif dtype.startswith("float8"):
            unit = "fp8"
        else:
            unit = _UNIT_OF_DTYPE.get(dtype, "")
            if not unit:  # float64, complex: no tensor peak is stated; fp32's is used
                self._fallbacks[dtype] = self._fallbacks.get(dtype, 0) + 1
                unit = "fp32"
        if unit == "fp32":
            conv = CONVOLUTIONS.search(op) is not None
            tf32 = self.constants.tf32_conv if conv else self.constants.tf32_matmul
            if tf32 and self.accelerator.peak("tf32"):
                unit = "tf32"
        return unit

    def peak(self, unit: str) -> int:
        peak = self.accelerator.peak(unit)
        if not peak:
            has = ", ".join(d for d, _ in self.accelerator.peak_flops)
            hint = {"bf16": "--dtype fp16 (or autocast fp16)", "fp32": "--dtype bf16",
                    "fp16": "--dtype bf16"}.get(unit, "another dtype")
            raise UsageError(
                f"{self.accelerator.name} has no {unit} peak (its catalog row states {has}): "
                f"the model computes in {unit}; analyse it with {hint}, or pick another "
                f"accelerator"
            )
        return peak

    def op(self, rec: OpRecord) -> OpTime | None:
        """The time of one op; None for an op that launches no kernel (or is unpriced)."""
        cost = rec.cost
        if cost is None or (cost.flops == 0 and cost.bytes == 0 and cost.integer_macs == 0):
            return None
        c = self.constants
        compute = 0.0
        unit = ""
        tensor_macs = cost.macs - cost.depthwise_macs
        if tensor_macs or cost.integer_macs:
            unit = self.tensor_unit(rec.op, rec.dtype, integer=not cost.macs)
            matrix = 2 * (tensor_macs or cost.integer_macs)
            compute = matrix / (self.peak(unit) * c.matmul_efficiency)
        rest = max(cost.flops - 2 * tensor_macs, 0)
        if rest:
            # A depthwise convolution's products (in `rest`) run here too: PyTorch's
            # own depthwise kernels multiply-add in fp32 on the vector unit.
            vector = self.accelerator.peak("fp32")
            if vector:  # accelerators stating no fp32 rate (TPUs): memory time only
                compute += rest / (vector * c.vector_efficiency)
                unit = unit or "fp32 vector"
        memory = cost.bytes / (self.accelerator.bandwidth_bytes_per_s * c.memory_efficiency)
        return OpTime(compute, memory, c.kernel_overhead_s, unit)

    def estimate(self, records: Sequence[OpRecord]) -> TimeEstimate:
        """Time per phase, per module (forward and backward), per bound, and the MFU terms."""
        phases: dict[Phase, float] = defaultdict(float)
        modules: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        bounds: dict[str, float] = dict.fromkeys(BOUNDS, 0.0)
        macs_by_unit: dict[str, int] = defaultdict(int)
        chains: dict[str, list[str]] = {}
        kernels = model_flops = 0
        for rec in records:
            t = self.op(rec)
            if t is None:
                continue
            assert rec.cost is not None
            kernels += rec.repeat
            total = t.total * rec.repeat
            phases[rec.phase] += total
            bounds[t.bound] += total
            model_flops += 2 * rec.cost.macs * rec.repeat
            if rec.cost.macs > rec.cost.depthwise_macs:
                macs_by_unit[t.unit] += (rec.cost.macs - rec.cost.depthwise_macs) * rec.repeat
            if rec.phase in (Phase.FORWARD, Phase.BACKWARD, Phase.DECODE):
                slot = 1 if rec.phase is Phase.BACKWARD else 0
                chain = chains.get(rec.module)
                if chain is None:
                    chain = chains[rec.module] = _ancestors(rec.module)
                for path in chain:
                    modules[path][slot] += total
        peak_unit = max(macs_by_unit, key=lambda u: macs_by_unit[u]) if macs_by_unit else ""
        return TimeEstimate(
            phases=PhaseTimes(*(phases.get(p, 0.0) for p in (
                Phase.FORWARD, Phase.LOSS, Phase.BACKWARD, Phase.OPTIMIZER, Phase.DECODE))),
            modules={path: (f, b) for path, (f, b) in modules.items()},
            by_bound=tuple(bounds.items()),
            kernels=kernels,
            model_flops=model_flops,
            peak_dtype=peak_unit,
            peak_flops=self.accelerator.peak(peak_unit) or 0 if peak_unit else 0,
            warnings=self.warnings(),
        )

    def warnings(self) -> tuple[str, ...]:
        return tuple(
            f"{n} matrix op(s) in {dtype} are timed at the fp32 peak (no {dtype} tensor peak "
            f"is stated for {self.accelerator.name})"
            for dtype, n in sorted(self._fallbacks.items())
        )


def _ancestors(path: str) -> list[str]:
    """`a.b.c` -> [`a.b.c`, `a.b`, `a`, ``] (the root is ""), as `aggregate.ancestors`."""
    if not path:
        return [""]
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)] + [""]


def communication_time(sent_bytes: int, accelerator: Accelerator) -> float | None:
    """Seconds one rank takes to send `sent_bytes` over the accelerator's interconnect
    (None when the catalog gives no interconnect bandwidth).

    The bandwidth term of the ring algorithm alone: a ring all-gather or
    reduce-scatter of S bytes over N ranks sends (N - 1) / N x S from each
    rank (NCCL's tests call S / time the algorithm bandwidth and this the bus
    bandwidth), at the link's unidirectional rate, taken here as half the
    catalog's bidirectional NVLink figure; per-hop latency, the gaps between
    collectives and overlap with compute are not modelled.
    """
    rate = accelerator.interconnect_bytes_per_s
    if not rate:
        return None
    return sent_bytes / (rate / 2)
