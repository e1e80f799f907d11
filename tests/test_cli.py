"""The command line, invoked in-process: exit codes, output and error messages.

`memflops.cli.main(argv)` returns the exit status. Output is captured at the
file-descriptor level (capfd), so a traceback printed by anything (a torch
logger included) would be seen.

The tiny model (tests/fixtures/tiny_model.py:tiny), input (2, 3, 4, 4):
  conv 3 -> 4, 3x3, padding 1, bias: params 4 * (3 * 3 * 3 + 1) = 112
      MACs  2 * 4 * 4 * 4 * (3 * 9)   = 3,456
      FLOPs 2 * 4 * 4 * 4 * (2 * 27)  = 6,912  (bias: no -1)
  linear 64 -> 10, bias: params 64 * 10 + 10 = 650
      MACs  2 * 64 * 10               = 1,280
      FLOPs 2 * (2 * 64) * 10         = 2,560  (bias: no -1)
  totals: params 112 + 650 = 762; MACs 4,736; FLOPs 6,912 + 2,560 = 9,472
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import memflops
import memflops.api
from memflops import cli

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_model.py"
ROOT = Path(__file__).resolve().parents[1]
TINY = f"{FIXTURE}:tiny"
TINY_INPUT = ["--input", "2x3x4x4"]
TINY_PARAMS = 762  # 112 + 650
TINY_MACS = 4_736  # 3,456 + 1,280
TINY_FLOPS = 9_472  # 6,912 + 2,560


def run(capfd: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capfd.readouterr()
    return code, out, err


def run_json(capfd: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = run(capfd, "analyze", *argv, "--format", "json")
    assert (code, err) == (0, "")
    doc: dict[str, Any] = json.loads(out)
    return doc


def test_version(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capfd, "--version")
    assert (code, out) == (0, f"memflops {memflops.__version__}\n")


def test_table_of_tiny_model(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "analyze", TINY, *TINY_INPUT)
    assert (code, err) == (0, "")
    assert "\x1b[" not in out  # not a terminal: no ANSI codes
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    # module, type, params, MACs fwd, FLOPs fwd (decimal prefixes), output shape
    assert rows["conv"] == ["conv", "Conv2d", "112", "3.46", "K", "6.91", "K", "2x4x4x4"]
    assert rows["fc"] == ["fc", "Linear", "650", "1.28", "K", "2.56", "K", "2x10"]
    assert "9,472 (9.47 K) FLOPs, 4,736 (4.74 K) MACs" in out
    assert "FLOPs bwd" not in out  # inference: no backward column
    assert memflops.Convention.EXACT.sentence.split(",")[0] in out


def test_table_of_resnet18_in_train_mode(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capfd, "analyze", "torchvision:resnet18", "--input", "2x3x32x32", "--mode", "train",
        "--depth", "1",
    )
    assert (code, err) == (0, "")
    assert "FLOPs bwd" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert "layer4" in rows and "layer4.0" not in rows  # depth 1
    # conv1: 7x7, 3 -> 64, stride 2, no bias: 64 * 3 * 49 = 9,408 params; 32x32 -> 16x16
    assert rows["conv1"][:4] == ["conv1", "Conv2d", "9.41", "K"]
    assert rows["conv1"][-1] == "2x64x16x16"
    assert "11,689,512 (11.69 M): 11,689,512 trainable, 0 frozen" in out
    assert "optimizer step" in out and "whole step" in out  # adam by default


def test_json_of_tiny_model(capfd: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capfd, TINY, *TINY_INPUT)
    assert doc["schema"] == "memflops.report/1"
    assert (doc["mode"], doc["convention"], doc["precision"]) == ("inference", "exact", "float32")
    assert doc["inputs"] == [{"name": "input[0]", "shape": [2, 3, 4, 4], "dtype": "float32",
                             "requires_grad": False, "lengths": None}]
    totals = doc["totals"]
    assert totals["params"] == TINY_PARAMS
    assert totals["flops"]["forward"] == TINY_FLOPS
    assert totals["macs"]["forward"] == TINY_MACS
    assert totals["memory"]["params"] == TINY_PARAMS * 4  # float32: 3,048 bytes
    rows = {m["path"]: m for m in doc["modules"]}
    assert rows["conv"]["flops"]["forward"] == 6_912  # 2 * 4*4*4 * (2 * 27)
    assert rows["fc"]["flops"]["forward"] == 2_560  # 2 * (2 * 64) * 10
    assert rows["conv"]["output_shape"] == [2, 4, 4, 4]
    assert doc["uncounted_ops"] == []


@pytest.mark.parametrize(("convention", "forward"), [("mac", TINY_MACS), ("2mac", 2 * TINY_MACS)])
def test_json_convention(capfd: pytest.CaptureFixture[str], convention: str, forward: int) -> None:
    doc = run_json(capfd, TINY, *TINY_INPUT, "--convention", convention)
    assert doc["convention"] == convention
    assert doc["totals"]["flops"]["forward"] == forward


def test_json_dtype(capfd: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capfd, TINY, *TINY_INPUT, "--dtype", "fp16")
    assert doc["precision"] == "float16"
    assert doc["totals"]["memory"]["params"] == TINY_PARAMS * 2  # 762 * 2 bytes = 1,524


def test_json_train_mode_has_backward(capfd: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capfd, TINY, *TINY_INPUT, "--mode", "train")
    assert doc["mode"] == "train"
    assert doc["totals"]["flops"]["forward"] == TINY_FLOPS
    # conv: weight grad only (the input needs no grad): 3,456 MACs;
    # fc: input grad 2x10 @ 10x64 and weight grad 10x2 @ 2x64: 1,280 + 1,280 MACs
    assert doc["totals"]["macs"]["backward"] == 3_456 + 1_280 + 1_280  # 6,016


def test_json_grad_accumulation(capfd: pytest.CaptureFixture[str]) -> None:
    """Three micro-batches of 2: forward MACs 3 x 4,736, backward MACs 3 x 6,016; the
    adds into .grad are no MACs (762 FLOPs each in micro-batches 2 and 3)."""
    doc = run_json(capfd, TINY, *TINY_INPUT, "--mode", "train", "--grad-accumulation", "3")
    assert doc["totals"]["macs"]["forward"] == 3 * TINY_MACS
    assert doc["totals"]["macs"]["backward"] == 3 * 6_016
    acc = doc["grad_accumulation"]
    assert (acc["micro_batches"], acc["micro_batch"], acc["effective_batch"]) == (3, 2, 6)
    assert acc["flops"]["first"]["forward"] == acc["flops"]["later"]["forward"] == TINY_FLOPS
    first, later = acc["flops"]["first"]["backward"], acc["flops"]["later"]["backward"]
    assert later - first == TINY_PARAMS
    assert doc["totals"]["flops"]["backward"] == first + 2 * later
    code, out, _ = run(capfd, "analyze", TINY, *TINY_INPUT, "--mode", "train",
                       "--grad-accumulation", "3", "--format", "markdown")
    assert code == 0
    assert "accumulation **3 micro-batches of 2, effective batch 6 (the inputs are one " \
        "micro-batch; FLOPs, calls and time per optimizer step)**" in out
    # per op: each captured call once, with how often it runs per step
    code, out, _ = run(capfd, "analyze", TINY, *TINY_INPUT, "--mode", "train",
                       "--grad-accumulation", "3", "--format", "csv", "--per-op")
    rows = [line.split(",") for line in out.splitlines()]
    assert rows[0][-1] == "repeat"
    flops = sum(int(r[4]) * int(r[-1]) for r in rows[1:] if r[4])
    assert flops == doc["totals"]["flops"]["step"]


@pytest.mark.parametrize(("optimizer", "state"), [("sgd", 0), ("adam", 2 * TINY_PARAMS * 4)])
def test_train_memory_by_optimizer(
    capfd: pytest.CaptureFixture[str], optimizer: str, state: int
) -> None:
    doc = run_json(capfd, TINY, *TINY_INPUT, "--mode", "train", "--optimizer", optimizer)
    memory = doc["totals"]["memory"]
    assert doc["optimizer"] == optimizer
    assert memory["grads"] == TINY_PARAMS * 4  # one fp32 gradient per parameter: 3,048 B
    assert memory["optimizer"] == state  # sgd: none; adam: exp_avg + exp_avg_sq = 6,096 B
    assert memory["peak"] >= memory["params"] + memory["grads"] + memory["optimizer"]


def test_batch_sweep_table(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capfd, "analyze", TINY, *TINY_INPUT, "--mode", "train", "--batch-sweep", "1,2",
    )
    assert (code, err) == (0, "")
    assert "Peak memory by batch size" in out and "fitted: peak = " in out


def test_jagged_input(capfd: pytest.CaptureFixture[str]) -> None:
    # examples/jagged_transformer.py: sequences of 128, 512, 300 and 80 tokens of width 512,
    # 8 heads of 64. Linear layers per position: 512*1,536 + 512*512 + 2 * 512*2,048
    # = 3,145,728 MACs. Attention: 8 * (128^2 + 512^2 + 300^2 + 80^2) * (64 + 64)
    # = 8 * 374,928 * 128 = 383,926,272 MACs; padded to 512: 4 * 8 * 512^2 * 128
    # = 1,073,741,824
    example = f"{ROOT / 'examples' / 'jagged_transformer.py'}:model"
    jagged = run_json(capfd, example, "--input", "[128,512,300,80]x512")
    assert jagged["inputs"] == [{"name": "input[0]", "shape": [1020, 512], "dtype": "float32",
                                 "requires_grad": False, "lengths": [128, 512, 300, 80]}]
    assert jagged["totals"]["macs"]["forward"] == 1_020 * 3_145_728 + 383_926_272
    padded = run_json(capfd, example, "--input", "4x512x512")
    assert padded["totals"]["macs"]["forward"] == 2_048 * 3_145_728 + 1_073_741_824


def test_keyword_input_with_dtype(capfd: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capfd, f"{FIXTURE}:embed", "--input", "ids=2x5:int64")
    assert doc["inputs"] == [{"name": "ids", "shape": [2, 5], "dtype": "int64",
                              "requires_grad": False, "lengths": None}]
    # embedding (2, 5) -> (2, 5, 8); linear 8 -> 2 with bias on 10 rows: 2 * 10 * 8 * 2 = 320
    rows = {m["path"]: m for m in doc["modules"]}
    assert rows["fc"]["flops"]["forward"] == 320
    assert doc["totals"]["params"] == 100 * 8 + 8 * 2 + 2  # 818


def test_output_file(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    code, out, err = run(capfd, "analyze", TINY, *TINY_INPUT, "--format", "json", "-o", str(target))
    assert (code, out, err) == (0, "", "")
    assert json.loads(target.read_text())["totals"]["params"] == TINY_PARAMS


def test_zoo_target_defaults_its_input(capfd: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capfd, "torchvision:squeezenet1_1")
    assert doc["inputs"][0]["shape"] == [1, 3, 224, 224]


def test_layer_list_spec(capfd: pytest.CaptureFixture[str]) -> None:
    """A YAML layer list goes to the spec frontend: the article's VGG-16."""
    spec = Path(__file__).parent.parent / "examples" / "vgg16.yaml"
    if not spec.exists():
        pytest.skip("examples/vgg16.yaml is not in this checkout")
    doc = run_json(capfd, str(spec))
    # convs 14,714,688 + FCs 123,642,856 (the article's VGG-16 total)
    assert doc["totals"]["params"] == 138_357_544
    assert doc["totals"]["macs"]["forward"] == 15_470_264_320


