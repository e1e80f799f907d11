"""Peak training memory against batch size: simulated peak beside the article's estimate.

For ResNet-50 (3x224x224, fp32) and GPT-2 small (hf:gpt2, sequence 1024,
fp32), Adam (foreach), train mode: one memflops analysis per batch size
(`batch_sweep`), which also fits peak = constant + per-sample x batch.
Writes the tables between the memory-sweep markers of benchmarks/RESULTS.md
(or prints them with --print).

    python benchmarks/bench_memory.py [--print]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import memflops
from memflops.units import format_bytes

RESULTS = Path(__file__).with_name("RESULTS.md")
START, END = "<!-- memory-sweep:start -->", "<!-- memory-sweep:end -->"
CASES = (
    ("torchvision:resnet50", "ResNet-50, 3x224x224", {"inputs": (1, 3, 224, 224)}, (1, 8, 32, 64)),
    ("hf:gpt2", "GPT-2 small, sequence 1024", {"batch": 1, "seq": 1024}, (1, 2, 4, 8)),
)


def sweep_table(target: str, title: str, kwargs: dict[str, object], sizes: tuple[int, ...]) -> str:
    start = time.perf_counter()
    report = memflops.analyze(target, mode="train", optimizer="adam", batch_sweep=sizes, **kwargs)
    seconds = time.perf_counter() - start
    sweep = report.sweep
    assert sweep is not None
    lines = [
        f"**{title}** ({report.totals.params:,} parameters, {report.precision}, Adam; "
        f"{len(sizes) + 1} analyses in {seconds:.1f} s)",
        "",
        "| batch | simulated peak | article's estimate | estimate / peak |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for p in sweep.points:
        lines.append(
            f"| {p.size} | {format_bytes(p.peak)} ({p.peak:,} B) | "
            f"{format_bytes(p.seed_estimate)} ({p.seed_estimate:,} B) | "
            f"{p.seed_estimate / p.peak:.2f} |"
        )
    lines += [
        "",
        f"Fitted: peak = {format_bytes(sweep.constant)} + {format_bytes(sweep.per_item)} x batch "
        f"({sweep.constant:,} B + {sweep.per_item:,} B x batch).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print instead of writing")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    body = "\n".join(sweep_table(*case) for case in CASES)
    section = (
        f"{START}\n## Peak memory by batch size (train step)\n\n"
        "Measured by `python benchmarks/bench_memory.py` (one memflops analysis per batch "
        "size; GiB = 2^30 bytes). The article's estimate is parameters x 4 (Adam) + 2 x every "
        "layer's output feature map.\n\n"
        f"{body}{END}"
    )
    if args.print:
        print(section)
        return
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if START in text and END in text:
        head, _, rest = text.partition(START)
        _, _, tail = rest.partition(END)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
