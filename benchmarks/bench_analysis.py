"""Wall time and peak memory of `memflops.analyze`, each run in a fresh process.

Every run of a case is `python -c CHILD` in a new interpreter, so imports and
resident memory belong to that run alone. Two views of each run:

- whole process: the parent's wall clock from spawn to exit, the child's
  user + system CPU time, and its peak resident set size (`ru_maxrss`), both
  from `os.wait4`, the kernel's record for that one child;
- inside the child: `time.perf_counter()` around the imports, the model build
  (on the meta device) and the `memflops.analyze(...)` call alone.

Each case runs `--repeats` times (default 3); the table shows the median of
each column. The table and a description of the machine go to
benchmarks/RESULTS.md.

    python benchmarks/bench_analysis.py [--repeats N] [--cases a,b] [--output PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.cases import CASES, GB, MARK, Case
from benchmarks.machine import ROOT, describe, load_average

MB = 10**6

# The child's first statement starts its clock; everything after is timed.
CHILD = """\
import time
_t0 = time.perf_counter()
import sys
sys.path[:0] = [{root!r}, {src!r}]
from benchmarks.cases import child_main
child_main({name!r}, _t0)
"""


@dataclass(frozen=True)
class Run:
    wall_s: float  # parent: spawn to exit
    cpu_s: float  # user + system CPU time of the child
    peak_rss: int  # bytes, ru_maxrss of the child
    import_s: float
    build_s: float
    analyze_s: float
    outside_s: float  # wall time outside the timed phases: interpreter start-up and exit
    rss_before_analyze: int


def run_once(case: Case, src: Path) -> Run:
    code = CHILD.format(root=str(ROOT), src=str(src), name=case.name)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"case {case.name!r} exited {proc.returncode}:\n{output}")
    line = next(ln for ln in output.splitlines() if ln.startswith(MARK))
    child = json.loads(line.removeprefix(MARK))
    if case.params is not None and child["params"] != case.params:
        raise RuntimeError(f"case {case.name!r}: {child['params']} params, expected {case.params}")
    return Run(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss=usage.ru_maxrss * 1024,  # Linux reports KiB
        import_s=child["import_s"],
        build_s=child["build_s"],
        analyze_s=child["analyze_s"],
        outside_s=wall - child["import_s"] - child["build_s"] - child["analyze_s"],
        rss_before_analyze=child["rss_before_analyze"],
    )


def median_run(runs: list[Run]) -> Run:
    """Each field's median over the runs (fields taken one by one)."""
    fields = Run.__dataclass_fields__
    values = {f: statistics.median([getattr(r, f) for r in runs]) for f in fields}
    return Run(**{f: int(v) if f in ("peak_rss", "rss_before_analyze") else v
                  for f, v in values.items()})


def verdict(case: Case, run: Run) -> str:
    checks = []
    if case.max_wall_s is not None:
        ok = run.wall_s <= case.max_wall_s
        checks.append(f"{'PASS' if ok else 'FAIL'}: wall <= {case.max_wall_s:g} s")
    if case.max_rss_bytes is not None:
        ok = run.peak_rss <= case.max_rss_bytes
        checks.append(f"{'PASS' if ok else 'FAIL'}: peak RSS <= {case.max_rss_bytes / GB:g} GB")
    return "; ".join(checks) or "no target"


COLUMNS = """
- **wall**: whole process, measured by the parent with `time.perf_counter()` from just
  before spawning `python -c ...` until `os.wait4` returns: interpreter start-up,
  imports, model build, analysis and interpreter shutdown.
- **CPU**: whole process, user + system CPU time of that child (`ru_utime + ru_stime`
  from `os.wait4`); less sensitive than wall time to other load on the machine.
- **peak RSS**: whole process, `ru_maxrss` of that one child from `os.wait4` (the
  kernel's high-water mark of its resident set; Linux reports KiB, shown in
  MB = 10^6 bytes).
- **import**: inside the child, `time.perf_counter()` from its first statement through
  the case's imports (torch, memflops, and torchvision or benchmarks.models).
  memflops loads its engine lazily, so this is mostly torch.
- **build**: inside the child, constructing the model on the meta device (the first
  meta-device initialisation in a process also loads torch's decompositions).
- **analyze()**: inside the child, `time.perf_counter()` around the one
  `memflops.analyze(...)` call. The first analysis in a process also pays for modules
  torch imports on first use (FakeTensorMode imports torch._dynamo and sympy); the
  floor rows show that fixed cost.
- **start + exit**: wall minus the three timed phases: interpreter start-up, printing
  the result and interpreter shutdown (which frees every object and module).
- **RSS before analyze()**: the child's `VmRSS` from `/proc/self/status` just before
  the `analyze()` call (after imports and build).
- **load**: the machine's 1-minute load average when the case's first run started
  (other processes compete for the cores when it is near or above the core count).
- **target**: the goals of the issue, judged on the whole-process wall and peak RSS
  (GB = 10^9 bytes).
"""


