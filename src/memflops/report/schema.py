"""The JSON schema `memflops.report/1`: a `Report` as a JSON-ready dict.

docs/report-schema.md describes the document field by field; this module
implements it, and `Report.to_dict()` returns what `report_dict` builds.
Fields listed there change only with a new schema version; new fields may be
added.

The report's dataclasses are imported for type checking only: `report/model.py`
imports this module, so a run-time import back would be a cycle.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from memflops.tensor_spec import dtype_name

if TYPE_CHECKING:
    from memflops.conventions import Convention
    from memflops.flops.registry import OpCost
    from memflops.memory.fit import Fit, Sweep
    from memflops.memory.reserved import ReservedMemory
    from memflops.report.model import (
        Checkpointing,
        Generation,
        GradAccumulation,
        MemoryDetail,
        MemoryTimeline,
        ModuleRow,
        Parallel,
        PhaseCosts,
        Pipeline,
        Report,
        Timing,
        Totals,
    )

SCHEMA = "memflops.report/1"


def report_dict(report: Report) -> dict[str, Any]:
    """The report as schema `memflops.report/1` (JSON-ready)."""
    conv = report.convention
    return {
        "schema": SCHEMA,
        "model": report.model,
        "mode": report.mode,
        "optimizer": report.optimizer,
        "precision": report.precision,
        "convention": conv.value,
        "inputs": [
            {"name": name, "shape": list(spec.shape), "dtype": dtype_name(spec.dtype),
             "requires_grad": spec.requires_grad,
             "lengths": None if spec.lengths is None else list(spec.lengths)}
            for name, spec in report.inputs
        ],
        "hardware": _hardware(report.timing),
        "totals": {
            **_totals(report.totals, conv),
            **_traffic(report),
            **_time_totals(report.timing),
        },
        "modules": [
            {**_module(row, conv), **_module_time(row, report)} for row in report.modules
        ],
        "uncounted_ops": [
            {"op": u.op, "count": u.count, "modules": list(u.modules), "reason": u.reason}
            for u in report.uncounted_ops
        ],
        "memory_detail": _memory_detail(report.memory_detail),
        "memory_timeline": _memory_timeline(report.memory_timeline),
        "batch_sweep": _sweep(report.sweep),
        "fit": _fit(report.fit),
        "generation": _generation(report.generation, conv, report.bytes_priced),
        "checkpointing": _checkpointing(report.checkpointing),
        "parallel": _parallel(report.parallel),
        "grad_accumulation": _grad_accumulation(report.grad_accumulation, conv),
        "shared_params": [{"name": a, "shares": b} for a, b in report.shared_params],
        "warnings": list(report.warnings),
    }


def _totals(totals: Totals, conv: Convention) -> dict[str, Any]:
    costs = totals.costs
    mem = totals.memory
    return {
        "params": totals.params,
        "trainable_params": totals.trainable_params,
        "frozen_params": totals.frozen_params,
        "buffers": totals.buffers,
        "active_params": totals.active_params,
        "flops": {
            "forward": costs.forward.under(conv),
            "loss": costs.loss.under(conv),
            "backward": costs.backward.under(conv),
            "optimizer": costs.optimizer.under(conv),
            "decode": costs.decode.under(conv),
            "step": costs.step.under(conv),
            "recompute": costs.recompute.under(conv),
        },
        "macs": {
            "forward": costs.forward.macs,
            "backward": costs.backward.macs,
            "step": costs.step.macs,
            "recompute": costs.recompute.macs,
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
            "reserved": mem.reserved,
            "device_total": mem.device_total,
        },
    }


def _module(row: ModuleRow, conv: Convention) -> dict[str, Any]:
    return {
        "path": row.path,
        "type": row.type,
        "depth": row.depth,
        "params": row.params,
        "flops": {
            "forward": row.forward.under(conv),
            "backward": row.backward.under(conv),
            "recompute": row.recompute.under(conv),
        },
        "macs": {"forward": row.forward.macs, "backward": row.backward.macs},
        "output_shape": _shape_field(row.output_shape),
        "activation_bytes": row.activation_bytes,
        "calls": row.calls,
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
        "allocator": _allocator(detail.allocator),
    }


def _allocator(sim: ReservedMemory | None) -> dict[str, Any] | None:
    if sim is None:
        return None
    return {
        "conf": sim.config.text,
        "reserved": sim.reserved,
        "allocated_peak": sim.allocated_peak,
        "requested_peak": sim.requested_peak,
        "allocated_at_reserved_peak": sim.allocated_at_reserved_peak,
        "fragmentation": sim.fragmentation,
        "segments": sim.segments,
        "pools": {
            pool: {"reserved": reserved, "allocated": allocated, "segments": segments}
            for pool, reserved, allocated, segments in sim.by_pool
        },
        "cublas_workspaces": sim.workspaces,
        "cuda_context": sim.cuda_context,
        "device_total": sim.device_total,
        "num_alloc_retries": sim.num_alloc_retries,
    }


def _memory_timeline(series: MemoryTimeline | None) -> dict[str, Any] | None:
    if series is None:
        return None
    return {
        "kinds": list(series.kinds),
        "ops": series.ops,
        "overhead": series.overhead,
        "phases": [{"phase": s.phase, "first": s.first, "last": s.last} for s in series.phases],
        "peak_point": series.peak_point,
        "points": [{"op": p.op, "bytes": list(p.bytes)} for p in series.points],
    }


def _sweep(sweep: Sweep | None) -> dict[str, Any] | None:
    if sweep is None:
        return None
    return {
        "dimension": sweep.dimension,
        "points": [
            {
                "size": p.size, "peak": p.peak, "reserved": p.reserved,
                "seed_estimate": p.seed_estimate,
                "time_step_s": p.time_step_s, "samples_per_s": p.samples_per_s,
            }
            for p in sweep.points
        ],
        "constant": sweep.constant,
        "per_item": sweep.per_item,
        "saturated_at": sweep.saturated_at,
    }


def _fit(fit: Fit | None) -> dict[str, Any] | None:
    if fit is None:
        return None
    return {
        "dimension": fit.dimension,
        "against": fit.against,
        "capacity": fit.capacity,
        "largest": fit.largest,
        "peak_at_largest": fit.peak_at_largest,
        "peak_at_next": fit.peak_at_next,
        "analyses": fit.analyses,
        "time_step_s": fit.time_step_s,
        "samples_per_s": fit.samples_per_s,
        "limit": fit.limit,
        "limit_reason": fit.limit_reason,
        "reached_limit": fit.reached_limit,
    }


def _generation(
    gen: Generation | None, conv: Convention, bytes_priced: bool = True
) -> dict[str, Any] | None:
    if gen is None:
        return None

    def cost(c: OpCost) -> dict[str, int | None]:
        return {"flops": c.under(conv), "macs": c.macs, "bytes": c.bytes if bytes_priced else None}

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
        "time": None if gen.time is None else {
            "prefill_s": gen.time.prefill_s,
            "time_to_first_token_s": gen.time.prefill_s,
            "decode_step_first_s": gen.time.decode_step_first_s,
            "decode_step_last_s": gen.time.decode_step_last_s,
            "decode_total_s": gen.time.decode_total_s,
            "decode_tokens_per_s": gen.time.decode_tokens_per_s,
            "prefill_bound": gen.time.prefill_bound,
            "decode_bound": gen.time.decode_bound,
        },
    }


_PHASES = ("forward", "loss", "backward", "optimizer", "decode")


def _traffic(report: Report) -> dict[str, Any]:
    """`totals.bytes` (read + written per phase) and `totals.arithmetic_intensity`."""
    if not report.bytes_priced:
        return {"bytes": None, "bytes_read": None, "bytes_written": None,
                "arithmetic_intensity": None}
    costs = report.totals.costs
    phases = [(name, getattr(costs, name)) for name in _PHASES] + [("step", costs.step)]
    return {
        "bytes": {name: c.bytes for name, c in phases},
        "bytes_read": {name: c.bytes_read for name, c in phases},
        "bytes_written": {name: c.bytes_written for name, c in phases},
        "arithmetic_intensity": {
            name: report.intensity(None if name == "step" else name)
            for name in ("forward", "backward", "step")
        },
    }


def _hardware(timing: Timing | None) -> dict[str, Any] | None:
    if timing is None:
        return None
    acc, c = timing.accelerator, timing.constants
    return {
        "name": acc.name,
        "memory": acc.memory_bytes,
        "bandwidth": acc.bandwidth_bytes_per_s,
        "peak_flops": dict(acc.peak_flops),
        "interconnect": acc.interconnect or None,
        "interconnect_bandwidth": acc.interconnect_bytes_per_s,
        "pcie_bandwidth": acc.pcie_bytes_per_s,
        "efficiency": {
            "matmul": c.matmul_efficiency,
            "vector": c.vector_efficiency,
            "memory": c.memory_efficiency,
        },
        "kernel_overhead_s": c.kernel_overhead_s,
        "tf32_matmul": c.tf32_matmul,
        "tf32_conv": c.tf32_conv,
        "fusion": "eager",
        "source": acc.source,
    }


def _time_totals(timing: Timing | None) -> dict[str, Any]:
    """`totals.time`, `totals.throughput`, `totals.mfu` (null without an accelerator)."""
    if timing is None:
        return {"time": None, "throughput": None, "mfu": None}
    est = timing.estimate
    return {
        "time": {
            **{name: getattr(est.phases, name) for name in _PHASES},
            "idle": est.phases.idle,
            "step": est.step,
            "by_bound": dict(est.by_bound),
            "bound": est.bound,
            "kernels": est.kernels,
        },
        "throughput": {
            "samples_per_s": timing.samples_per_s,
            "tokens_per_s": timing.tokens_per_s,
        },
        "mfu": est.mfu(),
        "mfu_peak": {"dtype": est.peak_dtype or None, "flops": est.peak_flops or None},
    }


def _module_time(row: ModuleRow, report: Report) -> dict[str, Any]:
    """`modules[].bytes` and `modules[].time` ({forward, backward}; null when not priced)."""
    timing = report.timing
    forward, backward = timing.module(row.path) if timing is not None else (0.0, 0.0)
    return {
        "bytes": {"forward": row.forward.bytes, "backward": row.backward.bytes}
        if report.bytes_priced else None,
        "time": {"forward": forward, "backward": backward} if timing is not None else None,
    }


def _parallel(par: Parallel | None) -> dict[str, Any] | None:
    if par is None:
        return None
    return {
        "strategy": par.strategy,
        "world_size": par.world_size,
        "rank": par.rank,
        "engine": par.engine,
        "units": list(par.units),
        "by_kind": dict(par.by_kind),
        "collectives": [
            {"op": c.op, "bytes": c.bytes, "group": c.group, "group_size": c.group_size,
             "phase": c.phase, "module": c.module, "sent_bytes": c.sent_bytes}
            for c in par.collectives
        ],
        "communication_bytes": par.communication_bytes,
        "interconnect": par.interconnect,
        "time_comm_s": par.time_comm_s,
        "time_step_serial_s": par.time_step_serial_s,
        "time_step_overlapped_s": par.time_step_overlapped_s,
        "notes": list(par.notes),
        "pipeline": _pipeline(par.pipeline),
    }


def _pipeline(pipe: Pipeline | None) -> dict[str, Any] | None:
    if pipe is None:
        return None
    return {
        "stages": pipe.stages,
        "schedule": pipe.schedule,
        "microbatches": pipe.microbatches,
        "micro_batch_size": pipe.micro_batch_size,
        "virtual_stages": pipe.virtual_stages,
        "bubble": pipe.bubble,
        "block_list": pipe.block_list,
        "worst_rank": pipe.worst.rank,
        "time_step_s": pipe.time_step_s,
        "ranks": [
            {"rank": r.rank, "blocks": list(r.blocks), "params": r.params,
             "buffers": r.buffers, "grads": r.grads, "optimizer": r.optimizer,
             "activations": r.activations, "in_flight": r.in_flight, "peak": r.peak,
             "send_forward": r.send_forward, "send_backward": r.send_backward,
             "time_microbatch_s": r.time_microbatch_s, "time_optimizer_s": r.time_optimizer_s}
            for r in pipe.ranks
        ],
    }


def _grad_accumulation(acc: GradAccumulation | None, conv: Convention) -> dict[str, Any] | None:
    if acc is None:
        return None

    def flops(c: PhaseCosts) -> dict[str, int]:
        return {"forward": c.forward.under(conv), "loss": c.loss.under(conv),
                "backward": c.backward.under(conv)}

    def macs(c: PhaseCosts) -> dict[str, int]:
        return {"forward": c.forward.macs, "backward": c.backward.macs}

    return {
        "micro_batches": acc.micro_batches,
        "micro_batch": acc.micro_batch,
        "effective_batch": acc.effective_batch,
        "peak_micro_batch": acc.peak_micro_batch,
        "flops": {"first": flops(acc.first), "later": flops(acc.later)},
        "macs": {"first": macs(acc.first), "later": macs(acc.later)},
    }


def _checkpointing(ckpt: Checkpointing | None) -> dict[str, Any] | None:
    if ckpt is None:
        return None
    return {
        "modules": list(ckpt.modules),
        "activations_without": ckpt.activations_without,
        "peak_without": ckpt.peak_without,
        "note": ckpt.note or None,
    }


def _shape_field(shapes: Iterable[tuple[int, ...]]) -> list[int] | list[list[int]] | None:
    """One output tensor: its shape; several: a list of shapes; none: null."""
    listed = [list(s) for s in shapes]
    if not listed:
        return None
    return listed[0] if len(listed) == 1 else listed
