"""FSDP2 on fake tensors (`memflops.capture.parallel`), checked against rank 0's real
storages and against the padded-shard arithmetic.

The truth for rank 0: the same `fully_shard` set-up of the same model run on
real CPU tensors with the fake process group in this process (collectives
are no-ops, so the values are garbage, but every storage rank 0 allocates is
real), measured by `LiveStorages` below, which shares no code with memflops:
after every op it sums the current size of every storage it has seen (so
FSDP2's frees by resizing a storage to 0 bytes count), and keeps the most.
"""

from __future__ import annotations

import copy
import math
import re
import weakref
from collections.abc import Iterable
from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import memflops
from memflops.capture.parallel import fake_process_group, fsdp_units
from memflops.errors import UsageError

DIM = 36
"""Not a multiple of 8: FSDP2 pads, and rank 0 holds the longest shard."""
BLOCKS = 3
BATCH = 4


class Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.up = nn.Linear(dim, 4 * dim)
        self.down = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(torch.relu(self.up(x)))


class MLP(nn.Module):
    """`BLOCKS` residual MLP blocks in a ModuleList, then a head."""

    def __init__(self, dim: int = DIM, blocks: int = BLOCKS) -> None:
        super().__init__()
        self.layers = nn.ModuleList([Block(dim) for _ in range(blocks)])
        self.head = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


class LiveStorages(TorchDispatchMode):  # type: ignore[misc]
    """The most bytes of storages live at once, polled after every op. `host` storages are
    never counted: PyTorch's non-fused optimizers keep their `step` counts on the host, and
    a GPU run does not allocate them on the device."""

    def __init__(self, preexisting: Iterable[torch.Tensor],
                 host: Iterable[torch.Tensor] = ()) -> None:
        super().__init__()
        self.storages: dict[int, weakref.ref[Any]] = {}
        self.host = {t.untyped_storage()._cdata for t in host}
        self.peak = 0
        for t in preexisting:
            self._see(t)
        self.peak = self._total()

    def _see(self, t: Any) -> None:
        from torch.distributed.tensor import DTensor

        if isinstance(t, torch.Tensor) and not isinstance(t, DTensor):
            s = t.untyped_storage()
            if s._cdata not in self.host:
                self.storages.setdefault(s._cdata, weakref.ref(s))

    def _total(self) -> int:
        total = 0
        for key, ref in list(self.storages.items()):
            s = ref()
            if s is None:
                del self.storages[key]
            else:
                total += s.nbytes()
        return total

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        from torch.distributed.tensor import DTensor

        if any(isinstance(a, DTensor) for a in tree_leaves((args, kwargs))):
            return NotImplemented  # DTensor runs its local ops, which come back here
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves((args, kwargs, out)):
            self._see(t)
        self.peak = max(self.peak, self._total())
        return out


def _unique_bytes(tensors: Iterable[torch.Tensor]) -> int:
    return sum({t.untyped_storage()._cdata: t.untyped_storage().nbytes() for t in tensors}.values())


def _second_step_bytes(real: nn.Module, opt: torch.optim.Optimizer) -> dict[str, int]:
    """Rank 0's local parameter, gradient, AdamW state (its `step` scalars on the host, as on
    a GPU) and peak bytes in the second training step of the sharded `real` (the first
    creates the optimizer state), on a real batch of (`BATCH`, `DIM`)."""
    x = torch.randn(BATCH, DIM)

    def step() -> None:
        real(x).sum().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    params = [p._local_tensor for p in real.parameters()]
    state = [v._local_tensor for s in opt.state.values() for k, v in s.items() if k != "step"]
    steps = [s["step"] for s in opt.state.values()]
    live = LiveStorages([*params, *state, x], host=steps)
    with live:
        real(x).sum().backward()
        grads = _unique_bytes(p.grad._local_tensor for p in real.parameters())
        opt.step()
        opt.zero_grad(set_to_none=True)
    return {"params": _unique_bytes(params), "grads": grads,
            "optimizer": _unique_bytes(state), "peak": live.peak}


