"""ddp=N and ZeRO (`memflops.capture.data_parallel`, `memflops.memory.data_parallel`).

DDP and ZeRO-1 are modelled on the one-GPU capture; the truth for DDP is a
real `DistributedDataParallel` step on CPU tensors with the fake process
group (a comm hook that hands each bucket back stands in for the all-reduce,
as the fake backend's collectives do nothing), measured by the same plain
storage tracker as the FSDP2 checks (`LiveStorages`). ZeRO-2 and ZeRO-3 are
captured (FSDP2); the ZeRO paper's model-state formulas are checked against
them where both exist.
"""

from __future__ import annotations

import copy
import re

import pytest
import torch

import memflops
from capture.test_parallel import BATCH, DIM, MLP, LiveStorages, padded_shard_elements
from memflops.capture.data_parallel import ddp_buckets
from memflops.capture.parallel import fake_process_group
from memflops.errors import UsageError
from memflops.memory.data_parallel import (
    deepspeed_zero2_gpu_bytes,
    deepspeed_zero3_gpu_bytes,
    zero_model_states,
)

# The MLP of test_parallel (DIM 36, 3 blocks): a block 36*144 + 144 + 144*36 + 36 = 10,548
# parameters, the head 36*36 + 36 = 1,332: 3*10,548 + 1,332 = 32,976 parameters,
# 131,904 bytes in float32; AdamW's two moments 263,808 bytes.
PARAMS = 131_904
ADAMW = 2 * PARAMS


def real_ddp(model: torch.nn.Module, world: int, bucket_view: bool,
             dim: int = DIM) -> tuple[int, list[int]]:
    """Rank 0's peak in the second step of a real CPU DDP step of a copy of `model` with
    AdamW (foreach, as on a GPU), and DDP's bucket sizes in bytes."""
    from torch.nn.parallel import DistributedDataParallel

    def handed_back(state, bucket):  # type: ignore[no-untyped-def]  # DDP reads annotations
        done: torch.futures.Future[torch.Tensor] = torch.futures.Future()
        done.set_result(bucket.buffer())
        return done

    with fake_process_group(world):
        real = DistributedDataParallel(copy.deepcopy(model), gradient_as_bucket_view=bucket_view)
        real.register_comm_hook(None, handed_back)
        opt = torch.optim.AdamW(real.parameters(), foreach=True)
        x = torch.randn(BATCH, dim)

        def step() -> None:
            real(x).sum().backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        step()
        state = [v for s in opt.state.values() for k, v in s.items() if k != "step"]
        live = LiveStorages([*real.parameters(), *state, x],
                            host=[s["step"] for s in opt.state.values()])
        with live:
            step()
        buckets = [b.buffer().numel() * b.buffer().element_size()
                   for b in real.reducer._get_zeros_like_grad_buckets()]
    return live.peak, buckets


@pytest.mark.parametrize("bucket_view", [False, True])
def test_ddp_matches_a_real_cpu_ddp_run_to_the_byte(bucket_view: bool) -> None:
    torch.manual_seed(0)
    model = MLP()
    layout = "ddp=4" + (",gradient_as_bucket_view=on" if bucket_view else "")
    report = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                              parallel=layout)
    one = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw")
    peak, buckets = real_ddp(model, 4, bucket_view)
    assert report.totals.memory.peak == peak
    # one bucket (131,904 B < the first bucket's 1 MiB), alive the whole step: one more copy
    # of the gradients, or none when the gradients are views of it
    assert buckets == [PARAMS]
    assert peak == one.totals.memory.peak + (0 if bucket_view else PARAMS)
    par = report.parallel
    assert par is not None and par.engine == "modelled" and par.notes
    assert [(c.op, c.bytes) for c in par.collectives] == [("all_reduce", PARAMS)]
    # ring all-reduce: each rank sends 2 * (4 - 1) / 4 of the buffer = 197,856 B
    assert par.communication_bytes == 2 * PARAMS * 3 // 4 == 197_856


