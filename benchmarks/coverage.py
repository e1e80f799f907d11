"""Coverage: which zoo models memflops analyses completely, and why the others fail.

Every model of a zoo is analysed with `memflops.analyze` in train mode (the
forward, the loss, the backward and the default optimizer step, on fake
tensors) at its natural input, and each result is recorded: whether it ran,
whether every op had a FLOP rule, how long it took, which ops were
uncounted and, for a failure, the one-line reason.

- torchvision: every name of `torchvision.models.list_models()`. Images are
  2x3x224x224 (inception_v3: 299); video 2x3x16x112x112 (s3d, mvit, swin3d:
  224, their natural size); optical flow (RAFT) two 2x3x128x128 images;
  detection models 2x3xSxS with S the size their transform resizes to (800
  for the R-CNNs), made shape-only by the `torchvision:` loader (see
  `memflops.zoo.torchvision.detection`), which also synthesises training targets.
- timm: every name of `timm.list_models()` at `pretrained_cfg["input_size"]`,
  batch 2, through the `timm:NAME` target.
- hf: every `model_type` transformers maps to a model class, built from its
  default config through the `hf:path/to/config.json` target.

A model counts as *covered* when it ran and no op was left uncounted.
Targets: 100% of torchvision, >= 99% of timm, >= 95% of hf.

Models run in worker processes, each with a time limit; results are
appended to a JSON-lines file (so a long run can stop and `--resume`), and
benchmarks/COVERAGE.md is written from every result in that file.

    python benchmarks/coverage.py --zoo torchvision
    python benchmarks/coverage.py --zoo timm --shuffle --resume --limit 300
    python benchmarks/coverage.py --report-only
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "coverage-results.jsonl"
MARKDOWN = HERE / "COVERAGE.md"
ZOOS = ("torchvision", "timm", "hf")
TARGETS = {"torchvision": 100.0, "timm": 99.0, "hf": 95.0}
BATCH = 2
DEFAULT_TIMEOUT = 300.0

# --- the cases ------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    zoo: str
    name: str


@dataclass
class Result:
    zoo: str
    name: str
    status: str
    """ok (covered), uncounted (ran, some ops without a rule), error, timeout, crash, or
    unbuildable (hf: transformers itself cannot build the type from its default config)."""
    seconds: float
    params: int | None = None
    forward_flops: int | None = None
    step_flops: int | None = None
    uncounted: list[tuple[str, int]] = field(default_factory=list)
    error_type: str | None = None
    error: str | None = None
    mode: str = "train"
    """The mode analysed: train, or inference for a model that has no training step."""


def cases(zoo: str, name_filter: str | None = None, limit: int | None = None) -> list[Case]:
    """Every model of `zoo`, optionally filtered (substring or glob) and capped at `limit`."""
    from memflops.frontends.catalog import matches

    names = {"torchvision": _torchvision_names, "timm": _timm_names, "hf": _hf_types}[zoo]()
    picked = [Case(zoo, n) for n in names if name_filter is None or matches(n, name_filter)]
    return picked[:limit] if limit is not None else picked


def _torchvision_names() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models())


def _timm_names() -> list[str]:
    import timm

    return sorted(timm.list_models())


def _hf_types() -> list[str]:
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    return sorted(MODEL_MAPPING_NAMES)


# --- building one model with its natural input -------------------------------------------


def _torchvision_family(name: str) -> str:
    import torchvision

    module = torchvision.models.get_model_builder(name).__module__
    for family in ("detection", "segmentation", "video", "optical_flow", "quantization"):
        if f".{family}." in module:
            return family
    return "classification"


def prepare(case: Case) -> tuple[Any, Any, bool]:
    """(module, inputs, inference only) for one case, through the same targets the CLI
    uses."""
    from memflops.frontends.targets import load_target

    if case.zoo == "hf":
        return _prepare_hf(case.name)
    module, inputs = _prepare_zoo(case, load_target(f"{case.zoo}:{case.name}"))
    return module, inputs, False


def _prepare_zoo(case: Case, loaded: Any) -> tuple[Any, Any]:
    if case.zoo == "timm":
        size = tuple(loaded.default_input[1:]) if isinstance(loaded.default_input, tuple) \
            else (3, 224, 224)
        return loaded.module, (BATCH, *size)
    family = _torchvision_family(case.name)
    if family == "video":
        side = 224 if case.name.startswith(("s3d", "mvit", "swin3d")) else 112
        return loaded.module, (BATCH, 3, 16, side, side)
    if family == "optical_flow":
        return loaded.module, [(BATCH, 3, 128, 128), (BATCH, 3, 128, 128)]
    if family == "detection":  # made shape-only and batch-fed by the loader
        assert isinstance(loaded.default_input, tuple)
        return loaded.module, (BATCH, *loaded.default_input[1:])
    side = 299 if "inception_v3" in case.name else 224
    return loaded.module, (BATCH, 3, side, side)


def _prepare_hf(model_type: str) -> tuple[Any, Any, bool]:
    from memflops.frontends.targets import load_target

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{model_type}.json"
        path.write_text(json.dumps({"model_type": model_type}))
        loaded = load_target(f"hf:{path}")
    inputs_of = loaded.make_inputs  # learned positions cap seq; an axial table fixes it
    longest = getattr(inputs_of, "max_seq", None) or 64
    seq = getattr(inputs_of, "train_seq", None) or min(64, longest)
    seq = max(seq, getattr(inputs_of, "min_seq", None) or 1)  # room for Kosmos-2's image
    batch = min(BATCH, getattr(inputs_of, "max_batch", None) or BATCH)  # TVP runs 1 sample
    inputs = loaded.make_inputs(batch, seq) if loaded.make_inputs else loaded.default_input
    return loaded.module, inputs, loaded.inference_only


_ZOO_PACKAGES = {"torchvision": "torchvision", "timm": "timm", "hf": "transformers"}


def _warm(zoo: str) -> None:
    """Import what a case needs before its clock starts (a worker does it once)."""
    import importlib

    importlib.import_module("memflops.api")
    importlib.import_module(_ZOO_PACKAGES[zoo])


def run_case(case: Case, mode: str = "train") -> Result:
    """Analyse one model; never raises (a failure is a result)."""
    import memflops

    _warm(case.zoo)
    start = time.perf_counter()
    try:
        module, inputs, inference_only = prepare(case)
        mode = "inference" if inference_only else mode  # no training step to analyse
        report = memflops.analyze(module, inputs, mode=mode)  # type: ignore[arg-type]
    except BaseException as exc:  # a failure is data here
        if isinstance(exc, KeyboardInterrupt):
            raise
        status = "error"
        if case.zoo == "hf" and type(exc).__name__ in ("FactoryError", "SpecError"):
            status = "unbuildable" if _transformers_cannot_build(case.name) else "error"
        return Result(case.zoo, case.name, status, time.perf_counter() - start,
                      error_type=type(exc).__name__, error=_one_line(exc))
    uncounted = [(u.op, u.count) for u in report.uncounted_ops]
    return Result(
        case.zoo, case.name, "uncounted" if uncounted else "ok", time.perf_counter() - start,
        params=report.totals.params, forward_flops=report.total("forward"),
        step_flops=report.total(), uncounted=uncounted, mode=mode,
    )


def _transformers_cannot_build(model_type: str) -> bool:
    """True when transformers itself cannot build `model_type` from its default config.

    Its own `AutoModel.from_config(ConfigClass())` on the meta device, without
    memflops, raises too: the default config leaves a field the model needs
    unset, or the model needs a library that is not installed (natten,
    detectron2, torchaudio). Such a type is outside the coverage target ("every
    architecture transformers can build from a default config").
    """
    import torch
    import transformers

    try:
        config = transformers.CONFIG_MAPPING[model_type]()
        with torch.device("meta"):
            transformers.AutoModel.from_config(config)
    except Exception:
        return True
    return False


def _one_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    if not text:  # say where it came from
        frames = traceback.extract_tb(exc.__traceback__)
        text = f"at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return text[:400]


# --- the worker pool --------------------------------------------------------------------

RESULT_MARK = "@@memflops-coverage-result "
"""Prefix of a worker's result line; anything else a model prints is ignored."""


def worker_main(mode: str) -> None:
    """`coverage.py --worker MODE`: read `zoo<TAB>name` lines, answer with result lines."""
    import warnings

    warnings.filterwarnings("ignore")
    # Results go to the original stdout; whatever a model prints goes to stderr.
    results = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    for line in sys.stdin:
        zoo, _, name = line.rstrip("\n").partition("\t")
        result = run_case(Case(zoo, name), mode)
        results.write(RESULT_MARK + json.dumps(asdict(result)) + "\n")
        results.flush()


@dataclass(eq=False)
class _Slot:
    process: subprocess.Popen[str]
    case: Case | None = None
    started: float = 0.0


def _start_worker(mode: str) -> _Slot:
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--worker", mode],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, bufsize=1,
    )
    return _Slot(process)


