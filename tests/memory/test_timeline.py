"""memflops' simulated peak and saved bytes against an independent real CPU run.

memflops runs the step on fake tensors; `realrun` runs the same steady-state
step on real CPU tensors with seeded random weights and measures every
storage the ops allocate (see its docstring). Both count the bytes a step
allocates through PyTorch's dispatcher, so they must agree: within 1% is
asserted, and every case below agrees to the byte except where noted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

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


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("form", nets.CHECKPOINT_FORMS)
def test_checkpointed_step_matches_a_real_run_to_the_byte(form: str, optimizer: str) -> None:
    """Recomputed activations and a checkpoint's saved inputs are freed when backward
    is done with them, as in the real step (before the tracker stopped holding autograd
    nodes, every form here peaked ~50 KB, about one block's recomputation, too high)."""
    make: OptimizerFactory = OPTIMIZERS["adam"] if optimizer == "adam" else (
        lambda ps: torch.optim.SGD(ps, lr=0.1)
    )
    x = torch.randn(32, 64)
    real = realrun.train_step(realrun.seeded(partial(nets.Checkpointed, form)), (x,), make)
    report = memflops.analyze(nets.Checkpointed(form), (32, 64), mode="train",
                              optimizer=optimizer)
    assert (report.totals.memory.peak, report.totals.memory.activations) == (
        real.peak, real.saved + SELECTIVELY_CACHED.get(form, 0)
    )


# Selective checkpointing keeps the outputs its policy saves (here every matrix product)
# in its own cache, outside autograd's saved tensors, so the real run's saved-tensor
# hooks do not see them while memflops counts them as saved: per block the two Linear
# outputs, 32 x 256 and 32 x 64 fp32 = 32,768 + 8,192 B; 4 blocks = 163,840 B. (The real
# peak, which counts every storage, already includes them.)
SELECTIVELY_CACHED = {"selective": 4 * (32 * 256 + 32 * 64) * 4}


def test_checkpointed_resnet_blocks_match_a_real_run_to_the_byte() -> None:
    """torchvision's ResNet-18 with each residual block under non-reentrant checkpointing,
    foreach Adam (the issue's case was ResNet-50's bottlenecks, +47% on the peak)."""
    torchvision = pytest.importorskip("torchvision")

    def build() -> nn.Module:
        model: nn.Module = torchvision.models.resnet18()
        for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
            for i, block in enumerate(layer):
                layer[i] = nets.CheckpointedBlock(block)
        return model

    x = torch.randn(2, 3, 64, 64)
    real = realrun.train_step(realrun.seeded(build), (x,), OPTIMIZERS["adam"])
    report = memflops.analyze(build(), (2, 3, 64, 64), mode="train")
    assert (report.totals.memory.peak, report.totals.memory.activations) == (
        real.peak, real.saved
    )


def test_checkpointed_bert_matches_a_real_run_to_the_byte() -> None:
    """Hugging Face's `gradient_checkpointing_enable` on an encoder (tiny BERT, SGD)."""
    transformers = pytest.importorskip("transformers")

    def build() -> nn.Module:
        config = transformers.BertConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            vocab_size=500, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        )
        model: nn.Module = transformers.BertModel(config)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        return model

    ids = torch.zeros((2, 32), dtype=torch.int64)
    real = realrun.train_step(realrun.seeded(build), (ids,), lambda ps: torch.optim.SGD(ps, lr=0.1))
    report = memflops.analyze(build(), [ids], mode="train", optimizer="sgd")
    assert (report.totals.memory.peak, report.totals.memory.activations) == (
        real.peak, real.saved
    )