def test_ddp_buckets_as_ddp_assigns_them() -> None:
    """A model past DDP's first 1 MiB bucket: the modelled bucket sizes are the reducer's."""
    torch.manual_seed(0)
    model = MLP(dim=200, blocks=4)  # a block 2 * 200 * 800 + 800 + 200 = 321,000 params
    sizes = [p.numel() * 4 for p in model.parameters()]
    _, buckets = real_ddp(model, 2, False, dim=200)
    assert ddp_buckets(sizes) == buckets
    assert sum(buckets) == 4 * sum(p.numel() for p in model.parameters())


def test_zero1_keeps_a_quarter_of_the_optimizer_state() -> None:
    model = MLP()
    report = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                              parallel="ddp=4,zero=1")
    ddp = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                           parallel="ddp=4")
    memory = report.totals.memory
    # each of AdamW's 28 moment tensors split in 4: the shapes divide, so 263,808 / 4
    assert (memory.params, memory.optimizer) == (PARAMS, ADAMW // 4) == (PARAMS, 65_952)
    # the optimizer state is live at the peak: it falls by 3/4 of it, 197,856 B
    assert ddp.totals.memory.peak - memory.peak == ADAMW * 3 // 4
    par = report.parallel
    assert par is not None and par.strategy == "ddp=4,zero=1" and par.engine == "modelled"
    # the all-reduce of the gradients, then an all-gather of the updated parameters
    assert [(c.op, c.bytes) for c in par.collectives] == [
        ("all_reduce", PARAMS), ("all_gather", PARAMS)]


@pytest.mark.parametrize("world", [1, 4, 8])
def test_zero3_formula_agrees_with_captured_fsdp(world: int) -> None:
    """ZeRO-3 is fsdp=N (the same capture); the paper's model states (all three split
    evenly) agree with it to the byte when every parameter's rows divide (world 1, 4) and
    fall short of it by FSDP2's padding otherwise (world 8)."""
    model = MLP()
    zero3 = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                             parallel=f"ddp={world},zero=3")
    fsdp = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                            parallel=f"fsdp={world}")
    assert zero3.totals.memory == fsdp.totals.memory
    memory = fsdp.totals.memory
    captured = (memory.params, memory.grads, memory.optimizer)
    modelled = zero_model_states(3, world, PARAMS, PARAMS, ADAMW)
    padding = 4 * padded_shard_elements(model, world) - -(-PARAMS // world)
    assert [c - m for c, m in zip(captured, modelled, strict=True)] == [
        padding, padding, 2 * padding]
    # world 8: 17,432 B held (test_parallel) against ceil(131,904 / 8) = 16,488: 944 B of
    # padding (the 36-row parameters padded to 40)
    assert padding == (0 if world in (1, 4) else 944)


def test_zero2_shards_gradients_and_state_and_gathers_parameters_whole() -> None:
    """ZeRO-2 is FSDP2 with reshard_after_forward off, which FSDP documents as
    SHARD_GRAD_OP (torch/distributed/fsdp/api.py): gradients and optimizer state split as
    the paper's P_os+g splits them; parameters sharded outside computation, so whole
    (as the paper's stage 2 keeps them) from forward to backward, at the peak."""
    model = MLP()
    report = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                              parallel="ddp=4,zero=2")
    memory = report.totals.memory
    _, grads, optimizer = zero_model_states(2, 4, PARAMS, PARAMS, ADAMW)
    assert (memory.grads, memory.optimizer) == (grads, optimizer) == (32_976, 65_952)
    par = report.parallel
    assert par is not None and par.engine == "captured"
    assert dict(par.by_kind)["unsharded_params"] == PARAMS


