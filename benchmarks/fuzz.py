"""The fuzz suite (tests/test_fuzz.py) run long: every property with
`MEMFLOPS_FUZZ_SCALE` times its CI examples, each property to the end (not stopping at
the first failure), and what it found written to benchmarks/fuzz.md.

    python benchmarks/fuzz.py --scale 10      # ~10 minutes on 2 shared cores

The CI run (scale 1) tries 224 inputs; scale N tries about 224 x N. Each failing
property's minimal example is recorded as hypothesis shrank it.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "fuzz.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("-k", default=None, help="only the properties matching (pytest -k)")
    args = parser.parse_args()
    env = dict(os.environ, MEMFLOPS_FUZZ_SCALE=str(args.scale))
    argv = [sys.executable, "-m", "pytest", "-q", "tests/test_fuzz.py", "-p",
            "no:cacheprovider", "--hypothesis-show-statistics", "-rf"]
    if args.k:
        argv += ["-k", args.k]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env)
    seconds = time.perf_counter() - started
    output = done.stdout + done.stderr
    RESULTS.write_text(_record(args.scale, seconds, output), encoding="utf-8")
    print(output[-3000:])
    print(f"written to {RESULTS}")


def _record(scale: float, seconds: float, output: str) -> str:
    stats = re.findall(r"tests/test_fuzz\.py::(\w+):\n\n  - during generate phase "
                       r"\(([\d.]+) seconds\):\n.*?- (\d+) passing, (\d+) failing, and (\d+) "
                       r"invalid", output, flags=re.S)
    failed = re.findall(r"^FAILED (\S+)", output, flags=re.M)
    examples = re.findall(r"Falsifying example: (\w+)\(\n(.*?)\n\)", output, flags=re.S)
    rows = "\n".join(f"| `{name}` | {float(secs):.0f} | {passing} | {failing} | {invalid} |"
                     for name, secs, passing, failing, invalid in stats)
    total = sum(int(passing) + int(failing) for _, _, passing, failing, _ in stats)
    found = "\n".join(f"- `{name}`:\n\n```\n{body.strip()}\n```" for name, body in examples)
    tail = output.strip().splitlines()[-1] if output.strip() else ""
    return f"""# Fuzz suite, long run

`python benchmarks/fuzz.py --scale {scale:g}` (tests/test_fuzz.py with
MEMFLOPS_FUZZ_SCALE={scale:g}); {seconds:.0f} s wall on this machine; pytest: {tail}

{total} inputs tried (passing + failing; "invalid" are draws hypothesis discarded).

| property | seconds | passing | failing | invalid |
| --- | --- | --- | --- | --- |
{rows}

Failed properties: {", ".join(failed) or "none"}.

{("Minimal failing examples:" + chr(10) + chr(10) + found) if found else ""}
"""


if __name__ == "__main__":
    main()
