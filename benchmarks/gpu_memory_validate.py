"""memflops' memory predictions against a real CUDA run: allocated, reserved, device total.

For each case and each allocator setting, memflops analyses the training step on the
CPU (fake tensors), then a child process with `PYTORCH_CUDA_ALLOC_CONF` set to the same
options runs the same step on the GPU: the same module (real, randomly initialised
weights), the same inputs, the same loss function and the same optimizer factory,
three steps, peaks reset before the third (the steady state memflops reports). The
child records `torch.cuda.memory_stats()` (`allocated_bytes.all.peak`,
`active_bytes.all.peak`, `requested_bytes.all.peak`, `reserved_bytes.all.peak`,
`num_alloc_retries`), the device memory in use (`torch.cuda.mem_get_info()`: total -
free, what nvidia-smi shows when nothing else runs on the GPU) and a
`torch.cuda.memory._snapshot()` (pickled under --out).

Compared: memflops' allocated peak (`memory_detail.allocator.allocated_peak`) with
`allocated_bytes.all.peak` (target: within 3%), its reserved peak with
`reserved_bytes.all.peak` (target: within 5%), its device total with the device
memory in use; the measured CUDA context is in use minus reserved. The table goes to
benchmarks/GPU.md between the `gpu-memory` markers; the raw numbers to --out.

Needs a CUDA GPU, torch with CUDA, torchvision and transformers:

    python benchmarks/gpu_memory_validate.py [--cases resnet50,gpt2] [--out DIR]
    python benchmarks/gpu_memory_validate.py --dry-run   # memflops' side only, no GPU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

CONFIGS = ("", "expandable_segments:True")
"""Allocator settings compared: PyTorch's defaults, and expandable segments."""
STEPS = 3
START, END = "<!-- gpu-memory:start -->", "<!-- gpu-memory:end -->"


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    build: Callable[[], Any]  # -> (module, inputs: tuple of tensors, loss, optimizer factory)


def _resnet50() -> Any:
    import torch
    import torchvision

    model = torchvision.models.resnet50()
    x = torch.randn(32, 3, 224, 224)
    return model, (x,), _sum_loss, lambda ps: torch.optim.Adam(ps, foreach=True)


class _CausalLM:
    """A Hugging Face causal LM returning its logits only (no KV cache in training)."""

    @staticmethod
    def build(name: str, batch: int, seq: int, dtype: str, **shape: int) -> Any:
        import torch
        import transformers
        from torch import nn

        config = transformers.AutoConfig.for_model(name, **shape)
        inner = transformers.AutoModelForCausalLM.from_config(config)
        inner.to(getattr(torch, dtype))

        class Logits(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lm = inner

            def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
                return self.lm(input_ids=input_ids, use_cache=False).logits  # type: ignore[no-any-return]

        ids = torch.randint(0, config.vocab_size, (batch, seq))
        return Logits(), (ids,), _sum_loss, lambda ps: torch.optim.AdamW(ps, foreach=True)


def _sum_loss(output: Any, targets: Any) -> Any:
    return output.sum()


CASES = {
    case.name: case
    for case in (
        Case("resnet50", "torchvision resnet50, batch 32, 3x224x224, fp32, Adam", _resnet50),
        Case(
            "gpt2", "GPT-2 small (config only), batch 8, seq 1024, bf16, AdamW",
            lambda: _CausalLM.build("gpt2", 8, 1024, "bfloat16"),
        ),
        Case(
            "llama-1b", "a Llama with 16 layers of width 2048, batch 4, seq 2048, bf16, AdamW",
            lambda: _CausalLM.build(
                "llama", 4, 2048, "bfloat16", hidden_size=2048, intermediate_size=5632,
                num_hidden_layers=16, num_attention_heads=16, num_key_value_heads=16,
            ),
        ),
    )
}


def predict(case: Case, conf: str) -> dict[str, Any]:
    """memflops' analysis of the case's training step (CPU, fake tensors)."""
    import memflops

    model, inputs, loss, optimizer = case.build()
    report = memflops.analyze(
        model, list(inputs), mode="train", loss=loss, optimizer=optimizer,
        allocator_conf=conf or None,
    )
    sim = report.memory_detail.allocator if report.memory_detail else None
    assert sim is not None
    return {
        "peak": report.totals.memory.peak,
        "requested_peak": sim.requested_peak,
        "allocated_peak": sim.allocated_peak,
        "reserved": sim.reserved,
        "fragmentation": sim.fragmentation,
        "segments": sim.segments,
        "cuda_context": sim.cuda_context,
        "device_total": sim.device_total,
    }


def measure(case_name: str, conf: str, out: Path) -> dict[str, Any]:
    """Run the case on the GPU in a child process whose allocator has `conf`."""
    env = dict(os.environ, PYTORCH_CUDA_ALLOC_CONF=conf)
    if not conf:
        env.pop("PYTORCH_CUDA_ALLOC_CONF")
    child = subprocess.run(
        [sys.executable, __file__, "--child", case_name, "--out", str(out)],
        env=env, capture_output=True, text=True, check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"{case_name} [{conf or 'default'}] failed:\n{child.stderr[-4000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def child(case_name: str, out: Path) -> None:
    """The GPU side: STEPS training steps, peaks of the last one."""
    import pickle

    import torch

    model, inputs, loss_fn, optimizer_factory = CASES[case_name].build()
    device = torch.device("cuda")
    model.to(device)
    inputs = tuple(t.to(device) for t in inputs)
    optimizer = optimizer_factory([p for p in model.parameters() if p.requires_grad])
    torch.cuda.memory._record_memory_history(max_entries=200_000)
    for step in range(STEPS):
        if step == STEPS - 1:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        loss = loss_fn(model(*inputs), None)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        del loss
    torch.cuda.synchronize()
    stats = torch.cuda.memory_stats()
    free, total = torch.cuda.mem_get_info()
    conf = os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "")
    tag = f"{case_name}-{'expandable' if 'expandable' in conf else 'default'}"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"{tag}.snapshot.pickle", "wb") as f:
        pickle.dump(torch.cuda.memory._snapshot(), f)
    print(json.dumps({
        "allocated_peak": stats["allocated_bytes.all.peak"],
        "active_peak": stats["active_bytes.all.peak"],
        "requested_peak": stats["requested_bytes.all.peak"],
        "reserved_peak": stats["reserved_bytes.all.peak"],
        "num_alloc_retries": stats["num_alloc_retries"],
        "segments": stats["segment.all.current"],
        "device_in_use": total - free,
        "reserved_now": torch.cuda.memory_reserved(),
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }))


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f}"