def _reported(report: memflops.Report) -> dict[str, int]:
    """The report's rank-0 bytes under `_second_step_bytes`' keys."""
    memory = report.totals.memory
    return {"params": memory.params, "grads": memory.grads, "optimizer": memory.optimizer,
            "peak": memory.peak}


def real_rank0(model: nn.Module, world: int, reshard: bool, replicas: int = 1,
               param_dtype: torch.dtype | None = None) -> dict[str, int]:
    """Rank 0's bytes in the second step of `fully_shard` training of a copy of `model` on
    real CPU tensors: units as memflops wraps them (each block, the last one and the root
    keeping their parameters after forward when `reshard`); over `world` ranks, or HSDP's
    (`replicas`, `world`) mesh; with FSDP2's mixed precision (`param_dtype`, float32
    reduce) when given."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = (MixedPrecisionPolicy() if param_dtype is None else
              MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32))
    with fake_process_group(world * replicas):
        mesh = (init_device_mesh("cpu", (world,)) if replicas == 1 else
                init_device_mesh("cpu", (replicas, world), mesh_dim_names=("r", "s")))
        real = copy.deepcopy(model)
        blocks = [f"layers.{i}" for i in range(len(real.layers))]
        for i, path in enumerate(blocks):
            fully_shard(real.get_submodule(path), mesh=mesh, mp_policy=policy,
                        reshard_after_forward=reshard and i < len(blocks) - 1)
        fully_shard(real, mesh=mesh, reshard_after_forward=False, mp_policy=policy)
        opt = torch.optim.AdamW(real.parameters())
        return _second_step_bytes(real, opt)


@pytest.mark.parametrize(("world", "reshard"), [(8, True), (4, False)])
def test_rank0_matches_a_real_cpu_run_to_the_byte(world: int, reshard: bool) -> None:
    torch.manual_seed(0)
    model = MLP()
    layout = f"fsdp={world}" + ("" if reshard else ",reshard_after_forward=off")
    report = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                              parallel=layout)
    real = real_rank0(model, world, reshard)
    assert _reported(report) == real


def padded_shard_elements(model: nn.Module, world: int) -> int:
    """Elements rank 0 holds: dimension 0 of each parameter padded to a multiple of
    `world`, ceil(rows / world) rows of the rest each."""
    return sum(
        math.ceil(p.shape[0] / world) * math.prod(p.shape[1:]) for p in model.parameters()
    )


@pytest.mark.parametrize("world", [1, 3, 8, 64])
def test_sharded_states_are_the_padded_shard_arithmetic(world: int) -> None:
    # DIM 36, 3 blocks: up.weight 144x36, up.bias 144, down.weight 36x144, down.bias 36;
    # head 36x36 + 36. At world 8: up rows 144/8 = 18, down rows ceil(36/8) = 5, so a block
    # holds 18*36 + 18 + 5*144 + 5 = 1391, the head 5*36 + 5 = 185: 3*1391 + 185 = 4358
    # elements, 17,432 bytes in fp32. At world 64: every parameter keeps >= 1 row.
    model = MLP()
    report = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                              parallel=f"fsdp={world}")
    shard = 4 * padded_shard_elements(model, world)
    if world == 8:
        assert shard == 17_432
    memory = report.totals.memory
    assert (memory.params, memory.grads, memory.optimizer) == (shard, shard, 2 * shard)


def test_collectives_gather_each_unit_and_reduce_each_gradient() -> None:
    model = MLP()
    report = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                              parallel="fsdp=8")
    par = report.parallel
    assert par is not None
    # Per unit the flat buffer is world x the padded shard: a block 8 * 1391 * 4 = 44,512 B,
    # the head (root unit) 8 * 185 * 4 = 5,920 B.
    block, root = 8 * 1391 * 4, 8 * 185 * 4
    gathers = [(c.phase, c.bytes) for c in par.collectives if c.op == "all_gather"]
    # forward: the root, then each block; backward: blocks 0 and 1 again (the last block
    # and the root keep their parameters after forward)
    assert gathers == [("forward", root)] + [("forward", block)] * 3 + [("backward", block)] * 2
    reduces = sorted(c.bytes for c in par.collectives if c.op == "reduce_scatter")
    assert reduces == [root, block, block, block]
    assert all(c.group == "fsdp" and c.group_size == 8 for c in par.collectives)
    # each rank sends 7/8 of every collective's size (ring)
    total = sum(c.bytes for c in par.collectives)
    assert par.communication_bytes == total * 7 // 8
    assert par.units == ("layers.0", "layers.1", "layers.2", "")


def test_communication_time_on_the_interconnect() -> None:
    report = memflops.analyze(MLP(), (BATCH, DIM), mode="train", optimizer="adamw",
                              parallel="fsdp=8", gpu="H100 SXM")
    par = report.parallel
    assert par is not None and par.time_comm_s is not None
    # NVLink 4: 900 GB/s both directions, 450e9 B/s each way
    assert par.time_comm_s == pytest.approx(par.communication_bytes / 450e9)
    assert par.interconnect == "NVLink 4"
    assert report.timing is not None
    step = report.timing.estimate.step
    assert par.time_step_serial_s == pytest.approx(step + par.time_comm_s)
    assert par.time_step_overlapped_s == max(step, par.time_comm_s)


def test_the_model_and_the_process_leave_unchanged() -> None:
    model = MLP()
    before = [(n, p) for n, p in model.named_parameters()]
    memflops.analyze(model, (BATCH, DIM), mode="train", parallel="fsdp=2")
    assert not dist.is_initialized()
    assert type(model) is MLP and type(model.layers[0]) is Block
    assert list(model.named_parameters()) == before
    assert all(type(p) is nn.Parameter for _, p in before)
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in model.modules())


def test_an_initialized_process_group_is_refused() -> None:
    with fake_process_group(2), pytest.raises(UsageError, match="already initialized"):
        memflops.analyze(MLP(), (BATCH, DIM), mode="train", parallel="fsdp=2")
    assert not dist.is_initialized()


def test_generate_mode_is_refused() -> None:
    with pytest.raises(UsageError, match="generate mode"):
        memflops.analyze(MLP(), (BATCH, DIM), mode="generate", parallel="fsdp=2")


def test_units_are_the_repeated_blocks_then_the_root() -> None:
    class Nested(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Linear(4, 4)
            self.stages = nn.ModuleList([
                nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)),
                nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)),
            ])
            self.mixed = nn.Sequential(nn.Linear(4, 4), nn.ReLU())

    # the outer list of two Sequentials is the repeated list; lists inside its blocks are
    # not descended into; a list of mixed types is no repeated list
    assert fsdp_units(Nested()) == ["stages.0", "stages.1", ""]
    assert fsdp_units(nn.Linear(2, 2)) == [""]


def test_report_without_parallel_has_none() -> None:
    report = memflops.analyze(MLP(), (BATCH, DIM), mode="train")
    assert report.parallel is None and report.to_dict()["parallel"] is None


# --- tensor parallel -----------------------------------------------------------------

MLP_PLAN = {"layers.*.up": "colwise", "layers.*.down": "rowwise"}
"""Megatron's MLP split: the first Linear by columns, the second by rows (one all-reduce)."""