def _read_result(slot: _Slot) -> Result | None:
    """The worker's next result line, or None if it closed its output."""
    assert slot.process.stdout is not None
    while True:
        line = slot.process.stdout.readline()
        if not line:
            return None
        if line.startswith(RESULT_MARK):
            item = json.loads(line[len(RESULT_MARK):])
            item["uncounted"] = [tuple(u) for u in item["uncounted"]]
            return Result(**item)


def run_pool(
    todo: Iterable[Case], *, workers: int, timeout: float, mode: str = "train",
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Run cases in `workers` worker processes, each case within `timeout` seconds.

    `workers` 0 runs them in this process, without a time limit. A worker
    past its time limit, or one that dies, is killed and replaced.
    """
    results: list[Result] = []

    def done(result: Result) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    queue = list(todo)
    if workers <= 0:
        for case in queue:
            done(run_case(case, mode))
        return results
    slots = [_start_worker(mode) for _ in range(min(workers, len(queue)))]
    selector = selectors.DefaultSelector()
    try:
        while queue or any(s.case is not None for s in slots):
            for slot in slots:
                if slot.case is None and queue:
                    slot.case, slot.started = queue.pop(0), time.perf_counter()
                    assert slot.process.stdin is not None and slot.process.stdout is not None
                    slot.process.stdin.write(f"{slot.case.zoo}\t{slot.case.name}\n")
                    slot.process.stdin.flush()
                    selector.register(slot.process.stdout, selectors.EVENT_READ, slot)
            ready = {key.data for key, _ in selector.select(timeout=0.5)}
            for i, slot in enumerate(slots):
                if slot.case is None:
                    continue
                result = _read_result(slot) if slot in ready else None
                if result is not None:
                    selector.unregister(slot.process.stdout)
                    slot.case = None
                    done(result)
                    continue
                elapsed = time.perf_counter() - slot.started
                dead = slot in ready or slot.process.poll() is not None
                if dead or elapsed > timeout:
                    code = slot.process.poll()
                    status, why = (("crash", f"worker died (exit code {code})") if dead
                                   else ("timeout", f"no result within {timeout:g} s"))
                    done(Result(slot.case.zoo, slot.case.name, status, elapsed,
                                error_type=status, error=why))
                    selector.unregister(slot.process.stdout)
                    slot.process.kill()
                    slot.process.wait()
                    slots[i] = _start_worker(mode)
    finally:
        selector.close()
        for slot in slots:
            if slot.process.poll() is None:
                slot.process.kill()
                slot.process.wait()
    return results


# --- results file and the markdown report -------------------------------------------------


def read_results(path: Path) -> tuple[dict[tuple[str, str], Result], list[dict[str, Any]]]:
    """The latest result per (zoo, model), and the run records, from a JSON-lines file."""
    latest: dict[tuple[str, str], Result] = {}
    runs: list[dict[str, Any]] = []
    if not path.exists():
        return latest, runs
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        if item.pop("kind", "result") == "run":
            runs.append(item)
            continue
        item["uncounted"] = [tuple(u) for u in item.get("uncounted", [])]
        result = Result(**item)
        latest[result.zoo, result.name] = result
    return latest, runs


def _append(path: Path, item: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(item) + "\n")


def reason_key(result: Result) -> str:
    """A failure's reason with the model-specific parts (paths, sizes) taken out."""
    if result.status == "uncounted":
        return "ran, but no FLOP rule for: " + ", ".join(sorted(op for op, _ in result.uncounted))
    text = result.error or ""
    text = re.sub(r"^forward failed in module `[^`]*` \([^)]*\) given inputs of shapes "
                  r"\[[^\]]*\]: ", "forward: ", text)
    text = re.sub(r"^forward of \S+ failed given (?:\S+=\S+(?:, )?)+: ", "forward: ", text)
    text = re.sub(r"^building \S+ from its config raised ", "building … from its config raised ",
                  text)
    text = re.sub(r"\w+\.forward\(\)", "….forward()", text)
    text = re.sub(r"has no model class for '[^']*'", "has no model class for '…'", text)
    text = re.sub(r"^hf:\S+\.json: ", "hf:….json: ", text)
    text = re.sub(r"^backward failed in module `[^`]*`: ", "backward: ", text)
    text = re.sub(r"`[^`]*`", "`…`", text)
    text = re.sub(r"^factory \S+ raised ", "factory … raised ", text)
    text = re.sub(r"\d+", "N", text)
    return f"{result.error_type}: {text[:200]}"


CAUSES = (
    (r"DataDependentError: op aten\.(_local_scalar_dense|nonzero|index)", "a step whose result "
     "depends on values memflops does not know, computed from the weights or activations "
     "(see the model's note below); values of constants, masks, token ids, given inputs and "
     "balanced top-k picks are known (`capture/values/known.py`, `capture/values/picks.py`)"),
    (r"^timeout", "no result within the time limit"),
    (r"_forward_unimplemented", "the model class has no `forward`: there is no step to "
     "analyse (see the model's note below)"),
    (r"missing N required positional argument|You have to specify|unexpected keyword argument "
     r"'input_ids'", "an input the `hf:` frontend cannot make from the config alone (see the "
     "model's note below)"),
    (r"has no model class for", "transformers maps no model class to this type"),
    (r"split_with_sizes expects split_sizes to sum exactly", "the default config leaves "
     "`partial_rotary_factor` None while its `mrope_section` assumes 0.5 (the published GLM-4.1V "
     "config sets 0.5): the default config is inconsistent"),
)
"""Known root causes, shown beside a failure group whose reason matches."""


NOTES: dict[str, str] = {
    "bark": "`BarkModel` has no `forward` (it only generates, running three sub-models in "
    "turn) and transformers maps no other class to the type: there is no step to analyse; "
    "its sub-models (`bark_semantic`, ...) are not types of their own",
    "glm_image_vqmodel": "`GlmImageVQVAE` has no `forward` (GLM-Image calls its `encode` to "
    "tokenise images): there is no step to analyse as a model of its own; GLM-Image, which "
    "holds it, is covered",
    "blt": "entropy patching (`patching_mode` 'entropy', also in the published config): patch "
    "boundaries are where a small byte LM's prediction entropy passes a threshold, and their "
    "count sets the global model's sequence length; other modes are a different model",
    "vits": "the duration predictor runs a reverse flow on random noise and the output length "
    "is the sum of the predicted durations; `forward` with labels raises NotImplementedError, "
    "so there is no training path with given lengths",
    "oneformer": "its masked attention thresholds the previous layer's predicted masks "
    "(`sigmoid(mask) < 0.5`) and fixes rows with no True by value: masks computed from "
    "activations",
    "lightglue": "its SuperPoint keypoint detector keeps the pixels whose score passes a "
    "threshold (`nonzero`): the keypoint count comes from the image's values",
    "sam3_video": "a text-prompted detector plus tracker whose matching of detections to "
    "tracks, hot start and suppression follow detection scores (values of activations); its "
    "tracker alone, `sam3_tracker_video`, is covered",
    "pi0": "`PI0Model` needs `action_embeds` beside camera images whose 256 tokens each must "
    "sit at the PaliGemma image token (left None in the default config) in `input_ids`: the "
    "placeholder layout is data the frontend does not make",
    "glm5_next": "its sparse-attention indexer concatenates the known padding mask with "
    "scores computed from activations and later splits the mask back out; known values do "
    "not follow a slice of a concatenation, so the boolean selection is refused",
    "glm5_next_text": "as `glm5_next` (the same indexer)",
    "ibert": "in training, each `QuantAct` updates its running range from the activations' "
    "min and max and branches on it (`x_min.min() > -1.1e-5`) even with `quant_mode` off; "
    "the second call's branch reads a range computed from activations",
    "udop": "`combine_image_text_embeddings` drops the image patches its text boxes cover: "
    "which ones depends on the `bbox` values, and it indexes with a tuple of 0-d tensors, "
    "which PyTorch reads below the dispatch layer memflops works at",
    "pp_ocrv6_small_det": "transformers' default config cannot run on real tensors either: "
    "its neck expects PaddleOCR's detection-mode PP-LCNetV3 projections (12, 18, 42, 360 "
    "channels), which transformers' `PPLCNetV3Backbone` lacks, and the backbone it builds "
    "by default is PP-LCNetV4; no published config to repair it from was found offline",
    "longcat_flash": "its default config (28 layers, 512 routed + 256 identity experts, "
    "top-12) runs a Python loop over every expert hit; it is covered alone in about 150 s "
    "(see the results) and can pass 300 s when two workers share the 2 cores",
}
"""Model -> why it fails, where the reason alone does not say (what was tried, what it
would take); shown under its zoo's failure table while the model still fails."""


def _cause(key: str) -> str:
    return next((text for pattern, text in CAUSES if re.search(pattern, key)), "")


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "n/a"


def render(results: dict[tuple[str, str], Result], runs: list[dict[str, Any]],
           listed: dict[str, int]) -> str:
    """benchmarks/COVERAGE.md from every recorded result."""
    by_zoo: dict[str, list[Result]] = defaultdict(list)
    for r in results.values():
        by_zoo[r.zoo].append(r)
    out = [
        "# Coverage of model zoos",
        "",
        "Generated by `python benchmarks/coverage.py` (see its docstring); do not edit by hand.",
        "Each model is analysed in train mode (forward, loss, backward, Adam step) on fake",
        "tensors at its natural input (a model with no training step in inference mode, listed",
        "below). *Covered* = it ran and every op had a FLOP rule.",
        "*Not buildable*: transformers itself cannot build the type from its default config",
        "(`AutoModel.from_config` raises without memflops); these are outside the target, and",
        "the percentages are of the models that can be built.",
        "",
        "| zoo | listed | analysed | not buildable | covered | ran, ops uncounted | failed "
        "| covered % | target | ran % |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for zoo in ZOOS:
        rs = by_zoo.get(zoo, [])
        count = Counter(r.status for r in rs)
        buildable = len(rs) - count["unbuildable"]
        failed = buildable - count["ok"] - count["uncounted"]
        out.append(
            f"| {zoo} | {listed.get(zoo, '?')} | {len(rs)} | {count['unbuildable']} | "
            f"{count['ok']} | {count['uncounted']} | {failed} | {_pct(count['ok'], buildable)} | "
            f">= {TARGETS[zoo]:g}% | {_pct(count['ok'] + count['uncounted'], buildable)} |"
        )
    out += ["", "## Runs", ""]
    for run in runs:
        stopped = f" (stopped after {run['count']} of {run['planned']})" if run.get(
            "stopped") else ""
        out.append(
            f"- {run['started']} — zoo `{run['zoo']}`, {run['count']} models{stopped} in "
            f"{run['seconds'] / 60:.1f} min on {run['workers']} worker(s) "
            f"(timeout {run['timeout']:.0f} s; {run['machine']}): `{run['command']}`"
        )
    for zoo in ZOOS:
        rs = sorted(by_zoo.get(zoo, []), key=lambda r: r.name)
        if not rs:
            continue
        bad = [r for r in rs if r.status not in ("ok", "unbuildable")]
        unbuildable = [r for r in rs if r.status == "unbuildable"]
        seconds = sorted(r.seconds for r in rs)
        out += ["", f"## {zoo}", "",
                f"{len(rs)} analysed; median {seconds[len(seconds) // 2]:.1f} s, "
                f"slowest {seconds[-1]:.1f} s per model."]
        if not bad:
            out += ["", "Every analysed model that can be built is covered."]
        else:
            out += ["", "| reason | cause | models | count |", "| --- | --- | --- | ---: |"]
            out += _reason_rows(bad)
            noted = [r for r in bad if r.name in NOTES]
            if noted:
                out += ["", "Why, model by model:", ""]
                out += [f"- `{r.name}`: {NOTES[r.name]}" for r in noted]
        if unbuildable:
            out += ["", "Not buildable from a default config by transformers itself (outside "
                    "the target):", "", "| reason | cause | models | count |",
                    "| --- | --- | --- | ---: |"]
            out += _reason_rows(unbuildable)
        inference = [r for r in rs if r.mode == "inference"]
        if inference:
            out += ["", "Analysed in inference mode, having no training step (transformers runs "
                    "their forward under `torch.inference_mode`): "
                    + ", ".join(f"`{r.name}` ({r.status})" for r in inference) + "."]
        ops = Counter(op for r in rs for op, _ in r.uncounted)
        if ops:
            out += ["", "Uncounted ops (models that run them): "
                    + ", ".join(f"`{op}` ({n})" for op, n in ops.most_common())]
    return "\n".join(out) + "\n"


def _reason_rows(results: list[Result]) -> list[str]:
    """One table row per failure reason, the most frequent first."""
    groups: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        groups[reason_key(r)].append(r)
    rows = []
    for key, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        names = ", ".join(f"`{m.name}`" for m in members)
        rows.append(f"| {key.replace('|', '/')} | {_cause(key)} | {names} | {len(members)} |")
    return rows


def _listed() -> dict[str, int]:
    counts = {}
    for zoo in ZOOS:
        with contextlib.suppress(ImportError):
            counts[zoo] = len(cases(zoo))
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", choices=ZOOS, action="append",
                        help="zoo(s) to run (default: every installed zoo)")
    parser.add_argument("--filter", help="only names containing this (or matching a glob)")
    parser.add_argument("--only", type=lambda text: set(text.split(",")),
                        help="only these names (comma-separated)")
    parser.add_argument("--failed", action="store_true",
                        help="only models whose latest recorded result is not covered")
    parser.add_argument("--limit", type=int, help="at most this many models per zoo")
    parser.add_argument("--shuffle", action="store_true",
                        help="take models in a fixed random order (an unbiased sample with "
                             "--limit; --resume continues it)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds per model (default %(default)s)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="worker processes (0: run in this process, no timeout)")
    parser.add_argument("--mode", choices=("train", "inference"), default="train")
    parser.add_argument("--resume", action="store_true",
                        help="skip models already in the results file")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--markdown", type=Path, default=MARKDOWN)
    parser.add_argument("--report-only", action="store_true",
                        help="only rewrite the markdown from the results file")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops cleanly, like Ctrl-C

    if not args.report_only:
        known, _ = read_results(args.results)
        for zoo in args.zoo or ZOOS:
            try:
                todo = cases(zoo, args.filter, None)
            except ImportError as exc:
                print(f"{zoo}: skipped ({exc})", file=sys.stderr)
                continue
            if args.only is not None:
                todo = [c for c in todo if c.name in args.only]
            if args.failed:
                todo = [c for c in todo if (c.zoo, c.name) in known
                        and known[c.zoo, c.name].status != "ok"]
            if args.shuffle:
                random.Random(0).shuffle(todo)
            if args.resume:
                todo = [c for c in todo if (c.zoo, c.name) not in known]
            todo = todo[:args.limit] if args.limit is not None else todo
            began, wall = datetime.now(timezone.utc), time.perf_counter()
            finished: list[Result] = []
            stopped = False
            try:
                run_pool(todo, workers=args.workers, timeout=args.timeout, mode=args.mode,
                         on_result=_recorder(args.results, finished))
            except KeyboardInterrupt:
                stopped = True
            _append(args.results, {
                "kind": "run", "zoo": zoo, "count": len(finished), "planned": len(todo),
                "stopped": stopped, "started": began.strftime("%Y-%m-%d %H:%M UTC"),
                "seconds": time.perf_counter() - wall, "workers": args.workers,
                "timeout": args.timeout, "machine": _machine(),
                "command": "python benchmarks/coverage.py " + " ".join(argv or sys.argv[1:]),
            })
            if stopped:
                break
    results, runs = read_results(args.results)
    args.markdown.write_text(render(results, runs, _listed()))
    print(f"wrote {args.markdown}")
    return 0


def _recorder(path: Path, sink: list[Result]) -> Callable[[Result], None]:
    """Append each result to the results file (and `sink`) and print one line for it."""

    def record(result: Result) -> None:
        sink.append(result)
        _append(path, asdict(result))
        mark = {"ok": ".", "uncounted": "u", "unbuildable": "-"}.get(result.status, "F")
        print(f"{mark} {result.zoo}:{result.name} {result.seconds:.1f}s "
              f"{result.error or ''}"[:200], flush=True)

    return record


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _machine() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("torch", "torchvision", "timm", "transformers"):
        with contextlib.suppress(PackageNotFoundError):
            found.append(f"{package} {version(package)}")
    return f"{os.cpu_count()} CPU, Python {platform.python_version()}, {', '.join(found)}"


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent / "src"))
    if sys.argv[1:2] == ["--worker"]:
        worker_main(sys.argv[2])
    else:
        raise SystemExit(main())
