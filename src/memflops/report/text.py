"""Wording and number formats shared by the Markdown, CSV and HTML renderers.

Every function reads fields of the typed `Report` and formats them; none
derives a number. The report's dataclasses are imported for type checking
only: `report/model.py` renders itself in notebooks through `report/html.py`,
so a run-time import back would be a cycle.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from memflops.memory.fit import SATURATION
from memflops.tensor_spec import dtype_name
from memflops.units import format_bytes, format_count, format_int, format_seconds

if TYPE_CHECKING:
    from memflops.flops.registry import OpCost
    from memflops.memory.fit import Fit
    from memflops.report.model import ModuleRow, Report

ROOT_LABEL = "(root)"
COUNT_UNITS = "K = 10^3, M = 10^6, G = 10^9, T = 10^12"
BYTE_UNITS = "1 KiB = 2^10 B, 1 MiB = 2^20 B, 1 GiB = 2^30 B"


def is_train(report: Report) -> bool:
    return report.mode == "train"


def shape_text(shape: Sequence[int]) -> str:
    """`8x3x224x224`; `scalar` for a 0-d tensor."""
    return "x".join(str(d) for d in shape) or "scalar"


def output_shape_text(row: ModuleRow) -> str:
    """`8x10`; `8x10, 8` for several output tensors; `-` for none."""
    if row.calls == 0:
        return "(not called)"
    if not row.output_shape:
        return "-"
    return ", ".join(shape_text(s) for s in row.output_shape)


def inputs_text(report: Report) -> str:
    """`input[0]=8x3x224x224:float32, ...` or `none`."""
    listed = ", ".join(
        f"{name}={spec.dims()}:{dtype_name(spec.dtype)}" for name, spec in report.inputs
    )
    return listed or "none"


def header_facts(report: Report) -> list[str]:
    """Mode, optimizer (train), precision, convention, inputs."""
    facts = [f"mode {report.mode}"]
    if is_train(report):
        facts.append(f"optimizer {report.optimizer or 'none'}")
    facts += [
        f"precision {report.precision}",
        f"convention {report.convention.value}",
        f"inputs {inputs_text(report)}",
    ]
    accumulation = accumulation_fact(report)
    if accumulation is not None:
        facts.append(accumulation)
    return facts


def accumulation_fact(report: Report) -> str | None:
    """`accumulation 4 micro-batches of 8, effective batch 32 (...)` (gradient
    accumulation; a header fact: its name, a space, its value), or None without."""
    acc = report.grad_accumulation
    if acc is None:
        return None
    size = f" of {acc.micro_batch}" if acc.micro_batch is not None else ""
    effective = (f", effective batch {acc.effective_batch}"
                 if acc.effective_batch is not None else "")
    return (f"accumulation {acc.micro_batches} micro-batches{size}{effective} "
            f"(the inputs are one micro-batch; FLOPs, calls and time per optimizer step)")


def module_label(row: ModuleRow) -> str:
    return row.path or ROOT_LABEL


def exact_count(n: int) -> str:
    """`9,472 (9.47 K)`: the exact count, then its decimal-prefixed form when shorter."""
    short = format_count(n)
    return format_int(n) if short == str(n) else f"{format_int(n)} ({short})"


def exact_bytes(n: int) -> str:
    """`2.35 MiB (2,469,134 B)`; under 1 KiB just `512 B`."""
    human, exact = format_bytes(n), f"{format_int(n)} B"
    return exact if human == f"{n} B" else f"{human} ({exact})"


RECOMPUTE_LABEL = "of which recomputed forward"
"""`phases`' label of the forward run again in backward (a part of the backward)."""


def phases(report: Report) -> Iterator[tuple[str, OpCost, bool]]:
    """Label, cost and whether its MACs are stated (those the schema's `totals.macs` has):
    forward, then in training loss, backward, optimizer step and the whole step (as the
    table renderer; generation's phases are in its own section)."""
    costs = report.totals.costs
    yield "forward", costs.forward, True
    if not is_train(report):
        return
    if costs.loss.under(report.convention):
        yield "loss", costs.loss, False
    yield "backward", costs.backward, True
    if costs.recompute.under(report.convention):
        yield RECOMPUTE_LABEL, costs.recompute, False
    if costs.optimizer.under(report.convention):
        yield "optimizer step", costs.optimizer, False
    yield "whole step", costs.step, True


