"""The `memflops` command line: thin commands over `memflops.analyze`.

Every option is an argument of `memflops.analyze` (`--input` -> inputs,
`--mode`, `--convention`, `--dtype`, `--optimizer`, `--batch-sweep` ->
batch_sweep, ...), of `memflops.advise` (`--budget`, `--only`, `--skip`) or
of a renderer (`--depth`, `--format`, `--output`), under the same name; an
option left out takes analyze's default.

Errors: a `MemflopsError` prints one line `memflops: error: <message>` on
stderr and exits with its `exit_code` (2 for usage errors, 1 otherwise);
argparse's usage errors exit 2; any other exception prints one line naming
its type and exits 1. No traceback is shown unless `--debug` is given.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NoReturn

from memflops import __version__
from memflops import analyze_options as defaults
from memflops.analyze_options import ATTENTIONS, MODES, TARGET_FORMS
from memflops.conventions import Convention
from memflops.errors import MemflopsError, SpecError, UsageError
from memflops.parallel_options import STRATEGIES, TP_STYLES
from memflops.progress import progress_display
from memflops.report.csv import render_csv
from memflops.report.html import render_html
from memflops.report.json import render_json
from memflops.report.markdown import render_markdown
from memflops.report.model import Report
from memflops.report.table import DEFAULT_DEPTH, render_table

PLOTS = ("timeline", "modules", "sweep", "roofline")
"""The charts `--plot` writes (`report/charts.py`, `report/plot.py`)."""

PROG = "memflops"
ANALYZE_OPTIONS = (
    "mode", "convention", "dtype", "autocast", "optimizer", "loss", "targets",
    "batch_sweep", "fit", "fit_dimension", "fit_against", "allocator_conf", "allocator_overhead",
    "batch", "seq", "prompt_len", "new_tokens", "cache_dtype", "gpu", "time_constants",
    "parallel", "tp_plan", "grad_accumulation", "attention",
)
"""Options passed to `memflops.analyze` under their own name when given."""
SPEC_SUFFIXES = (".yaml", ".yml", ".json")
SPEC_OPTIONS = ("mode", "convention", "dtype", "optimizer")
"""The options a layer-list spec takes (`memflops.layerspec.analyze.analyze_spec`)."""
FORMATS = ("table", "json", "markdown", "csv", "html")
EXTENSIONS = {
    ".txt": "table", ".json": "json", ".md": "markdown", ".markdown": "markdown",
    ".csv": "csv", ".html": "html", ".htm": "html",
}
"""The format `-o FILE` chooses by the file's extension when --format is not given."""
ADVICE_FORMATS = ("table", "json", "markdown", "html")
ADVICE_PLOTS = ("savings",)
ADVISE_OPTIONS = ("budget", "only", "skip")
"""Options passed to `memflops.advise` besides analyze's."""
DEBUG_HINT = "rerun with --debug for the traceback"

