"""Optimizer state, gradients and precision: bytes derived by hand, exactly.

The article's training multipliers are parameters x {SGD 2, momentum 3,
Adam 4}: parameters + gradients + 0, 1 or 2 state tensors of the same size.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import memflops
from memflops.errors import UsageError

from . import nets, realrun


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


# Linear(128 -> 64): 128 * 64 + 64 = 8256;  Linear(64 -> 10): 64 * 10 + 10 = 650
MLP_PARAMS = 8256 + 650  # = 8906
MLP_BYTES = 4 * MLP_PARAMS  # fp32: 35_624


def train(model: nn.Module, shape: object, **kw: Any) -> memflops.Report:
    return memflops.analyze(model, shape, mode="train", **kw)


@pytest.mark.parametrize(
    ("optimizer", "states"),
    [("sgd", 0), ("sgd-momentum", 1), ("nesterov", 1), ("adam", 2), ("adamw", 2)],
)
def test_fp32_state_is_a_whole_number_of_parameter_copies(optimizer: str, states: int) -> None:
    # sgd: 0; momentum: 1 x 35_624 = 35_624; adam/adamw: 2 x 35_624 = 71_248
    mem = train(mlp(), (4, 128), optimizer=optimizer).totals.memory
    assert mem.params == MLP_BYTES == 35_624
    assert mem.grads == MLP_BYTES
    assert mem.optimizer == states * MLP_BYTES
    # The article's multiplier: (1 + 1 + states) x params: SGD 2, momentum 3, Adam 4
    assert mem.params + mem.grads + mem.optimizer == (2 + states) * MLP_BYTES


def test_frozen_parameters_get_no_gradient_and_no_state() -> None:
    # stem Linear(32 -> 64):   32 * 64 + 64 = 2112  trainable
    # frozen Linear(64 -> 64): 64 * 64 + 64 = 4160  frozen
    # frozen LayerNorm(64):    2 * 64       =  128  frozen
    # shared Linear(64 -> 64): 4160 trainable (called twice, counted once)
    # head Linear(64 -> 10):   64 * 10 + 10 =  650  trainable
    # all: 2112 + 4160 + 128 + 4160 + 650 = 11_210; trainable: 2112 + 4160 + 650 = 6922
    report = train(nets.FrozenShared(), (16, 32), optimizer="adam")
    mem = report.totals.memory
    assert (report.totals.params, report.totals.trainable_params) == (11_210, 6922)
    assert mem.params == 4 * 11_210 == 44_840
    assert mem.grads == 4 * 6922 == 27_688
    assert mem.optimizer == 2 * 4 * 6922 == 55_376


def test_adam8bit_state_is_uint8_with_blockwise_absmax() -> None:
    # Two states per parameter tensor. A tensor of >= 4096 elements keeps each
    # state in uint8 (1 byte/value) plus one fp32 absmax per 256-value block:
    # 2 * n + 2 * 4 * ceil(n / 256). A smaller tensor keeps fp32 states: 2 * 4 * n.
    #   Linear(100 -> 50) weight 5000: 2 * 5000 + 8 * ceil(5000 / 256) = 10_000 + 8 * 20 = 10_160
    #                     bias     50: 8 * 50                                            =    400
    #   Linear(50 -> 128) weight 6400: 2 * 6400 + 8 * 25                                 = 13_000
    #                     bias    128: 8 * 128                                           =  1_024
    #   Linear(128 -> 10) weight 1280 (< 4096): 8 * 1280                                 = 10_240
    #                     bias     10: 8 * 10                                            =     80
    # total: 10_160 + 400 + 13_000 + 1_024 + 10_240 + 80 = 34_904
    model = nn.Sequential(nn.Linear(100, 50), nn.Linear(50, 128), nn.Linear(128, 10))
    mem = train(model, (4, 100), optimizer="adam8bit").totals.memory
    assert mem.optimizer == 34_904
    # params: 5050 + 6528 + 1290 = 12_868 in fp32, gradients likewise
    assert mem.params == mem.grads == 4 * 12_868


def test_an_optimizer_instance_and_a_factory_are_accepted() -> None:
    model = mlp()
    instance = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    by_instance = train(model, (4, 128), optimizer=instance)
    assert by_instance.totals.memory.optimizer == MLP_BYTES  # one momentum buffer
    assert by_instance.optimizer == "SGD"
    assert not instance.state  # the user's optimizer is only read, never stepped

    def factory(params: list[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=1e-4)

    by_factory = train(model, (4, 128), optimizer=factory)
    assert by_factory.totals.memory.optimizer == 2 * MLP_BYTES  # exp_avg + exp_avg_sq
    assert by_factory.optimizer == "factory"


def test_a_factory_must_return_an_optimizer() -> None:
    with pytest.raises(UsageError, match=r"expected a torch\.optim\.Optimizer"):
        train(mlp(), (4, 128), optimizer=lambda ps: list(ps))


def test_an_unknown_optimizer_name_suggests_the_close_ones() -> None:
    with pytest.raises(UsageError, match=r"unknown optimizer 'adma'; did you mean adam, adamw\?"):
        train(mlp(), (4, 128), optimizer="adma")


def amp_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


# Linear(64 -> 128): 64 * 128 + 128 = 8320; Linear(128 -> 10): 1290; all 9610
AMP_PARAMS = 9610


def test_amp_keeps_fp32_params_grads_and_state_and_saves_half_copies() -> None:
    # PyTorch AMP keeps the fp32 parameters (they are the "master weights"),
    # so params, their gradients (autocast's cast backward returns fp32) and
    # Adam's two states are all fp32: 4, 4 and 8 bytes per parameter.
    model = realrun.seeded(amp_mlp)
    report = train(model, (8, 64), optimizer="adam", autocast="bf16")
    mem = report.totals.memory
    assert report.precision == "amp-bfloat16 (float32 parameters)"
    assert mem.params == 4 * AMP_PARAMS == 38_440
    assert mem.grads == 4 * AMP_PARAMS
    assert mem.optimizer == 8 * AMP_PARAMS == 76_880
    # Saved for backward, all bf16 (2 bytes):
    #   fc1 addmm saves its bf16 input copy for the weight gradient: 8 * 64 * 2   = 1024
    #     (the input needs no gradient, so fc1's bf16 weight copy is not saved:
    #      it is a temporary, held by autocast's cast cache during the forward)
    #   relu saves its bf16 output, which fc2's addmm saves too: 8 * 128 * 2     = 2048
    #   fc2 addmm saves its bf16 weight copy for the input gradient: 10 * 128 * 2 = 2560
    # total 1024 + 2048 + 2560 = 5632 (fp32 would save only the relu output: 4096)
    assert mem.activations == 1024 + 2048 + 2560 == 5632
    real = realrun.train_step(
        model,
        (torch.randn(8, 64),),
        lambda ps: torch.optim.Adam(ps, foreach=True),
        autocast=torch.bfloat16,
    )
    assert (mem.peak, mem.activations) == (real.peak, real.saved)


def test_pure_bf16_halves_params_grads_state_and_activations() -> None:
    fp32 = train(amp_mlp(), (8, 64), optimizer="adam").totals.memory
    bf16_report = train(amp_mlp(), (8, 64), optimizer="adam", dtype="bf16")
    bf16 = bf16_report.totals.memory
    assert (bf16.params, bf16.grads, bf16.optimizer) == (2 * 9610, 2 * 9610, 4 * 9610)
    assert (2 * bf16.params, 2 * bf16.grads, 2 * bf16.optimizer) == (
        fp32.params,
        fp32.grads,
        fp32.optimizer,
    )
    # the relu output, 8 * 128 values: 4096 bytes in fp32, 2048 in bf16
    assert (fp32.activations, bf16.activations) == (4096, 2048)
    assert bf16_report.memory_detail is not None
    assert bf16_report.memory_detail.inputs == 8 * 64 * 2


def test_pure_bf16_casts_a_float32_example_tensor() -> None:
    report = train(amp_mlp(), torch.randn(8, 64), optimizer="adam", dtype="bf16")
    assert report.inputs[0][1].dtype == torch.bfloat16
    assert report.memory_detail is not None
    assert report.memory_detail.inputs == 8 * 64 * 2