ERRORS = [
    # (argv after "analyze", exit code, fragments of the one-line message)
    ((TINY, "--input", "8x3xfoo"), 2, ["bad shape '8x3xfoo'", "e.g. 8x3x224x224"]),
    (("torchvision:resnet5",), 2, ["no model 'resnet5'", "did you mean resnet50"]),
    (("nosuchzoo:resnet50",), 2, ["cannot import module 'nosuchzoo'", "torchvision:NAME"]),
    (("resnet50",), 2, ["bad target 'resnet50'", "path/to/file.py:factory"]),
    (("missing_model.py:build", "--input", "2x3"), 2, ["no such file: missing_model.py"]),
    ((f"{FIXTURE}:nothere", "--input", "2x3"), 2, ["has no attribute 'nothere'"]),
    ((TINY,), 2, ["no inputs given"]),
    ((TINY, *TINY_INPUT, "--dtype", "fp7"), 2, ["unknown dtype 'fp7'", "fp16"]),
    ((TINY, *TINY_INPUT, "--input", "x=2x3"), 2, ["not both"]),
    ((TINY, "--input", "2x=3"), 2, ["expected NAME=SHAPE"]),
    ((TINY, *TINY_INPUT, "--mode", "train", "--optimizer", "adan"), 2, ["did you mean adam"]),
    (("examples/vgg16.yaml", "--input", "2x3x8x8"), 2, ["--input: not available for a layer"]),
    ((f"{FIXTURE}:broken", "--input", "2x3"), 1, ["broken raised RuntimeError: weights missing"]),
    (
        (f"{FIXTURE}:mismatched", "--input", "2x7"),
        1,
        ["forward failed in module `1` (Linear)", "shapes [2x7]"],
    ),
    (
        (f"{FIXTURE}:gated", "--input", "2x4"),
        1,
        ["op aten.nonzero in module `1`", "needs real tensor values", "shape-only"],
    ),
    (
        (f"{FIXTURE}:scaled", "--input", "2x4"),
        1,
        ["op aten._local_scalar_dense in module `1`", "needs real tensor values"],
    ),
]


