"""Parallel training (`analyze(parallel=...)`): shard arithmetic over world sizes, and the
scale of large models, analysed on this machine. Writes `benchmarks/PARALLEL.md`.

1. FSDP2 shards of a 3-block MLP (dimension 36, so most sizes do not divide) at every
   world size 1..64: rank 0's parameter, gradient and AdamW state bytes against the
   padded-shard arithmetic (dimension 0 of each parameter padded to a multiple of N;
   rank 0 holds ceil(rows / N) rows).
2. Hugging Face models from the zoo at a long sequence under fsdp and tp: wall time and
   the peak resident memory of the analysis (a child process per case, `ru_maxrss`).
3. DeepSpeed's ZeRO-2 and ZeRO-3 model-state estimators against the captured step of
   the set-up they assume (float32 master parameters, 16-bit compute: FSDP2 with
   `mp=bf16`), the states they count side by side, and what they leave out.

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


DEEPSPEED = [("hf:llama-3.1-8b", 1, 2048, "ddp=8,zero=2,mp=bf16"),
             ("hf:llama-3.1-8b", 1, 2048, "ddp=8,zero=3,mp=bf16")]
"""(target, batch, seq, layout): float32 parameters, AdamW, bf16 compute by FSDP2's policy."""


def deepspeed_case(target: str, batch: int, seq: int, layout: str) -> dict[str, object]:
    """Run in a child process: the captured states beside DeepSpeed's formula."""
    import memflops
    from memflops.memory.data_parallel import (
        deepspeed_zero2_gpu_bytes,
        deepspeed_zero3_gpu_bytes,
    )

    report = memflops.analyze(target, batch=batch, seq=seq, mode="train", dtype="fp32",
                              optimizer="adamw", parallel=layout)
    par = report.parallel
    assert par is not None
    kinds = dict(par.by_kind)
    total = report.totals.params
    largest = max(m.params for m in report.modules if m.depth > 0 and not any(
        c.path.startswith(m.path + ".") for c in report.modules))
    stage = int(layout.split("zero=")[1][0])
    formula = (deepspeed_zero2_gpu_bytes(total, 8) if stage == 2
               else deepspeed_zero3_gpu_bytes(total, largest, 8))
    m = report.totals.memory
    return {"layout": layout, "params": total, "largest": largest, "formula": formula,
            "states": m.params + m.grads + m.optimizer, "peak": m.peak, "kinds": kinds}


DEEPSPEED_NOTES = [
    "DeepSpeed's formulas (`estimate_zero2_model_states_mem_needs`: 4 P + 16 P / N bytes; "
    "`estimate_zero3_model_states_mem_needs`: 4 x the largest layer + 18 P / N; no "
    "offload) count model states only. The captured float32 states are exactly 16 P / N "
    "(4 bytes each of parameters, gradients and AdamW's two moments, sharded; Llama's sizes "
    "divide by 8, so no padding): DeepSpeed's 16 P / N term of ZeRO-2, and 2 P / N less "
    "than ZeRO-3's 18 P / N (DeepSpeed also keeps a 16-bit shard of the parameters; FSDP2's "
    "policy casts when it gathers). Their whole terms differ from what is live at the peak: "
    "ZeRO-2's 4 P (16-bit parameters and gradients whole) against FSDP2's SHARD_GRAD_OP, "
    "which keeps the bf16 parameters whole from forward to backward but reduce-scatters "
    "each unit's gradients; ZeRO-3's 4 x largest layer (the 128,256 x 4,096 embedding, "
    "2.10 GB) against the gathered units and buffers. Neither formula counts activations "
    "(11.6-11.9 GiB here at seq 2048) or temporaries.",
]
CHECKS = [
    "## Other checks (tests)",
    "",
    "- Rank 0 of fsdp, hsdp, tp, their 2-D and 3-D combinations and FSDP2's mixed precision "
    "match real CPU runs with the fake process group to the byte "
    "(tests/capture/test_parallel.py); DDP (buckets on and off `gradient_as_bucket_view`) "
    "matches a real CPU DDP run, peak and bucket sizes, to the byte "
    "(tests/capture/test_data_parallel.py).",
    "- PyTorch's `FSDPMemTracker` on the same real fsdp=8 step agrees kind by kind at the "
    "peak, except that it counts AdamW's 14 float32 `step` scalars (56 bytes; a GPU run keeps "
    "them on the host) and files one 8-byte storage under activations that memflops counts "
    "as a temporary. On fake tensors (FSDP2 built inside the fake mode) its peak "
    "snapshot is the same: activations included (2,888 B), total = memflops' peak + 56 B.",
    "- A Megatron-style GPT layer at tp=1/2/4 equals Korthikanti et al. 2022's activation "
    "formula (34 sbh + 5 a s^2 b; sbh (10 + 24/t + 5 a s / (h t))) plus three named terms: "
    "dropout masks kept at 2 bytes, not 1 (the CPU decomposition memflops captures; a CUDA "
    "run's fused dropout keeps a 1-byte mask), LayerNorm's float32 mean and rstd, and the "
    "first LayerNorm's input counted in the previous layer (tests/capture/test_megatron.py).",
]


def deepspeed() -> list[str]:
    gib = 2**30
    lines = ["| model | layout | DeepSpeed formula GiB | captured params+grads+optimizer GiB "
             "| captured peak GiB | at the peak beyond the states |",
             "| --- | --- | ---: | ---: | ---: | --- |"]
    for case in DEEPSPEED:
        done = subprocess.run([sys.executable, __file__, "--deepspeed", json.dumps(case)],
                              capture_output=True, text=True, check=False)
        if done.returncode:
            tail = done.stderr.strip().splitlines()[-1:] or ["?"]
            lines.append(f"| {case[0]} | {case[3]} | failed: {tail[0]} |")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        kinds = r["kinds"]
        beyond = ", ".join(f"{k} {v / gib:.2f}" for k, v in kinds.items()
                           if v and k not in ("sharded_params", "grads", "optimizer"))
        lines.append(f"| {case[0]} seq {case[2]} | {r['layout']} | {r['formula'] / gib:.2f} | "
                     f"{r['states'] / gib:.2f} | {r['peak'] / gib:.2f} | {beyond} |")
    return lines


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
    parser.add_argument("--deepspeed", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(one_case(*json.loads(args.case))))
        return
    if args.deepspeed:
        print(json.dumps(deepspeed_case(*json.loads(args.deepspeed))))
        return
    text = ["# Parallel training: shard arithmetic and scale", "",
            f"Generated by `python benchmarks/parallel.py` ({time.strftime('%Y-%m-%d')}, "
            f"torch {torch.__version__}).", "",
            "## FSDP2 shards at world sizes 1..64 (3-block MLP, dimension 36)", "",
            *shards()]
    if not args.shards:
        text += ["", "## Scale (train, bf16, AdamW, H100 SXM; rank 0)", "",
                 "Targets: 3 minutes and 8 GB RSS per analysis (issue 12). On 2 shared "
                 "cores, wall times vary with the load.", "", *scale()]
        text += ["", "## DeepSpeed's ZeRO model-state estimators (8 GPUs, AdamW, float32 "
                 "master parameters, bf16 compute; rank 0)", "", *deepspeed(), "",
                 *DEEPSPEED_NOTES]
    text += ["", *CHECKS]
    OUT.write_text("\n".join(text) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
