"""memflops' time model against published, measured single-GPU throughputs.

Every case is a figure someone measured on one GPU and published with its
setup; memflops analyses the same model, batch and precision on fake tensors
and predicts the throughput on the catalog's entry for that GPU, with the
time model's default constants (`TimeConstants()`), fixed before any of these
figures was looked at. Nothing here is fitted. The table goes to
benchmarks/TIME.md (with the discussion written there by hand).

    python benchmarks/time_vs_published.py [--cases a,b] [--output PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import memflops

DLE = ("NVIDIA/DeepLearningExamples PyTorch/Classification/ConvNets/resnet50v1.5/README.md "
       "(commit 291f0d0), {table}")
TIMM = ("huggingface/pytorch-image-models results/benchmark-train-amp-nchw-pt112-cu113-"
        "rtx3090.csv (timm benchmark.py: AMP, NCHW, PyTorch 1.12, CUDA 11.3), row {row}")
GPT_FAST = ("pytorch-labs/gpt-fast README.md, Benchmarks table (batch 1, prompt 5 tokens, "
            "torch.compile, {gpu})")
MI250X_GCD = "custom:bf16=191.5T,fp16=191.5T,fp32=23.95T,bw=1.64T,mem=64G,name=MI250X one GCD"
"""One of the MI250X's two dies, as software sees it: half the package's peaks and
bandwidth (the catalog's MI250X row and its note)."""


@dataclass(frozen=True)
class Case:
    name: str
    target: str
    gpu: str
    precision: str
    batch: int
    measured: float
    unit: str
    source: str
    options: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def _image(batch: int, size: int = 224) -> tuple[int, ...]:
    return (batch, 3, size, size)


def _train(batch: int, amp: str | None, optimizer: str) -> dict[str, Any]:
    options: dict[str, Any] = {"mode": "train", "optimizer": optimizer, "inputs": _image(batch),
                               "loss": "cross_entropy", "targets": f"{batch}:int64"}
    if amp:
        options["autocast"] = amp
    return options


def _infer(batch: int, dtype: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {"inputs": _image(batch)}
    if dtype:
        options["dtype"] = dtype
    return options


CASES = [
    Case("rn50-train-amp-a100", "torchvision:resnet50", "A100 80GB SXM", "AMP fp16", 256, 2470,
         "img/s", DLE.format(table="Training performance: NVIDIA DGX A100, 1 GPU, mixed precision"),
         _train(256, "fp16", "sgd-momentum"),
         "batch 256 per GPU is the recipe's A100 setting; the table does not state it"),
    Case("rn50-train-tf32-a100", "torchvision:resnet50", "A100 80GB SXM", "TF32", 256, 938,
         "img/s", DLE.format(table="Training performance: NVIDIA DGX A100, 1 GPU, TF32"),
         _train(256, None, "sgd-momentum"), "batch 256 assumed as above"),
    Case("rn50-train-fp32-v100", "torchvision:resnet50", "V100 SXM2 16GB", "fp32", 112, 367,
         "img/s", DLE.format(table="Training performance: DGX-1 16GB, 1 GPU, FP32"),
         _train(112, None, "sgd-momentum"),
         "batch 112 assumed (256 does not fit 16 GB in fp32)"),
    Case("rn50-train-amp-v100", "torchvision:resnet50", "V100 SXM2 16GB", "AMP fp16", 256, 1200,
         "img/s", DLE.format(table="Training performance: DGX-1 16GB, 1 GPU, mixed precision"),
         _train(256, "fp16", "sgd-momentum"), "batch 256 assumed"),
    Case("rn50-infer-fp32-v100", "torchvision:resnet50", "V100 SXM2 16GB", "fp32", 256, 1261,
         "img/s", DLE.format(table="Inference performance: DGX-1 (1x V100 16GB), FP32, batch 256"),
         _infer(256, None)),
    Case("rn50-infer-fp16-v100", "torchvision:resnet50", "V100 SXM2 16GB", "fp16", 256, 3382,
         "img/s", DLE.format(table="Inference performance: DGX-1 (1x V100 16GB), mixed "
                                   "precision, batch 256"),
         _infer(256, "fp16"), "the measurement runs AMP; analysed as pure fp16"),
    Case("rn50-infer-fp32-t4", "torchvision:resnet50", "T4", "fp32", 256, 415, "img/s",
         DLE.format(table="Inference performance: NVIDIA T4, FP32, batch 256"),
         _infer(256, None)),
    Case("rn50-infer-fp16-t4", "torchvision:resnet50", "T4", "fp16", 256, 1198, "img/s",
         DLE.format(table="Inference performance: NVIDIA T4, mixed precision, batch 256"),
         _infer(256, "fp16"), "the measurement runs AMP; analysed as pure fp16"),
    Case("timm-rn50-3090", "timm:resnet50", "RTX 3090", "AMP fp16", 512, 826.06, "img/s",
         TIMM.format(row="resnet50"), _train(512, "fp16", "nesterov")),
    Case("timm-rn18-3090", "timm:resnet18", "RTX 3090", "AMP fp16", 512, 2764.22, "img/s",
         TIMM.format(row="resnet18"), _train(512, "fp16", "nesterov")),
    Case("timm-vitb32-3090", "timm:vit_base_patch32_224", "RTX 3090", "AMP fp16", 512, 1703.57,
         "img/s", TIMM.format(row="vit_base_patch32_224"), _train(512, "fp16", "nesterov")),
    Case("timm-vits16-3090", "timm:vit_small_patch16_224", "RTX 3090", "AMP fp16", 384,
         1052.92, "img/s", TIMM.format(row="vit_small_patch16_224"),
         _train(384, "fp16", "nesterov")),
    Case("timm-convnext-t-3090", "timm:convnext_tiny", "RTX 3090", "AMP fp16", 256, 813.16,
         "img/s", TIMM.format(row="convnext_tiny"), _train(256, "fp16", "nesterov")),
    Case("timm-effnet-b0-3090", "timm:efficientnet_b0", "RTX 3090", "AMP fp16", 384, 1459.11,
         "img/s", TIMM.format(row="efficientnet_b0"), _train(384, "fp16", "nesterov")),
    Case("llama2-7b-decode-a100", "hf:llama-2-7b", "A100 80GB SXM", "bf16", 1, 104.9, "tok/s",
         GPT_FAST.format(gpu="A100 80GB power-limited to 330 W"),
         {"mode": "generate", "batch": 1, "prompt_len": 5, "new_tokens": 200, "dtype": "bf16"},
         "gpt-fast's own Llama, compiled with CUDA graphs"),
    Case("llama2-7b-decode-mi250x", "hf:llama-2-7b", MI250X_GCD, "bf16", 1, 76.33, "tok/s",
         GPT_FAST.format(gpu="one GCD of an MI250X"),
         {"mode": "generate", "batch": 1, "prompt_len": 5, "new_tokens": 200, "dtype": "bf16"},
         "gpt-fast's own Llama, compiled"),
]

NO_OVERHEAD = {"overhead": 0.0}
"""The one alternative assumption shown beside the default: no per-kernel gap, as
CUDA graphs (torch.compile's "reduce-overhead", gpt-fast) remove launches."""


def predict(case: Case, constants: dict[str, Any] | None = None) -> tuple[float, Any]:
    options = dict(case.options)
    inputs = options.pop("inputs", None)
    report = memflops.analyze(case.target, inputs, gpu=case.gpu, time_constants=constants,
                              **options)
    if report.generation is not None:
        assert report.generation.time is not None
        return report.generation.time.decode_tokens_per_s, report
    assert report.timing is not None and report.timing.samples_per_s is not None
    return report.timing.samples_per_s, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--output", default=None, help="also write the table to this file")
    args = parser.parse_args()
    wanted = set(args.cases.split(",")) if args.cases else None
    lines = [
        "| case | model | GPU | precision | batch | measured | memflops | ratio | "
        "no kernel overhead | ratio | bound | MFU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for case in CASES:
        if wanted and case.name not in wanted:
            continue
        start = time.perf_counter()
        predicted, report = predict(case)
        graphs, _ = predict(case, NO_OVERHEAD)
        timing = report.timing
        mfu = timing.estimate.mfu() if timing is not None else None
        bound = (report.generation.time.decode_bound
                 if report.generation is not None and report.generation.time is not None
                 else timing.estimate.bound if timing is not None else "")
        gpu = timing.accelerator.name if timing is not None else case.gpu
        lines.append(
            f"| {case.name} | {case.target} | {gpu} | {case.precision} | {case.batch} | "
            f"{case.measured:,.1f} {case.unit} | {predicted:,.1f} | "
            f"{predicted / case.measured:.2f} | {graphs:,.1f} | {graphs / case.measured:.2f} | "
            f"{bound} | {'' if mfu is None else f'{100 * mfu:.0f}%'} |"
        )
        print(lines[-1], f"({time.perf_counter() - start:.0f} s)", flush=True)
    text = "\n".join(lines) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
