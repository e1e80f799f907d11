"""The time model (hardware.time_model): a roofline per op, summed per module and phase."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

import memflops
from memflops.capture.records import OpRecord, Phase
from memflops.errors import UsageError
from memflops.flops.registry import OpCost
from memflops.hardware.catalog import accelerator, find_accelerator
from memflops.hardware.time_model import (
    TimeConstants,
    TimeModel,
    communication_time,
    parse_constants,
)

# A made-up accelerator with round numbers, and round constants, so every time below is
# arithmetic in the comments: bf16 tensor 100 TFLOP/s, fp32 vector 10 TFLOP/s, 1 TB/s.
CARD = accelerator("custom:bf16=100T,fp32=10T,tf32=50T,bw=1T,mem=16G")
HALF = TimeConstants(matmul_efficiency=0.5, vector_efficiency=0.5, memory_efficiency=0.5,
                     kernel_overhead_s=1e-6)


def record(op: str, cost: OpCost, dtype: str = "bfloat16", phase: Phase = Phase.FORWARD,
           module: str = "") -> OpRecord:
    return OpRecord(op, module, phase, cost, dtype=dtype)


def test_a_large_matmul_is_compute_bound() -> None:
    # (1024 x 1024) @ (1024 x 1024) in bf16: 2^30 MACs; 3 matrices of 2 MiB moved
    mm = OpCost(macs=2**30, flops=2 * 2**30 - 2**20, bytes_read=2 * 2**21, bytes_written=2**21)
    t = TimeModel(CARD, HALF).op(record("aten.mm", mm))
    assert t is not None
    # compute 2 * 2^30 / (100e12 * 0.5) = 42.95 us; memory 3 * 2^21 / 0.5e12 = 12.58 us
    assert t.compute_s == pytest.approx(2 * 2**30 / 50e12)
    assert t.memory_s == pytest.approx(3 * 2**21 / 0.5e12)
    assert t.total == pytest.approx(2 * 2**30 / 50e12 + 1e-6)
    assert (t.bound, t.unit) == ("compute", "bf16")


def test_an_elementwise_op_is_memory_bound_and_a_tiny_one_overhead_bound() -> None:
    # relu of 2^24 fp32 values: 2^24 compares at 5 TFLOP/s = 3.36 us; 2 * 64 MiB at
    # 0.5 TB/s = 268.4 us
    relu = OpCost(flops=2**24, bytes_read=2**26, bytes_written=2**26)
    t = TimeModel(CARD, HALF).op(record("aten.relu", relu, "float32"))
    assert t is not None
    assert t.compute_s == pytest.approx(2**24 / 5e12)
    assert t.memory_s == pytest.approx(2**27 / 0.5e12)
    assert (t.bound, t.unit) == ("memory", "fp32 vector")
    # 16 values: 128 bytes take 0.26 ns, far under the 1 us launch
    tiny = TimeModel(CARD, HALF).op(record("aten.relu", OpCost(flops=16, bytes_read=64,
                                                                 bytes_written=64), "float32"))
    assert tiny is not None and tiny.bound == "overhead"
    # an op that moves nothing and computes nothing (empty) launches no kernel
    assert TimeModel(CARD, HALF).op(record("aten.empty", OpCost())) is None


def test_fp32_matmuls_and_convolutions_follow_pytorchs_tf32_defaults() -> None:
    model = TimeModel(CARD, HALF)
    # matmul: allow_tf32 is off by default -> the fp32 rate; convolution: cuDNN's is on
    assert model.tensor_unit("aten.mm", "float32", integer=False) == "fp32"
    assert model.tensor_unit("aten.convolution", "float32", integer=False) == "tf32"
    on = TimeModel(CARD, TimeConstants(tf32_matmul=True))
    assert on.tensor_unit("aten.mm", "float32", integer=False) == "tf32"


def test_a_depthwise_convolution_runs_on_the_vector_unit() -> None:
    # 2^30 depthwise MACs in bf16 (exact FLOPs 2^31 - 2^20, no bias), 1 MiB moved: all
    # arithmetic at the fp32 vector rate, 10 TFLOP/s x 0.5: (2^31 - 2^20) / 5e12 = 429.3 us,
    # where the bf16 tensor rate (50 TFLOP/s usable) would give 42.9 us
    flops = 2 * 2**30 - 2**20
    dw = OpCost(macs=2**30, flops=flops, bytes_read=2**19, bytes_written=2**19,
                depthwise_macs=2**30)
    model = TimeModel(CARD, HALF)
    t = model.op(record("aten.convolution", dw))
    assert t is not None
    assert t.compute_s == pytest.approx(flops / 5e12)
    assert (t.bound, t.unit) == ("compute", "fp32 vector")
    # its MACs still count in MFU's numerator, and no unit's share of MACs: the step's
    # peak is that of the dense convolution beside it
    dense = OpCost(macs=2**20, flops=2**21, bytes_read=2**10)
    estimate = model.estimate([record("aten.convolution", dw),
                               record("aten.convolution", dense)])
    assert estimate.model_flops == 2 * (2**30 + 2**20)
    assert estimate.peak_dtype == "bf16"


def test_a_dtype_the_accelerator_has_no_peak_for_is_an_error() -> None:
    t4 = find_accelerator("T4")
    bf16_mm = record("aten.mm", OpCost(macs=8, flops=8, bytes_read=8))
    with pytest.raises(UsageError, match=r"NVIDIA T4 has no bf16 peak .*--dtype fp16"):
        TimeModel(t4).op(bf16_mm)


def test_constants_are_checked_and_overridable() -> None:
    assert parse_constants("matmul=0.6,memory=0.8,overhead=5us,tf32_matmul=on") == \
        TimeConstants(matmul_efficiency=0.6, memory_efficiency=0.8, kernel_overhead_s=5e-6,
                      tf32_matmul=True)
    assert parse_constants({"vector_efficiency": 0.25}).vector_efficiency == 0.25
    for bad, message in (("matmul=1.2", r"must be in \(0, 1\]"),
                         ("memory=0", r"must be in \(0, 1\]"),
                         ("matmull=0.5", "did you mean matmul"),
                         ("overhead=-1us", ">= 0"),
                         ("tf32_conv=maybe", "on or off")):
        with pytest.raises(UsageError, match=message):
            parse_constants(bad)


def test_a_training_step_sums_per_phase_and_module() -> None:
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 10))
    report = memflops.analyze(model, (64, 256), mode="train", optimizer="sgd",
                              gpu="A100 80GB SXM")
    timing = report.timing
    assert timing is not None
    est = timing.estimate
    phases = est.phases
    assert est.step == pytest.approx(phases.forward + phases.loss + phases.backward
                                     + phases.optimizer)
    # the root holds every forward and backward op; its children add up to it
    root_forward, root_backward = timing.module("")
    assert root_forward == pytest.approx(phases.forward)
    assert root_backward == pytest.approx(phases.backward)
    assert sum(timing.module(p)[0] for p in ("0", "1", "2")) == pytest.approx(root_forward)
    # throughput: 64 samples per step; MFU: 2mac FLOPs over time x the fp32 peak (the
    # unit of every MAC here: fp32 matmuls, TF32 off)
    assert timing.samples_per_s == pytest.approx(64 / est.step)
    assert timing.tokens_per_s is None
    assert est.peak_dtype == "fp32"
    assert est.mfu() == pytest.approx(report.total(convention="2mac") / est.step / 19.5e12)
    # the JSON document states all of it, and the constants it used
    doc = report.to_dict()
    assert doc["totals"]["time"]["step"] == est.step
    assert doc["totals"]["throughput"]["samples_per_s"] == timing.samples_per_s
    assert doc["hardware"]["efficiency"] == {"matmul": 0.75, "vector": 0.5, "memory": 0.85}
    assert doc["modules"][1]["time"]["forward"] == timing.module("0")[0]


def test_without_a_gpu_time_fields_are_null_and_bytes_are_reported() -> None:
    doc = memflops.analyze(nn.Linear(4, 2), (3, 4)).to_dict()
    assert doc["hardware"] is None
    assert (doc["totals"]["time"], doc["totals"]["throughput"], doc["totals"]["mfu"]) == (
        None, None, None)
    # addmm: bias 2, x 3*4, W^T 2*4 read (22 floats, 88 B); y 3*2 written (24 B)
    assert doc["totals"]["bytes"]["forward"] == 88 + 24
    assert doc["modules"][0]["time"] is None


def test_token_inputs_give_tokens_per_second() -> None:
    model = nn.Sequential(nn.Embedding(100, 32), nn.Linear(32, 100))
    ids = memflops.tensor_spec.TensorSpec((4, 16), torch.int64)
    timing = memflops.analyze(model, [ids], gpu="H100 SXM").timing
    assert timing is not None
    assert timing.tokens_per_s == pytest.approx(4 * 16 / timing.estimate.step)


def test_generation_times_prefill_and_decode() -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128,
                                      num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2)
    model = transformers.LlamaForCausalLM(config)
    report = memflops.analyze(model, mode="generate", batch=2, prompt_len=16, new_tokens=8,
                              dtype="fp16", gpu="A100 80GB SXM")
    gen = report.generation
    assert gen is not None and gen.time is not None
    t = gen.time
    # all decode steps: 8 x (first + last) / 2; tokens/s: 2 x 8 generated over that time
    assert t.decode_total_s == pytest.approx(8 * (t.decode_step_first_s + t.decode_step_last_s)
                                             / 2)
    assert t.decode_tokens_per_s == pytest.approx(16 / t.decode_total_s)
    assert t.decode_step_last_s >= t.decode_step_first_s  # a longer cache to read
    # a tiny model decoding one token per sequence: launches dominate
    assert t.decode_bound == "overhead"
    # a decode step reads the weights once: at least every parameter but the embedding
    # table, of which it reads the 2 rows it looks up (fp16: 2 bytes a value)
    params = sum(p.numel() for p in model.parameters())
    table = 256 * 64
    assert gen.decode_first.bytes_read >= 2 * (params - table)
    doc = report.to_dict()
    assert doc["generation"]["time"]["decode_tokens_per_s"] == t.decode_tokens_per_s
    assert doc["totals"]["time"]["forward"] == t.prefill_s


def test_batch_sweep_and_fit_carry_time_and_throughput() -> None:
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(16 * 16 * 16, 10))
    report = memflops.analyze(model, (2, 3, 16, 16), mode="train", optimizer="sgd",
                              batch_sweep=[1, 4, 64, 256], fit="64MiB", gpu="A100 80GB SXM")
    sweep, fit = report.sweep, report.fit
    assert sweep is not None and fit is not None
    for p in sweep.points:
        assert p.time_step_s is not None and p.samples_per_s is not None
        assert p.samples_per_s == pytest.approx(p.size / p.time_step_s)
    # bigger batches amortise the per-kernel overhead: samples/s never falls as the batch
    # grows, and the saturation point is a swept size or none
    rates = [p.samples_per_s for p in sweep.points]
    assert rates == sorted(rates)
    assert sweep.saturated_at in (None, 1, 4, 64)
    assert fit.largest > 0 and fit.samples_per_s is not None
    assert fit.samples_per_s == pytest.approx(fit.largest / fit.time_step_s)
    doc = report.to_dict()
    assert doc["batch_sweep"]["points"][0]["time_step_s"] == sweep.points[0].time_step_s
    assert doc["fit"]["samples_per_s"] == fit.samples_per_s


def test_communication_time_is_the_ring_bandwidth_term() -> None:
    h100 = find_accelerator("H100 SXM")
    # NVLink 4: 900 GB/s in both directions together, so 450e9 B/s one way:
    # 9e9 bytes sent take 9e9 / 450e9 = 0.02 s
    assert communication_time(9 * 10**9, h100) == pytest.approx(0.02)
    assert communication_time(1, replace(h100, interconnect_bytes_per_s=None)) is None
