"""memflops' simulated peak and saved bytes against an independent real CPU run.

memflops runs the step on fake tensors; `realrun` runs the same steady-state
step on real CPU tensors with seeded random weights and measures every
storage the ops allocate (see its docstring). Both count the bytes a step
allocates through PyTorch's dispatcher, so they must agree: within 1% is
asserted, and every case below agrees to the byte except where noted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
import torch
from torch import nn

import memflops

from . import nets, realrun

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]

# memflops' named optimizers are the foreach implementations (what PyTorch
# picks on a GPU); "sgd-momentum" is SGD(lr=0.01, momentum=0.9).
OPTIMIZERS: dict[str, OptimizerFactory] = {
    "adam": lambda ps: torch.optim.Adam(ps, foreach=True),
    "sgd-momentum": lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9, foreach=True),
}

MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "cnn-bn-inplace-relu": (nets.cnn, (8, 3, 32, 32)),
    "transformer-block-sdpa": (nets.Block, (4, 32, 64)),
    "frozen-and-shared": (nets.FrozenShared, (16, 32)),
    "lstm": (nets.LSTMNet, (4, 12, 16)),
}

# The oneDNN workspace nn.LSTM's CPU kernel keeps for backward: output 3 of
# `mkldnn_rnn_layer` (uint8). PyTorch's meta kernel returns it with 0 bytes.
ONEDNN_WORKSPACE = frozenset({("aten.mkldnn_rnn_layer.default", 3)})


def assert_close(what: str, simulated: int, real: int) -> None:
    """Relative error at most 1%, in integers: 100 * |sim - real| <= real."""
    print(f"{what}: memflops {simulated:,} B, real run {real:,} B, diff {simulated - real:+,} B")
    assert 100 * abs(simulated - real) <= real, (what, simulated, real)


def _train_pair(
    name: str, optimizer: str, untracked: frozenset[tuple[str, int]] = frozenset()
) -> tuple[memflops.Report, realrun.Measured]:
    build, shape = MODELS[name]
    model = realrun.seeded(build)
    report = memflops.analyze(model, shape, mode="train", optimizer=optimizer)
    inputs = (torch.randn(shape),)
    real = realrun.train_step(model, inputs, OPTIMIZERS[optimizer], untracked=untracked)
    return report, real


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("name", [n for n in MODELS if n != "lstm"])
def test_train_step_peak_and_saved_bytes_match_a_real_run(name: str, optimizer: str) -> None:
    report, real = _train_pair(name, optimizer)
    mem = report.totals.memory
    # Parameters + buffers + input + the optimizer's device state, before the step.
    assert report.memory_detail is not None
    assert report.memory_detail.baseline == real.baseline
    assert_close(f"{name}/{optimizer} peak", mem.peak, real.peak)
    assert_close(f"{name}/{optimizer} saved for backward", mem.activations, real.saved)


@pytest.mark.parametrize("name", [n for n in MODELS if n != "lstm"])
def test_amp_train_step_matches_a_real_run(name: str) -> None:
    # Under autocast the norms get a bf16 input and fp32 weights. The real CPU
    # kernels (and CUDA's) then keep the saved statistics (batch norm's
    # save_mean/save_invstd, layer norm's mean/rstd) in fp32, while PyTorch's
    # meta kernels give them the input's dtype; memflops counts them at fp32
    # size (capture/kernels/sizes.py), without which the CNN would be
    # 2 * (16 + 32) * 2 = 192 B short and the frozen LayerNorm 2 * 16 * 2 = 64 B.
    build, shape = MODELS[name]
    model = realrun.seeded(build)
    report = memflops.analyze(model, shape, mode="train", optimizer="adam", autocast="bf16")
    real = realrun.train_step(
        model, (torch.randn(shape),), OPTIMIZERS["adam"], autocast=torch.bfloat16
    )
    mem = report.totals.memory
    assert (mem.peak, mem.activations) == (real.peak, real.saved)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_lstm_train_step_counts_the_rnn_training_workspace(optimizer: str) -> None:
    # nn.LSTM trains through aten.mkldnn_rnn_layer, whose oneDNN workspace
    # (output 3; 208,896 B per layer here) autograd saves for backward. The
    # meta kernel returns it empty; memflops sizes it (capture/kernels/rnn_workspace.py),
    # so the step agrees with the real run to the byte.
    report, real = _train_pair("lstm", optimizer)
    assert report.totals.memory.activations == real.saved
    assert report.totals.memory.peak == real.peak


@pytest.mark.parametrize("name", list(MODELS))
def test_inference_peak_matches_a_real_run(name: str) -> None:
    # eval() and no_grad: nothing is saved, and nn.LSTM allocates no workspace.
    build, shape = MODELS[name]
    model = realrun.seeded(build)
    report = memflops.analyze(model, shape, mode="inference")
    real = realrun.inference(model, (torch.randn(shape),))
    assert report.memory_detail is not None
    assert report.memory_detail.baseline == real.baseline
    assert_close(f"{name} inference peak", report.totals.memory.peak, real.peak)
    assert report.totals.memory.activations == 0
