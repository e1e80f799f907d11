"""Hostile input, generated (hypothesis): shape strings, option combinations, layer-list
specs and Hugging Face config files, through the command in a subprocess (so torch's
logging and the import order are the real ones) and through the API.

Invariants, for every input:
- the command exits 0, or 1 or 2 with exactly one line on stderr, `memflops: error: ...`,
  and no traceback; within `CLI_SECONDS` and an address space of `CLI_MEMORY` bytes;
- no name is looked up and no socket opened (a guard refuses and logs any attempt);
- through the API, only a `MemflopsError` is raised; the model is unchanged (its
  state_dict and a real forward equal before and after) and so is the caller's torch
  state (grad mode, anomaly detection, autocast, dispatch modes, sys.path).

CI runs a few derandomized examples per property (about two minutes in all);
`benchmarks/fuzz.py` runs many more (`MEMFLOPS_FUZZ_SCALE`) and records what it found in
benchmarks/fuzz.md.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import memflops
from memflops.errors import MemflopsError
from memflops.layerspec.fields import LAYER_FIELDS

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ROOT / "tests" / "fixtures" / "hostile_model.py"
GUARD = ROOT / "tests" / "fixtures" / "no_network"
SCALE = float(os.environ.get("MEMFLOPS_FUZZ_SCALE", "1"))
CLI_SECONDS = 120
CLI_MEMORY = 6 * 2**30
"""Address space of one command: torch's CPU import maps ~2 GiB; an analysis holds no
tensor data."""


def examples(n: int) -> Any:
    """Settings of a property: `n` examples in CI (times `MEMFLOPS_FUZZ_SCALE`), the same
    ones every run."""
    return settings(max_examples=max(1, int(n * SCALE)), derandomize=True, deadline=None,
                    database=None, suppress_health_check=list(HealthCheck))


# --- running the command -----------------------------------------------------------


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CLI_MEMORY, CLI_MEMORY))


def command(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """`memflops ARGV` from the console script, network guarded, time and memory bounded."""
    log = cwd / "network.log"
    env = dict(os.environ, MEMFLOPS_SRC=str(ROOT / "src"), MEMFLOPS_SOCKET_LOG=str(log),
               PYTHONPATH=os.pathsep.join([str(GUARD), str(ROOT / "src")]), NO_COLOR="1")
    script = Path(sys.executable).parent / "memflops"
    head = [str(script)] if script.exists() else [
        sys.executable, "-c", "from memflops.cli import run; run()"]
    done = subprocess.run([*head, *argv], capture_output=True, text=True, cwd=cwd,
                          timeout=CLI_SECONDS, env=env, preexec_fn=_limits)
    assert not log.exists(), f"{argv}: reached for the network: {log.read_text()}"
    return done.returncode, done.stdout, done.stderr


def assert_clean(argv: list[str], code: int, err: str) -> None:
    """Exit 0, or 1/2 with one `memflops: error:` line and no traceback."""
    if code == 0:
        return
    lines = err.splitlines()
    assert code in (1, 2), f"{argv}: exit {code}: {err[-2000:]}"
    assert len(lines) == 1, f"{argv}: {len(lines)} lines on stderr: {err[-2000:]}"
    assert lines[0].startswith("memflops: error: "), f"{argv}: {lines[0]}"
    assert "Traceback" not in err and "unexpected" not in lines[0], f"{argv}: {lines[0]}"


# --- what the API may change -------------------------------------------------------


def _ambient() -> tuple[Any, ...]:
    return (torch.is_grad_enabled(), torch.is_anomaly_enabled(),
            torch.is_autocast_enabled("cpu"), torch.is_inference_mode_enabled(),
            torch.get_default_dtype(), list(sys.path),
            {k: v for k, v in os.environ.items() if "OFFLINE" in k},
            torch._C._len_torch_dispatch_stack())


@contextmanager
def no_network() -> Iterator[list[str]]:
    tried: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        tried.append(repr(args[:2]))
        raise OSError("the network is off in this test")

    saved = (socket.socket.connect, socket.getaddrinfo, socket.create_connection)
    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.getaddrinfo = refuse
    socket.create_connection = refuse
    try:
        yield tried
    finally:
        socket.socket.connect, socket.getaddrinfo, socket.create_connection = saved


def analyze_guarded(model: Any, *args: Any, **kwargs: Any) -> None:
    """`memflops.analyze`, which may only raise a MemflopsError, reach no network, and
    leave the model and the caller's torch state as they were."""
    module = model if isinstance(model, nn.Module) else None
    before = _ambient()
    state = {k: v.clone() for k, v in module.state_dict().items()} if module else {}
    reference = copy.deepcopy(module)  # never analysed: its first real forward is the truth
    with no_network() as tried:
        try:
            memflops.analyze(model, *args, **kwargs)
        except MemflopsError as exc:
            assert exc.exit_code in (1, 2) and "Traceback" not in str(exc)
    assert not tried, f"reached for the network: {tried}"
    assert _ambient() == before
    if module is not None:
        after = module.state_dict()
        assert after.keys() == state.keys()
        assert all(torch.equal(state[k], after[k]) for k in state)
        x = torch.randn(3, 10)
        assert reference is not None and torch.equal(module(x), reference(x))