@pytest.mark.parametrize("checkpointed", [False, True])
def test_llama_matches_a_real_run_to_the_byte(checkpointed: bool) -> None:
    """A decoder (tiny Llama with grouped-query attention, SGD), with and without Hugging
    Face's checkpointing. On fake tensors transformers used to take its tracing path:
    a materialised causal mask, so no grouped-query SDPA and a `repeat_kv` copy of keys and
    values per layer, 49,152 B more saved than the real step (`zoo/hf/eager_paths`)."""
    transformers = pytest.importorskip("transformers")

    def build(checkpointing: bool) -> nn.Module:
        config = transformers.LlamaConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=500, use_cache=False,
        )
        model: nn.Module = transformers.LlamaForCausalLM(config)
        if checkpointing:
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        return model

    ids = torch.zeros((2, 32), dtype=torch.int64)
    sgd: OptimizerFactory = lambda ps: torch.optim.SGD(ps, lr=0.1)  # noqa: E731
    real = realrun.train_step(realrun.seeded(partial(build, checkpointed)), (ids,), sgd)
    report = memflops.analyze(build(checkpointed), [ids], mode="train", optimizer="sgd")
    assert (report.totals.memory.peak, report.totals.memory.activations) == (
        real.peak, real.saved
    )
    if checkpointed:
        plain = realrun.train_step(realrun.seeded(partial(build, False)), (ids,), sgd)
        assert report.checkpointing is not None
        assert report.checkpointing.modules == ("model.layers.0", "model.layers.1")
        assert (report.checkpointing.activations_without, report.checkpointing.peak_without) == (
            plain.saved, plain.peak
        )


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


B = 4  # batch; input 3 x 32 x 32, fp32


X = B * 3 * 32 * 32 * 4  # input: 49_152 B


C1 = B * 16 * 32 * 32 * 4  # conv1 / relu1 map: 262_144 B


P1 = B * 16 * 16 * 16 * 4  # max pool output: 65_536 B


IDX = B * 16 * 16 * 16 * 8  # max pool int64 indices: 131_072 B


C2 = B * 32 * 16 * 16 * 4  # conv2 / relu2 map: 131_072 B


GAP = B * 32 * 4  # global average pool output: 512 B


FC = B * 10 * 4  # logits: 160 B


def net(inplace: bool) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),  # 16 * 3 * 9 + 16 = 448 params
        nn.ReLU(inplace=inplace),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),  # 32 * 16 * 9 + 32 = 4640 params
        nn.ReLU(inplace=inplace),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),  # 32 * 10 + 10 = 330 params
    )


PARAMS = 4 * (448 + 4640 + 330)  # 21_672 B


BASE = PARAMS + X  # inference baseline: 70_824 B


def conv_relu(inplace: bool) -> nn.Module:
    """The ReLU map is the output: nothing is allocated after it."""
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(inplace=inplace))


def both(build: Callable[[bool], nn.Module], **kw: Any) -> tuple[memflops.Report, ...]:
    return tuple(
        memflops.analyze(realrun.seeded(partial(build, ip)), (B, 3, 32, 32), **kw)
        for ip in (False, True)
    )


def real_inference(build: Callable[[bool], nn.Module], inplace: bool) -> int:
    model = realrun.seeded(partial(build, inplace))
    return realrun.inference(model, (torch.randn(B, 3, 32, 32),)).peak


def test_saved_bytes_are_equal_and_train_peak_unchanged() -> None:
    out_of_place, in_place = both(net, mode="train", optimizer="adam")
    # Saved for backward (the input and the weights are not activations):
    #   relu1 output C1 (in place: the conv1 map it overwrote, same bytes) 262_144
    #   max pool indices IDX (its input is relu1's output, already counted) 131_072
    #   conv2 input P1                                                      65_536
    #   relu2 output C2 (avg pool's input, the same storage)                131_072
    #   linear input GAP (flatten is a view)                                   512
    # total 262_144 + 131_072 + 65_536 + 131_072 + 512 = 590_336
    saved = C1 + IDX + P1 + C2 + GAP
    assert saved == 590_336
    assert out_of_place.totals.memory.activations == in_place.totals.memory.activations == saved
    # The train peak is in backward, where both hold the same saved maps.
    assert out_of_place.totals.memory.peak == in_place.totals.memory.peak
    for inplace, report in ((False, out_of_place), (True, in_place)):
        model = realrun.seeded(partial(net, inplace))
        real = realrun.train_step(
            model, (torch.randn(B, 3, 32, 32),), lambda ps: torch.optim.Adam(ps, foreach=True)
        )
        assert (report.totals.memory.peak, report.totals.memory.activations) == (
            real.peak,
            real.saved,
        )