def test_deepspeed_formulas_count_model_states_only() -> None:
    """DeepSpeed's estimators, reproduced from their formulas for a published-style case, and
    what they leave out of a captured step: activations, gathered parameters and buffers."""
    # 7e9 params on 8 GPUs: ZeRO-2 4 * 7e9 + 16 * 7e9 / 8 = 28e9 + 14e9 = 42e9 bytes
    assert deepspeed_zero2_gpu_bytes(7_000_000_000, 8) == 42_000_000_000
    # ZeRO-3, largest layer 0.5e9: 4 * 0.5e9 + 18 * 7e9 / 8 = 2e9 + 15.75e9 = 17.75e9
    assert deepspeed_zero3_gpu_bytes(7_000_000_000, 500_000_000, 8) == 17_750_000_000
    model = MLP()
    report = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                              parallel="ddp=4,zero=3")
    par = report.parallel
    assert par is not None
    kinds = dict(par.by_kind)
    states = kinds["sharded_params"] + kinds["grads"] + kinds["optimizer"]
    rest = report.totals.memory.peak - states
    assert rest == (kinds["unsharded_params"] + kinds["all_gather_buffers"]
                    + kinds["reduce_scatter_buffers"] + kinds["activations"]
                    + kinds["inputs"] + kinds["temporaries"]) > 0


@pytest.mark.parametrize(("layout", "message"), [
    ("zero=2", "zero=S needs the data-parallel ranks"),
    ("ddp=4,zero=4", "zero='4'; expected a ZeRO stage"),
    ("ddp=4,tp=2", "ddp combines with pp only"),
    ("fsdp=4,hsdp=2x2", "give fsdp=N or hsdp=RxS, not both"),
    ("hsdp=4", "expected RxS"),
    ("hsdp=0x4", "hsdp replicas=0: the number of ranks must be at least 1"),
    ("ddp=4,zero=1,mp=bf16", "mp (FSDP2's mixed precision) applies to"),
    ("fsdp=4,gradient_as_bucket_view=on", "gradient_as_bucket_view applies to ddp=N only"),
    ("pp=4,tp=2", "pp combines with ddp=N only here (tp given)"),
])
def test_bad_layouts_are_one_line_usage_errors(layout: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)) as found:
        memflops.analyze(MLP(), (BATCH, DIM), mode="train", parallel=layout)
    assert "\n" not in str(found.value)


@pytest.mark.parametrize("layout", ["fsdp=4", "ddp=4"])
def test_fit_answers_the_largest_batch_per_gpu(layout: str) -> None:
    """With `parallel`, the fit's batch is each rank's: the step at that batch fits in the
    capacity per GPU and one more sample does not (both analysed again here)."""
    model = MLP()
    capacity = 2**20
    report = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                              parallel=layout, fit=capacity)
    fit = report.fit
    assert fit is not None and fit.largest > 0

    def peak(batch: int) -> int:
        return memflops.analyze(model, (batch, DIM), mode="train", optimizer="adamw",
                                parallel=layout).totals.memory.peak

    assert peak(fit.largest) == fit.peak_at_largest <= capacity < peak(fit.largest + 1)


@pytest.mark.parametrize(("layout", "below"), [("fsdp=64", 100_000), ("ddp=8,zero=1", 50_000)])
def test_fit_finds_the_fewest_ranks(layout: str, below: int) -> None:
    """fit_dimension="ranks": the fewest data-parallel ranks (powers of two up to the
    layout's) at which rank 0's step fits; at half of them it does not (analysed again)."""
    model = MLP()
    one = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw")
    # below one GPU's peak, within what sharding saves: more than 1 rank, not the most (ZeRO-1
    # at 8 ranks saves 7/8 of AdamW's 263,808 B less DDP's 131,904 B bucket: 98,928 B)
    capacity = one.totals.memory.peak - below
    report = memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                              parallel=layout, fit=capacity, fit_dimension="ranks")
    fit = report.fit
    assert fit is not None and fit.dimension == "ranks" and fit.largest > 1
    dim = "fsdp" if layout.startswith("fsdp") else "ddp"

    def peak(ranks: int) -> int:
        again = layout.replace(f"{dim}=" + layout.split("=")[1].split(",")[0],
                               f"{dim}={ranks}")
        return memflops.analyze(model, (BATCH, DIM), mode="train", optimizer="adamw",
                                parallel=again).totals.memory.peak

    assert peak(fit.largest) == fit.peak_at_largest <= capacity < peak(fit.largest // 2)
    assert fit.peak_at_next == peak(fit.largest // 2)
    with pytest.raises(UsageError, match="fit_dimension=ranks: give the layout"):
        memflops.analyze(model, (BATCH, DIM), mode="train", fit=capacity,
                         fit_dimension="ranks")
