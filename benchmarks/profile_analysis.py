"""Where the time of one `memflops.analyze` call goes, by cProfile.

Runs one case of `benchmarks/cases.py` in this process: imports, model
build, one small warm-up analysis (so the one-time imports torch makes on
first use stay out of the profile; `--cold` keeps them in), then the case's
analysis under cProfile. Prints the share of self time per area (memflops,
FakeTensor dispatch, autograd, optimizer, the rest of torch, Python and C
builtins) and the hottest functions.

    python benchmarks/profile_analysis.py "llama2-70b shape" [--top 25] [--dump out.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.cases import BY_NAME
from benchmarks.machine import ROOT

# (area, a substring of the source path); the first match wins.
AREAS = (
    ("memflops", "/memflops/"),
    ("benchmarks (the model's own forward code)", "/benchmarks/"),
    ("torch FakeTensor dispatch", "/torch/_subclasses/"),
    ("torch optimizer", "/torch/optim/"),
    ("torch autograd", "/torch/autograd/"),
    ("torch other", "/torch/"),
)


def area_of(filename: str) -> str:
    if filename == "~":
        return "C builtins (incl. the autograd engine, isinstance, dispatch)"
    for area, marker in AREAS:
        if marker in filename:
            return area
    return "Python standard library and other"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("case", choices=sorted(BY_NAME))
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--cold", action="store_true", help="no warm-up analysis")
    parser.add_argument("--dump", type=Path, help="also write the raw profile here")
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.src.resolve()))
    case = BY_NAME[args.case]
    case.load()
    model = case.build()
    if model is None:
        parser.error(f"case {args.case!r} analyses nothing")
    if not args.cold:
        import torch

        import memflops

        memflops.analyze(torch.nn.Linear(2, 2), (1, 2), mode="train")

    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    case.analyze(model)
    profiler.disable()
    wall = time.perf_counter() - start
    if args.dump:
        profiler.dump_stats(args.dump)

    stats = pstats.Stats(profiler)
    raw = stats.stats  # type: ignore[attr-defined]
    self_time: dict[str, float] = defaultdict(float)
    for (filename, _, _), (_, _, tottime, _, _) in raw.items():
        self_time[area_of(filename)] += tottime
    total = sum(self_time.values())
    print(f"{args.case}: analyze() took {wall:.2f} s under cProfile "
          f"(profiling itself slows Python code; shares are what matter)\n")
    print("self time by area:")
    for area, seconds in sorted(self_time.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds:7.2f} s  {100 * seconds / total:5.1f} %  {area}")
    print(f"\nmemflops functions, by cumulative time (share of {wall:.2f} s):")
    ours = [(key, value) for key, value in raw.items() if "/memflops/" in key[0]]
    for (filename, line, func), (_, calls, tottime, cumtime, _) in sorted(
        ours, key=lambda kv: -kv[1][3]
    )[: args.top]:
        where = filename.split("/memflops/", 1)[1]
        print(f"  {cumtime:7.2f} s cum {100 * cumtime / wall:5.1f} %  self {tottime:6.2f} s  "
              f"{calls:>8} calls  {where}:{line}({func})")
    print("\nall functions, by self time:")
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
