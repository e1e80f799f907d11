"""Activation checkpointing: what re-runs, where it is counted, and the step without it.

The stand-in is `tests.memory.nets.Checkpointed`: four residual blocks
x + down(relu(up(norm(x)))) on a 32 x 64 input (dim 64, hidden 256), under each form of
`torch.utils.checkpoint`. One block's forward, exact convention:
  norm  LayerNorm  5 x 32 x 64       =    10,240
  up    Linear     32 x 256 x 2 x 64 = 1,048,576  (a bias removes the -1)
  relu             32 x 256          =     8,192
  down  Linear     32 x 64 x 2 x 256 = 1,048,576
  add              32 x 64           =     2,048
  block                                2,117,632
"""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.utils.checkpoint as torch_checkpoint
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import memflops
from memflops.capture.checkpointing import owner_of
from memflops.errors import AnalysisError, ForwardError
from memory import nets, realrun

BLOCK = 10_240 + 1_048_576 + 8_192 + 1_048_576 + 2_048
# Non-reentrant checkpointing stops recomputing once every tensor backward needs is back
# (`early_stop`): norm, up and relu; down's product and the residual add do not re-run.
EARLY_STOPPED = 10_240 + 1_048_576 + 8_192

# Per form: the checkpointed blocks and the FLOPs each re-runs (exact convention).
RECOMPUTED = {
    "non-reentrant": {f"blocks.{i}": EARLY_STOPPED for i in range(4)},
    # The first block runs plainly (its input needs no gradient); the others re-run whole.
    "reentrant": {f"blocks.{i}": BLOCK for i in (1, 2, 3)},
    # Two segments: the first (blocks 0-1) is checkpointed as one function, so block 0
    # re-runs whole and block 1 stops early; the last segment runs plainly.
    "sequential": {"blocks.0": BLOCK, "blocks.1": EARLY_STOPPED},
    # Matrix products are cached, not re-run: norm and relu only.
    "selective": {f"blocks.{i}": 10_240 + 8_192 for i in range(4)},
}


