"""Pipeline parallel (`pp=N`): modelled on the one-GPU capture of one micro-batch.

PyTorch's pipeline (`torch.distributed.pipelining`) sends and receives each
micro-batch's activations between real peers, which one process on fake
tensors cannot be. So the step is captured once, on one GPU, at the
micro-batch size (the batch / `microbatches`), and `PipelineModel.finish`
splits it into stages and replays each rank's share by its schedule
(`memflops.memory.pipeline`), so that every analysis after it (timeline,
peak, reserved memory) sees the worst rank's step.

The split (`pipeline_stages`), as Megatron-LM and torchtitan split a
decoder: the model's one repeated list of blocks (the children of an
`nn.ModuleList` or `nn.Sequential` of two or more modules of one type that
hold parameters, as FSDP's units are found) is cut into p x v chunks of
equal length, in order; chunk c goes to rank c mod p. What runs before the
first block (embeddings) goes with the first chunk, what runs after the
last block (final norm, head, loss) with the last: every op and every
storage it creates belongs to the chunk of the block running it, an op
outside the blocks to the chunk of the block that ran last in its phase
(forward: the first chunk before any block; backward: the last), and each
parameter, buffer, gradient and optimizer state to the chunk of its
module's first op (by registration order for a module that never ran).
What is computed once before the first block and used by every block
(rotary tables, masks) is counted on the first chunk only, where a real
pipeline computes it on every stage.

The boundary between chunk c and c + 1 is chunk c's output: the bytes of
the floating tensors its last block returns, sent forward per micro-batch
and its gradient (the same bytes) sent back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from memflops.capture.data_parallel import ddp_buckets, modelled_notes, with_buckets
from memflops.capture.inputs import flatten_tensors
from memflops.capture.parallel import RANK, Collective, ParallelCapture, _repeated
from memflops.capture.recorder import OpRecorder
from memflops.capture.records import OpRecord, Phase
from memflops.capture.session import CaptureSession
from memflops.capture.tracker import ModuleTracker
from memflops.errors import UsageError
from memflops.flops.registry import OpCost
from memflops.memory.kinds import Kind
from memflops.memory.pipeline import (
    RankStep,
    StepEvents,
    bubble_fraction,
    held_at_most,
    replay_rank,
    schedule_of,
)
from memflops.memory.storage import StorageTracker
from memflops.parallel_options import ParallelSpec

SEGMENTS = {Phase.FORWARD: "F", Phase.LOSS: "F", Phase.BACKWARD: "B", Phase.OPTIMIZER: "O"}

NOTE = ("modelled: pipeline parallel, {schedule} over {p} stages, {m} micro-batches"
        "{v}: the step captured at the micro-batch size and replayed per rank by the "
        "schedule (Narayanan et al. 2021, section 2.2); bubble (p - 1) / {vm} = {bubble} "
        "of the ideal compute time")


def block_list(model: nn.Module) -> tuple[str, list[str]]:
    """The path of the model's one repeated list of blocks and its blocks' paths; a
    `UsageError` naming the lists when there is none or more than one."""
    found: list[tuple[str, list[str]]] = []

    def walk(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            path = f"{prefix}.{name}" if prefix else name
            if _repeated(child):
                found.append((path, [f"{path}.{n}" for n, _ in child.named_children()]))
            else:
                walk(path, child)

    walk("", model)
    if not found:
        raise UsageError(
            f"parallel: pp splits a model's repeated blocks (an nn.ModuleList or nn.Sequential "
            f"of two or more modules of one type with parameters); {type(model).__name__} "
            f"has none"
        )
    if len(found) > 1:
        lists = ", ".join(f"{path} ({len(blocks)})" for path, blocks in found)
        raise UsageError(f"parallel: pp splits one list of blocks; {type(model).__name__} "
                         f"has {len(found)}: {lists}")
    return found[0]


def pipeline_stages(model: nn.Module, spec: ParallelSpec) -> tuple[str, list[list[str]]]:
    """The block list's path and the blocks of each of the p x v chunks, in order; a
    `UsageError` naming the list and the sizes when they do not split evenly."""
    path, blocks = block_list(model)
    p, v = spec.size("pp"), spec.virtual_stages
    chunks = p * v
    if len(blocks) % chunks:
        what = f"{p} stages x {v} virtual stages = {chunks} chunks" if v > 1 else f"{p} stages"
        raise UsageError(f"parallel: pp={p}: {path} has {len(blocks)} blocks, which {what} "
                         f"cannot split evenly")
    size = len(blocks) // chunks
    return path, [blocks[i * size:(i + 1) * size] for i in range(chunks)]


@dataclass(frozen=True)
class StageRow:
    """One pipeline rank's share of the step (bytes are that rank's)."""

    rank: int
    blocks: tuple[str, ...]
    """The blocks of its chunks, in order."""
    params: int
    buffers: int
    grads: int
    optimizer: int
    activations: int
    """Bytes saved for backward by one micro-batch through its chunks (received
    activations included)."""
    in_flight: int
    """The most forwards (micro-batch x chunk) whose backward has not run, at once."""
    peak: int
    send_forward: int
    """Bytes it sends the next stage per micro-batch (activations), all its chunks."""
    send_backward: int
    """Bytes it sends the previous stage per micro-batch (gradients)."""


@dataclass(frozen=True)
class PipelineCapture(ParallelCapture):
    """The pipeline's split, the worst rank and every rank's share."""

    schedule: str = "1f1b"
    microbatches: int = 1
    virtual_stages: int = 1
    bubble: Fraction = Fraction(0)
    stages: tuple[StageRow, ...] = ()
    stage_records: tuple[tuple[OpRecord, ...], ...] = ()
    """Each rank's forward and backward records of one micro-batch (its compute)."""
    optimizer_records: tuple[tuple[OpRecord, ...], ...] = ()
    """Each rank's optimizer step, scaled to its share of the trainable parameters."""
    block_list: str = ""
    notes: tuple[str, ...] = ()