def _error(predicted: float, measured: float) -> str:
    return f"{100 * (predicted - measured) / measured:+.1f}%" if measured else "n/a"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| case | allocator | allocated: memflops / GPU (GiB) | err | reserved: memflops / GPU | "
        "err | device total: memflops / GPU in use | err | GPU context (in use - reserved) |",
        "| --- | --- | --- | ---: | --- | ---: | --- | ---: | ---: |",
    ]
    for r in rows:
        p, m = r["memflops"], r["gpu"]
        lines.append(
            f"| {r['case']} | {r['conf'] or 'default'} "
            f"| {_gib(p['allocated_peak'])} / {_gib(m['allocated_peak'])} "
            f"| {_error(p['allocated_peak'], m['allocated_peak'])} "
            f"| {_gib(p['reserved'])} / {_gib(m['reserved_peak'])} "
            f"| {_error(p['reserved'], m['reserved_peak'])} "
            f"| {_gib(p['device_total'])} / {_gib(m['device_in_use'])} "
            f"| {_error(p['device_total'], m['device_in_use'])} "
            f"| {_gib(m['device_in_use'] - m['reserved_now'])} |"
        )
    return "\n".join(lines)


def record(rows: list[dict[str, Any]], path: Path) -> None:
    """Write the table into `path` between the gpu-memory markers (kept elsewhere as is)."""
    gpu = rows[0]["gpu"] if rows else {}
    body = (
        f"{START}\n## Memory: memflops against `torch.cuda.memory_stats()`\n\n"
        f"Measured by `python benchmarks/gpu_memory_validate.py` on {gpu.get('gpu')} "
        f"(torch {gpu.get('torch')}, CUDA {gpu.get('cuda')}); steady state: peaks of step "
        f"{STEPS} of {STEPS}. Targets: allocated within 3%, reserved within 5%.\n\n"
        f"{table(rows)}\n{END}\n"
    )
    text = path.read_text() if path.exists() else "# GPU validation\n\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + body + rest.split(END, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "gpu-memory")
    parser.add_argument("--dry-run", action="store_true", help="memflops' side only, no GPU")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.out)
        return
    rows = []
    for name in args.cases.split(","):
        for conf in CONFIGS:
            row = {"case": name, "conf": conf, "memflops": predict(CASES[name], conf)}
            if not args.dry_run:
                row["gpu"] = measure(name, conf, args.out)
            print(json.dumps(row), flush=True)
            rows.append(row)
    if not args.dry_run:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(rows, indent=1))
        record(rows, ROOT / "benchmarks" / "GPU.md")
        print(table(rows))


if __name__ == "__main__":
    main()
