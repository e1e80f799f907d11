"""The README stays true.

- Its first fenced bash block installs memflops and runs one `memflops
  analyze` command: that command line must parse with the CLI's parser.
- Its second bash block is the test command, which .ci/run runs verbatim.
- Its `console` block is a real run of the CLI: the command after `$ ` is
  run in-process and must print exactly the lines below it.
- In its Python API example, each line `expression  # NUMBER ...` must
  evaluate to NUMBER.

After an intended change of the output, rewrite the README's example output
and numbers explicitly and review the diff:

    MEMFLOPS_REGEN_GOLDEN=1 pytest tests/test_readme.py
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from memflops import cli

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
REGEN = os.environ.get("MEMFLOPS_REGEN_GOLDEN") == "1"
FENCED = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
CHECKED_LINE = re.compile(r"^(?P<expr>\S.*?)\s+# (?P<value>\d+)\b")


def blocks(language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return [body for lang, body in FENCED.findall(text) if lang == language]


def replace_block(old: str, new: str) -> None:
    text = README.read_text(encoding="utf-8")
    assert text.count(old) == 1
    README.write_text(text.replace(old, new), encoding="utf-8")


def test_test_command_is_what_ci_runs() -> None:
    command = blocks("bash")[1].strip()
    assert "\n" not in command and "pytest" in command
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command in ci_lines


def test_first_command_parses() -> None:
    steps = [step.strip() for step in blocks("bash")[0].strip().split("&&")]
    analyze = [shlex.split(step) for step in steps if step.startswith("memflops ")]
    assert len(analyze) == 1
    args = cli.build_parser().parse_args(analyze[0][1:])
    assert args.command == "analyze"
    assert args.target == "torchvision:resnet50"
    assert (args.inputs, args.mode) == (["8x3x224x224"], "train")


def test_cli_example_output(capsys: pytest.CaptureFixture[str]) -> None:
    (block,) = blocks("console")
    command, _, shown = block.partition("\n")
    assert command.startswith("$ memflops ")
    code = cli.main(shlex.split(command.removeprefix("$ "))[1:])
    printed, err = capsys.readouterr()
    assert (code, err) == (0, "")
    if REGEN:
        replace_block(block, f"{command}\n{printed}")
    else:
        assert printed == shown, (
            "README's CLI example is stale: regenerate with "
            "MEMFLOPS_REGEN_GOLDEN=1 pytest tests/test_readme.py"
        )


def test_python_example_numbers() -> None:
    """Lines without a number are run first (imports, the analysis); then each checked line."""
    (block,) = [b for b in blocks("python") if "memflops.analyze(" in b]
    lines = block.splitlines()
    namespace: dict[str, Any] = {}
    exec("\n".join(line for line in lines if not CHECKED_LINE.match(line)), namespace)
    checked = 0
    for i, line in enumerate(lines):
        match = CHECKED_LINE.match(line)
        if match is None:
            continue
        value = eval(match["expr"], namespace)
        checked += 1
        if REGEN:
            lines[i] = line[: match.start("value")] + str(value) + line[match.end("value") :]
        else:
            assert value == int(match["value"]), f"README: {match['expr']} is now {value}"
    assert checked >= 5
    if REGEN:
        replace_block(block, "\n".join(lines) + "\n")