# Loggers that print a full traceback of an op failure that memflops reports
# itself, in one line, as a ForwardError.
_NOISY_LOGGERS = ("torch._subclasses.fake_tensor",)


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors in one line, like every other error of memflops."""

    def error(self, message: str) -> NoReturn:
        _error(f"{_one_line(message)} (see {self.prog} --help)")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The `memflops` argument parser (also used by tests to check documented commands)."""
    parser = _Parser(
        prog=PROG,
        description="Parameters, FLOPs, MACs and memory of a PyTorch model, exactly, "
        "on fake tensors.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_analyze(commands)
    _add_advise(commands)
    _add_list(commands)
    _add_gpus(commands)
    return parser


def _add_gpus(commands: Any) -> None:
    gpus = commands.add_parser(
        "gpus",
        help="list the accelerator catalog (names usable with --gpu and --fit)",
        description="List the accelerators of memflops' catalog with memory, bandwidth and "
        "dense peaks (sources: memflops/hardware/accelerators.csv).",
    )
    gpus.add_argument("--debug", action="store_true", help="show tracebacks of errors")


def _add_analyze(commands: Any) -> None:
    cmd = commands.add_parser(
        "analyze",
        help="count parameters, FLOPs, MACs and memory of one step of a model",
        description="Count parameters, FLOPs, MACs and memory of one step of a model,\n"
        "per module. Options left out take the defaults of memflops.analyze().",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_ANALYZE_EPILOG,
    )
    cmd.add_argument(
        "target", metavar="TARGET",
        help=f"the model: {TARGET_FORMS}, or a layer list path/to/spec.yaml (or .json)",
    )
    step = cmd.add_argument_group("the analysed step (arguments of memflops.analyze)")
    _add_input_options(step)
    _add_training_options(step)
    _add_memory_options(step)
    _add_time_options(step)
    _add_parallel_options(step)
    _add_output_options(cmd.add_argument_group("output"))


def _add_advise(commands: Any) -> None:
    cmd = commands.add_parser(
        "advise",
        help="every way to save memory or FLOPs, applied to a copy of the model, analysed again",
        description="Apply every change that saves memory or FLOPs (smaller batch, in-place\n"
        "activations, BN removed or folded, GAP head, checkpointing, precision, optimizers,\n"
        "factorised convolutions) to a copy of the model or to the step, analyse each again,\n"
        "and rank them; with --budget, the cheapest combination whose analysed peak fits.\n"
        "Options left out take the defaults of memflops.advise().",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_ADVISE_EPILOG,
    )
    cmd.add_argument("target", metavar="TARGET", help=f"the model: {TARGET_FORMS}")
    step = cmd.add_argument_group("the baseline step (arguments of memflops.analyze)")
    _add_input_options(step)
    _add_training_options(step)
    _add_memory_options(step)
    _add_time_options(step)
    _add_parallel_options(step)
    advice = cmd.add_argument_group("the advice (arguments of memflops.advise)")
    advice.add_argument(
        "--budget", metavar="MEMORY|GPU",
        help="find the cheapest set of changes whose peak fits, e.g. 3GiB, 80GB or "
        "\"A100 80GB SXM\"",
    )
    advice.add_argument(
        "--only", action="append", metavar="NAMES",
        help="try only these changes, e.g. bn-removed,checkpoint-blocks (comma-separated; "
        "repeatable; every name is in docs/advice.md, and an unknown one lists them)",
    )
    advice.add_argument(
        "--skip", action="append", metavar="NAMES",
        help="leave these changes out (comma-separated; repeatable)",
    )
    out = cmd.add_argument_group("output")
    out.add_argument("--format", choices=ADVICE_FORMATS,
                     help="default: the format of -o FILE's extension (.json, .md, .html), "
                     "else table")
    out.add_argument("-o", "--output", metavar="FILE", help="write the advice to FILE")
    out.add_argument(
        "--plot", choices=ADVICE_PLOTS,
        help="write the savings chart instead of the advice: -o savings.svg (drawn by "
        "memflops) or .png/.pdf (needs matplotlib: pip install 'memflops[plot]')",
    )
    out.add_argument(
        "--quiet", action="store_true",
        help="no progress display of the analyses (drawn only on a terminal)",
    )
    out.add_argument("--debug", action="store_true", help="show tracebacks of errors")


def _add_time_options(step: Any) -> None:
    """The accelerator the step is timed on, and the time model's constants."""
    step.add_argument(
        "--gpu", metavar="NAME",
        help="time the step on this accelerator: a catalog name (\"A100 80GB SXM\", \"H200\"; "
        "`memflops gpus` lists them), custom:fp16=300T,bw=1.5T,mem=40G, or a JSON file",
    )
    step.add_argument(
        "--time-constants", dest="time_constants", metavar="K=V,...",
        help="override the time model's constants, e.g. matmul=0.6,memory=0.8,overhead=5us,"
        "tf32_matmul=on (docs/time-model.md)",
    )


def _add_parallel_options(step: Any) -> None:
    """The step as one rank of a job over several GPUs."""
    step.add_argument(
        "--parallel", metavar="LAYOUT",
        help="analyse one rank of a step over several GPUs, run by PyTorch's own FSDP2 on "
        f"fake tensors ({', '.join(STRATEGIES)}): fsdp=8 or "
        "fsdp=8,reshard_after_forward=off; tp=N (tensor parallel: Hugging Face decoders bring "
        "their plan, other models take --tp-plan); fsdp=4,tp=2 (a 2-D mesh); hsdp=2x4 "
        "(replicate x shard); ddp=8 (modelled), ddp=8,zero=1|2|3 (1 modelled; 2, 3 by "
        "FSDP2); mp=bf16 (FSDP2 mixed precision); memory is then per GPU (rank 0)",
    )
    step.add_argument(
        "--tp-plan", dest="tp_plan", metavar="FILE.json",
        help="the tensor-parallel plan: a JSON object of module name patterns ('*' matches "
        f"one name) to styles: {', '.join(TP_STYLES)}",
    )


def _add_input_options(step: Any) -> None:
    """What the step runs on and how: inputs, mode, generation, convention, dtypes."""
    step.add_argument(
        "--input", dest="inputs", action="append", metavar="SHAPE",
        help="an input shape such as 8x3x224x224 or 2x128:int64; ':grad' (1x3x224x224:grad) "
        "makes the train step compute that input's gradient; repeat for several positional "
        "inputs; NAME=SHAPE gives a keyword input (zoo targets have a default)",
    )
    step.add_argument(
        "--batch", type=_positive, metavar="N",
        help="batch size, for targets that build their own inputs (hf: text models) and for "
        "--mode generate",
    )
    step.add_argument(
        "--seq", type=_positive, metavar="N",
        help="sequence length of token inputs (hf: text models)",
    )
    step.add_argument(
        "--mode", choices=MODES,
        help="inference: eval() forward under no_grad; train: forward, loss, backward and "
        "optimizer step; generate: prefill and KV-cached decode of a causal LM "
        f"(default: {defaults.MODE})",
    )
    step.add_argument(
        "--prompt-len", dest="prompt_len", type=_positive, metavar="N",
        help="generate: tokens in the prompt",
    )
    step.add_argument(
        "--new-tokens", dest="new_tokens", type=_positive, metavar="N",
        help="generate: tokens to generate",
    )
    step.add_argument(
        "--cache-dtype", dest="cache_dtype", metavar="DTYPE",
        help="generate: dtype of the KV cache, e.g. fp16 or fp8 (default: the model's)",
    )
    step.add_argument(
        "--convention", choices=[c.value for c in Convention],
        help="how a FLOP is counted: exact (the article), 2mac (as FlopCounterMode), "
        f"mac (as fvcore, thop) (default: {defaults.CONVENTION})",
    )
    step.add_argument("--dtype", help="cast floating parameters and inputs: fp32, fp16, bf16, ...")
    step.add_argument("--autocast", help="train under automatic mixed precision: fp16 or bf16")
    step.add_argument(
        "--attention", choices=ATTENTIONS,
        help="hf: targets: the attention implementation to build the model with "
        "(default: sdpa where the model supports it)",
    )


def _add_training_options(step: Any) -> None:
    """The optimizer and loss of a training step."""
    step.add_argument(
        "--optimizer", metavar="NAME",
        help="train: sgd, sgd-momentum, adam, adamw, adam8bit, ... or none "
        f"(default: {defaults.OPTIMIZER})",
    )
    step.add_argument(
        "--loss", metavar="NAME",
        help=f"train: sum or cross_entropy (default: {defaults.LOSS})",
    )
    step.add_argument("--targets", metavar="SHAPE", help="cross_entropy targets, e.g. 8:int64")
    step.add_argument(
        "--grad-accumulation", metavar="M", type=_positive,
        help="train: accumulate gradients over M micro-batches per optimizer step; the "
        "inputs are one micro-batch (effective batch = M x batch); default 1",
    )


def _add_memory_options(step: Any) -> None:
    """Batch sweep, fit and the allocator's view of memory."""
    step.add_argument(
        "--batch-sweep", dest="batch_sweep", type=_sizes, metavar="N,N,...",
        help="re-analyse at these batch sizes and fit peak = constant + per-sample x batch",
    )
    step.add_argument(
        "--fit", metavar="MEMORY|GPU",
        help="find the largest batch whose peak fits, e.g. 24GiB, 80GB or \"H100 SXM\"",
    )
    step.add_argument(
        "--fit-dimension", dest="fit_dimension", choices=("batch", "seq", "ranks"),
        help="what --fit varies: batch (dimension 0) or seq (dimension 1), the largest that "
        "fits; or ranks, the fewest data-parallel GPUs (powers of two up to --parallel's, "
        f"e.g. fsdp=64) at which each GPU's step fits (default: {defaults.FIT_DIMENSION})",
    )
    step.add_argument(
        "--fit-against", dest="fit_against", choices=defaults.FIT_AGAINST_CHOICES,
        help="what --fit holds against the capacity: the allocated peak, or the device total "
        "with PyTorch's caching allocator simulated (reserved) "
        f"(default: {defaults.FIT_AGAINST})",
    )
    step.add_argument(
        "--allocator-conf", dest="allocator_conf", metavar="CONF",
        help="options of the simulated CUDA caching allocator, as PYTORCH_CUDA_ALLOC_CONF "
        "takes them, e.g. \"expandable_segments:True\" or \"max_split_size_mb:256\"",
    )
    step.add_argument(
        "--allocator-overhead", dest="allocator_overhead", action="store_true", default=None,
        help="add to the peak a 512-byte rounding of every allocation and a CUDA context "
        "(a rough view; the report's reserved and device total simulate the allocator)",
    )


def _add_output_options(out: Any) -> None:
    out.add_argument(
        "--depth", type=_depth, metavar="N",
        help="table, markdown: show modules down to depth N, 0 = the model only "
        f"(default: {DEFAULT_DEPTH})",
    )
    out.add_argument(
        "--format", choices=FORMATS,
        help="table (default), json, markdown, csv (one row per module) or html (one "
        "self-contained page with charts); with -o and no --format, chosen by FILE's extension "
        "(.json, .md, .csv, .html; any other: table)",
    )
    out.add_argument(
        "--per-op", dest="per_op", action="store_true",
        help="csv: one row per op call (index, phase, module, op, flops, macs) instead of per "
        "module",
    )
    out.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    out.add_argument(
        "--plot", choices=PLOTS,
        help="write one chart instead of the report, to -o FILE: .svg (no extra needed), or "
        ".png/.pdf (pip install 'memflops[plot]' for matplotlib)",
    )
    out.add_argument(
        "--quiet", action="store_true",
        help="no progress display of batch sweeps and fits (drawn only on a terminal)",
    )
    out.add_argument("--debug", action="store_true", help="show tracebacks of errors")


def _add_list(commands: Any) -> None:
    listing = commands.add_parser(
        "list",
        help="list the models of a zoo (torchvision, timm, hf)",
        description="List model names usable as ZOO:NAME targets "
        "(arguments of memflops.frontends.catalog.list_models).",
    )
    listing.add_argument(
        "zoo", nargs="?", metavar="ZOO",
        help="torchvision, timm or hf (default: every installed zoo, as ZOO:NAME)",
    )
    listing.add_argument(
        "--filter", metavar="TEXT",
        help="keep names containing TEXT (case-insensitive), or matching it as a glob (*, ?)",
    )
    listing.add_argument("--debug", action="store_true", help="show tracebacks of errors")


_ANALYZE_EPILOG = """\
examples:
  memflops analyze torchvision:resnet50 --input 8x3x224x224 --mode train
  memflops analyze model.py:build --input 1x3x32x32 --format json -o report.json
  memflops analyze torchvision:resnet50 --mode train --batch-sweep 8,16,32 --fit A100 -o r.html
  memflops analyze examples/vgg16.yaml --format markdown
  memflops analyze examples/vgg16.yaml --mode train --optimizer sgd
  memflops analyze my_pkg.models:tiny_bert --input input_ids=2x128 --input attention_mask=2x128
  memflops analyze hf:llama-2-7b --batch 4 --seq 2048 --mode train --dtype bf16 --fit H200
  memflops analyze hf:llama-2-7b --batch 2 --seq 4096 --mode train --dtype bf16 \
      --allocator-conf expandable_segments:True --fit H100 --fit-against reserved
  memflops analyze hf:llama-2-70b --mode generate --prompt-len 4000 --new-tokens 96
  memflops analyze torchvision:resnet50 --input 256x3x224x224 --mode train --autocast bf16 \\
      --gpu "A100 80GB SXM"

exit status: 0 success, 1 the model could not be analysed, 2 usage error"""

_ADVISE_EPILOG = """\
examples:
  memflops advise torchvision:vgg16 --input 32x3x224x224 --mode train
  memflops advise torchvision:resnet50 --input 64x3x224x224 --mode train --budget 3GiB
  memflops advise hf:llama-2-7b --batch 4 --seq 2048 --mode train --dtype bf16 \\
      --budget "A100 80GB SXM"
  memflops advise torchvision:resnet18 --input 8x3x224x224 --only bn-folded --format json

exit status: 0 success, 1 the model could not be analysed, 2 usage error"""


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sizes separated by commas, e.g. 1,8,32, got {text!r}"
        ) from None
    return sizes