def cost_line(report: Report, cost: OpCost, with_macs: bool) -> str:
    """`6,100,000 (6.10 M) FLOPs, 3,000,000 (3.00 M) MACs, 12.00 MiB moved`: the MACs when
    asked, the bytes when the report priced them."""
    line = f"{exact_count(cost.under(report.convention))} FLOPs"
    if with_macs:
        line += f", {exact_count(cost.macs)} MACs"
    if report.bytes_priced:
        line += f", {format_bytes(cost.bytes)} moved"
    return line


def time_title(report: Report) -> str | None:
    """`Time on NVIDIA A100 80GB SXM (80.00 GiB, 2039 GB/s): a roofline per op`."""
    timing = report.timing
    if timing is None:
        return None
    acc = timing.accelerator
    return (f"Time on {acc.name} ({format_bytes(acc.memory_bytes)}, "
            f"{acc.bandwidth_bytes_per_s / 1e9:g} GB/s): a roofline per op")


def time_rows(report: Report) -> list[tuple[str, str]]:
    """The time model's results, as the table's time section states them: seconds per phase,
    the step, throughput, MFU, bounds, intensity and the constants (none without `gpu=`)."""
    timing = report.timing
    if timing is None:
        return []
    est, c = timing.estimate, timing.constants
    phases = est.phases
    rows = [(label, format_seconds(seconds)) for label, seconds in (
        ("forward", phases.forward), ("loss", phases.loss), ("backward", phases.backward),
        ("optimizer step", phases.optimizer), ("decode (all steps)", phases.decode),
        ("idle (pipeline bubble)", phases.idle),
    ) if seconds]
    rows.append(("whole step" if report.mode != "generate" else "whole generation",
                 format_seconds(est.step)))
    rates = []
    if timing.samples_per_s is not None:
        rates.append(f"{timing.samples_per_s:,.1f} samples/s")
    if timing.tokens_per_s is not None:
        rates.append(f"{timing.tokens_per_s:,.1f} tokens/s")
    if rates:
        rows.append(("throughput", ", ".join(rates)))
    mfu = est.mfu()
    if mfu is not None:
        rows.append(("MFU", f"{100 * mfu:.1f}% (2mac FLOPs over time x {est.peak_dtype} dense "
                            f"peak {est.peak_flops / 1e12:g} TFLOP/s)"))
    rows.append(("bound", ", ".join(f"{name} {100 * share:.0f}%"
                                    for name, share in timing.bound_shares)
                 + f" of the time ({format_int(est.kernels)} kernels)"))
    intensity = report.intensity()
    if intensity is not None:
        ridge = timing.ridge
        rows.append(("arithmetic intensity", f"{intensity:.1f} FLOPs/byte"
                     + (f" (ridge point {ridge:.0f})" if ridge is not None else "")))
    rows.append(("constants", f"matmul {c.matmul_efficiency:g}, vector {c.vector_efficiency:g} "
                 f"and memory {c.memory_efficiency:g} of peak; {c.kernel_overhead_s * 1e6:g} us "
                 f"per kernel; TF32 matmul {'on' if c.tf32_matmul else 'off'}, conv "
                 f"{'on' if c.tf32_conv else 'off'}; eager (no fusion)"))
    return rows


def allocator_rows(report: Report) -> list[tuple[str, str]]:
    """The caching allocator's reserved peak, what was in use then, and the device total
    (none when the allocator was not simulated)."""
    sim = report.memory_detail.allocator if report.memory_detail is not None else None
    if sim is None:
        return []
    rows = [("reserved (caching allocator)", exact_bytes(sim.reserved))]
    if sim.config.text:
        rows.append(("allocator options", sim.config.text))
    rows += [
        ("at the reserved peak", f"{exact_bytes(sim.allocated_at_reserved_peak)} in use, "
                                 f"{format_bytes(sim.fragmentation)} free in "
                                 f"{format_int(sim.segments)} segments"),
        ("device total (nvidia-smi)", f"{exact_bytes(sim.device_total)}: reserved + CUDA "
                                      f"context {format_bytes(sim.cuda_context)}"),
    ]
    return rows


CHECKPOINTED_SHOWN = 4
"""Checkpointed regions named in a report's section; the JSON lists them all."""


