"""JSON reports of a fixed set of varied targets, to show a refactor changes no number.

Writes one `memflops analyze ... --format json` report per case into a
folder, each from a fresh `python -m memflops` process (what a user runs);
`--compare BEFORE AFTER` then lists, field by field, every value that
differs between two such folders.

    python benchmarks/report_snapshot.py write OUTDIR [--cases a,b]
    python benchmarks/report_snapshot.py compare BEFORE AFTER

The cases cover every frontend and mode: torchvision (classification and
detection), timm, Hugging Face text, vision, audio and mixture-of-experts
models (tiny configs written here, offline), generation, a layer-list spec,
a live factory, a batch sweep, a fit, and fp16/bf16 steps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Tiny Hugging Face configs: fields on top of transformers' default config of the type.
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "whisper": {
        "d_model": 64, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
        "decoder_attention_heads": 4, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128,
        "num_mel_bins": 80, "max_source_positions": 1500,
    },
    "qwen3_moe": {
        "hidden_size": 64, "intermediate_size": 128, "moe_intermediate_size": 32,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "head_dim": 16, "num_experts": 8, "num_experts_per_tok": 2, "vocab_size": 1000,
    },
    "llama": {
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000,
    },
}

# name -> analyze arguments after the target; "{cfg:TYPE}" is a tiny config's path.
CASES: dict[str, list[str]] = {
    "tv-resnet18-train": ["torchvision:resnet18", "--input", "2x3x64x64", "--mode", "train"],
    "tv-mobilenet-infer": ["torchvision:mobilenet_v3_small", "--input", "1x3x96x96"],
    "tv-fasterrcnn-infer": ["torchvision:fasterrcnn_mobilenet_v3_large_320_fpn"],
    "timm-vit-tiny-train": ["timm:vit_tiny_patch16_224", "--mode", "train", "--optimizer", "sgd"],
    "timm-efficientnet-bf16": ["timm:efficientnet_b0", "--dtype", "bf16"],
    "hf-gpt2-train": ["hf:gpt2", "--batch", "1", "--seq", "32", "--mode", "train"],
    "hf-bert-infer": ["hf:bert-base-uncased", "--batch", "2", "--seq", "16"],
    "hf-vit-train-amp": ["hf:vit-base", "--mode", "train", "--autocast", "bf16"],
    "hf-whisper-train": ["hf:{cfg:whisper}", "--mode", "train"],
    "hf-qwen3moe-train": ["hf:{cfg:qwen3_moe}", "--batch", "2", "--seq", "16", "--mode", "train"],
    "hf-llama-generate": [
        "hf:{cfg:llama}", "--mode", "generate", "--prompt-len", "32", "--new-tokens", "8",
        "--cache-dtype", "fp16",
    ],
    "spec-vgg16-train": ["examples/vgg16.yaml", "--mode", "train"],
    "spec-separable": ["examples/separable_residual.yaml"],
    "factory-tiny-train": [
        "tests/fixtures/tiny_model.py:tiny", "--input", "2x3x4x4", "--mode", "train",
        "--optimizer", "adamw",
    ],
    "sweep-resnet18": [
        "torchvision:resnet18", "--input", "1x3x64x64", "--mode", "train", "--batch-sweep", "1,2,4",
    ],
    "fit-resnet18": [
        "torchvision:resnet18", "--input", "1x3x64x64", "--mode", "train", "--fit", "256MiB",
        "--allocator-overhead",
    ],
}


def _config_paths(folder: Path) -> dict[str, str]:
    import transformers

    paths = {}
    for model_type, fields in TINY_CONFIGS.items():
        config = transformers.CONFIG_MAPPING[model_type](**fields).to_dict()
        path = folder / f"{model_type}.json"
        path.write_text(json.dumps(config, indent=1, sort_keys=True, default=str))
        paths[model_type] = str(path)
    return paths


def write(outdir: Path, names: list[str]) -> int:
    outdir.mkdir(parents=True, exist_ok=True)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        configs = _config_paths(Path(tmp))
        for name in names:
            args = [_fill(a, configs) for a in CASES[name]]
            out = outdir / f"{name}.json"
            cmd = [sys.executable, "-m", "memflops", "analyze", *args, "--format", "json",
                   "-o", str(out)]
            done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                                  env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
            status = "ok" if done.returncode == 0 else f"exit {done.returncode}"
            print(f"{name:28} {status} {done.stderr.strip()[-200:]}")
            failures += done.returncode != 0
            if out.exists():  # a tiny config's temporary path is not part of the report
                report = json.loads(out.read_text())
                report["model"] = _unfill(report["model"], configs)
                out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    return failures


def _fill(arg: str, configs: dict[str, str]) -> str:
    for model_type, path in configs.items():
        arg = arg.replace(f"{{cfg:{model_type}}}", path)
    return arg


def _unfill(text: str, configs: dict[str, str]) -> str:
    for model_type, path in configs.items():
        text = text.replace(path, f"{{cfg:{model_type}}}")
    return text


def _diff(a: Any, b: Any, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                out.append(f"{where}.{key}: only in {'after' if key in b else 'before'}")
            else:
                _diff(a[key], b[key], f"{where}.{key}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{where}[{i}]", out)
    elif a != b:
        shown = (f"{a} -> {b}  ({b - a:+})" if isinstance(a, int) and isinstance(b, int)
                 else f"{json.dumps(a)[:120]} -> {json.dumps(b)[:120]}")
        out.append(f"{where}: {shown}")


def compare(before: Path, after: Path) -> int:
    changed = 0
    for path in sorted(before.glob("*.json")):
        other = after / path.name
        if not other.exists():
            print(f"{path.stem}: missing after")
            changed += 1
            continue
        if path.read_bytes() == other.read_bytes():
            print(f"{path.stem}: byte-identical")
            continue
        lines: list[str] = []
        _diff(json.loads(path.read_text()), json.loads(other.read_text()), "", lines)
        print(f"{path.stem}: {len(lines)} field(s) differ")
        for line in lines:
            print(f"    {line}")
        changed += 1
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    w = commands.add_parser("write")
    w.add_argument("outdir", type=Path)
    w.add_argument("--cases", help="comma-separated case names (default: all)")
    c = commands.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "write":
        names = args.cases.split(",") if args.cases else list(CASES)
        return 1 if write(args.outdir, names) else 0
    return 1 if compare(args.before, args.after) else 0


if __name__ == "__main__":
    sys.exit(main())