def busy_warning(loads: list[float]) -> list[str]:
    """A warning paragraph when other processes loaded the cores during the runs."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    worst = max(loads, default=0.0)
    if worst < 0.75 * (cores or 1):
        return []
    return [
        f"**Warning: the machine was busy** (1-minute load average up to {worst:.2f} on "
        f"{cores} cores from other processes), so wall times, and to a lesser degree CPU "
        "times, are higher than on an idle machine. Rerun on a quiet machine before "
        "judging a target by these numbers.",
        "",
    ]


Result = tuple[Case, Run, float]  # a case, its median run, the load average at its start


def render(results: list[Result], repeats: int, host: list[tuple[str, str]]) -> str:
    lines = [
        "# memflops analysis benchmarks",
        "",
        "Generated by `python benchmarks/bench_analysis.py` on the machine described "
        f"below. Each case ran {repeats} times, each time in a fresh `python -c` process; "
        "every column is the median of those runs.",
        "",
        *busy_warning([load for _, _, load in results]),
        "| case | wall (s) | CPU (s) | peak RSS (MB) | import (s) | build (s) | "
        "analyze() (s) | start + exit (s) | RSS before analyze() (MB) | load | target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for case, r, load in results:
        lines.append(
            f"| {case.name} | {r.wall_s:.2f} | {r.cpu_s:.2f} | {r.peak_rss / MB:.0f} | "
            f"{r.import_s:.2f} | {r.build_s:.2f} | {r.analyze_s:.2f} | {r.outside_s:.2f} | "
            f"{r.rss_before_analyze / MB:.0f} | {load:.2f} | {verdict(case, r)} |"
        )
    lines += ["", "## How each column is measured", COLUMNS.rstrip(), "", "## Cases", ""]
    lines += [f"- **{case.name}**: {case.description}" for case, _, _ in results]
    lines += ["", "## Machine", "", "| | |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in host]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--cases", default="",
        help="comma-separated case names (default: all): " + ", ".join(c.name for c in CASES),
    )
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument(
        "--src", type=Path, default=ROOT / "src",
        help="directory holding the memflops package to measure (default: this checkout's src)",
    )
    args = parser.parse_args(argv)
    wanted = {n.strip() for n in args.cases.split(",") if n.strip()}
    unknown = wanted - {c.name for c in CASES}
    if unknown:
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    host = describe()
    results: list[Result] = []
    for case in CASES:
        if wanted and case.name not in wanted:
            continue
        runs = []
        load = os.getloadavg()[0]
        for i in range(args.repeats):
            r = run_once(case, args.src.resolve())
            runs.append(r)
            print(
                f"{case.name} run {i + 1}: wall {r.wall_s:.2f} s, CPU {r.cpu_s:.2f} s, "
                f"peak RSS {r.peak_rss / MB:.0f} MB, import {r.import_s:.2f} s, build "
                f"{r.build_s:.2f} s, analyze {r.analyze_s:.2f} s, start+exit "
                f"{r.outside_s:.2f} s", flush=True,
            )
        results.append((case, median_run(runs), load))
    host.append(("load average at end (1/5/15 min)", load_average()))
    text = render(results, args.repeats, host)
    print(text)
    if not args.no_write:
        # keep the section benchmarks/bench_memory.py writes
        start, end = "<!-- memory-sweep:start -->", "<!-- memory-sweep:end -->"
        old = args.output.read_text() if args.output.exists() else ""
        if start in old and end in old:
            kept = start + old.split(start, 1)[1].split(end, 1)[0] + end
            text = text.rstrip("\n") + "\n\n" + kept + "\n"
        args.output.write_text(text)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