def checkpointing_rows(report: Report) -> list[tuple[str, str]]:
    """The checkpointed regions, activations and peak with and without checkpointing (none
    when the step had no checkpointing)."""
    ckpt = report.checkpointing
    if ckpt is None:
        return []
    memory, conv = report.totals.memory, report.convention
    shown = ", ".join(m or ROOT_LABEL for m in ckpt.modules[:CHECKPOINTED_SHOWN])
    more = len(ckpt.modules) - CHECKPOINTED_SHOWN
    rows = [("regions", f"{format_int(len(ckpt.modules))}: {shown}"
                        + (f", ... ({more} more)" if more > 0 else ""))]
    recompute = report.totals.costs.recompute.under(conv)
    rows.append(("recomputed forward", f"{exact_count(recompute)} FLOPs in backward"))
    if ckpt.activations_without is not None and ckpt.peak_without is not None:
        rows += [
            ("activations saved", f"{exact_bytes(memory.activations)} with checkpointing, "
                                  f"{exact_bytes(ckpt.activations_without)} without"),
            ("peak", f"{exact_bytes(memory.peak)} with, {exact_bytes(ckpt.peak_without)} "
                     f"without"),
        ]
    else:
        rows.append(("activations saved", f"{exact_bytes(memory.activations)} with "
                                          f"checkpointing"))
    if ckpt.note:
        rows.append(("without checkpointing", f"not analysed: {ckpt.note}"))
    return rows


def parallel_rows(report: Report) -> list[tuple[str, str]]:
    """The layout, the rank the numbers are for, its bytes by kind at the peak, its
    collectives, communication and step times (none on one GPU)."""
    par = report.parallel
    if par is None:
        return []
    rows = [("layout", f"{par.strategy}: the numbers are rank {par.rank}'s of "
                       f"{par.world_size} ({par.engine})")]
    if par.units:
        rows.append(("FSDP units", format_int(len(par.units))))
    rows.append(("at the peak", ", ".join(f"{kind} {format_bytes(n)}"
                                          for kind, n in par.by_kind if n)))
    calls = ", ".join(f"{op} x{count} ({format_bytes(size)})" for op, count, size in par.by_op())
    rows.append(("collectives", calls or "none"))
    rows.append(("communication", f"{exact_bytes(par.communication_bytes)} sent per step"))
    if par.time_comm_s is not None:
        rows.append(("communication time", f"{format_seconds(par.time_comm_s)} on "
                                           f"{par.interconnect}"))
    if par.time_step_serial_s is not None and par.time_step_overlapped_s is not None:
        rows.append(("step time", f"{format_seconds(par.time_step_serial_s)} with no overlap, "
                                  f"{format_seconds(par.time_step_overlapped_s)} with full "
                                  "overlap of compute and communication"))
    rows += [("modelled", note.removeprefix("modelled: ")) for note in par.notes]
    return rows + pipeline_rows(report)


def pipeline_rows(report: Report) -> list[tuple[str, str]]:
    """Each pipeline rank's blocks, model state, activations in flight, peak and sends, the
    bubble and the step time with it (none without pipeline parallel)."""
    pipe = report.parallel.pipeline if report.parallel is not None else None
    if pipe is None:
        return []
    chunks = f", {pipe.virtual_stages} chunks per rank" if pipe.virtual_stages > 1 else ""
    rows = [("pipeline", f"{pipe.stages} stages of {pipe.block_list}{chunks}, {pipe.schedule}, "
                         f"{format_int(pipe.microbatches)} micro-batches of "
                         f"{format_int(pipe.micro_batch_size)}; bubble {pipe.bubble:.1%}")]
    for r in pipe.ranks:
        worst = " (highest)" if r.rank == pipe.worst.rank else ""
        blocks = f"{r.blocks[0]}..{r.blocks[-1]}" if len(r.blocks) > 1 else r.blocks[0]
        rows.append((f"rank {r.rank}{worst}",
                     f"{blocks} ({format_int(len(r.blocks))} blocks): peak "
                     f"{format_bytes(r.peak)}; params {format_bytes(r.params)}, grads "
                     f"{format_bytes(r.grads)}, optimizer {format_bytes(r.optimizer)}; "
                     f"activations {format_bytes(r.activations)} per micro-batch x "
                     f"{format_int(r.in_flight)} in flight; sends "
                     f"{format_bytes(r.send_forward)} forward, "
                     f"{format_bytes(r.send_backward)} backward per micro-batch"))
    if pipe.time_step_s is not None:
        rows.append(("step time with the bubble", f"{format_seconds(pipe.time_step_s)}"))
    return rows


