"""The command's one error boundary, through the console script in a subprocess (so
torch's logging and the import order are the real ones): each bad input ends with exactly
one line on stderr and exit 1 (the model) or 2 (usage), never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ROOT / "tests" / "fixtures" / "hostile_model.py"


def console_script() -> list[str]:
    """The installed `memflops` script beside this interpreter, else its entry point."""
    script = Path(sys.executable).parent / "memflops"
    if script.exists() or shutil.which("memflops"):
        return [str(script) if script.exists() else str(shutil.which("memflops"))]
    return [sys.executable, "-c", "from memflops.cli import run; run()"]


def memflops(*argv: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
             timeout: float = 120) -> tuple[int, str, str]:
    environ = dict(os.environ, MEMFLOPS_SRC=str(ROOT / "src"), **(env or {}))
    done = subprocess.run([*console_script(), *argv], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=environ)
    return done.returncode, done.stdout, done.stderr


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err[-3000:]
    assert lines[0].startswith("memflops: error: "), lines[0]
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        # docs/cli.md's example: a meta kernel fails; torch logs 17 lines unless silenced
        ([f"{HOSTILE}:mismatched", "--input", "2x7"], 1,
         "forward failed in module `0` (Linear) given inputs of shapes [2x7]"),
        ([f"{HOSTILE}:base_exception", "--input", "2x10"], 1,
         "base_exception raised Boom: custom base exception"),
        ([f"{HOSTILE}:exits", "--input", "2x10"], 1, "exits called sys.exit(0) instead of"),
        ([f"{HOSTILE}:out_of_memory", "--input", "2x10"], 1, "raised MemoryError"),
        ([f"{HOSTILE}:interrupted", "--input", "2x10"], 130, "interrupted"),
        ([f"{HOSTILE}:linear", "--input", "99999999999999999999x10"], 2,
         "more than PyTorch's int64 byte counts hold"),
        ([f"{HOSTILE}:linear", "--input", "0x10"], 2, "size 0 is 0; sizes must be >= 1"),
        ([f"{HOSTILE}:linear", "--bogus-option"], 2, "unrecognized arguments: --bogus-option"),
        # options that would be dropped are refused, naming the option and where it applies
        ([f"{HOSTILE}:linear", "--input", "2x10", "--format", "json", "--depth", "3"], 2,
         "--depth: only for table and markdown output, not json"),
        ([f"{HOSTILE}:linear", "--input", "2x10", "--mode", "train", "--targets", "2:int64"],
         2, "targets: the loss 'sum' takes none"),
        ([f"{HOSTILE}:linear", "--input", "2x10", "--mode", "train", "--grad-accumulation",
          "0"], 2, "argument --grad-accumulation: expected a positive integer, got 0"),
        ([f"{HOSTILE}:linear", "--input", "2x10", "--mode", "train", "--grad-accumulation",
          "1.5"], 2, "argument --grad-accumulation: expected a positive integer, got '1.5'"),
        ([f"{HOSTILE}:linear", "--input", "2x10", "--grad-accumulation", "2"], 2,
         "grad_accumulation does not apply to mode 'inference' (only to 'train')"),
    ],
)
def test_one_line_and_exit_status(argv: list[str], code: int, words: str) -> None:
    status, out, err = memflops("analyze", *argv)
    assert status == code, err
    assert words in one_line(err)
    assert out == ""


def test_argparse_error_is_one_line() -> None:
    status, _, err = memflops("analyze", "--mode", "sideways", "torchvision:resnet18")
    assert status == 2
    assert "invalid choice: 'sideways'" in one_line(err)


def test_non_utf8_terminal_escapes_what_it_cannot_encode() -> None:
    status, out, err = memflops("analyze", f"{HOSTILE}:linear", "--input", "2x10",
                                env={"PYTHONIOENCODING": "ascii"})
    assert (status, err) == (0, "")
    assert "Linear" in out


def test_factories_import_beside_them_from_the_console_script(tmp_path: Path) -> None:
    """`pkg.models:build` from the package's parent directory, and a file that imports a
    module beside it, work from the console script as with `python -m memflops`."""
    (tmp_path / "my_pkg").mkdir()
    (tmp_path / "my_pkg" / "__init__.py").write_text("")
    (tmp_path / "my_pkg" / "models.py").write_text(
        "from torch import nn\n\ndef build():\n    return nn.Linear(3, 3)\n")
    (tmp_path / "side").mkdir()
    (tmp_path / "side" / "helper.py").write_text(
        "from torch import nn\n\ndef make():\n    return nn.Linear(3, 3)\n")
    (tmp_path / "side" / "model.py").write_text(
        "from helper import make\n\ndef build():\n    return make()\n")
    for target in ("my_pkg.models:build", "side/model.py:build"):
        status, out, err = memflops("analyze", target, "--input", "2x3", "--format", "json",
                                    cwd=tmp_path)
        assert (status, err) == (0, ""), target
        assert '"params": 12' in out  # 3 * 3 + 3
