"""Pipeline parallel, modelled (`memflops.capture.pipeline`): the split by hand, pp=1 equal
to one GPU, and rank 0 against PyTorch's own pipeline run on real CPU tensors."""

from __future__ import annotations

import weakref
from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import memflops
from memflops.capture.inputs import normalize_inputs
from memflops.capture.pipeline import PipelineModel
from memflops.capture.records import Phase
from memflops.capture.step import StepConfig, capture
from memflops.errors import UsageError
from memflops.parallel_options import parse_parallel

D = 16


class Stack(nn.Module):
    """An input layer, `n` blocks (Linear(16, 16), ReLU), a head: the shape pp splits."""

    def __init__(self, n: int = 4) -> None:
        super().__init__()
        self.inp = nn.Linear(8, D)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(D, D), nn.ReLU()) for _ in range(n))
        self.head = nn.Linear(D, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inp(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)  # type: ignore[no-any-return]


def analyse(parallel: str | None, batch: int = 8, model: nn.Module | None = None) -> Any:
    return memflops.analyze(model or Stack(), (batch, 8), mode="train", optimizer="adam",
                            parallel=parallel)


def test_one_stage_one_micro_batch_is_the_one_gpu_step() -> None:
    plain, piped = analyse(None), analyse("pp=1,microbatches=1")
    assert piped.totals.memory == plain.totals.memory
    assert piped.totals.costs == plain.totals.costs
    stage = piped.parallel.pipeline.ranks[0]
    assert (stage.peak, stage.in_flight, piped.parallel.pipeline.bubble) == (
        plain.totals.memory.peak, 1, 0.0)


def test_stages_by_hand() -> None:
    report = analyse("pp=2,microbatches=4")
    pipe = report.parallel.pipeline
    first, last = pipe.ranks
    # stage 0: inp Linear(8, 16) 8 x 16 + 16 = 144, blocks 0-1: 2 x (16 x 16 + 16) = 544;
    # 688 x 4 bytes = 2,752. Stage 1: blocks 2-3 544 + head Linear(16, 4) 68 = 612: 2,448
    assert (first.params, last.params) == (2752, 2448)
    assert (first.grads, last.grads) == (2752, 2448)
    assert (first.optimizer, last.optimizer) == (2 * 2752, 2 * 2448)  # Adam's two moments
    # a micro-batch of 8 / 4 = 2 samples: each (2, 16) float32 activation is 128 bytes.
    # Stage 0 saves inp's output, block 0's and block 1's ReLU outputs: 3 x 128; stage 1
    # the 128 it receives and blocks 2-3's ReLU outputs (the head's input): 3 x 128
    assert (first.activations, last.activations) == (384, 384)
    assert (first.send_forward, first.send_backward) == (128, 0)
    assert (last.send_forward, last.send_backward) == (0, 128)
    # 1F1B: stage s holds min(p - s, M) micro-batches
    assert (first.in_flight, last.in_flight) == (2, 1)
    assert pipe.bubble == 1 / 4  # (p - 1) / M
    assert (first.blocks, last.blocks) == (("blocks.0", "blocks.1"), ("blocks.2", "blocks.3"))
    assert report.parallel.rank == 0 and report.totals.memory.peak == first.peak
    # the rank sends one activation per micro-batch forward: 4 x 128
    assert report.parallel.communication_bytes == 4 * 128
    gpipe = analyse("pp=2,microbatches=4,schedule=gpipe").parallel.pipeline
    assert [s.in_flight for s in gpipe.ranks] == [4, 4]


def test_interleaved_chunks_go_round_robin() -> None:
    pipe = analyse("pp=2,microbatches=4,schedule=interleaved").parallel.pipeline
    # 4 blocks in 2 x 2 chunks of one: rank 0 holds blocks 0 and 2, rank 1 blocks 1 and 3
    assert [s.blocks for s in pipe.ranks] == [("blocks.0", "blocks.2"), ("blocks.1", "blocks.3")]
    assert pipe.bubble == 1 / 8  # (p - 1) / (v M)
    # rank 0: p v + p - 1 = 5 chunk-forwards held (Korthikanti et al. 2022's factor)
    assert pipe.ranks[0].in_flight == 5


@pytest.mark.parametrize(("layout", "batch", "message"), [
    ("pp=0", 8, "pp=0: the number of ranks must be at least 1"),
    ("pp=8", 8, r"blocks has 4 blocks, which 8 stages cannot split evenly"),
    ("pp=3", 9, r"blocks has 4 blocks, which 3 stages cannot split evenly"),
    ("pp=2,microbatches=3", 8, r"microbatches=3 does not divide the batch of 8"),
    ("pp=2,schedule=zigzag", 8, r"schedule='zigzag'; expected one of: gpipe, 1f1b"),
    ("pp=2,schedule=interleaved,virtual_stages=4", 8,
     r"4 blocks, which 2 stages x 4 virtual stages = 8 chunks cannot split evenly"),
    ("pp=2,schedule=interleaved,microbatches=3", 6, r"microbatches a multiple of pp=2"),
    ("pp=2,virtual_stages=2", 8, r"virtual_stages applies to schedule=interleaved"),
    ("pp=2,fsdp=2", 8, r"pp combines with ddp=N only here \(fsdp given\)"),
    ("fsdp=2,microbatches=4", 8, r"microbatches applies to pipeline parallel; add pp=N"),
])
def test_bad_pipelines_name_the_field_and_sizes(layout: str, batch: int, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        analyse(layout, batch)


def test_pipeline_needs_one_list_of_blocks_and_train_mode() -> None:
    with pytest.raises(UsageError, match="Linear has none"):
        analyse("pp=2", model=nn.Linear(8, 4))
    with pytest.raises(UsageError, match="use mode train"):
        memflops.analyze(Stack(), (8, 8), parallel="pp=2")
    with pytest.raises(UsageError, match="a batch sweep or fit with it is not modelled"):
        memflops.analyze(Stack(), (8, 8), mode="train", parallel="pp=2", fit="1GiB")
    assert parse_parallel("pp=4,microbatches=8,schedule=interleaved").label == (
        "pp=4,microbatches=8,schedule=interleaved,virtual_stages=2")


class _Live(TorchDispatchMode):
    """Bytes of live storages returned by ops (keyed by the storage, freed by weakref): a
    tracker sharing no code with memflops."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.total = self.peak = 0

    def note(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key = storage._cdata
        if key in self.live or not storage.nbytes():
            return
        self.live[key] = storage.nbytes()
        self.total += storage.nbytes()
        self.peak = max(self.peak, self.total)
        weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.total -= self.live.pop(key)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.note(t)
        return out


def _real_stage0(schedule: str, batch: int, micro: int) -> tuple[int, int]:
    """Rank 0 of torch.distributed.pipelining (2 stages) on real CPU tensors with the fake
    process group (sends and receives are no-ops): its (forward-backward peak, step peak)
    in the steady state (the second step), Adam's state and the parameters included."""
    from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe
    from torch.testing._internal.distributed.fake_pg import FakeStore

    torch.manual_seed(0)
    stage_module = nn.Sequential(nn.Linear(8, D), *(nn.Sequential(nn.Linear(D, D), nn.ReLU())
                                                    for _ in range(2)))
    x = torch.randn(batch, 8)
    optimizer = torch.optim.Adam(stage_module.parameters(), foreach=True)
    mb = batch // micro
    dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=2)
    try:
        stage = PipelineStage(stage_module, 0, 2, torch.device("cpu"),
                              input_args=(torch.empty(mb, 8),),
                              output_args=(torch.empty(mb, D),),
                              output_grads=(torch.empty(mb, D),))
        kind = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}[schedule]
        run = kind(stage, n_microbatches=micro, loss_fn=lambda out, target: out.sum())
        mode = _Live()
        for t in [*stage_module.parameters(), x]:
            mode.note(t)
        with mode:
            for _ in range(2):  # a warm-up step, then the one measured
                optimizer.zero_grad(set_to_none=True)
                mode.peak = mode.total
                run.step(x)
                forward_backward = mode.peak
                optimizer.step()
    finally:
        dist.destroy_process_group()
    return forward_backward, mode.peak