def _int_at_least(minimum: int, wanted: str) -> Callable[[str], int]:
    """An argparse type: an integer >= `minimum`, else an error saying `wanted`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {value}")
        return value

    return parse


_positive = _int_at_least(1, "a positive integer")
_depth = _int_at_least(0, "an integer >= 0")


def parse_inputs(texts: Sequence[str] | None) -> list[str] | dict[str, str] | None:
    """`--input` values -> the `inputs` argument of `analyze`.

    `SHAPE` values are positional inputs, in order; `NAME=SHAPE` values are
    keyword inputs. Each shape is checked here, before the model is built.
    """
    if not texts:
        return None
    from memflops.capture.inputs import parse_shape  # torch: only for module targets

    positional: list[str] = []
    keyword: dict[str, str] = {}
    for text in texts:
        name, sep, shape = text.rpartition("=")
        if sep and not name.isidentifier():
            raise SpecError(f"--input {text!r}: expected NAME=SHAPE with NAME an identifier")
        parse_shape(shape)
        if not sep:
            positional.append(shape)
        elif name in keyword:
            raise SpecError(f"--input: keyword input {name!r} given twice")
        else:
            keyword[name] = shape
    if positional and keyword:
        raise UsageError(
            "--input: give either positional inputs (SHAPE) or keyword inputs (NAME=SHAPE), "
            "not both"
        )
    return keyword or positional


def run() -> None:
    """The `memflops` console command: `main()`, then a fast exit.

    Interpreter shutdown after torch's fake-tensor machinery has been loaded
    takes about a second (measured in benchmarks/); the report is written
    and flushed by then, so the process ends at once.
    """
    _tolerant_streams()
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):
            stream.flush()
    os._exit(code)


def _tolerant_streams() -> None:
    """A terminal that cannot encode a character (LANG=C, PYTHONIOENCODING=ascii) gets it
    escaped rather than a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with suppress(Exception):
                reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    The one error boundary of the command: whatever is raised below (a
    memflops error, an exception or a `BaseException` from the user's code,
    `SystemExit` from a factory, `MemoryError`, Ctrl-C) ends as one line on
    stderr and an exit status (`--debug` re-raises instead).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (2)
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 2
    try:
        with _quiet_torch(enabled=not args.debug):
            if args.command == "gpus":
                return _gpus()
            if args.command == "list":
                return _list(args)
            return _advise(args) if args.command == "advise" else _analyze(args)
    except BaseException as exc:
        if args.debug:
            raise
        message, code = _failure(exc)
        _error(message)
        return code