def test_seed_estimate_drops_the_overwritten_maps() -> None:
    # The article's feature maps: every leaf module's new output. Out of place:
    #   C1 + C1 (relu1) + P1 + C2 + C2 (relu2) + GAP + FC (flatten is a view, no map)
    #   = 262_144 * 2 + 65_536 + 131_072 * 2 + 512 + 160 = 852_640
    # In place, relu1 and relu2 make no new map: 852_640 - 262_144 - 131_072 = 459_424
    maps = 2 * C1 + P1 + 2 * C2 + GAP + FC
    assert (maps, maps - C1 - C2) == (852_640, 459_424)
    train_oop, train_ip = both(net, mode="train", optimizer="adam")
    assert train_oop.memory_detail is not None and train_ip.memory_detail is not None
    assert (train_oop.memory_detail.feature_maps, train_ip.memory_detail.feature_maps) == (
        852_640,
        459_424,
    )
    # Training keeps each map and its gradient: 2 x (262_144 + 131_072) = 786_432
    train_diff = train_oop.totals.memory.seed_estimate - train_ip.totals.memory.seed_estimate
    assert train_diff == 2 * (C1 + C2) == 786_432
    # Inference counts each map once: 262_144 + 131_072 = 393_216
    inf_oop, inf_ip = both(net)
    assert inf_oop.totals.memory.seed_estimate - inf_ip.totals.memory.seed_estimate == C1 + C2


def test_inference_peak_drops_by_the_overwritten_map_when_the_relu_is_last() -> None:
    # Conv -> ReLU: params 448 * 4 = 1792 B, input 49_152 B: baseline 50_944 B.
    # Out of place, the peak is at the relu: the conv map and the relu map,
    # 50_944 + 2 * 262_144 = 575_232. In place the relu allocates nothing and
    # nothing follows: 50_944 + 262_144 = 313_088, lower by exactly one map.
    base = 448 * 4 + X
    out_of_place, in_place = both(conv_relu)
    assert out_of_place.totals.memory.peak == base + 2 * C1 == 575_232
    assert in_place.totals.memory.peak == base + C1 == 313_088
    assert out_of_place.totals.memory.peak - in_place.totals.memory.peak == C1
    assert real_inference(conv_relu, False) == 575_232
    assert real_inference(conv_relu, True) == 313_088


def test_inference_peak_when_a_pool_follows_the_relu() -> None:
    # Live bytes above the baseline (70_824) at each op that allocates; a map
    # is freed as soon as the next layer has consumed it:
    #   op          out of place                 in place
    #   conv1       C1            = 262_144      C1            = 262_144
    #   relu1       C1 + C1       = 524_288 *    (none)
    #   max pool    C1 + P1 + IDX = 458_752      C1 + P1 + IDX = 458_752 *
    #   conv2       P1 + C2       = 196_608      P1 + C2       = 196_608
    #   relu2       C2 + C2       = 262_144      (none)
    # (* the peak). The in-place net saves the overwritten map C1 at relu1, but
    # its own peak is the pool's moment, which holds P1 and the int64 indices
    # beside C1: the saving is C1 - P1 - IDX = 262_144 - 65_536 - 131_072 = 65_536.
    out_of_place, in_place = both(net)
    assert out_of_place.totals.memory.peak == BASE + 2 * C1 == 595_112
    assert in_place.totals.memory.peak == BASE + C1 + P1 + IDX == 529_576
    assert out_of_place.totals.memory.peak - in_place.totals.memory.peak == C1 - P1 - IDX
    assert out_of_place.memory_detail is not None and in_place.memory_detail is not None
    assert (out_of_place.memory_detail.peak_op, out_of_place.memory_detail.peak_module) == (
        "aten.relu",
        "1",
    )
    assert in_place.memory_detail.peak_module == "2"
    assert real_inference(net, False) == 595_112
    assert real_inference(net, True) == 529_576