@pytest.mark.parametrize(("argv", "code", "fragments"), ERRORS, ids=[" ".join(e[0])[-40:]
                                                                     for e in ERRORS])
def test_errors_are_one_line(
    capfd: pytest.CaptureFixture[str], argv: tuple[str, ...], code: int, fragments: list[str]
) -> None:
    got, out, err = run(capfd, "analyze", *argv)
    assert (got, out) == (code, "")
    assert err.startswith("memflops: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


def test_debug_reraises(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(memflops.errors.FactoryError, match="weights missing"):
        cli.main(["analyze", f"{FIXTURE}:broken", "--input", "2x3", "--debug"])


def test_unexpected_exception(capfd: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("boom\nsecond line")

    monkeypatch.setattr(memflops.api, "analyze", explode)
    code, out, err = run(capfd, "analyze", TINY, *TINY_INPUT)
    assert (code, out) == (1, "")
    assert err == (
        "memflops: error: unexpected ZeroDivisionError: boom second line "
        "(rerun with --debug for the traceback)\n"
    )


@pytest.mark.parametrize(
    ("name", "starts"),
    [
        ("r.json", '{\n  "schema": "memflops.report/1"'),
        ("r.md", "# memflops report: `"),
        ("r.markdown", "# memflops report: `"),
        ("r.csv", "path,type,depth,params,flops_forward"),
        ("r.HTML", "<!DOCTYPE html>"),
        ("r.htm", "<!DOCTYPE html>"),
        ("r.txt", "memflops report: "),
        ("r.out", "memflops report: "),  # an extension of no format: the table
    ],
)
def test_output_format_from_the_extension(
    capfd: pytest.CaptureFixture[str], tmp_path: Path, name: str, starts: str
) -> None:
    target = tmp_path / name
    code, out, err = run(capfd, "analyze", TINY, *TINY_INPUT, "-o", str(target))
    assert (code, out, err) == (0, "", "")
    assert target.read_text(encoding="utf-8").startswith(starts)


def test_format_wins_over_the_extension(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    code, _, _ = run(capfd, "analyze", TINY, *TINY_INPUT, "--format", "markdown", "-o", str(target))
    assert code == 0 and target.read_text(encoding="utf-8").startswith("# memflops report")


def test_csv_per_op(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "analyze", TINY, *TINY_INPUT, "--format", "csv", "--per-op")
    assert (code, err) == (0, "")
    # conv then linear: FLOPs 6,912 and 2,560, MACs 3,456 and 1,280 (module docstring);
    # bytes in fp32: conv reads 2x3x4x4 input (384), 4x3x3x3 weight (432), bias (16), writes
    # 2x4x4x4 (512) = 1,344; fc reads 2x64 (512), 10x64 weight (2,560), bias (40), writes
    # 2x10 (80) = 3,192
    assert out.splitlines() == [
        "index,phase,module,op,flops,macs,bytes",
        "0,forward,conv,aten.convolution,6912,3456,1344",
        "1,forward,fc,aten.addmm,2560,1280,3192",
    ]


def test_per_op_needs_csv(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "analyze", TINY, *TINY_INPUT, "--per-op")
    assert (code, out) == (2, "")
    assert err == "memflops: error: --per-op: only for csv output, not table\n"


def test_unwritable_output(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capfd, "analyze", TINY, *TINY_INPUT, "-o", str(tmp_path / "no" / "x.txt"))
    assert code == 1
    assert err.startswith("memflops: error: cannot write ") and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ("analyze", TINY, "--mode", "eval"),
        ("analyze", TINY, "--convention", "flops"),
        ("analyze", TINY, "--depth", "-1"),
        ("analyze", TINY, "--batch-sweep", "1,x"),
        ("analyze",),
        ("frobnicate",),
        (),
    ],
)
def test_usage_errors_exit_2(capfd: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    code, out, err = run(capfd, *argv)
    assert (code, out) == (2, "")
    assert "error:" in err and "Traceback" not in err


def test_gpu_adds_time_columns_and_a_time_section(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "analyze", TINY, *TINY_INPUT, "--mode", "train",
                         "--gpu", "H100 SXM", "--time-constants", "overhead=2us")
    assert (code, err) == (0, "")
    header = next(line for line in out.splitlines() if line.startswith("module"))
    assert "time fwd" in header and "time bwd" in header and "bytes fwd" in header
    assert "Time on NVIDIA H100 SXM" in out and "samples/s" in out and "MFU" in out
    assert "2 us per kernel" in out
    plain = run(capfd, "analyze", TINY, *TINY_INPUT)[1]
    assert "time fwd" not in plain and "Time on" not in plain


@pytest.mark.parametrize(
    ("gpu", "message"),
    [("A100 80GB SXN", "did you mean NVIDIA A100 80GB SXM"),
     ("custom:fp16=300T", "needs bw="),
     ("T4", "NVIDIA T4 has no bf16 peak")],
)
def test_gpu_errors_exit_2(capfd: pytest.CaptureFixture[str], gpu: str, message: str) -> None:
    code, out, err = run(capfd, "analyze", TINY, *TINY_INPUT, "--dtype", "bf16", "--gpu", gpu)
    assert (code, out) == (2, "")
    assert err.startswith("memflops: error: ") and message in err and "Traceback" not in err


def test_gpus_lists_the_catalog(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "gpus")
    assert (code, err) == (0, "")
    assert len(out.splitlines()) >= 25
    assert "NVIDIA A100 80GB SXM: 80.00 GiB, 2039 GB/s; fp32 19.5T, tf32 156T" in out


def test_parser_names_match_analyze() -> None:
    """Every analyze option is an argument of `memflops.analyze` or of a renderer."""
    import inspect

    from memflops.progress import progress_display
    from memflops.report import csv, html, markdown, plot, table

    args = cli.build_parser().parse_args(["analyze", TINY])
    analyze_params = set(inspect.signature(memflops.analyze).parameters)
    renderers = (table.render_table, markdown.render_markdown, csv.render_csv, html.render_html,
                 plot.figure, progress_display)
    render_params = {p for r in renderers for p in inspect.signature(r).parameters}
    cli_only = {"command", "target", "format", "output", "debug"}
    assert set(vars(args)) - cli_only <= analyze_params | render_params
    assert set(cli.ANALYZE_OPTIONS) <= analyze_params


def test_list_hf_with_filter(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "list", "hf", "--filter", "llama-2")
    assert (code, err) == (0, "")
    assert out.splitlines() == ["llama-2-13b", "llama-2-70b", "llama-2-7b"]


def test_list_unknown_zoo_is_a_usage_error(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "list", "torchvison")
    assert code == 2 and out == ""
    assert err.startswith("memflops: error: unknown zoo 'torchvison'") and "torchvision" in err


def test_generate_mode_reports_kv_cache(capfd: pytest.CaptureFixture[str]) -> None:
    doc = run_json(
        capfd, "hf:llama-2-7b", "--mode", "generate", "--prompt-len", "100",
        "--new-tokens", "28", "--batch", "2",
    )
    # K and V: 2 x 32 layers x 32 heads x 128 dims x 128 tokens x 2 sequences x 2 bytes
    assert doc["totals"]["memory"]["kv_cache"] == 2 * 32 * 32 * 128 * 128 * 2 * 2
    assert doc["generation"]["new_tokens"] == 28


def test_console_command_analyses_a_layer_list_when_torch_cannot_be_imported(
    tmp_path: Path,
) -> None:
    """`python -m memflops analyze spec.yaml`, the console entry point (`cli.run`), with a
    `torch` on the path whose import fails: the layer-list pipeline never imports torch."""
    (tmp_path / "torch.py").write_text('raise ImportError("torch is blocked in this test")\n')
    paths = [str(tmp_path), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    done = subprocess.run(
        [sys.executable, "-m", "memflops", "analyze", "examples/vgg16.yaml", "--mode", "train",
         "--format", "json"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p)),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # VGG-16 without its final pooling: 138,357,544 parameters (the article's count)
    assert json.loads(done.stdout)["totals"]["params"] == 138_357_544


def test_parallel_shows_rank_zero_and_its_collectives(capfd: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capfd, TINY, *TINY_INPUT, "--mode", "train", "--parallel", "fsdp=2")
    par = doc["parallel"]
    assert (par["strategy"], par["world_size"], par["rank"], par["engine"]) == (
        "fsdp=2", 2, 0, "captured")
    assert par["communication_bytes"] == sum(c["sent_bytes"] for c in par["collectives"]) > 0
    assert sum(par["by_kind"].values()) == doc["totals"]["memory"]["peak"]
    code, out, err = run(capfd, "analyze", TINY, *TINY_INPUT, "--mode", "train",
                         "--parallel", "fsdp=2")
    assert (code, err) == (0, "")
    assert "Parallel" in out and "rank 0's of 2" in out and "sent per step" in out


def test_bad_parallel_exits_2(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "analyze", TINY, *TINY_INPUT, "--parallel", "fsdp=0")
    assert (code, out) == (2, "")
    assert "fsdp=0: the number of ranks must be at least 1" in err and "Traceback" not in err
    code, out, err = run(capfd, "analyze", TINY, *TINY_INPUT, "--parallel", "ddp=2,tp=2")
    assert (code, out) == (2, "") and len(err.strip().splitlines()) == 1
    assert "ddp combines with pp only" in err


def test_modelled_ddp_says_so(capfd: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capfd, TINY, *TINY_INPUT, "--mode", "train", "--parallel", "ddp=2")
    par = doc["parallel"]
    assert (par["strategy"], par["engine"]) == ("ddp=2", "modelled") and par["notes"]
    code, out, _ = run(capfd, "analyze", TINY, *TINY_INPUT, "--mode", "train",
                         "--parallel", "ddp=2,zero=1")
    assert code == 0 and "(modelled)" in out and "ZeRO-1" in out


def test_input_that_needs_its_gradient(capfd: pytest.CaptureFixture[str]) -> None:
    # conv 3 -> 4, 3x3, padding 1 on 2x3x4x4: its input gradient is as many MACs as its
    # forward, 3,456 (module docstring), so 2 * 3,456 = 6,912 more backward FLOPs (2mac);
    # the gradient itself is 2 * 3 * 4 * 4 float32 = 384 bytes of grads
    args = ["--mode", "train", "--optimizer", "none", "--convention", "2mac"]
    plain = run_json(capfd, TINY, *TINY_INPUT, *args)
    grad = run_json(capfd, TINY, "--input", "2x3x4x4:grad", *args)
    assert [i["requires_grad"] for i in (plain["inputs"][0], grad["inputs"][0])] == [False, True]
    assert grad["totals"]["flops"]["backward"] - plain["totals"]["flops"]["backward"] == 6_912
    assert grad["totals"]["memory"]["grads"] - plain["totals"]["memory"]["grads"] == 384