def _failure(exc: BaseException) -> tuple[str, int]:
    """The one line and the exit status an exception ends the command with."""
    if isinstance(exc, MemflopsError):
        return _one_line(str(exc)), exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", 130
    if isinstance(exc, SystemExit):
        return (f"the model's code called sys.exit({exc.code!r}) during the analysis; "
                f"a factory or forward must return, not exit"), 1
    if isinstance(exc, MemoryError):
        return ("out of memory while analysing (the analysis itself holds no tensor data: "
                "a model or input too large to describe?)"), 1
    if isinstance(exc, RecursionError):
        return f"recursion too deep while analysing: {_one_line(str(exc))} ({DEBUG_HINT})", 1
    text = _one_line(str(exc))
    if not isinstance(exc, Exception):
        return f"the model's code raised {type(exc).__name__}: {text}", 1
    return f"unexpected {type(exc).__name__}: {text} ({DEBUG_HINT})", 1


def _list(args: argparse.Namespace) -> int:
    from memflops.frontends.catalog import list_models

    names = list_models(args.zoo, args.filter)
    _write("".join(f"{name}\n" for name in names), None)
    return 0


def _gpus() -> int:
    from memflops.hardware.catalog import accelerators
    from memflops.units import format_bytes

    lines = []
    for acc in accelerators():
        peaks = ", ".join(f"{d} {p / 1e12:g}T" for d, p in acc.peak_flops)
        lines.append(f"{acc.name}: {format_bytes(acc.memory_bytes)}, "
                     f"{acc.bandwidth_bytes_per_s / 1e9:g} GB/s; {peaks}\n")
    _write("".join(lines), None)
    return 0