# --- gradient accumulation ------------------------------------------------------------
# `realrun.accumulation_step` runs the real loop: M micro-batches of (loss / M).backward(),
# then optimizer.step(), measured in the second optimizer step. memflops captures two
# micro-batches; micro-batches 3..M must change nothing, which M = 4 checks.

ACCUMULATION_MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "mlp": (nets.ResidualMLP, (16, 64)),
    "cnn-bn": (nets.cnn, (8, 3, 32, 32)),
    "transformer-block-sdpa": (nets.Block, (4, 32, 64)),
    "frozen-and-shared": (nets.FrozenShared, (16, 32)),
}


@pytest.mark.parametrize("micro_batches", [2, 4])
@pytest.mark.parametrize("name", list(ACCUMULATION_MODELS))
def test_accumulation_step_matches_a_real_accumulation_loop_to_the_byte(
    name: str, micro_batches: int
) -> None:
    build, shape = ACCUMULATION_MODELS[name]
    model = realrun.seeded(build)
    optimizer = "adam" if micro_batches == 2 else "sgd-momentum"
    report = memflops.analyze(model, shape, mode="train", optimizer=optimizer,
                              grad_accumulation=micro_batches)
    real = realrun.accumulation_step(model, (torch.randn(shape),), OPTIMIZERS[optimizer],
                                     micro_batches)
    mem, acc, detail = report.totals.memory, report.grad_accumulation, report.memory_detail
    assert acc is not None and detail is not None
    assert real.grad_storages_kept  # autograd added into micro-batch 1's .grad in place
    # every micro-batch saves the same bytes; memflops reports one micro-batch's
    assert real.saved == (mem.activations,) * micro_batches
    assert (detail.baseline, mem.grads, mem.peak) == (real.baseline, real.grads, real.peak)
    assert acc.peak_micro_batch == real.peak_micro_batch


def test_accumulation_peak_in_the_optimizer_step_matches_a_real_loop() -> None:
    """An MLP whose Adam step outweighs its activations: the peak is in the optimizer
    step (its foreach temporaries), the same with or without accumulation."""
    model = realrun.seeded(nets.ResidualMLP)
    report = memflops.analyze(model, (16, 64), mode="train", grad_accumulation=3)
    real = realrun.accumulation_step(model, (torch.randn(16, 64),), OPTIMIZERS["adam"], 3)
    assert report.grad_accumulation is not None
    assert (report.totals.memory.peak, report.grad_accumulation.peak_micro_batch) == (
        real.peak, real.peak_micro_batch) == (668_416, None)
    assert report.memory_detail is not None and report.memory_detail.peak_phase == "optimizer"


def test_accumulation_on_a_tiny_llama_matches_a_real_loop_to_the_byte() -> None:
    transformers = pytest.importorskip("transformers")

    def build() -> nn.Module:
        config = transformers.LlamaConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=500, use_cache=False,
        )
        return transformers.LlamaForCausalLM(config)

    ids = torch.zeros((2, 32), dtype=torch.int64)
    sgd: OptimizerFactory = lambda ps: torch.optim.SGD(ps, lr=0.1)  # noqa: E731
    real = realrun.accumulation_step(realrun.seeded(build), (ids,), sgd, 3)
    report = memflops.analyze(build(), [ids], mode="train", optimizer="sgd",
                              grad_accumulation=3)
    mem = report.totals.memory
    assert report.grad_accumulation is not None
    assert real.saved == (mem.activations,) * 3
    assert (mem.peak, mem.grads, report.grad_accumulation.peak_micro_batch) == (
        real.peak, real.grads, real.peak_micro_batch)


def test_one_micro_batch_is_the_step_without_accumulation() -> None:
    """grad_accumulation=1 changes nothing: the same document, records and timeline."""
    model = realrun.seeded(nets.cnn)
    plain = memflops.analyze(model, (8, 3, 32, 32), mode="train", gpu="H100 SXM")
    one = memflops.analyze(model, (8, 3, 32, 32), mode="train", gpu="H100 SXM",
                           grad_accumulation=1)
    assert one.grad_accumulation is None
    assert one.to_dict() == plain.to_dict()
    assert one.records == plain.records
