"""Real step time and memory on a CUDA GPU, beside memflops' predictions.

For each model below: build it on the GPU with random weights, run a few
warm-up steps, then time `--steps` steps with CUDA events and read
`torch.cuda.max_memory_allocated()` and `max_memory_reserved()`; analyse the
same step with `memflops.analyze(..., gpu=...)` on fake tensors (nothing is
fitted: the time model's default constants) and write both, with their
ratios, as a markdown table and a JSON file.

    python benchmarks/gpu_validate.py --gpu "H200" [--models a,b] [--steps 20]
                                      [--output benchmarks/GPU_VALIDATION.md]

`--gpu` names the catalog entry of the GPU it runs on (default: matched from
`torch.cuda.get_device_name()`). Needs torch with CUDA, torchvision and
transformers; no dataset and no download (configs are built locally).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import torch
from torch import nn

import memflops
from memflops.hardware.catalog import find_accelerator


@dataclass(frozen=True)
class Model:
    name: str
    build: Callable[[], nn.Module]
    inputs: Callable[[int], dict[str, Any]]
    """memflops' `inputs` (shapes) for a batch."""
    mode: str
    batch: int
    autocast: str | None = "bf16"


@dataclass
class Row:
    name: str
    mode: str
    batch: int
    measured_step_s: float
    predicted_step_s: float
    measured_allocated: int
    predicted_peak: int
    measured_reserved: int
    bound: str
    mfu: float | None


def _tv(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, name)()

    return build


def _hf(kind: str, **config: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import transformers

        cfg = getattr(transformers, f"{kind}Config")(**config)
        cls = {"Bert": "BertForMaskedLM", "GPT2": "GPT2LMHeadModel",
               "Llama": "LlamaForCausalLM"}[kind]
        return getattr(transformers, cls)(cfg)  # type: ignore[no-any-return]

    return build


def _images(size: int = 224) -> Callable[[int], dict[str, Any]]:
    return lambda b: {"args": [(b, 3, size, size)]}


def _tokens(seq: int) -> Callable[[int], dict[str, Any]]:
    return lambda b: {"kwargs": {"input_ids": memflops.tensor_spec.TensorSpec((b, seq),
                                                                              torch.int64)}}


LLAMA_1B = dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632,
                num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4)
"""TinyLlama-1.1B's shapes."""

MODELS = [
    Model("resnet18", _tv("resnet18"), _images(), "train", 256),
    Model("resnet50", _tv("resnet50"), _images(), "train", 256),
    Model("resnet50-infer", _tv("resnet50"), _images(), "inference", 256),
    Model("mobilenet_v3_large", _tv("mobilenet_v3_large"), _images(), "train", 256),
    Model("efficientnet_b0", _tv("efficientnet_b0"), _images(), "train", 256),
    Model("convnext_tiny", _tv("convnext_tiny"), _images(), "train", 128),
    Model("vit_b_16", _tv("vit_b_16"), _images(), "train", 128),
    Model("bert-base", _hf("Bert"), _tokens(512), "train", 32),
    Model("gpt2", _hf("GPT2"), _tokens(1024), "train", 16),
    Model("llama-1.1b", _hf("Llama", **LLAMA_1B), _tokens(2048), "train", 4),
]


def _real_inputs(spec: dict[str, Any]) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    args = [torch.randn(*s, device="cuda") for s in spec.get("args", [])]
    kwargs = {k: torch.randint(0, 1000, v.shape, device="cuda")
              for k, v in spec.get("kwargs", {}).items()}
    return args, kwargs


def _loss(out: Any) -> torch.Tensor:
    logits = out.logits if hasattr(out, "logits") else out
    return logits.float().sum()


def measure(model: Model, steps: int, warmup: int) -> tuple[float, int, int]:
    """(seconds per step, max allocated, max reserved) of the real step on CUDA."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    net = model.build().cuda()
    args, kwargs = _real_inputs(model.inputs(model.batch))
    train = model.mode == "train"
    net.train(train)
    optimizer = torch.optim.Adam(net.parameters()) if train else None
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(model.autocast or "")

    def step() -> None:
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None), \
                torch.set_grad_enabled(train):
            out = net(*args, **kwargs)
            loss = _loss(out)
        if optimizer is not None:
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(steps):
        step()
    end.record()
    torch.cuda.synchronize()
    seconds = start.elapsed_time(end) / 1e3 / steps
    allocated, reserved = torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved()
    return seconds, allocated, reserved


def predict(model: Model, gpu: str) -> Any:
    spec = model.inputs(model.batch)
    inputs = spec["kwargs"] if "kwargs" in spec else spec["args"]
    return memflops.analyze(model.build(), inputs, mode=model.mode, optimizer="adam",
                            autocast=model.autocast, gpu=gpu)


def _gpu_name(given: str | None) -> str:
    if given:
        return find_accelerator(given).name
    device = torch.cuda.get_device_name()
    for word in (device, device.replace("NVIDIA ", ""), *device.split()):
        try:
            return find_accelerator(word).name
        except memflops.errors.UsageError:
            continue
    raise SystemExit(f"no catalog entry matches {device!r}: pass --gpu NAME")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", help="catalog name of this GPU (default: from the device)")
    parser.add_argument("--models", help="comma-separated model names (default: all)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--output", default="benchmarks/GPU_VALIDATION.md")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_validate.py needs a CUDA GPU")
    gpu = _gpu_name(args.gpu)
    wanted = set(args.models.split(",")) if args.models else None
    rows = []
    for model in MODELS:
        if wanted and model.name not in wanted:
            continue
        began = time.perf_counter()
        seconds, allocated, reserved = measure(model, args.steps, args.warmup)
        report = predict(model, gpu)
        timing = report.timing
        rows.append(Row(model.name, model.mode, model.batch, seconds, timing.estimate.step,
                        allocated, report.totals.memory.peak, reserved, timing.estimate.bound,
                        timing.estimate.mfu()))
        print(f"{model.name}: measured {seconds * 1e3:.1f} ms, predicted "
              f"{timing.estimate.step * 1e3:.1f} ms; allocated {allocated / 2**30:.2f} GiB, "
              f"predicted peak {report.totals.memory.peak / 2**30:.2f} GiB "
              f"({time.perf_counter() - began:.0f} s)", flush=True)
    lines = [
        f"GPU: {torch.cuda.get_device_name()} (catalog: {gpu}); torch {torch.__version__}; "
        f"{args.steps} timed steps after {args.warmup} warm-up; AMP bf16, Adam.\n",
        "| model | mode | batch | step measured (ms) | predicted (ms) | ratio | "
        "max allocated (GiB) | predicted peak (GiB) | ratio | max reserved (GiB) | bound |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.mode} | {r.batch} | {r.measured_step_s * 1e3:.1f} | "
            f"{r.predicted_step_s * 1e3:.1f} | {r.predicted_step_s / r.measured_step_s:.2f} | "
            f"{r.measured_allocated / 2**30:.2f} | {r.predicted_peak / 2**30:.2f} | "
            f"{r.predicted_peak / r.measured_allocated:.3f} | "
            f"{r.measured_reserved / 2**30:.2f} | {r.bound} |"
        )
    Path(args.output).write_text("\n".join(lines) + "\n", encoding="utf-8")
    Path(args.output).with_suffix(".json").write_text(
        json.dumps([asdict(r) for r in rows], indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
