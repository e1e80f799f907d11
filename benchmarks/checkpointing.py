"""Activation checkpointing: memflops' peak and saved activations against real CPU steps.

Each case is one training step (SGD, or foreach Adam where named) of a model run plainly
and under activation checkpointing, measured twice: by `memflops.analyze` on fake tensors,
and on real CPU tensors by the independent storage tracker of the tests
(`tests/memory/realrun.py`: a dispatch mode noting every storage an op returns and its
free). Writes `benchmarks/CHECKPOINTING.md`.

    python benchmarks/checkpointing.py            # ~2-4 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import (
    CheckpointPolicy,
    checkpoint,
    create_selective_checkpoint_contexts,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import memflops  # noqa: E402
from memory import realrun  # noqa: E402

OUT = ROOT / "benchmarks" / "CHECKPOINTING.md"


def save_convolutions(ctx: Any, op: Any, *args: Any, **kwargs: Any) -> CheckpointPolicy:
    """A selective-checkpointing policy: keep convolution outputs, recompute the rest."""
    if op is torch.ops.aten.convolution.default:
        return CheckpointPolicy.MUST_SAVE
    return CheckpointPolicy.PREFER_RECOMPUTE


class Checkpoint(nn.Module):
    """`inner` under `torch.utils.checkpoint` (non-reentrant), or a selective policy."""

    def __init__(self, inner: nn.Module, selective: bool = False) -> None:
        super().__init__()
        self.inner = inner
        self.selective = selective

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.selective:
            context = partial(create_selective_checkpoint_contexts, save_convolutions)
            out: torch.Tensor = checkpoint(self.inner, x, use_reentrant=False, context_fn=context)
        else:
            out = checkpoint(self.inner, x, use_reentrant=False)
        return out


def resnet50(how: str) -> nn.Module:
    import torchvision

    model: nn.Module = torchvision.models.resnet50()
    if how != "plain":
        for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
            for i, block in enumerate(layer):
                layer[i] = Checkpoint(block, selective=how == "selective")
    return model


def hf(kind: str, how: str) -> nn.Module:
    import transformers

    small = dict(num_hidden_layers=4, num_attention_heads=4, vocab_size=1000)
    if kind == "gpt2":
        config: Any = transformers.GPT2Config(n_embd=256, n_layer=4, n_head=4, vocab_size=1000,
                                              n_positions=256, resid_pdrop=0.0, embd_pdrop=0.0,
                                              attn_pdrop=0.0, use_cache=False)
        model: nn.Module = transformers.GPT2LMHeadModel(config)
    elif kind == "bert":
        config = transformers.BertConfig(hidden_size=256, intermediate_size=1024,
                                         hidden_dropout_prob=0.0,
                                         attention_probs_dropout_prob=0.0, **small)
        model = transformers.BertModel(config)
    else:
        config = transformers.LlamaConfig(hidden_size=256, intermediate_size=688,
                                          num_key_value_heads=2, use_cache=False, **small)
        model = transformers.LlamaForCausalLM(config)
    if how != "plain":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


@dataclass(frozen=True)
class Case:
    model: str
    how: str
    build: Callable[[], nn.Module]
    inputs: Any
    optimizer: str


def cases() -> list[Case]:
    image = (4, 3, 224, 224)
    ids = torch.zeros((4, 128), dtype=torch.int64)
    out = [Case("torchvision ResNet-50, batch 4", how, partial(resnet50, how), image, "adam")
           for how in ("plain", "checkpointed", "selective")]
    for kind, label in (("gpt2", "GPT-2 (4 x 256)"), ("bert", "BERT (4 x 256)"),
                        ("llama", "Llama (4 x 256, GQA)")):
        out += [Case(f"{label}, 4 x 128 tokens", how, partial(hf, kind, how), [ids], "sgd")
                for how in ("plain", "checkpointed")]
    return out


OPTIMIZERS = {
    "adam": lambda ps: torch.optim.Adam(ps, foreach=True),
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1),
}


def measure(case: Case) -> dict[str, Any]:
    real_inputs = (torch.randn(case.inputs),) if isinstance(case.inputs, tuple) else tuple(
        case.inputs
    )
    real = realrun.train_step(realrun.seeded(case.build), real_inputs, OPTIMIZERS[case.optimizer])
    start = time.perf_counter()
    report = memflops.analyze(case.build(), case.inputs, mode="train", optimizer=case.optimizer)
    seconds = time.perf_counter() - start
    ckpt = report.checkpointing
    return {
        "case": case, "real_peak": real.peak, "peak": report.totals.memory.peak,
        "real_saved": real.saved, "saved": report.totals.memory.activations,
        "recompute": report.totals.costs.recompute.flops,
        "regions": len(ckpt.modules) if ckpt else 0, "seconds": seconds,
    }


def cached_convolutions(batch: int = 4) -> int:
    """Bytes of every convolution output inside ResNet-50's bottlenecks at `batch` (fp32):
    what the selective policy caches for backward, from memflops' own output shapes."""
    report = memflops.analyze(resnet50("plain"), (batch, 3, 224, 224))
    return sum(
        4 * math.prod(row.output_shape[0])
        for row in report.modules
        if row.type == "Conv2d" and row.path.startswith("layer")
    )


def write(rows: list[dict[str, Any]]) -> str:
    lines = [
        "# Activation checkpointing against real CPU steps",
        "",
        "Generated by `python benchmarks/checkpointing.py`; do not edit by hand. One training",
        "step of each model, plainly and under checkpointing (`checkpointed`: non-reentrant",
        "`torch.utils.checkpoint` around each ResNet bottleneck, Hugging Face's",
        "`gradient_checkpointing_enable(use_reentrant=False)`; `selective`: the same blocks",
        "with a policy that keeps convolution outputs and recomputes the rest).",
        "*Real* is the independent storage tracker of `tests/memory/realrun.py` on real CPU",
        "tensors; its saved bytes come from saved-tensor hooks, which do not see the outputs",
        "selective checkpointing caches (memflops counts those as saved; the peaks agree):",
        f"for ResNet-50 the difference is {cached_convolutions():,} B, the outputs of every",
        "convolution inside the bottlenecks at batch 4 in fp32, which the policy keeps.",
        f"torch {torch.__version__}.",
        "",
        "| model | step | real peak (B) | memflops peak (B) | diff | real saved (B) "
        "| memflops saved (B) | diff | regions | recomputed FLOPs | analyze s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        c = r["case"]
        lines.append(
            f"| {c.model} | {c.how}, {c.optimizer} | {r['real_peak']:,} | {r['peak']:,} | "
            f"{r['peak'] - r['real_peak']:+,} | {r['real_saved']:,} | {r['saved']:,} | "
            f"{r['saved'] - r['real_saved']:+,} | {r['regions']} | {r['recompute']:,} | "
            f"{r['seconds']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    for case in cases():
        row = measure(case)
        print(f"{case.model} / {case.how}: real {row['real_peak']:,} memflops {row['peak']:,}",
              flush=True)
        rows.append(row)
    args.out.write_text(write(rows))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