def real_tp_rank0(model: nn.Module, world: int, plan: dict[str, str],
                  fsdp: int = 1, replicas: int = 1) -> dict[str, int]:
    """Rank 0's bytes in the second step of tensor-parallel training (over `world` ranks;
    with `fsdp` > 1, FSDP2 across `fsdp` such groups, each block and the root as units,
    every unit keeping its parameters after forward) of a copy of `model` on real CPU
    tensors, set up as memflops sets it up."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor.parallel import parallelize_module

    from memflops.capture.parallel import replicate_unplanned, tp_style

    with fake_process_group(world * fsdp * replicas):
        if replicas > 1:  # HSDP across the tensor-parallel groups: a 3-D mesh
            grid = init_device_mesh("cpu", (replicas, fsdp, world),
                                    mesh_dim_names=("replicate", "fsdp", "tp"))
            mesh, across = grid["tp"], grid["replicate", "fsdp"]
        elif fsdp > 1:
            grid = init_device_mesh("cpu", (fsdp, world), mesh_dim_names=("fsdp", "tp"))
            mesh, across = grid["tp"], grid["fsdp"]
        else:
            mesh = init_device_mesh("cpu", (world,))
        real = copy.deepcopy(model)
        parallelize_module(real, mesh, {k: tp_style(v) for k, v in plan.items()})
        replicate_unplanned(real, mesh)
        if fsdp > 1:
            for i in range(len(real.layers)):
                fully_shard(real.layers[i], mesh=across,
                            reshard_after_forward=i < len(real.layers) - 1)
            fully_shard(real, mesh=across, reshard_after_forward=False)
        opt = torch.optim.AdamW(real.parameters(), foreach=True)
        return _second_step_bytes(real, opt)


def test_tensor_parallel_rank0_matches_a_real_cpu_run_to_the_byte() -> None:
    torch.manual_seed(0)
    model = MLP()
    report = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                              parallel="tp=4", tp_plan=MLP_PLAN)
    assert _reported(report) == real_tp_rank0(model, 4, MLP_PLAN)


def test_tensor_parallel_shards_params_grads_and_adamw_state_to_a_quarter() -> None:
    model = MLP()
    one = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw")
    four = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                            parallel="tp=4", tp_plan=MLP_PLAN)
    # split: up (144x36 + 144) and down's weight (36x144) per block; whole on every rank:
    # down's bias (36) and the head (36x36 + 36). Elements per rank:
    # 3 * (144*36 + 144 + 36*144) / 4 + 3 * 36 + 36*36 + 36 = 7884 + 108 + 1332 = 9324
    whole = 3 * 36 + 36 * 36 + 36
    split = 3 * (144 * 36 + 144 + 36 * 144)
    assert four.totals.memory.params == 4 * (split // 4 + whole) == 37_296
    assert one.totals.memory.params == 4 * (split + whole)
    assert four.totals.memory.grads == four.totals.memory.params
    assert four.totals.memory.optimizer == 2 * four.totals.memory.params
    par = four.parallel
    assert par is not None
    # each block's rowwise Linear sums its partial outputs: one all-reduce of the
    # (4, 36) fp32 activations = 576 bytes per block in forward
    forward = [(c.op, c.bytes, c.module) for c in par.collectives if c.phase == "forward"]
    assert forward == [("all_reduce", 576, f"layers.{i}.down") for i in range(BLOCKS)]
    all_reduce = next(c for c in par.collectives if c.op == "all_reduce")
    assert all_reduce.sent_bytes == 2 * 576 * 3 // 4  # ring: 2 (N - 1) / N of the buffer


def test_tensor_parallel_all_reduces_are_counted_with_their_groups_size() -> None:
    report = memflops.analyze(MLP(), (BATCH, DIM), mode="train", optimizer="adamw",
                              parallel="tp=4", tp_plan=MLP_PLAN)
    assert report.uncounted_ops == () and report.warnings == ()
    # each all-reduce of a (4, 36) fp32 buffer over 4 ranks: the ring adds the other
    # three ranks' quarter into each quarter, 144 - 144 / 4 = 108 adds; it reads and
    # writes the buffer once, 576 B each way. Forward: one per block's rowwise `down`
    # (3); backward: one per colwise `up` but the first's, whose input needs no gradient
    forward = report.by_operator("forward")["_c10d_functional.all_reduce"]
    backward = report.by_operator("backward")["_c10d_functional.all_reduce"]
    assert (forward.count, forward.cost.flops, forward.cost.bytes_read) == (3, 3 * 108, 3 * 576)
    assert (backward.count, backward.cost.flops) == (2, 2 * 108)


def test_a_functional_all_reduce_outside_a_distributed_step_names_the_group() -> None:
    from memflops.flops.collectives import functional_all_reduce
    from memflops.flops.registry import Shape

    assert functional_all_reduce(Shape((4, 36)), "sum", 4).flops == 108
    with pytest.raises(ValueError, match="size of process group 'tp' is unknown"):
        functional_all_reduce(Shape((4, 36)), "sum", "tp")


@pytest.mark.parametrize(("plan", "message"), [
    ({"layers.*.up": "colwise", "head": "rowwise"}, "head (Linear) has in_features = 36"),
    ({"layers.*.upp": "colwise"}, "'layers.*.upp' names no module"),
    ({"layers.*": "colwise"}, "layers.0 is a Block; style colwise splits an nn.Linear"),
    ({"layers.*.up": "diagonal"}, "'diagonal' is not a style"),
])
def test_a_plan_that_cannot_split_names_the_module(plan: dict[str, str], message: str) -> None:
    # head: 36 input features over 8 ranks is 4.5 each
    with pytest.raises(UsageError, match=re.escape(message)):
        memflops.analyze(MLP(), (BATCH, DIM), mode="train", parallel="tp=8", tp_plan=plan)
    assert not dist.is_initialized()


def test_a_model_without_a_plan_says_how_to_give_one() -> None:
    with pytest.raises(UsageError, match="no built-in tensor-parallel plan; give one as tp_plan"):
        memflops.analyze(MLP(), (BATCH, DIM), mode="train", parallel="tp=2")
    with pytest.raises(UsageError, match="add parallel='tp=N'"):
        memflops.analyze(MLP(), (BATCH, DIM), mode="train", parallel="fsdp=2",
                         tp_plan=MLP_PLAN)


def test_fsdp_with_tensor_parallel_matches_a_real_2d_run_to_the_byte() -> None:
    torch.manual_seed(0)
    model = MLP()
    report = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                              parallel="fsdp=2,tp=2", tp_plan=MLP_PLAN)
    assert _reported(report) == real_tp_rank0(model, 2, MLP_PLAN, fsdp=2)
    par = report.parallel
    assert par is not None
    assert {(c.op, c.group, c.group_size) for c in par.collectives} == {
        ("all_gather", "fsdp", 2), ("reduce_scatter", "fsdp", 2), ("all_reduce", "tp", 2)}
    # up.weight 144x36: 72 rows per tensor-parallel rank, 36 of them on each FSDP rank
    assert par.world_size == 4 and par.strategy == "fsdp=2,tp=2"


def test_pytorchs_fsdp_mem_tracker_agrees_kind_by_kind() -> None:
    """PyTorch's own `FSDPMemTracker` (a second opinion, not the truth) on the same real
    CPU step: every kind at the peak agrees; it counts the optimizer's 14 `step` scalars
    (4 bytes each, kept on the host by a GPU run) and files one 8-byte storage under
    activations that memflops calls a temporary."""
    from torch.distributed._tools.fsdp2_mem_tracker import FSDPMemTracker
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    torch.manual_seed(0)
    model = MLP()
    report = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                              parallel="fsdp=8")
    assert report.parallel is not None
    ours = dict(report.parallel.by_kind)
    with fake_process_group(8):
        mesh = init_device_mesh("cpu", (8,))
        real = copy.deepcopy(model)
        for i in range(BLOCKS):
            fully_shard(real.layers[i], mesh=mesh, reshard_after_forward=i < BLOCKS - 1)
        fully_shard(real, mesh=mesh, reshard_after_forward=False)
        opt = torch.optim.AdamW(real.parameters(), foreach=True)
        x = torch.randn(BATCH, DIM)

        def step() -> None:
            real(x).sum().backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        step()
        tracker = FSDPMemTracker(real, opt)
        tracker.track_inputs((x,))
        with tracker:
            step()
        (theirs,) = tracker.get_tracker_snapshot("peak").values()
    kinds = {str(k).rpartition(".")[2]: v for k, v in theirs.items()}
    steps = 4 * (4 * BLOCKS + 2)  # one fp32 `step` per parameter: 14 parameters
    assert kinds["SHARDED_PARAM"] == ours["sharded_params"]
    assert kinds["UNSHARDED_PARAM"] == ours["unsharded_params"]
    assert kinds["ALL_GATHER"] == ours["all_gather_buffers"]
    assert kinds["REDUCE_SCATTER"] == ours["reduce_scatter_buffers"]
    assert kinds["SHARDED_GRAD"] == ours["grads"]
    assert kinds["INP"] == ours["inputs"]
    assert kinds["OPT"] == ours["optimizer"] + steps
    assert kinds["ACT"] + kinds["TEMP"] == ours["activations"] + ours["temporaries"]
    assert kinds["ACT"] - ours["activations"] == 8
    assert kinds["Total"] == report.totals.memory.peak + steps


def test_hsdp_rank0_matches_a_real_cpu_run_to_the_byte() -> None:
    """hsdp=2x4: FSDP2 on a (replicate 2, shard 4) mesh; rank 0 shards as fsdp=4 does, and
    each gradient shard is all-reduced across the 2 replicas after its reduce-scatter."""
    torch.manual_seed(0)
    model = MLP()
    report = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                              parallel="hsdp=2x4")
    memory = report.totals.memory
    assert _reported(report) == real_rank0(model, 4, True, replicas=2)
    par = report.parallel
    assert par is not None and (par.strategy, par.world_size) == ("hsdp=2x4", 8)
    # the shard at world 4: a block 36*36 + 36 + 9*144 + 9 = 2637 elements (up rows
    # 144/4 = 36, down rows 36/4 = 9), the head 9*36 + 9 = 333; 4 bytes each
    assert memory.params == 4 * (3 * 2637 + 333) == 4 * padded_shard_elements(model, 4)
    reduces = sorted((c.op, c.group, c.group_size, c.bytes) for c in par.collectives
                     if c.op != "all_gather")
    assert reduces == sorted(
        [("reduce_scatter", "fsdp", 4, 4 * 4 * n) for n in (2637, 2637, 2637, 333)]
        + [("all_reduce", "replicate", 2, 4 * n) for n in (2637, 2637, 2637, 333)])
    assert {c.group for c in par.collectives if c.op == "all_gather"} == {"fsdp"}


def test_mixed_precision_rank0_matches_a_real_cpu_run_to_the_byte() -> None:
    """fsdp=4,mp=bf16: FSDP2 gathers bfloat16 copies of the float32 shards (half the
    gathered bytes) and reduces float32 gradients; rank 0 agrees with a real run."""
    torch.manual_seed(0)
    model = MLP()
    report = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                              parallel="fsdp=4,mp=bf16")
    assert _reported(report) == real_rank0(model, 4, True, param_dtype=torch.bfloat16)
    par = report.parallel
    assert par is not None and par.strategy == "fsdp=4,mp=bf16"
    # a block's all-gather: 4 ranks x 2637 elements x 2 bytes (bfloat16) = 21,096 B; its
    # reduce-scatter: 4 x 2637 x 4 bytes (float32 reduce) = 42,192 B
    gathers = {c.bytes for c in par.collectives if c.op == "all_gather"}
    reduces = {c.bytes for c in par.collectives if c.op == "reduce_scatter"}
    assert 4 * 2637 * 2 in gathers and 4 * 2637 * 4 in reduces


def test_a_layout_pytorch_refuses_is_a_one_line_error() -> None:
    """FSDP2 refuses a unit whose parameters have different dtypes: the message is
    PyTorch's, in one line, and nothing is left initialized."""
    from memflops.errors import MemflopsError

    class Mixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(8, 8)
            self.b = nn.Linear(8, 8).to(torch.bfloat16)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x).to(torch.bfloat16))

    with pytest.raises(MemflopsError, match="FSDP expects uniform original parameter dtype") \
            as found:
        memflops.analyze(Mixed(), (2, 8), mode="train", parallel="fsdp=2")
    assert "\n" not in str(found.value) and not dist.is_initialized()