def _modelled_stage0(schedule: str, batch: int, micro: int) -> tuple[int, int]:
    spec = parse_parallel(f"pp=2,microbatches={micro},schedule={schedule}")
    cap = capture(Stack(), normalize_inputs((batch // micro, 8)),
                  StepConfig(train=True, optimizer="adam", wrapper=PipelineModel(spec)))
    assert cap.parallel.rank == 0
    first_optimizer_op = next(i for i, r in enumerate(cap.records)
                              if r.phase is Phase.OPTIMIZER)
    total = peak = forward_backward = 0
    for e in cap.storages.events:
        total += e.nbytes if e.alloc else -e.nbytes
        peak = max(peak, total)
        if e.op_index < first_optimizer_op:
            forward_backward = peak
    return forward_backward, peak


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
def test_rank0_agrees_with_torch_pipelining_on_real_tensors(schedule: str) -> None:
    batch, micro = 8, 4
    real_fb, real_step = _real_stage0(schedule, batch, micro)
    fb, step = _modelled_stage0(schedule, batch, micro)
    # Two differences, both exact: Adam's `step` counts, six float32 scalars on the host
    # (4 bytes each; a GPU run keeps them off the device, memflops leaves them out), and
    # the gradient receive buffers: torch.distributed.pipelining allocates one per
    # micro-batch up front and keeps them across steps (M x 128 bytes), where memflops
    # holds one per micro-batch during its backward only (128 bytes live at the
    # forward-backward peak, none at the optimizer step)
    steps, receive = 6 * 4, 2 * D * 4
    assert real_fb == fb + steps + (micro - 1) * receive
    assert real_step == step + steps + micro * receive


def test_with_a_gpu_the_step_throughput_and_mfu_are_the_pipelines() -> None:
    report = memflops.analyze(Stack(), (8, 8), mode="train", optimizer="adam",
                              parallel="pp=2,microbatches=4", gpu="H100 SXM")
    pipe, est = report.parallel.pipeline, report.timing.estimate
    slowest = max(r.time_microbatch_s for r in pipe.ranks)
    optimizer = max(r.time_optimizer_s for r in pipe.ranks)
    # the pipeline's step: M x (1 + bubble) x the slowest micro-batch, then the slowest
    # optimizer step: 4 x (1 + 1/4) = 5 micro-batch slots
    assert pipe.time_step_s == pytest.approx(5 * slowest + optimizer)
    # the report's step is that wall time: the rank's own work plus its idle time
    assert est.step == pytest.approx(pipe.time_step_s)
    work = est.step - est.phases.idle
    assert est.phases.idle > 0 and dict(est.by_bound)["idle"] == est.phases.idle
    assert work == pytest.approx(sum(s for name, s in est.by_bound if name != "idle"))
    assert report.timing.samples_per_s == pytest.approx(8 / pipe.time_step_s)
    assert est.mfu() == pytest.approx(est.model_flops / (pipe.time_step_s * est.peak_flops))
    assert report.to_dict()["totals"]["time"]["idle"] == est.phases.idle


def test_data_parallel_over_pipelines_adds_each_ranks_ddp_buckets() -> None:
    # pp=2 alone, by hand above: stage 0's gradients are 2,752 B, stage 1's 2,448 B. DDP
    # keeps one more copy of a rank's gradients in its buckets for the whole step (checked
    # against a real DDP run in tests/capture/test_data_parallel.py), so each rank's peak
    # grows by exactly its gradients, and its gradients are all-reduced across the 2
    # replicas: one bucket (under DDP's 1 MiB first bucket) of 2,752 B on rank 0
    alone = analyse("pp=2,microbatches=4").parallel.pipeline.ranks
    report = analyse("ddp=2,pp=2,microbatches=4")
    both = report.parallel
    assert (both.world_size, both.strategy) == (4, "ddp=2,pp=2,microbatches=4,schedule=1f1b")
    assert [r.peak for r in both.pipeline.ranks] == [alone[0].peak + 2752,
                                                     alone[1].peak + 2448]
    assert [r.grads for r in both.pipeline.ranks] == [2 * 2752, 2 * 2448]
    assert report.totals.memory.peak == both.pipeline.ranks[0].peak and both.rank == 0
    reduces = [(c.op, c.bytes, c.group, c.group_size) for c in both.collectives
               if c.op != "send"]
    assert reduces == [("all_reduce", 2752, "ddp", 2)]
    assert any("DDP's gradient buckets" in note for note in both.notes)
    # gradient_as_bucket_view: the gradients are the buckets, no second copy
    viewed = analyse("ddp=2,pp=2,microbatches=4,gradient_as_bucket_view=on").parallel
    assert [r.grads for r in viewed.pipeline.ranks] == [2752, 2448]
    assert [r.peak for r in viewed.pipeline.ranks] <= [r.peak for r in both.pipeline.ranks]