def _analyze(args: argparse.Namespace) -> int:
    _plot_checked(args.plot, args.output, args.format)
    _renderer_options_checked(args)
    options = {name: getattr(args, name) for name in ANALYZE_OPTIONS}
    given = {name: value for name, value in options.items() if value is not None}
    if is_layer_spec(args.target):
        report = _analyze_spec(args.target, given, args.inputs)
    else:
        from memflops.api import analyze  # torch: only for module targets

        inputs = parse_inputs(args.inputs)
        with progress_display(quiet=args.quiet) as progress:
            report = analyze(args.target, inputs, progress=progress, **given)
    if args.plot is not None:
        _plot(report, args.plot, args.output)
        return 0
    _write(_render(report, args), args.output)
    return 0


def _advise(args: argparse.Namespace) -> int:
    from memflops.advisor.advise import advise  # torch
    from memflops.advisor.table import render_advice

    if is_layer_spec(args.target):
        raise UsageError(f"advise: {args.target} is a layer list; advise needs a model to "
                         f"change (a module target such as torchvision:vgg16)")
    _plot_checked(args.plot, args.output, args.format)
    fmt = output_format(args.format, args.output)
    if fmt not in ADVICE_FORMATS:
        raise UsageError(f"advise: -o {args.output}: the advice is written as "
                         f"{', '.join(ADVICE_FORMATS)}, not {fmt} (--format chooses)")
    names = (*ANALYZE_OPTIONS, *ADVISE_OPTIONS)
    given = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    inputs = parse_inputs(args.inputs)
    with progress_display(quiet=args.quiet) as progress:
        advice = advise(args.target, inputs, progress=progress, **given)
    if args.plot is not None:
        _plot_advice(advice, args.output)
        return 0
    if fmt == "json":
        import json

        text = json.dumps(advice.to_dict(), indent=2) + "\n"
    elif fmt == "markdown":
        from memflops.advisor.markdown import render_advice_markdown

        text = render_advice_markdown(advice)
    elif fmt == "html":
        from memflops.advisor.html import render_advice_html

        text = render_advice_html(advice)
    else:
        color = args.output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        width = shutil.get_terminal_size().columns if color else None
        text = render_advice(advice, width=width, color=color)
    _write(text, args.output)
    return 0