# --- strategies --------------------------------------------------------------------

SIZES = st.one_of(st.integers(-3, 40), st.sampled_from([0, 10, 2**31, 2**63, 10**30]))
DTYPES = st.sampled_from(["", ":int64", ":bool", ":fp16", ":bf16", ":fp8", ":grad",
                          ":fp32:grad", ":nope", ":", "::"])
SHAPE_TEXT = st.one_of(
    st.builds(lambda dims, dtype: "x".join(str(d) for d in dims) + dtype,
              st.lists(SIZES, min_size=0, max_size=5), DTYPES),
    st.text(alphabet="0123456789x:,*-= abgirdfnt_.=\u00e9\u00d7", max_size=16),
)

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 70), st.sampled_from([0, 2**31, 2**63, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)

OPTIONS: dict[str, list[str] | None] = {
    "--mode": ["inference", "train", "generate", "sideways"],
    "--dtype": ["fp16", "bf16", "int64", "fp8", "nope"],
    "--autocast": ["bf16", "fp16", "fp32"],
    "--optimizer": ["sgd", "adam", "none", "adam8bit", "nope"],
    "--loss": ["sum", "cross_entropy", "nope"],
    "--targets": ["2:int64", "3", "x", "0"],
    "--batch-sweep": ["1,2", "0", "1,x", "2"],
    "--fit": ["1GiB", "80GB", "H100 SXM", "0", "-5", "nope", "1e400GiB"],
    "--fit-dimension": ["batch", "seq"],
    "--fit-against": ["allocated", "reserved"],
    "--allocator-conf": ["expandable_segments:True", "bogus:1", "max_split_size_mb:-1"],
    "--prompt-len": ["4", "0"],
    "--new-tokens": ["2", "0"],
    "--cache-dtype": ["fp16", "x"],
    "--gpu": ["H100 SXM", "T4", "custom:fp16=1T,bw=1T,mem=1G", "nope"],
    "--time-constants": ["matmul=0.5", "matmul=7", "x"],
    "--depth": ["0", "3", "-1"],
    "--format": ["json", "csv", "markdown", "html", "table"],
    "--batch": ["2", "0"],
    "--seq": ["4", "0"],
    "--input": ["2x10", "2x10:int64", "2x10:grad", "0x10", "2x7", "x=2x10"],
    "--plot": ["timeline", "sweep", "roofline"],
    "-o": ["out.json", "out.svg", "out.png", "missing/dir/out.json"],
    "--per-op": None, "--allocator-overhead": None, "--quiet": None,
}
"""Each option with values a user might give, good and bad (None: a flag)."""

OPTION_SETS = st.dictionaries(st.sampled_from(sorted(OPTIONS)), st.integers(0, 10), max_size=5)


def option_argv(chosen: dict[str, int]) -> list[str]:
    argv: list[str] = []
    for name, pick in chosen.items():
        values = OPTIONS[name]
        argv += [name] if values is None else [name, values[pick % len(values)]]
    return argv


def _layer(kind: str, fields: dict[str, Any], junk: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, **fields, **junk}


LAYER = st.builds(
    _layer,
    st.sampled_from([*LAYER_FIELDS, "convv", "", "fc"]),
    st.dictionaries(st.sampled_from(sorted({f for s in LAYER_FIELDS.values() for f in s})),
                    SCALARS | st.lists(st.integers(-2, 9), max_size=3), max_size=4),
    st.dictionaries(st.sampled_from(["name", "input", "from", "bogus"]), VALUES, max_size=1),
)
SPEC = st.fixed_dictionaries(
    {"input": st.one_of(st.lists(SIZES, max_size=4), VALUES),
     "layers": st.lists(LAYER, max_size=6)},
    optional={"batch": SCALARS, "dtype": st.sampled_from(["fp16", "float32", "x"]) | VALUES,
              "name": VALUES, "extra": VALUES},
)

HF_FIELDS = ["n_layer", "n_embd", "n_head", "vocab_size", "n_positions", "hidden_size",
             "num_hidden_layers", "num_attention_heads", "intermediate_size",
             "max_position_embeddings", "torch_dtype", "dtype", "backbone"]
HF_CONFIG = st.builds(
    lambda kind, fields: {"model_type": kind, **fields},
    st.sampled_from(["gpt2", "bert", "llama", "upernet", "dpt", "nope"]),
    st.dictionaries(st.sampled_from(HF_FIELDS),
                    st.one_of(st.integers(-1, 8), st.sampled_from([0, 2**31, 10**30]),
                              st.sampled_from(["float32", "bf16", "x", "owner/name"]),
                              st.lists(st.integers(0, 3), max_size=2), st.none()),
                    max_size=3),
)


# --- properties: the command in a subprocess ---------------------------------------


@examples(4)
@given(shape=SHAPE_TEXT)
def test_shape_strings_cli(tmp_path_factory: pytest.TempPathFactory, shape: str) -> None:
    argv = ["analyze", f"{HOSTILE}:linear", "--input", shape, "--format", "json"]
    code, _, err = command(argv, tmp_path_factory.mktemp("shape"))
    assert_clean(argv, code, err)


@examples(8)
@given(chosen=OPTION_SETS)
def test_option_combinations_cli(tmp_path_factory: pytest.TempPathFactory,
                                 chosen: dict[str, int]) -> None:
    extra = option_argv(chosen)
    inputs = [] if "--input" in chosen or "--batch" in chosen else ["--input", "2x10"]
    argv = ["analyze", f"{HOSTILE}:linear", *inputs, *extra]
    code, _, err = command(argv, tmp_path_factory.mktemp("options"))
    assert_clean(argv, code, err)


@examples(25)
@given(spec=SPEC, as_json=st.booleans())
def test_layer_specs_cli(tmp_path_factory: pytest.TempPathFactory, spec: dict[str, Any],
                         as_json: bool) -> None:
    where = tmp_path_factory.mktemp("spec")
    path = where / ("spec.json" if as_json else "spec.yaml")
    text = json.dumps(spec) if as_json else yaml.safe_dump(spec)
    path.write_text(text, encoding="utf-8")
    argv = ["analyze", str(path), "--format", "json"]
    code, out, err = command(argv, where)
    assert_clean(argv, code, err)
    if code == 0:
        assert json.loads(out)["schema"] == "memflops.report/1"


@examples(3)
@given(config=HF_CONFIG)
def test_config_files_cli(tmp_path_factory: pytest.TempPathFactory,
                          config: dict[str, Any]) -> None:
    pytest.importorskip("transformers")
    where = tmp_path_factory.mktemp("config")
    path = where / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    argv = ["analyze", f"hf:{path}", "--format", "json"]
    code, _, err = command(argv, where)
    assert_clean(argv, code, err)


# --- properties: the API -----------------------------------------------------------


@examples(40)
@given(shape=SHAPE_TEXT)
def test_shape_strings_api(shape: str) -> None:
    analyze_guarded(nn.Linear(10, 5), shape)


@examples(40)
@given(dims=st.lists(st.one_of(SIZES, st.floats(0, 20), st.booleans(), st.none()),
                     max_size=4))
def test_shape_tuples_api(dims: list[Any]) -> None:
    analyze_guarded(nn.Linear(10, 5), tuple(dims))


API_ARGUMENTS = st.dictionaries(
    st.sampled_from(["mode", "dtype", "autocast", "optimizer", "loss", "targets",
                     "batch_sweep", "fit", "fit_dimension", "fit_against", "allocator_conf",
                     "allocator_overhead", "batch", "seq", "prompt_len", "new_tokens",
                     "cache_dtype", "gpu", "time_constants", "name", "convention"]),
    st.one_of(st.sampled_from(["train", "inference", "generate", "bf16", "fp16", "sgd",
                               "cross_entropy", "seq", "reserved", "1GiB", "H100 SXM",
                               "2:int64", "matmul=0.5"]),
              st.integers(-1, 4), st.floats(0, 2), st.booleans(), st.none(),
              st.lists(st.one_of(st.integers(0, 3), st.booleans()), max_size=3)),
    max_size=4,
)


@examples(40)
@given(arguments=API_ARGUMENTS, model=st.sampled_from(["linear", "registers", "caches"]))
def test_option_combinations_api(arguments: dict[str, Any], model: str) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("hostile_model_fuzz", HOSTILE)
    assert spec is not None and spec.loader is not None
    hostile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hostile)
    built = getattr(hostile, model)()
    # registers and caches take 4 features: a Linear(10, 4) in front takes the (2, 10) input
    net = built if model == "linear" else nn.Sequential(nn.Linear(10, 4), built)
    analyze_guarded(net, (2, 10), **arguments)


@examples(100)
@given(spec=SPEC)
def test_layer_specs_api(tmp_path_factory: pytest.TempPathFactory, spec: dict[str, Any]) -> None:
    from memflops.layerspec.analyze import analyze_spec

    path = tmp_path_factory.mktemp("spec") / "spec.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    try:
        analyze_spec(str(path))
    except MemflopsError as exc:
        assert exc.exit_code in (1, 2) and "\n" not in str(exc)
