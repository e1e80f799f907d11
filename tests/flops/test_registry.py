"""The registry itself: importable without torch, and without the capture that prices calls."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_flops_package_imports_without_torch_or_capture() -> None:
    """Rules are evaluated on plain shapes; only `capture.costing` (torch) prices a dispatched
    call, so the flops package must not reach into the capture, not even lazily."""
    code = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        import memflops.flops
        from memflops.flops import registry
        assert not hasattr(registry, "cost_of")
        print(sorted(m for m in sys.modules if m.startswith("memflops.capture")))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["[]"]


def test_no_flops_module_imports_the_capture() -> None:
    """Not even inside a function (the lazy import the test above cannot see unless called)."""
    flops_dir = ROOT / "src" / "memflops" / "flops"
    importing = [
        f"{p.name}: {line.strip()}"
        for p in sorted(flops_dir.glob("*.py"))
        for line in p.read_text(encoding="utf-8").splitlines()
        if line.lstrip().startswith(("import memflops.capture", "from memflops.capture"))
    ]
    assert importing == []