def generation_rows(report: Report) -> list[tuple[str, str]]:
    """Generation's tokens, the cost of prefill and decode, the KV cache, its times on an
    accelerator and its peaks (none outside generate mode)."""
    gen = report.generation
    if gen is None:
        return []
    prompt, new = gen.prompt_len, gen.new_tokens
    rows = [("tokens", f"batch {gen.batch}, prompt {format_int(prompt)}, {format_int(new)} new")]
    for label, cost in (
        (f"prefill ({format_int(prompt)} tokens)", gen.prefill),
        (f"first decode step (cache {format_int(prompt)})", gen.decode_first),
        (f"last decode step (cache {format_int(prompt + new - 1)})", gen.decode_last),
        (f"all {format_int(new)} decode steps", gen.decode_total),
    ):
        rows.append((label, cost_line(report, cost, with_macs=True)))
    rows.append((f"KV cache ({gen.cache_dtype})", exact_bytes(gen.kv_cache)))
    if gen.time is not None:
        t = gen.time
        rows += [
            ("time to first token", f"{format_seconds(t.prefill_s)} (prefill, "
                                    f"{t.prefill_bound}-bound)"),
            ("decode step", f"{format_seconds(t.decode_step_first_s)} first, "
                            f"{format_seconds(t.decode_step_last_s)} last "
                            f"({t.decode_bound}-bound)"),
            ("decode", f"{t.decode_tokens_per_s:,.1f} tokens/s "
                       f"({format_seconds(t.decode_total_s)} for all steps)"),
        ]
    rows += [
        ("peak of prefill", exact_bytes(gen.prefill_peak)),
        ("peak of last decode step", exact_bytes(gen.decode_peak)),
    ]
    return rows


def sweep_table(report: Report) -> tuple[list[str], list[list[str]], list[str]]:
    """The batch sweep as (header, rows, notes): size, allocated peak, reserved (when
    simulated), the article's estimate, step time and samples/s (when timed); the notes are
    the fitted line and, when timed, where throughput saturates."""
    sweep = report.sweep
    if sweep is None:
        return [], [], []
    dim = sweep.dimension
    reserved = any(p.reserved is not None for p in sweep.points)
    timed = any(p.time_step_s is not None for p in sweep.points)
    header = [dim, "peak (allocated)", "reserved"] if reserved else [dim, "peak"]
    header += ["seed estimate"] + (["step time", "samples/s"] if timed else [])
    rows = []
    for p in sweep.points:
        cells = [format_int(p.size), format_bytes(p.peak)]
        if reserved:
            cells.append(format_bytes(p.reserved) if p.reserved is not None else "-")
        cells.append(format_bytes(p.seed_estimate))
        if timed:
            cells += [format_seconds(p.time_step_s) if p.time_step_s is not None else "-",
                      f"{p.samples_per_s:,.1f}" if p.samples_per_s is not None else "-"]
        rows.append(cells)
    notes = [f"Fitted: peak = {exact_bytes(sweep.constant)} + {exact_bytes(sweep.per_item)} "
             f"x {dim}."]
    if sweep.saturated_at is not None:
        notes.append(f"Throughput saturates at {dim} {format_int(sweep.saturated_at)}: within "
                     f"{SATURATION:.0%} of the best of the sweep; a bigger {dim} is no faster "
                     f"per sample.")
    elif timed:
        notes.append(f"Throughput still rises at the largest {dim} of the sweep.")
    return header, rows, notes


def no_limit(fit: Fit) -> str:
    """"no limit found up to N (the reason)": a fit whose every size fits."""
    return f"no limit found up to {format_int(fit.limit)} ({fit.limit_reason})"