def _plot_advice(advice: Any, output: str) -> None:
    """The savings chart to `output`: SVG drawn by memflops, PNG/PDF by matplotlib."""
    from memflops.advisor import chart, plot
    from memflops.report.plot import save

    if Path(output).suffix.lower() == ".svg":
        drawn = chart.savings_chart(advice)
        if drawn is None:
            plot.plot_savings(advice)  # raises the error that says why there is no chart
        _write(f'<?xml version="1.0" encoding="utf-8"?>\n{drawn}\n', output)
        return
    figure = plot.plot_savings(advice)
    try:
        save(figure, output)
    except OSError as exc:
        raise MemflopsError(f"cannot write {output}: {exc.strerror or exc}") from exc


def _plot_checked(plot: str | None, output: str | None, fmt: str | None) -> None:
    """`--plot` needs `-o FILE` with an image extension; checked before any analysis."""
    if plot is None:
        return
    if fmt is not None:
        raise UsageError(f"--plot {plot} writes a chart, not a report: leave out --format {fmt}")
    if output is None:
        raise UsageError(f"--plot {plot}: give -o FILE (.svg, .png or .pdf)")
    if Path(output).suffix.lower() not in (".svg", ".png", ".pdf"):
        raise UsageError(f"--plot {plot}: -o {output}: expected a .svg, .png or .pdf file")


