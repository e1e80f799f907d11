"""The layer-list pipeline (layerspec.analyze): torch-free, and identical to the torch
frontend on the article's VGG-16 and the separable example."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import memflops
from memflops.layerspec.analyze import analyze_spec

from .stand_ins import ROOT, VGG16, Add, Cat, write_spec

SEPARABLE = ROOT / "examples" / "separable_residual.yaml"


CONVENTIONS = ("exact", "2mac", "mac")


class SeparableResidual(nn.Module):
    """examples/separable_residual.yaml written by hand in PyTorch."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(32)
        self.stem_act = nn.ReLU(inplace=True)
        self.b1_dw = nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False)
        self.b1_dw_bn = nn.BatchNorm2d(32)
        self.b1_dw_act = nn.ReLU6(inplace=True)
        self.b1_pw = nn.Conv2d(32, 32, 1, bias=False)
        self.b1_pw_bn = nn.BatchNorm2d(32)
        self.b1_add = Add()
        self.b2_a = nn.Conv2d(32, 16, 1)
        self.b2_b1 = nn.Conv2d(32, 16, (1, 3), padding=(0, 1))
        self.b2_b2 = nn.Conv2d(16, 16, (3, 1), padding=(1, 0))
        self.b2_cat = Cat()
        self.b2_act = nn.Hardswish()
        self.b2_pool = nn.MaxPool2d(3, 2, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.stem_act(self.stem_bn(self.stem(x)))
        y = self.b1_dw_act(self.b1_dw_bn(self.b1_dw(stem)))
        y = self.b1_add(self.b1_pw_bn(self.b1_pw(y)), stem)
        a = self.b2_a(y)
        b = self.b2_b2(self.b2_b1(y))
        y = self.b2_pool(self.b2_act(self.b2_cat(b, a)))
        return self.head(self.drop(self.flat(self.pool(y))))  # type: ignore[no-any-return]


def test_spec_path_imports_no_torch() -> None:
    code = textwrap.dedent(f"""
        import sys
        import memflops.layerspec.analyze as spec
        report = spec.analyze_spec({str(VGG16)!r}, mode="train")
        assert report.totals.params == 138_357_544, report.totals.params
        print("torch" in sys.modules, sorted(m for m in sys.modules if m.startswith("torch"))[:3])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("False"), done.stdout


def test_spec_modules_import_no_torch_beyond_tensorspec() -> None:
    """The spec frontend's own imports are torch-free when `TensorSpec` is.

    `memflops.capture.inputs` (where `TensorSpec` lives) imports torch; this
    replaces it by a torch-free stand-in and blocks torch, so any other
    torch import on the spec path fails here.
    """
    code = textwrap.dedent(f"""
        import dataclasses, sys, types
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        stub = types.ModuleType("memflops.capture.inputs")
        stub.TensorSpec = dataclasses.make_dataclass("TensorSpec", ["shape", "dtype"])
        stub.dtype_name = lambda d: "default" if d is None else str(d)
        sys.modules["memflops.capture.inputs"] = stub
        import memflops.layerspec.analyze as spec
        report = spec.analyze_spec({str(VGG16)!r}, mode="train")
        print(report.totals.params, report.to_dict()["totals"]["flops"]["forward"])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    # train-mode forward: 30,960,205,824 (eval) + 16,384 for the two train dropouts
    assert done.stdout.split() == ["138357544", "30960222208"]


def test_cli_spec_path_runs_with_torch_blocked() -> None:
    """`memflops analyze spec.yaml` never imports torch (the issue's requirement)."""
    code = textwrap.dedent(f"""
        import json, sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        from memflops.cli import main
        code = main(["analyze", {str(VGG16)!r}, "--mode", "train", "--format", "json"])
        print("exit", code)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    report, _, tail = done.stdout.rpartition("exit")
    assert tail.split() == ["0"], done.stdout[-500:]
    assert json.loads(report)["totals"]["params"] == 138_357_544


def test_vgg16_article_numbers() -> None:
    report = analyze_spec(VGG16)
    rows = report.by_module()
    assert report.totals.params == 138_357_544
    assert report.to_dict()["inputs"] == [
        {"name": "input[0]", "shape": [1, 3, 224, 224], "dtype": "float32",
         "requires_grad": False, "lengths": None}
    ]
    assert rows["classifier"].params == 123_642_856  # FC layers hold 89% of the parameters
    assert rows["features.0"].forward.flops == 173_408_256  # 224*224*64 * 2*3*9
    assert rows["features.4"].forward.flops == 3_211_264  # 64*112*112 * 4
    assert rows["classifier.0"].forward.flops == 205_520_896  # 2*25088 * 4096
    assert rows["features"].forward.flops > 100 * rows["classifier"].forward.flops
    # feature map of features.0: 64*224*224 * 4 bytes; the in-place ReLU adds none
    assert rows["features.0"].activation_bytes == 12_845_056
    assert rows["features.1"].activation_bytes == 0


@pytest.mark.parametrize("mode", ["inference", "train"])
def test_vgg16_matches_torchvision(torchvision_vgg16: nn.Module, mode: str) -> None:
    spec = analyze_spec(VGG16, mode=mode, optimizer=None)
    ref = memflops.analyze(torchvision_vgg16, (1, 3, 224, 224), mode=mode,  # type: ignore[arg-type]
                           optimizer=None)
    assert spec.totals.params == ref.totals.params == 138_357_544
    for conv in CONVENTIONS:
        for phase in ("forward", "loss", "backward", None):
            assert spec.total(phase, conv) == ref.total(phase, conv), (conv, phase)
    assert spec.totals.costs == ref.totals.costs.arithmetic()  # a spec prices no bytes
    assert spec.uncounted_ops == ref.uncounted_ops == ()
    torch_rows = ref.by_module()
    itemsize = 4
    for row in spec.modules:
        if row.path == "flatten":  # torch.flatten in VGG.forward: a view, no module
            assert row.forward.flops == row.activation_bytes == 0
            continue
        other = torch_rows[row.path]
        assert (row.params, row.forward, row.backward, row.output_shape) == (
            other.params, other.forward.arithmetic, other.backward.arithmetic, other.output_shape
        ), row.path
        if row.type in ("Conv2d", "MaxPool2d", "Linear"):  # layers that write a new tensor
            shape = row.output_shape[0]
            assert row.activation_bytes == itemsize * shape[0] * shape[1] * (
                shape[2] * shape[3] if len(shape) == 4 else 1
            )
    assert ref.memory_detail is not None
    assert spec.by_module()[""].activation_bytes == ref.memory_detail.feature_maps
    assert spec.totals.memory.seed_estimate == ref.totals.memory.seed_estimate


def test_separable_example_shapes() -> None:
    report = analyze_spec(SEPARABLE)
    rows = report.by_module()
    # depthwise 3x3 over 32 channels at 16x16, batch 8, no bias:
    #   MACs 8*32*16*16 * 9 = 589,824; FLOPs 2*MACs - outputs = 1,179,648 - 65,536
    assert rows["b1_dw"].forward.macs == 589_824
    assert rows["b1_dw"].forward.flops == 1_114_112
    assert rows["b1_dw"].params == 288  # 32 * 1 * 3 * 3
    assert rows["b2_cat"].output_shape == ((8, 32, 16, 16),)
    assert rows["b2_pool"].output_shape == ((8, 32, 8, 8),)
    assert rows["head"].params == 330  # 10 * (32 + 1)


@pytest.mark.parametrize("mode", ["inference", "train"])
def test_separable_example_matches_hand_built_module(mode: str) -> None:
    spec = analyze_spec(SEPARABLE, mode=mode, optimizer=None)
    ref = memflops.analyze(SeparableResidual(), (8, 3, 32, 32), mode=mode,  # type: ignore[arg-type]
                           optimizer=None)
    assert spec.totals.params == ref.totals.params
    assert spec.totals.buffers == ref.totals.buffers
    for conv in CONVENTIONS:
        for phase in ("forward", "loss", "backward", None):
            assert spec.total(phase, conv) == ref.total(phase, conv), (conv, phase)
    torch_rows = ref.by_module()
    for row in spec.modules:
        other = torch_rows[row.path]
        assert (row.params, row.forward, row.backward, row.output_shape) == (
            other.params, other.forward.arithmetic, other.backward.arithmetic, other.output_shape
        ), row.path
    assert ref.memory_detail is not None
    assert spec.by_module()[""].activation_bytes == ref.memory_detail.feature_maps
    assert spec.totals.memory.seed_estimate == ref.totals.memory.seed_estimate
    assert spec.uncounted_ops == ref.uncounted_ops


def test_memory_is_the_article_estimate(tmp_path: Path) -> None:
    path = write_spec(tmp_path, """
        input: [3, 8, 8]
        batch: 4
        layers:
          - {type: conv, out: 2, kernel: 3, padding: 1}
          - {type: relu, inplace: true}
          - {type: flatten}
          - {type: fc, out: 5}
    """)
    # params: conv 2*(3*9+1) = 56, fc 5*(128+1) = 645 -> 701 * 4 bytes = 2,804
    # fresh feature maps: conv 4*2*8*8 = 512, fc 4*5 = 20 -> 532 * 4 bytes = 2,128
    inference = analyze_spec(path)
    assert inference.totals.memory.params == 2_804
    assert inference.totals.memory.seed_estimate == 2_804 + 2_128
    # Adam in training: 4x parameters + 2x feature maps = 11,216 + 4,256
    train = analyze_spec(path, mode="train", optimizer="adam")
    assert train.totals.memory.seed_estimate == 4 * 2_804 + 2 * 2_128
    # fp16 halves everything
    half = analyze_spec(path, dtype="fp16")
    assert half.totals.memory.seed_estimate == (2_804 + 2_128) // 2
    assert half.precision == "float16"
    assert analyze_spec(path, batch=8).totals.costs.forward.flops == (
        2 * inference.totals.costs.forward.flops
    )
