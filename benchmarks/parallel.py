"""Parallel training (`analyze(parallel=...)`): shard arithmetic over world sizes, and the
scale of large models, analysed on this machine. Writes `benchmarks/PARALLEL.md`.

1. FSDP2 shards of a 3-block MLP (dimension 36, so most sizes do not divide) at every
   world size 1..64: rank 0's parameter, gradient and AdamW state bytes against the
   padded-shard arithmetic (dimension 0 of each parameter padded to a multiple of N;
   rank 0 holds ceil(rows / N) rows).
2. Hugging Face models from the zoo at a long sequence under fsdp and tp: wall time and
   the peak resident memory of the analysis (a child process per case, `ru_maxrss`).

    python benchmarks/parallel.py              # ~3-5 minutes on 2 cores
    python benchmarks/parallel.py --shards     # part 1 only (~1 minute)
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

OUT = Path(__file__).with_name("PARALLEL.md")
SCALE = [
    ("hf:llama-3.1-8b", 1, 8192, "fsdp=8"),
    ("hf:llama-3.1-8b", 1, 8192, "tp=2"),
    ("hf:llama-3.1-8b", 1, 8192, "fsdp=4,tp=2"),
    ("hf:llama-2-70b", 1, 4096, "fsdp=64"),
    ("hf:llama-2-70b", 1, 4096, "fsdp=8,tp=8"),
]
"""(target, batch, seq, layout), each analysed in train mode, bf16, AdamW, on an H100."""


class Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.up = nn.Linear(dim, 4 * dim)
        self.down = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(torch.relu(self.up(x)))


class MLP(nn.Module):
    def __init__(self, dim: int = 36, blocks: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList([Block(dim) for _ in range(blocks)])
        self.head = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def shards() -> list[str]:
    import memflops

    model = MLP()
    lines = ["| world size | rank 0 params B | padded-shard arithmetic B | grads B | "
             "AdamW state B | agree |", "| ---: | ---: | ---: | ---: | ---: | --- |"]
    for world in range(1, 65):
        report = memflops.analyze(model, (4, 36), mode="train", optimizer="adamw",
                                  parallel=f"fsdp={world}")
        m = report.totals.memory
        expected = 4 * sum(math.ceil(p.shape[0] / world) * math.prod(p.shape[1:])
                           for p in model.parameters())
        agree = (m.params, m.grads, m.optimizer) == (expected, expected, 2 * expected)
        lines.append(f"| {world} | {m.params:,} | {expected:,} | {m.grads:,} | "
                     f"{m.optimizer:,} | {'yes' if agree else 'NO'} |")
    return lines


def one_case(target: str, batch: int, seq: int, layout: str) -> dict[str, object]:
    """Run in a child process: the analysis, its wall time and peak RSS."""
    import memflops

    start = time.perf_counter()
    report = memflops.analyze(target, batch=batch, seq=seq, mode="train", dtype="bf16",
                              optimizer="adamw", parallel=layout, gpu="H100 SXM")
    wall = time.perf_counter() - start
    par = report.parallel
    assert par is not None and report.timing is not None
    return {
        "wall_s": wall, "rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "peak": report.totals.memory.peak, "params": report.totals.memory.params,
        "communication_bytes": par.communication_bytes, "time_comm_s": par.time_comm_s,
        "step_s": report.timing.estimate.step, "collectives": len(par.collectives),
    }


def scale() -> list[str]:
    lines = ["| model | batch x seq | layout | analysis wall s | analysis RSS GiB | "
             "rank 0 peak GiB | params GiB | sent per step GiB | comm s | compute step s |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for target, batch, seq, layout in SCALE:
        done = subprocess.run(
            [sys.executable, __file__, "--case", json.dumps([target, batch, seq, layout])],
            capture_output=True, text=True, check=False,
        )
        if done.returncode:
            tail = done.stderr.strip().splitlines()[-1:] or ["?"]
            lines.append(f"| {target} | {batch}x{seq} | {layout} | failed: {tail[0]} |")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        gib = 2**30
        lines.append(
            f"| {target} | {batch}x{seq} | {layout} | {r['wall_s']:.1f} | "
            f"{r['rss_bytes'] / gib:.2f} | {r['peak'] / gib:.2f} | {r['params'] / gib:.2f} | "
            f"{r['communication_bytes'] / gib:.2f} | {r['time_comm_s']:.4f} | "
            f"{r['step_s']:.3f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", action="store_true", help="part 1 only")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(one_case(*json.loads(args.case))))
        return
    text = ["# Parallel training: shard arithmetic and scale", "",
            f"Generated by `python benchmarks/parallel.py` ({time.strftime('%Y-%m-%d')}, "
            f"torch {torch.__version__}).", "",
            "## FSDP2 shards at world sizes 1..64 (3-block MLP, dimension 36)", "",
            *shards()]
    if not args.shards:
        text += ["", "## Scale (train, bf16, AdamW, H100 SXM; rank 0)", "", *scale()]
    OUT.write_text("\n".join(text) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
