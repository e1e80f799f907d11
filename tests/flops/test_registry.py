"""The registry itself: importable without torch, and without the capture that prices calls."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import memflops
from memflops.flops import rules

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


@pytest.mark.parametrize(
    ("target", "shape"),
    [
        ("torchvision:resnet18", (2, 3, 32, 32)),
        ("torchvision:mobilenet_v3_small", (2, 3, 32, 32)),
        ("torchvision:swin_t", (1, 3, 64, 64)),
    ],
)
def test_no_uncounted_ops(target: str, shape: tuple[int, ...]) -> None:
    pytest.importorskip("torchvision")
    report = memflops.analyze(target, shape, mode="train")
    assert [(u.op, u.reason) for u in report.uncounted_ops] == []


def _exists(op: str) -> bool:
    """`aten.NAME` in torch; `torchvision.NAME` in torchvision, when it is installed;
    `higher_order.NAME`, a higher-order op, and `torch_attn.NAME`, the varlen attention
    ops (the modules of torch.nn.attention define them); the collectives (`c10d`,
    `_c10d_functional`) and FSDP2's copies (`fsdp`) in torch.distributed."""
    namespace, _, name = op.partition(".")
    defined_by = {"higher_order": "torch.nn.attention.flex_attention",
                  "torch_attn": "torch.nn.attention.varlen"}
    if namespace in defined_by:
        importlib.import_module(defined_by[namespace])
        return hasattr(getattr(torch.ops, namespace), name)
    if namespace == "torchvision":
        try:
            import torchvision  # noqa: F401  (registers torch.ops.torchvision)
        except ImportError:
            return True
    elif namespace in ("c10d", "_c10d_functional", "fsdp"):
        importlib.import_module("torch.distributed.fsdp")  # registers torch.ops.fsdp
    elif namespace != "aten":
        return False
    return hasattr(getattr(torch.ops, namespace), name)


def test_every_registered_op_exists_in_torch() -> None:
    missing = [op for rule in rules() for op in rule.ops if not _exists(op)]
    assert missing == [], f"not ATen ops in torch {torch.__version__}: {missing}"


def test_every_rule_states_its_formula() -> None:
    for rule in rules():
        assert rule.formula.strip(), rule.ops