def test_hsdp_with_tensor_parallel_matches_a_real_3d_run_to_the_byte() -> None:
    """hsdp=2x2,tp=2: tensor parallel within pairs, FSDP2 across 2 of them, replicated
    twice; rank 0 against the same 3-D set-up run on real CPU tensors."""
    torch.manual_seed(0)
    model = MLP()
    report = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                              parallel="hsdp=2x2,tp=2", tp_plan=MLP_PLAN)
    assert _reported(report) == real_tp_rank0(model, 2, MLP_PLAN, fsdp=2, replicas=2)
    par = report.parallel
    assert par is not None and (par.world_size, par.strategy) == (8, "hsdp=2x2,tp=2")
    assert {(c.op, c.group) for c in par.collectives} == {
        ("all_gather", "fsdp"), ("reduce_scatter", "fsdp"), ("all_reduce", "replicate"),
        ("all_reduce", "tp")}


def test_fsdp_mem_tracker_on_fake_tensors_sees_the_same_peak() -> None:
    """The issue's trial found `FSDPMemTracker`'s peak snapshot on fake tensors without
    activations; with FSDP2 built inside the fake mode on the fake process group, it holds
    them (2,880 B + its 8-byte temporary) and its total is memflops' peak plus AdamW's 14
    `step` scalars, as on real tensors."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.fsdp2_mem_tracker import FSDPMemTracker
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    report = memflops.analyze(MLP(), (BATCH, DIM), mode="train", optimizer="adamw",
                              parallel="fsdp=8")
    assert report.parallel is not None
    ours = dict(report.parallel.by_kind)
    with fake_process_group(8):
        mesh = init_device_mesh("cpu", (8,))
        with FakeTensorMode():
            fake = MLP()
            for i in range(BLOCKS):
                fully_shard(fake.layers[i], mesh=mesh, reshard_after_forward=i < BLOCKS - 1)
            fully_shard(fake, mesh=mesh, reshard_after_forward=False)
            opt = torch.optim.AdamW(fake.parameters(), foreach=True)
            x = torch.randn(BATCH, DIM)

            def step() -> None:
                fake(x).sum().backward()
                opt.step()
                opt.zero_grad(set_to_none=True)

            step()
            tracker = FSDPMemTracker(fake, opt)
            tracker.track_inputs((x,))
            with tracker:
                step()
            (theirs,) = tracker.get_tracker_snapshot("peak").values()
    kinds = {str(k).rpartition(".")[2]: v for k, v in theirs.items()}
    assert kinds["ACT"] == ours["activations"] + 8 == 2_888
    assert kinds["Total"] == report.totals.memory.peak + 4 * (4 * BLOCKS + 2)


def test_fsdp2s_view_warning_is_kept_out_and_the_filters_restored() -> None:
    """FSDP2 warns that the wrapped MLP returns a view (advice to a model's author): the
    analysis does not pass it on, and leaves the warning filters as it found them."""
    import warnings

    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        memflops.analyze(MLP(), (BATCH, DIM), mode="train", parallel="fsdp=2,tp=2",
                         tp_plan=MLP_PLAN)
        assert not [w for w in seen if "returned a view tensor" in str(w.message)]
    assert warnings.filters == before