def _plot(report: Report, name: str, output: str) -> None:
    """The chart `name` to `output`: SVG drawn by memflops, PNG/PDF by matplotlib."""
    from memflops.report import charts, plot

    if Path(output).suffix.lower() == ".svg":
        drawn = {n: chart for n, _, chart in charts.CHARTS}[name](report)
        if drawn is None:
            plot.figure(report, name)  # raises the error that names the missing data
        _write(f'<?xml version="1.0" encoding="utf-8"?>\n{drawn}\n', output)
        return
    figure = plot.figure(report, name)
    try:
        plot.save(figure, output)
    except OSError as exc:
        raise MemflopsError(f"cannot write {output}: {exc.strerror or exc}") from exc


def is_layer_spec(target: str) -> bool:
    """A YAML/JSON layer list (`examples/vgg16.yaml`), not a `prefix:name` target."""
    return ":" not in target and target.lower().endswith(SPEC_SUFFIXES)


def _analyze_spec(target: str, given: dict[str, Any], inputs: Sequence[str] | None) -> Report:
    from memflops.layerspec.analyze import analyze_spec

    unused = [f"--{name.replace('_', '-')}" for name in given if name not in SPEC_OPTIONS]
    if inputs:
        unused.insert(0, "--input")
    if unused:
        raise UsageError(
            f"{', '.join(unused)}: not available for a layer-list spec ({target}), which sets "
            f"its own input and batch; it takes --{', --'.join(SPEC_OPTIONS)}"
        )
    return analyze_spec(target, **given)


def output_format(fmt: str | None, output: str | None) -> str:
    """`--format` if given, else the format of `-o FILE`'s extension, else table."""
    if fmt is not None:
        return fmt
    if output is None:
        return "table"
    return EXTENSIONS.get(Path(output).suffix.lower(), "table")


def _renderer_options_checked(args: argparse.Namespace) -> None:
    """`--per-op` and `--depth` apply to some outputs only: refused for the others, before
    any analysis, rather than ignored."""
    fmt = "a chart (--plot)" if args.plot is not None else output_format(args.format,
                                                                          args.output)
    if args.per_op and fmt != "csv":
        raise UsageError(f"--per-op: only for csv output, not {fmt}")
    if args.depth is not None and fmt not in ("table", "markdown"):
        raise UsageError(f"--depth: only for table and markdown output, not {fmt}")


def _render(report: Report, args: argparse.Namespace) -> str:
    fmt = output_format(args.format, args.output)
    depth = DEFAULT_DEPTH if args.depth is None else args.depth
    if fmt == "json":
        return render_json(report)
    if fmt == "markdown":
        return render_markdown(report, depth=depth)
    if fmt == "csv":
        return render_csv(report, per_op=args.per_op)
    if fmt == "html":
        return render_html(report)
    color = args.output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    width = shutil.get_terminal_size().columns if color else None
    return render_table(report, depth=depth, width=width, color=color)


def _write(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise MemflopsError(f"cannot write {output}: {exc.strerror or exc}") from exc


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


ONE_LINE_LIMIT = 400
"""Characters of an error message printed at most (a message may quote the user's input)."""


def _one_line(message: str) -> str:
    """`message` on one line, C++ frames cut off, at most `ONE_LINE_LIMIT` characters."""
    message = message.split("Exception raised from", 1)[0]
    text = " ".join(line.strip() for line in message.splitlines() if line.strip())
    return text if len(text) <= ONE_LINE_LIMIT else text[: ONE_LINE_LIMIT - 3] + "..."


class _DropRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextmanager
def _quiet_torch(*, enabled: bool) -> Iterator[None]:
    """Silence torch loggers that duplicate, as a traceback, an error reported in one line.

    A filter on the logger, not its level: torch sets its loggers' levels when it is
    imported, which in the console script happens inside this block."""
    drop = _DropRecords()
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS] if enabled else []
    for logger in loggers:
        logger.addFilter(drop)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(drop)