class Plain(nn.Module):
    """`Checkpointed`'s blocks without checkpointing (same parameters when seeded)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(nets.ResidualMLP() for _ in range(4)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.blocks(x)
        return out


@pytest.fixture(scope="module")
def plain() -> memflops.Report:
    return memflops.analyze(Plain(), (32, 64), mode="train", optimizer="sgd")


@pytest.mark.parametrize("form", nets.CHECKPOINT_FORMS)
def test_recomputed_forward_is_counted_in_the_module_that_reruns(
    form: str, plain: memflops.Report
) -> None:
    report = memflops.analyze(nets.Checkpointed(form), (32, 64), mode="train", optimizer="sgd")
    expected = RECOMPUTED[form]
    assert report.totals.costs.recompute.flops == sum(expected.values())
    assert report.totals.costs.backward.flops == (
        plain.totals.costs.backward.flops + sum(expected.values())
    )
    before = {row.path: row for row in plain.modules}
    for row in report.modules:
        if row.path.startswith("blocks."):
            block = row.path.split(".")[0] + "." + row.path.split(".")[1]
            assert row.backward.flops == before[row.path].backward.flops + row.recompute.flops
            if row.path == block:
                assert row.recompute.flops == expected.get(block, 0), row.path
    assert report.checkpointing is not None
    assert report.checkpointing.modules == tuple(expected)
    # A module re-run by checkpointing is one call of the model's, not two. (The plain
    # model calls its Sequential; `Checkpointed` loops over it.)
    assert {row.path: row.calls for row in report.modules if "." in row.path} == {
        row.path: row.calls for row in plain.modules if "." in row.path
    }


@pytest.mark.parametrize("form", nets.CHECKPOINT_FORMS)
def test_backward_flops_agree_with_flop_counter_on_a_real_step(form: str) -> None:
    """FlopCounterMode on a real CPU backward counts the matrix products that re-ran."""

    def real_backward(model: nn.Module) -> int:
        loss = model(torch.randn(32, 64)).sum()
        with FlopCounterMode(display=False) as counter:
            loss.backward()
        return int(counter.get_total_flops())

    checkpointed = real_backward(realrun.seeded(partial(nets.Checkpointed, form)))
    plain_real = real_backward(realrun.seeded(Plain))
    report = memflops.analyze(nets.Checkpointed(form), (32, 64), mode="train",
                              optimizer="sgd", convention="2mac")
    costs = report.totals.costs
    assert costs.backward.under(report.convention) == checkpointed
    assert costs.recompute.under(report.convention) == checkpointed - plain_real


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("form", nets.CHECKPOINT_FORMS)
def test_the_step_without_checkpointing_is_the_plain_models(
    form: str, optimizer: str
) -> None:
    """`checkpointing.activations_without` / `peak_without` are what the same blocks save
    and peak at without checkpointing, analysed and measured on a real CPU step."""
    make = (lambda ps: torch.optim.SGD(ps, lr=0.1)) if optimizer == "sgd" else (
        lambda ps: torch.optim.Adam(ps, foreach=True)
    )
    real = realrun.train_step(realrun.seeded(Plain), (torch.randn(32, 64),), make)
    report = memflops.analyze(nets.Checkpointed(form), (32, 64), mode="train",
                              optimizer=optimizer)
    assert report.checkpointing is not None
    assert (report.checkpointing.activations_without, report.checkpointing.peak_without) == (
        real.saved, real.peak
    )
    assert report.checkpointing.note == ""
    assert report.totals.memory.activations < real.saved


def test_torch_is_left_as_it_was() -> None:
    """The checkpoint functions memflops wraps during a capture are torch's own again
    afterwards, also when the forward fails."""
    impl, detach = torch_checkpoint._checkpoint_impl, torch_checkpoint._detach_helper
    memflops.analyze(nets.Checkpointed("selective"), (32, 64), mode="train")
    with pytest.raises(ForwardError):
        memflops.analyze(nets.Checkpointed("non-reentrant"), (32, 65), mode="train")
    assert torch_checkpoint._checkpoint_impl is impl
    assert torch_checkpoint._detach_helper is detach


def test_no_checkpointing_section_without_checkpointing(plain: memflops.Report) -> None:
    assert plain.checkpointing is None
    assert plain.totals.costs.recompute.flops == 0
    assert plain.to_dict()["checkpointing"] is None


def test_a_checkpointed_function_belongs_to_its_module() -> None:
    block = nets.ResidualMLP()
    assert owner_of(block) is block
    assert owner_of(block.forward) is block
    assert owner_of(partial(nets.ResidualMLP.forward, block)) is block
    assert owner_of(partial(block.forward)) is block
    assert owner_of(torch.relu) is None


class Offloaded(nn.Module):
    """Blocks run under saved-tensor hooks: torch's `save_on_cpu`, or hooks of its own."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.blocks = nn.Sequential(*(nets.ResidualMLP() for _ in range(2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hooks = (
            torch.autograd.graph.save_on_cpu()
            if self.how == "save_on_cpu"
            else torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t)
        )
        with hooks:
            out: torch.Tensor = self.blocks(x)
        return out


@pytest.mark.parametrize(("how", "named"), [("save_on_cpu", "(save_on_cpu)"),
                                            ("own", "(Offloaded.forward)")])
def test_saved_tensor_hooks_of_the_model_are_refused(how: str, named: str) -> None:
    with pytest.raises(AnalysisError) as caught:
        memflops.analyze(Offloaded(how), (32, 64), mode="train")
    message = str(caught.value)
    assert "in module `blocks.0.norm`" in message
    assert f"saved-tensor hooks of the model's own {named}" in message
    assert "\n" not in message
    # Inference saves nothing for backward: the same model analyses.
    report = memflops.analyze(Offloaded(how), (32, 64))
    assert report.totals.costs.forward.flops == 2 * BLOCK
