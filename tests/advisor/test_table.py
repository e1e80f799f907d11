"""The advice's table and `memflops advise` on the command line, in-process."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest

import memflops
from memflops import cli
from memflops.advisor.table import render_advice
from memflops.units import format_bytes

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_model.py"
TINY = f"{FIXTURE}:tiny"


def run(capfd: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capfd.readouterr()
    return code, out, err


def test_the_table_states_what_the_advice_holds() -> None:
    from advisor.nets import small_net

    advice = memflops.advise(small_net(), (4, 3, 16, 16), mode="train", budget="1MiB",
                             only=["bn-removed", "bf16", "bn-folded", "batch-halved"])
    text = render_advice(advice)
    bn = advice.change("bn-removed")
    assert bn.measured is not None and bn.delta is not None
    assert f"peak {format_bytes(advice.baseline.peak)}" in text
    assert format_bytes(bn.measured.peak) in text
    assert f"({-bn.delta.peak_saved:+.1%})" in text
    assert "removing BN usually saves about 40% of GPU memory\" (40%)" in text
    assert f"measured: saves {bn.delta.peak_saved:.1%} of the peak" in text
    assert "bn-folded: training: BN normalises with batch statistics" in text
    assert "Make it fit in 1MiB (1.00 MiB)" in text
    assert "largest batch fitting 1.00 MiB" in text


def test_advise_json(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "advise", TINY, "--input", "2x3x4x4", "--mode", "train",
                         "--only", "sgd-momentum,bf16", "--budget", "10KiB", "--format", "json")
    assert (code, err) == (0, "")
    doc: dict[str, Any] = json.loads(out)
    assert doc["schema"] == "memflops.advice/1" and doc["budget"] == 10 * 1024
    assert doc["baseline"]["params"] == 762  # conv 3*9*4 + 4 = 112, linear 64*10 + 10 = 650
    assert {c["name"] for c in doc["changes"]} == {"sgd-momentum", "bf16"}


def test_advise_table(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "advise", TINY, "--input", "2x3x4x4", "--mode", "train",
                         "--skip", "amp-fp16")
    assert (code, err) == (0, "")
    assert out.startswith("memflops advice: ")
    assert "Not applicable" in out and "amp-fp16" not in out


@pytest.mark.parametrize(("argv", "message"), [
    (("--only", "bn-remove"), "did you mean bn-removed"),
    (("--skip", "sgd"), "unknown change 'sgd'"),
    (("--budget", "3 apples"), "bad memory unit"),
    (("--mode", "generate"), "mode generate is not advised"),
])
def test_usage_errors_exit_2(capfd: pytest.CaptureFixture[str], argv: tuple[str, ...],
                             message: str) -> None:
    code, out, err = run(capfd, "advise", TINY, "--input", "2x3x4x4", *argv)
    assert (code, out) == (2, "")
    assert err.startswith("memflops: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_a_layer_list_is_refused(capfd: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capfd, "advise", "examples/vgg16.yaml")
    assert code == 2 and "advise needs a model to change" in err


def test_parser_names_match_advise() -> None:
    """Every advise option is an argument of `memflops.advise` (or the output's)."""
    args = cli.build_parser().parse_args(["advise", TINY])
    params = set(inspect.signature(memflops.advise).parameters)
    # --plot names a renderer (Advice.plot_savings), as analyze's --plot does
    output = {"command", "target", "format", "output", "plot", "quiet", "debug"}
    assert set(vars(args)) - output <= params
    assert set(inspect.signature(memflops.analyze).parameters) <= params


def test_a_narrow_terminal_goes_without_columns_rather_than_cutting_them() -> None:
    from advisor.nets import small_net

    advice = memflops.advise(small_net(), (4, 3, 16, 16), mode="train",
                             only=["checkpoint-blocks", "first-downsample-doubled",
                                   "input-resolution-halved", "bn-removed"])
    wide = render_advice(advice)
    header = next(line for line in wide.splitlines() if "Δ peak" in line)
    assert "time/step" in header and "recompute" in header  # as wide as needed: every column
    narrow = render_advice(advice, width=80)
    table = narrow.split("\n\n")[1]
    assert max(len(line) for line in table.splitlines()) <= 80
    assert "…" not in table  # no value cut short
    header = table.splitlines()[0]
    # recompute has a value (checkpoint-blocks), time/step none: the empty one goes first
    assert "time/step" not in header and "peak" in header and "change" in header
    assert "input-resolution-halved" in table and "checkpoint-blocks" in table
    for line in narrow.splitlines():
        assert len(line) <= 80, line
    # and it says what it left out, in _optional_columns' order: the empty time/step first
    said = " ".join(narrow.split("columns left out to fit 80 characters: ")[1].split())
    assert said.startswith("time/step, ")
    assert "columns left out" not in wide
