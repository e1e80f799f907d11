"""The benchmark cases, and the code one case runs inside its own process.

A case has three timed phases: `load` (imports), `build` (the model, on the
meta device) and `analyze` (one `memflops.analyze` call). Nothing heavy is
imported at module level, so that the `load` phase really holds the imports.
`bench_analysis.py` runs `child_main(name)` in a fresh interpreter per run;
`profile_analysis.py` runs the phases in-process under cProfile.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

MARK = "MEMFLOPS_BENCH "
GB = 10**9  # targets are in decimal gigabytes


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    load: Callable[[], None]  # the imports the case needs
    build: Callable[[], nn.Module | None]  # None: no model (import-only floor)
    analyze: Callable[[nn.Module], Any]  # returns the Report
    max_wall_s: float | None = None  # target for the whole process
    max_rss_bytes: int | None = None  # target for the whole process
    params: int | None = None  # the parameter count the report must give


def _load_torch() -> None:
    import torch  # noqa: F401


def _load_engine() -> None:
    import torch  # noqa: F401

    import memflops  # noqa: F401


def _load_vision() -> None:
    _load_engine()
    import torchvision  # noqa: F401


def _load_decoder() -> None:
    _load_engine()
    import benchmarks.models  # noqa: F401


def _no_model() -> None:
    return None


def _no_analysis(model: nn.Module) -> None:
    return None


def _tiny() -> nn.Module:
    import torch

    return torch.nn.Linear(4, 4)


def _analyze_tiny(model: nn.Module) -> Any:
    import memflops

    return memflops.analyze(model, (2, 4), mode="train")


def _torchvision(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torch
        import torchvision

        with torch.device("meta"):
            model: nn.Module = torchvision.models.get_model(name, weights=None)
        return model

    return build


def _analyze_image(model: nn.Module) -> Any:
    import memflops

    return memflops.analyze(model, (32, 3, 224, 224), mode="train")


def _build_decoder() -> nn.Module:
    from benchmarks.models import build_decoder

    return build_decoder()


def _analyze_decoder(model: nn.Module) -> Any:
    import memflops

    return memflops.analyze(model, {"input_ids": (1, 4096)}, mode="train")


CASES = (
    Case(
        "floor: import torch",
        "`import torch` alone: the least any torch tool pays",
        _load_torch, _no_model, _no_analysis,
    ),
    Case(
        "floor: memflops engine",
        "`import torch, memflops` and one train analysis of nn.Linear(4, 4): torch plus "
        "what the first analysis imports (FakeTensorMode imports torch._dynamo and sympy)",
        _load_engine, _tiny, _analyze_tiny,
    ),
    Case(
        "floor: + torchvision",
        "the engine floor plus `import torchvision`, as the vision cases pay",
        _load_vision, _tiny, _analyze_tiny,
    ),
    Case(
        "resnet50",
        "torchvision resnet50, batch 32, 3x224x224, train (analyze's defaults: Adam)",
        _load_vision, _torchvision("resnet50"), _analyze_image,
        max_wall_s=3.0,
    ),
    Case(
        "vit_b_16",
        "torchvision vit_b_16, batch 32, 3x224x224, train (analyze's defaults: Adam)",
        _load_vision, _torchvision("vit_b_16"), _analyze_image,
    ),
    Case(
        "llama2-70b shape",
        "benchmarks/models.py decoder with Llama-2-70B shapes (68,976,648,192 params), "
        "batch 1, seq 4096, input_ids int64, train (analyze's defaults: Adam)",
        _load_decoder, _build_decoder, _analyze_decoder,
        max_wall_s=10.0,
        max_rss_bytes=2 * GB,
        params=68_976_648_192,  # benchmarks.models.LLAMA2_70B_PARAMS
    ),
)

BY_NAME = {case.name: case for case in CASES}


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024  # the kernel reports kB
    return 0


def child_main(name: str, t0: float) -> None:
    """Run one case's phases and print their times as one JSON line.

    `t0` is `time.perf_counter()` taken as the first statement of the child.
    """
    case = BY_NAME[name]
    case.load()
    t1 = time.perf_counter()
    model = case.build()
    t2 = time.perf_counter()
    rss_before = _rss_bytes()
    report = None if model is None else case.analyze(model)
    t3 = time.perf_counter()
    result = {
        "import_s": t1 - t0,
        "build_s": t2 - t1,
        "analyze_s": t3 - t2,
        "rss_before_analyze": rss_before,
        "params": None if report is None else report.totals.params,
    }
    print(MARK + json.dumps(result), flush=True)