def fit_rows(report: Report) -> list[tuple[str, str]]:
    """The largest size that fits: the capacity, what was held against it, the evidence and,
    when timed, the throughput there (none without a fit)."""
    fit = report.fit
    if fit is None:
        return []
    dim, largest = fit.dimension, fit.largest
    need = "peak" if fit.against == "allocated" else "device total"
    rows = [("capacity", exact_bytes(fit.capacity)),
            ("held against it", f"the {need} ({fit.against})")]
    best = "fewest" if dim == "ranks" else "largest"
    if largest == 0:
        rows.append((f"{best} {dim}", "none"))
    elif fit.reached_limit:
        rows.append((f"{best} {dim}", f"{no_limit(fit)}; {need} there "
                                      f"{exact_bytes(fit.peak_at_largest)}"))
    else:
        rows.append((f"{best} {dim}",
                     f"{format_int(largest)}, {need} {exact_bytes(fit.peak_at_largest)}"))
    if fit.peak_at_next is not None:
        rows.append((f"{dim} {format_int(fit_next_size(dim, largest))}",
                     f"does not fit, {need} {exact_bytes(fit.peak_at_next)}"))
    if fit.samples_per_s is not None and fit.time_step_s is not None and largest:
        rows.append((f"at {dim} {format_int(largest)}",
                     f"step {format_seconds(fit.time_step_s)}, {fit.samples_per_s:,.1f} "
                     f"samples/s"))
    rows.append(("analyses run", str(fit.analyses)))
    return rows


def fit_title(dim: str) -> str:
    """The fit section's title: the largest batch or sequence, or the fewest ranks."""
    return "Fewest ranks that fit" if dim == "ranks" else f"Largest {dim} that fits"


def fit_next_size(dim: str, size: int) -> int:
    """The size a fit's `peak_at_next` is for: one more, or for ranks half as many (as
    `memory.fit.fewest_fitting` searches)."""
    return size // 2 if dim == "ranks" else size + 1


def module_time_cells(report: Report, row: ModuleRow) -> list[str]:
    """`bytes fwd`, `time fwd` and in training `time bwd` of a module row (none untimed)."""
    timing = report.timing
    if timing is None:
        return []
    forward, backward = timing.module(row.path)
    cells = [format_bytes(row.forward.bytes) if report.bytes_priced else "-",
             format_seconds(forward)]
    if is_train(report):
        cells.append(format_seconds(backward))
    return cells


def module_time_header(report: Report) -> list[str]:
    """The headers of `module_time_cells`."""
    if report.timing is None:
        return []
    return ["bytes fwd", "time fwd"] + (["time bwd"] if is_train(report) else [])


def memory_rows(report: Report) -> list[tuple[str, int]]:
    """(label, bytes) of every memory figure the report has, zeros left out."""
    memory, detail = report.totals.memory, report.memory_detail
    rows = [
        ("params", memory.params),
        ("buffers", memory.buffers),
        ("gradients", memory.grads),
        ("optimizer state", memory.optimizer),
        ("activations (saved for backward)", memory.activations),
        ("temporaries (most live at once)", detail.temporaries if detail is not None else 0),
        ("KV cache", memory.kv_cache),
        ("baseline (live before the step)", detail.baseline if detail is not None else 0),
        ("peak", memory.peak),
        ("seed estimate (article's formula)", memory.seed_estimate),
    ]
    return [(label, value) for label, value in rows if value]


def peak_where(report: Report) -> str | None:
    """`backward phase, op aten.add, module layer4.0.conv1`, or None without a peak."""
    detail = report.memory_detail
    if detail is None or not report.totals.memory.peak:
        return None
    module = detail.peak_module or ROOT_LABEL
    acc = report.grad_accumulation
    phase = f"{detail.peak_phase} phase"
    if acc is not None and acc.peak_micro_batch == 1:
        phase += f" of micro-batch 1 of {acc.micro_batches}"
    elif acc is not None and acc.peak_micro_batch == 2:
        later = "2" if acc.micro_batches == 2 else f"each of 2..{acc.micro_batches}"
        phase += f" of micro-batch {later}"
    return f"{phase}, op {detail.peak_op}, module {module}"


def peak_by_kind(report: Report) -> list[tuple[str, int]]:
    """(kind, bytes) live at the peak, zeros left out."""
    detail = report.memory_detail
    if detail is None:
        return []
    return [(kind, n) for kind, n in detail.peak_by_kind if n]


def kind_label(kind: str) -> str:
    """A memory kind as a reader says it: `kv_cache` -> `KV cache`."""
    return {"kv_cache": "KV cache", "grads": "gradients", "optimizer": "optimizer state"}.get(
        kind, kind
    )


def columns_left_out(width: int | None, names: Sequence[str]) -> str:
    """The line under a table that a terminal `width` wide made go without `names`."""
    return (f"columns left out to fit {width} characters: {', '.join(names)} (a wider "
            "terminal, or the output written to a file or pipe, shows every column)")