class PipelineModel:
    """A `capture.session.StepWrapper` that captures the step at the micro-batch size and
    models pipeline parallel on it (see the module docstring)."""

    def __init__(self, spec: ParallelSpec) -> None:
        if not spec.microbatches:
            raise UsageError("parallel: pp needs its micro-batch count resolved")
        self.spec = spec
        self.chunks: list[list[str]] = []
        self._list = ""
        self._boundary: dict[str, int] = {}
        self._outputs: set[int] = set()
        self._owned: dict[int, str] = {}
        """Each parameter's, buffer's, gradient's and optimizer state's storage serial, to
        the path of its module."""
        self._trainable: dict[str, int] = {}
        """Trainable elements of each module's own parameters."""
        self._order: list[str] = []
        self._stepped: list[str] = []
        """The module of each parameter the optimizer steps, in its order."""
        self._result: PipelineCapture | None = None

    @contextmanager
    def wrapped(self, session: CaptureSession) -> Iterator[nn.Module]:
        model = session.model
        self._boundary, self._outputs, self._owned, self._trainable = {}, set(), {}, {}
        self._list, self.chunks = pipeline_stages(model, self.spec)
        self._order = [n for n, _ in model.named_modules()]
        optimizers: list[torch.optim.Optimizer] = []
        with ExitStack() as stack:
            for chunk in self.chunks[:-1]:
                handle = model.get_submodule(chunk[-1]).register_forward_hook(
                    self._boundary_hook(chunk[-1], session.storages))
                stack.callback(handle.remove)
            hook = register_optimizer_step_post_hook(
                lambda opt, args, kwargs: optimizers.append(opt) if opt not in optimizers
                else None)
            stack.callback(hook.remove)
            yield model
            self._note_owners(session, model, optimizers)

    def _boundary_hook(self, path: str, storages: StorageTracker | None) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if path in self._boundary:
                return
            sent = [t for t in flatten_tensors(output) if t.is_floating_point()]
            self._boundary[path] = sum(t.numel() * t.element_size() for t in sent)
            for t in sent:
                serial = storages.serial_of(t) if storages is not None else None
                if serial is not None:
                    self._outputs.add(serial)
        return hook

    def _note_owners(self, session: CaptureSession, model: nn.Module,
                     optimizers: list[torch.optim.Optimizer]) -> None:
        storages = session.storages
        if storages is None:
            return
        state = {id(p): s for opt in optimizers for p, s in opt.state.items()}
        path_of = {id(p): path for path, module in model.named_modules()
                   for p in module.parameters(recurse=False)}
        self._stepped = [path_of.get(id(p), "") for opt in optimizers
                         for group in opt.param_groups for p in group["params"]]
        for path, module in model.named_modules():
            for p in module.parameters(recurse=False):
                tensors = [p, p.grad, *(v for v in state.get(id(p), {}).values()
                                        if isinstance(v, torch.Tensor))]
                for t in tensors:
                    serial = storages.serial_of(t) if t is not None else None
                    if serial is not None:
                        self._owned.setdefault(serial, path)
                if p.requires_grad:
                    self._trainable[path] = self._trainable.get(path, 0) + p.numel()
            for b in module.buffers(recurse=False):
                serial = storages.serial_of(b)
                if serial is not None:
                    self._owned.setdefault(serial, path)

    def recorder(self, tracker: ModuleTracker, storages: StorageTracker | None) -> OpRecorder:
        return OpRecorder(tracker, storages)  # type: ignore[no-untyped-call]

    def local(self, t: torch.Tensor) -> torch.Tensor:
        return t

    def result(self, session: CaptureSession) -> ParallelCapture:
        return ParallelCapture(
            spec=self.spec, rank=RANK, units=(), collectives=(), unsharded=frozenset(),
            gather_buffers=frozenset(), reduce_buffers=frozenset(),
        )

    def finish(self, cap: Any) -> Any:
        """`cap` as the worst pipeline rank's step (see the module docstring)."""
        storages = cap.storages
        assert storages is not None
        p, v, m = self.spec.size("pp"), self.spec.virtual_stages, self.spec.microbatches
        kind = self.spec.schedule
        records: tuple[OpRecord, ...] = cap.records
        chunk_of_block = {b: c for c, blocks in enumerate(self.chunks) for b in blocks}
        chunk_of_record = self._record_chunks(records, chunk_of_block)
        segments = [SEGMENTS.get(r.phase, "F") for r in records]
        module_chunk = self._module_chunks(records, chunk_of_record, chunk_of_block)
        owner: dict[int, int] = {}
        by_param = self._optimizer_owners(storages, segments, module_chunk)
        for serial, info in storages.info.items():
            if info.op_index >= 0 and info.op_index < len(records):
                owner[serial] = by_param.get(serial, -1) if segments[info.op_index] == "O" \
                    else chunk_of_record[info.op_index]
            elif serial in self._owned:
                owner[serial] = module_chunk(self._owned[serial])
            else:  # the inputs, and anything else there before the step
                owner[serial] = 0
        boundary = [self._boundary.get(chunk[-1], 0) for chunk in self.chunks[:-1]]
        step = StepEvents(storages, owner, segments, chunk_of_record, cap.grads, boundary,
                          inputs_scale=m, outputs=frozenset(self._outputs))
        trainable_total = sum(self._trainable.values())
        ranks: list[tuple[StageRow, RankStep, Fraction]] = []
        gradients: list[list[int]] = []
        """Each rank's gradient storages' bytes, before DDP's buckets."""
        for r in range(p):
            mine = [r + j * p for j in range(v)]
            share = Fraction(sum(n for path, n in self._trainable.items()
                                 if module_chunk(path) in mine), trainable_total or 1)
            actions = schedule_of(kind, p, r, m, v)
            rank_step = replay_rank(step, actions, mine, cap.optimizer_state, share)
            # model order: backward makes the last parameters' gradients first
            gradients.append([rank_step.storages.info[k].nbytes
                              for k in sorted(rank_step.grads, reverse=True)])
            if self.spec.size("ddp") > 1:
                rank_step = self._with_ddp(rank_step)
            row = self._row(r, mine, step, rank_step, held_at_most(actions), owner, storages,
                            cap, boundary)
            ranks.append((row, rank_step, share))
        worst = max(range(p), key=lambda r: (ranks[r][0].peak, -r))
        row, rank_step, share = ranks[worst]
        stage_records = tuple(
            tuple(rec for i, rec in enumerate(records)
                  if segments[i] != "O" and chunk_of_record[i] in [r + j * p for j in range(v)])
            for r in range(p))
        optimizer_records = tuple(
            tuple(_scaled(rec, s) for rec, seg in zip(records, segments, strict=True)
                  if seg == "O")
            for _, _, s in ranks)
        new_records = tuple(
            _scaled(records[i], share) if segments[i] == "O" else records[i]
            for i in rank_step.records)
        bubble = bubble_fraction(kind, p, m, v)
        note = NOTE.format(schedule=kind, p=p, m=m, v=f", {v} virtual stages" if v > 1 else "",
                           vm="(v M)" if kind == "interleaved" else "M", bubble=bubble)
        calls = self._sends(ranks[worst][0], p, m, v) + self._all_reduces(gradients[worst])
        result = PipelineCapture(
            spec=self.spec, rank=worst, units=(), collectives=calls, unsharded=frozenset(),
            gather_buffers=frozenset(), reduce_buffers=frozenset(), schedule=kind,
            microbatches=m, virtual_stages=v, bubble=bubble,
            stages=tuple(r for r, _, _ in ranks), stage_records=stage_records,
            optimizer_records=optimizer_records, block_list=self._list,
            notes=(note, *modelled_notes(self.spec)) if self.spec.size("ddp") > 1 else (note,),
        )
        self._result = result
        return replace(
            cap, records=new_records, storages=rank_step.storages,
            grads=frozenset(rank_step.grads), optimizer_state=frozenset(rank_step.optimizer_state),
            parallel=result, transient=frozenset(),
        )

    def _optimizer_owners(self, storages: StorageTracker, segments: list[str],
                          module_chunk: Any) -> dict[int, int]:
        """The chunk of each storage an optimizer op creates one of per parameter (a foreach
        op's list of results, in the optimizer's order of parameters); the others are
        shared by the ranks (`memory.pipeline.replay_rank` scales them)."""
        created: dict[int, list[int]] = {}
        for serial, info in storages.info.items():
            if 0 <= info.op_index < len(segments) and segments[info.op_index] == "O":
                created.setdefault(info.op_index, []).append(serial)
        found: dict[int, int] = {}
        n = len(self._stepped)
        for serials in created.values():
            if n and len(serials) % n == 0:
                for i, serial in enumerate(serials):
                    found[serial] = module_chunk(self._stepped[i % n])
        return found

    def _record_chunks(self, records: tuple[OpRecord, ...],
                       chunk_of_block: dict[str, int]) -> list[int]:
        """The chunk of each op (module docstring): its block's, else that of the block
        that ran last in its phase; the optimizer's -1."""
        last = len(self.chunks) - 1
        prefix = self._list + "."
        chunks: list[int] = []
        current = {"F": 0, "B": last}
        for rec in records:
            seg = SEGMENTS.get(rec.phase, "F")
            if seg == "O":
                chunks.append(-1)
                continue
            if rec.phase is Phase.LOSS:
                chunks.append(last)
                continue
            block = _block_of(rec.module, prefix)
            if block is not None and block in chunk_of_block:
                current[seg] = chunk_of_block[block]
            chunks.append(current[seg])
        return chunks

    def _module_chunks(self, records: tuple[OpRecord, ...], chunk_of_record: list[int],
                       chunk_of_block: dict[str, int]) -> Any:
        """The chunk of a module's parameters: its block's; else that of its first forward
        op; else by where it is registered (before the blocks: the first chunk)."""
        prefix = self._list + "."
        first: dict[str, int] = {}
        for rec, ran in zip(records, chunk_of_record, strict=True):
            if rec.phase is Phase.FORWARD and rec.module not in first:
                first[rec.module] = ran
        at_list = self._order.index(self._list) if self._list in self._order else 0
        last = len(self.chunks) - 1

        def chunk(path: str) -> int:
            block = _block_of(path, prefix)
            if block is not None and block in chunk_of_block:
                return chunk_of_block[block]
            ran = [c for m, c in first.items() if m == path or m.startswith(path + ".")]
            if ran:
                return ran[0]
            return 0 if path in self._order and self._order.index(path) < at_list else last

        return chunk

    def _row(self, rank: int, mine: list[int], step: StepEvents, rank_step: RankStep,
             held: int, owner: dict[int, int], storages: StorageTracker, cap: Any,
             boundary: list[int]) -> StageRow:
        kinds = {Kind.PARAMS: 0, Kind.BUFFERS: 0}
        for serial, kind in storages.preexisting.items():
            if kind in kinds and owner.get(serial) in mine:
                kinds[kind] += storages.info[serial].nbytes
        optimizer = sum(rank_step.storages.info[k].nbytes for k in rank_step.optimizer_state)
        grads = sum(rank_step.storages.info[k].nbytes for k in rank_step.grads)
        act = sum(storages.info[s].nbytes for s in storages.saved
                  if owner.get(s) in mine and storages.info[s].op_index >= 0
                  and step.segment_of_record[storages.info[s].op_index] == "F")
        act += sum(boundary[c - 1] for c in mine if c > 0)
        peak = total = 0
        for e in rank_step.storages.events:
            total += e.nbytes if e.alloc else -e.nbytes
            peak = max(peak, total)
        return StageRow(
            rank=rank, blocks=tuple(b for c in mine for b in self.chunks[c]),
            params=kinds[Kind.PARAMS], buffers=kinds[Kind.BUFFERS], grads=grads,
            optimizer=optimizer, activations=act, in_flight=held, peak=peak,
            send_forward=sum(boundary[c] for c in mine if c < len(boundary)),
            send_backward=sum(boundary[c - 1] for c in mine if c > 0),
        )

    def _with_ddp(self, rank_step: RankStep) -> RankStep:
        """The rank's step as one of `ddp` data-parallel replicas of the pipeline: DDP's
        gradient buckets over its own gradients (`data_parallel.with_buckets`)."""
        total = sum(rank_step.storages.info[k].nbytes for k in rank_step.grads)
        storages, grads = with_buckets(rank_step.storages, rank_step.grads, total,
                                       self.spec.gradient_as_bucket_view)
        return replace(rank_step, storages=storages, grads=set(grads))

    def _all_reduces(self, sizes: list[int]) -> tuple[Collective, ...]:
        """DDP's all-reduce of each bucket of the rank's gradients across the pipeline's
        replicas (the buckets formed from its gradients in the order backward made them)."""
        n = self.spec.size("ddp")
        if n < 2:
            return ()
        return tuple(Collective("all_reduce", b, "ddp", n, "backward", "")
                     for b in ddp_buckets(sizes))

    def _sends(self, row: StageRow, p: int, m: int, v: int) -> tuple[Collective, ...]:
        """The rank's point-to-point sends of the step, one per micro-batch and direction."""
        calls = [Collective("send", row.send_forward, "pp", p, "forward", "")
                 for _ in range(m) if row.send_forward]
        calls += [Collective("send", row.send_backward, "pp", p, "backward", "")
                  for _ in range(m) if row.send_backward]
        return tuple(calls)


def _block_of(module: str, prefix: str) -> str | None:
    """The block (`prefix` + its name) `module` is or is inside, None outside the list."""
    if not module.startswith(prefix):
        return None
    name = module[len(prefix):].split(".", 1)[0]
    return prefix + name


def _scaled(rec: OpRecord, share: Fraction) -> OpRecord:
    """`rec` with its cost scaled to `share` of it (the optimizer step's ops run over every
    trainable parameter: a rank runs them over its own)."""
    if rec.cost is None or share == 1:
        return rec
    c = rec.cost
    return replace(rec, cost=OpCost(
        macs=int(c.macs * share), flops=int(c.flops * share),
        integer_macs=int(c.integer_macs * share), bytes_read=int(c.bytes_read * share),
        bytes_written=int(c.bytes_written * share)))
