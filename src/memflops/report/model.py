"""The report: frozen dataclasses, their queries and `to_dict()`.

`to_dict()` implements the JSON schema `memflops.report/1` (see
docs/report-schema.md). Fields listed there change only with a new schema
version; new fields may be added.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from memflops.capture.records import OpRecord, Phase
from memflops.conventions import Convention
from memflops.flops.registry import ZERO, OpCost
from memflops.memory.fit import Fit, Sweep
from memflops.tensor_spec import TensorSpec, dtype_name

SCHEMA = "memflops.report/1"


@dataclass(frozen=True)
class PhaseCosts:
    """Costs of one step split by phase (loss is the scalar reduction after the forward)."""

    forward: OpCost = ZERO
    loss: OpCost = ZERO
    backward: OpCost = ZERO
    optimizer: OpCost = ZERO
    decode: OpCost = ZERO
    """Generation: every decode step of all new tokens (0 otherwise)."""

    @property
    def step(self) -> OpCost:
        return self.forward + self.loss + self.backward + self.optimizer + self.decode


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


@dataclass(frozen=True)
class Totals:
    params: int
    trainable_params: int
    buffers: int
    costs: PhaseCosts
    memory: MemoryTotals
    active_params: int | None = None
    """Mixture of experts: parameters one token runs through (None: every parameter)."""


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
    records: tuple[OpRecord, ...] = field(default=(), repr=False, compare=False)

    # --- queries -----------------------------------------------------------

    def total(self, phase: str | Phase | None = None, convention: str | None = None) -> int:
        """FLOPs of one phase ("forward", "loss", "backward") or of the step (None)."""
        conv = Convention.parse(convention) if convention is not None else self.convention
        costs = self.totals.costs
        cost = costs.step if phase is None else getattr(costs, Phase(phase).value)
        return cost.under(conv)

    def by_module(self) -> dict[str, ModuleRow]:
        """Module rows keyed by dotted path ("" is the root)."""
        return {row.path: row for row in self.modules}

    def by_operator(self, phase: str | Phase | None = None) -> dict[str, OperatorRow]:
        """Counted ops aggregated by ATen op name, largest FLOPs first."""
        wanted = None if phase is None else Phase(phase)
        acc: dict[str, tuple[int, OpCost]] = {}
        for rec in self.records:
            if rec.cost is None or (wanted is not None and rec.phase is not wanted):
                continue
            count, cost = acc.get(rec.op, (0, OpCost()))
            acc[rec.op] = (count + 1, cost + rec.cost)
        rows = [OperatorRow(op, n, c) for op, (n, c) in acc.items()]
        rows.sort(key=lambda r: (-r.cost.under(self.convention), r.op))
        return {r.op: r for r in rows}

    # --- serialisation -----------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The report as schema `memflops.report/1` (JSON-ready)."""
        conv = self.convention
        costs = self.totals.costs
        mem = self.totals.memory
        return {
            "schema": SCHEMA,
            "model": self.model,
            "mode": self.mode,
            "optimizer": self.optimizer,
            "precision": self.precision,
            "convention": conv.value,
            "inputs": [
                {"name": name, "shape": list(spec.shape), "dtype": dtype_name(spec.dtype)}
                for name, spec in self.inputs
            ],
            "totals": {
                "params": self.totals.params,
                "trainable_params": self.totals.trainable_params,
                "frozen_params": self.totals.params - self.totals.trainable_params,
                "buffers": self.totals.buffers,
                "active_params": self.totals.active_params,
                "flops": {
                    "forward": costs.forward.under(conv),
                    "loss": costs.loss.under(conv),
                    "backward": costs.backward.under(conv),
                    "optimizer": costs.optimizer.under(conv),
                    "decode": costs.decode.under(conv),
                    "step": costs.step.under(conv),
                },
                "macs": {
                    "forward": costs.forward.macs,
                    "backward": costs.backward.macs,
                    "step": costs.step.macs,
                },
                "memory": {
                    "params": mem.params,
                    "buffers": mem.buffers,
                    "grads": mem.grads,
                    "optimizer": mem.optimizer,
                    "activations": mem.activations,
                    "peak": mem.peak,
                    "seed_estimate": mem.seed_estimate,
                    "kv_cache": mem.kv_cache,
                },
            },
            "modules": [
                {
                    "path": row.path,
                    "type": row.type,
                    "depth": row.depth,
                    "params": row.params,
                    "flops": {
                        "forward": row.forward.under(conv),
                        "backward": row.backward.under(conv),
                    },
                    "macs": {"forward": row.forward.macs, "backward": row.backward.macs},
                    "output_shape": _shape_field(row.output_shape),
                    "activation_bytes": row.activation_bytes,
                    "calls": row.calls,
                }
                for row in self.modules
            ],
            "uncounted_ops": [
                {"op": u.op, "count": u.count, "modules": list(u.modules), "reason": u.reason}
                for u in self.uncounted_ops
            ],
            "memory_detail": _memory_detail(self.memory_detail),
            "batch_sweep": _sweep(self.sweep),
            "fit": _fit(self.fit),
            "generation": _generation(self.generation, conv),
            "shared_params": [{"name": a, "shares": b} for a, b in self.shared_params],
            "warnings": list(self.warnings),
        }


def _memory_detail(detail: MemoryDetail | None) -> dict[str, Any] | None:
    if detail is None:
        return None
    return {
        "peak": {
            "phase": detail.peak_phase,
            "op": detail.peak_op,
            "module": detail.peak_module,
            "by_kind": dict(detail.peak_by_kind),
        },
        "baseline": detail.baseline,
        "temporaries": detail.temporaries,
        "inputs": detail.inputs,
        "feature_maps": detail.feature_maps,
        "top_saved_modules": [
            {"module": path, "bytes": nbytes} for path, nbytes in detail.top_saved_modules
        ],
    }


def _sweep(sweep: Sweep | None) -> dict[str, Any] | None:
    if sweep is None:
        return None
    return {
        "dimension": sweep.dimension,
        "points": [
            {"size": p.size, "peak": p.peak, "seed_estimate": p.seed_estimate}
            for p in sweep.points
        ],
        "constant": sweep.constant,
        "per_item": sweep.per_item,
    }


def _fit(fit: Fit | None) -> dict[str, Any] | None:
    if fit is None:
        return None
    return {
        "dimension": fit.dimension,
        "capacity": fit.capacity,
        "largest": fit.largest,
        "peak_at_largest": fit.peak_at_largest,
        "peak_at_next": fit.peak_at_next,
        "analyses": fit.analyses,
    }


def _generation(gen: Generation | None, conv: Convention) -> dict[str, Any] | None:
    if gen is None:
        return None

    def cost(c: OpCost) -> dict[str, int]:
        return {"flops": c.under(conv), "macs": c.macs}

    return {
        "batch": gen.batch,
        "prompt_len": gen.prompt_len,
        "new_tokens": gen.new_tokens,
        "cache_dtype": gen.cache_dtype,
        "prefill": cost(gen.prefill),
        "decode_first": cost(gen.decode_first),
        "decode_last": cost(gen.decode_last),
        "decode_total": cost(gen.decode_total),
        "prefill_peak": gen.prefill_peak,
        "decode_peak": gen.decode_peak,
        "kv_cache": gen.kv_cache,
    }


def _shape_field(shapes: Iterable[tuple[int, ...]]) -> list[int] | list[list[int]] | None:
    """One output tensor: its shape; several: a list of shapes; none: null."""
    listed = [list(s) for s in shapes]
    if not listed:
        return None
    return listed[0] if len(listed) == 1 else listed
