"""Pipeline parallel, modelled: schedules, the bubble, and one rank's step replayed (torch-free).

A pipeline of p stages splits the model into p x v chunks (v: virtual
stages per rank, 1 without interleaving); rank r holds chunks r, r + p,
r + 2p, ... (Narayanan et al. 2021, "Efficient Large-Scale Language Model
Training on GPU Clusters Using Megatron-LM", section 2.2). A step runs M
micro-batches through every chunk, forward then backward, in the order of
the schedule (`schedule_of`):

- `gpipe` (Huang et al. 2019, "GPipe"): all M forwards, then the M
  backwards, in the order PyTorch's `ScheduleGPipe` runs them: rank r holds
  the activations of all M micro-batches at once;
- `1f1b` (PipeDream-Flush, Narayanan et al. 2021, section 2.2.1, Figure 4):
  p - r - 1 forwards of warm-up, then one forward and one backward in turn,
  then the remaining backwards: rank r holds at most min(p - r, M);
- `interleaved` (ibid., section 2.2.2; Megatron-LM's
  `forward_backward_pipelining_with_interleaving`): the same with v chunks
  per rank, (p - r - 1) x 2 + (v - 1) x p forwards of warm-up (all M x v
  when M = p), forward k on chunk (k mod pv) // p of micro-batch
  (k // pv) x p + k mod p, backward k on chunk v - 1 - (k mod pv) // p.
  Rank 0 holds p x (1 + (p - 1) / (p v)) stages' worth of activations
  (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
  Transformer Models", section 4.2.3); M must be a multiple of p, as
  Megatron-LM requires.

`replay_rank` builds the rank's step from the one-GPU capture of one micro-
batch (`memflops.capture.pipeline` tells which chunk each storage and op
belongs to): its parameters, buffers and optimizer state once, each action
of the schedule's storage events with its own copy of every storage (a
micro-batch's activations live from its chunk's forward to its backward),
the activation received from the previous chunk (held until the micro-
batch's backward) and the gradient received from the next (held for the
backward), the chunk's own output kept until its backward is done (as
`torch.distributed.pipelining` keeps it in the stage's `fwd_cache`), the
chunk's gradients allocated by its first backward and accumulated by the
others (each new gradient alive, as in PyTorch's `AccumulateGrad`, until its
autograd node is done: until the next result that is not a gradient, or is
another module's, is allocated), and the optimizer step once: its
temporaries of the rank's own parameters, and those of no one parameter
scaled to the rank's share of the trainable parameters.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from memflops.memory.kinds import Kind
from memflops.memory.storage import Event, StorageInfo, StorageTracker

Action = tuple[str, int, int]
"""("F" or "B", the rank's chunk (0 .. v - 1), the micro-batch)."""


def schedule_of(kind: str, stages: int, rank: int, microbatches: int,
                virtual: int = 1) -> list[Action]:
    """The order rank `rank` of `stages` runs its forwards and backwards (module docstring)."""
    p, r, m = stages, rank, microbatches
    if kind == "gpipe":
        return [("F", 0, i) for i in range(m)] + [("B", 0, i) for i in range(m)]
    if kind == "1f1b":
        warmup = min(p - r - 1, m)
        fwd = [("F", 0, i) for i in range(m)]
        bwd = [("B", 0, i) for i in range(m)]
        return _one_forward_one_backward(fwd, bwd, warmup)
    if kind != "interleaved":
        raise ValueError(f"unknown schedule {kind!r}")
    total = m * virtual
    group = p * virtual

    def chunk(k: int, forward: bool) -> int:
        c = (k % group) // p
        return c if forward else virtual - 1 - c

    def micro(k: int) -> int:
        return (k // group) * p + k % p

    fwd = [("F", chunk(k, True), micro(k)) for k in range(total)]
    bwd = [("B", chunk(k, False), micro(k)) for k in range(total)]
    warmup = total if m == p else min((p - r - 1) * 2 + (virtual - 1) * p, total)
    return _one_forward_one_backward(fwd, bwd, warmup)


def _one_forward_one_backward(fwd: list[Action], bwd: list[Action], warmup: int) -> list[Action]:
    steady = len(fwd) - warmup
    order = fwd[:warmup]
    for j in range(steady):
        order += [fwd[warmup + j], bwd[j]]
    return order + bwd[steady:]


def held_at_most(actions: Sequence[Action]) -> int:
    """The most forwards (chunk, micro-batch) whose backward has not run yet, at once."""
    held = most = 0
    for kind, _, _ in actions:
        held += 1 if kind == "F" else -1
        most = max(most, held)
    return most


def bubble_fraction(kind: str, stages: int, microbatches: int, virtual: int = 1) -> Fraction:
    """The pipeline bubble over the ideal compute time: (p - 1) / M, and (p - 1) / (v M)
    interleaved (Narayanan et al. 2021, sections 2.2.1 and 2.2.2)."""
    return Fraction(stages - 1, microbatches * (virtual if kind == "interleaved" else 1))


def first_stage_factor(stages: int, virtual: int) -> Fraction:
    """Korthikanti et al. 2022, section 4.2.3: interleaving multiplies the first stage's
    activation memory (p micro-batches of its layers) by 1 + (p - 1) / (p v)."""
    return 1 + Fraction(stages - 1, stages * virtual)


@dataclass(frozen=True)
class StepEvents:
    """The one-GPU capture of one micro-batch, cut by chunk and segment."""

    storages: StorageTracker
    owner: dict[int, int]
    """The chunk (0 .. p v - 1) each storage belongs to (-1: the optimizer step's, of no
    one parameter: scaled by the rank's share)."""
    segment_of_record: Sequence[str]
    """"F" (forward and loss), "B" (backward) or "O" (optimizer) of each op record."""
    chunk_of_record: Sequence[int]
    """The chunk of each op record (-1: the optimizer's, shared by all)."""
    grads: frozenset[int]
    boundary: Sequence[int]
    """Bytes each chunk sends the next (its output), one per chunk but the last."""
    inputs_scale: int = 1
    """Inputs are held for this many micro-batches (the step's whole batch)."""
    outputs: frozenset[int] = frozenset()
    """Each chunk's output storage (but the last's): held until its backward ends."""


@dataclass
class RankStep:
    """One rank's step: storage events, the original record of each new op, its kinds."""

    storages: StorageTracker
    records: list[int] = field(default_factory=list)
    """Index of the original op record behind each op of the rank's step (-1: none)."""
    grads: set[int] = field(default_factory=set)
    optimizer_state: set[int] = field(default_factory=set)
    received: int = 0
    """Bytes received from neighbours in the step (activations and gradients)."""


def replay_rank(
    step: StepEvents, actions: Sequence[Action], chunks: Sequence[int],
    optimizer_state: frozenset[int], share: Fraction,
) -> RankStep:
    """The rank holding global chunks `chunks` (by local index) running `actions`; the
    optimizer's temporaries scaled by `share` (module docstring)."""
    old = step.storages
    mine = set(chunks)
    last = len(step.boundary)  # the last chunk's index
    # each chunk's events by segment, and the records they sit between
    events: dict[tuple[int, str], list[Event]] = {}
    recs: dict[tuple[int, str], list[int]] = {}
    statics: list[Event] = []
    for i, (seg, chunk) in enumerate(zip(step.segment_of_record, step.chunk_of_record,
                                         strict=True)):
        if chunk in mine or seg == "O":
            recs.setdefault((chunk if seg != "O" else -1, seg), []).append(i)
    end = len(old.events) if old.step_end is None else old.step_end
    n_records = len(step.segment_of_record)
    held: dict[int, list[Event]] = {}
    for e in old.events[:end]:
        chunk = step.owner[e.key]
        if e.key in step.outputs and not e.alloc:
            held.setdefault(chunk, []).append(e)
            continue
        created = old.info[e.key].op_index
        created_seg = step.segment_of_record[created] if created >= 0 else "S"
        if created_seg == "O":
            if chunk == -1 or chunk in mine:
                events.setdefault((-1, "O"), []).append(e)
            continue
        if chunk not in mine:
            continue
        if e.op_index < 0:
            statics.append(e)
            continue
        at = min(e.op_index if e.alloc else max(e.op_index - 1, 0), n_records - 1)
        seg = step.segment_of_record[at] if n_records else "F"
        if created_seg == "S" or seg == "O":
            events.setdefault((chunk, "late"), []).append(e)  # freed in the optimizer step
        else:
            events.setdefault((chunk, seg), []).append(e)
    out = StorageTracker()
    result = RankStep(out)
    keys: dict[tuple[int, object], int] = {}

    def key(serial: int, tag: object, info: StorageInfo, nbytes: int) -> int:
        k = keys.get((serial, tag))
        if k is None:
            k = keys[(serial, tag)] = len(out.info)
            out.info[k] = StorageInfo(nbytes, -1, info.phase, info.module)
        return k

    def emit(k: int, alloc: bool, op: int) -> None:
        out.events.append(Event(k, out.info[k].nbytes, alloc, op))

    for e in statics:
        info = old.info[e.key]
        kind = old.preexisting.get(e.key)
        scale = step.inputs_scale if kind is Kind.INPUTS else 1
        k = key(e.key, "static", info, info.nbytes * scale)
        emit(k, e.alloc, -1)
        if kind is not None:
            out.preexisting[k] = kind
        if e.key in optimizer_state:
            result.optimizer_state.add(k)
    first_backward: set[int] = set()

    def run(chunk: int, seg: str, micro: int, extra: Callable[[int], None] | None) -> None:
        base = len(result.records)
        ids = recs.get((chunk, seg), [])
        result.records.extend(ids)
        accumulate = seg == "B" and chunk in first_backward
        pending: list[int] = []  # gradients to add into the chunk's, then free
        pending_of = -1  # the storage of the capture behind the last of them
        for e in events.get((chunk, seg), []):
            info = old.info[e.key]
            grad = e.key in step.grads
            if pending and e.alloc and (not grad or info.module != old.info[pending_of].module):
                # the next autograd node's first result
                for k in pending:
                    emit(k, False, base + bisect_left(ids, e.op_index))
                pending = []
            tag: object = "grad" if grad and not accumulate else micro
            if grad and accumulate and not e.alloc:
                continue
            k = key(e.key, tag, info, info.nbytes)
            op = base + bisect_left(ids, e.op_index)
            out.info[k].op_index = op if e.alloc else out.info[k].op_index
            if e.alloc and e.key in old.saved:
                out.saved.add(k)
            if grad and not accumulate:
                result.grads.add(k)
            emit(k, e.alloc, op)
            if grad and accumulate and e.alloc:
                pending.append(k)
                pending_of = e.key
        for k in pending:
            emit(k, False, base + len(ids))
        if seg == "B":  # the chunk's output, referenced until its backward is done
            for e in held.get(chunk, []):
                if (e.key, micro) in keys:
                    emit(keys[(e.key, micro)], False, base + len(ids))
        if extra is not None:
            extra(base + len(ids))

    received: dict[tuple[int, int], list[int]] = {}

    def receive(chunk: int, micro: int, nbytes: int, phase: str, op: int) -> None:
        if nbytes <= 0:
            return
        k = len(out.info)
        out.info[k] = StorageInfo(nbytes, op, phase, f"<received by chunk {chunk}>")
        if phase == "forward":  # held for the micro-batch's backward
            out.saved.add(k)
        emit(k, True, op)
        received.setdefault((chunk, micro), []).append(k)
        result.received += nbytes

    for action, local, micro in actions:
        chunk = chunks[local]
        if action == "F":
            if chunk > 0:
                receive(chunk, micro, step.boundary[chunk - 1], "forward", len(result.records))
            run(chunk, "F", micro, None)
            continue
        if chunk < last:
            receive(chunk, micro, step.boundary[chunk], "backward", len(result.records))

        def release(op: int, chunk: int = chunk, micro: int = micro) -> None:
            for k in received.pop((chunk, micro), []):
                emit(k, False, op)

        run(chunk, "B", micro, release)
        first_backward.add(chunk)
    base = len(result.records)
    for chunk in chunks:  # frees the optimizer step makes of each micro-batch's storages
        for e in events.get((chunk, "late"), []):
            tags = [t for (s, t) in keys if s == e.key]
            for tag in tags:
                emit(keys[(e.key, tag)], e.alloc, base)
    ids = recs.get((-1, "O"), [])
    result.records.extend(ids)
    for e in events.get((-1, "O"), []):
        info = old.info[e.key]
        shared = step.owner[e.key] == -1
        k = key(e.key, "optimizer", info, int(info.nbytes * share) if shared else info.nbytes)
        op = base + bisect_left(ids, e.op_index)
        if e.alloc:
            out.info[k].op_index = op
        emit(k, e.alloc, op)
    out.op_count = len(result.records)
    out.step_end = len(out.events)
    return result
