"""The layer-list spec frontend: torch-free, and identical to the torch frontend.

Identity is checked at three levels: call by call (every ATen call a spec
lowers to equals, op, arguments and output shapes, the call the capture
hands to a rule for the equivalent module, in order, with its module and
phase), then report by report for the article's VGG-16 against torchvision,
and for examples/separable_residual.yaml against a hand-built module.

Article arithmetic for VGG-16 at batch 1 (exact convention, bias everywhere):
  features.0  conv 3->64, 3x3 at 224x224: 224*224*64 * 2*3*9        =   173,408,256
  features.4  maxpool 2x2 to 64x112x112:  64*112*112 * 4            =     3,211,264
  classifier.0 fc 25088->4096:           2*25088 * 4096             =   205,520,896
  params: 14,714,688 conv + 123,642,856 FC                           =   138,357,544
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import memflops
from memflops.capture import costing, recorder
from memflops.capture.records import Phase
from memflops.errors import SpecError
from memflops.flops.registry import OpCost, op_name
from memflops.layerspec.analyze import analyze_spec, load_spec, trace_spec
from memflops.report.model import Report

ROOT = Path(__file__).resolve().parents[1]
VGG16 = ROOT / "examples" / "vgg16.yaml"
SEPARABLE = ROOT / "examples" / "separable_residual.yaml"
CONVENTIONS = ("exact", "2mac", "mac")


# --- the torch side ------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A captured argument as the spec writes it: dtypes, layouts, devices by name."""
    if isinstance(value, (torch.dtype, torch.layout, torch.memory_format)):
        return str(value).removeprefix("torch.")
    if isinstance(value, torch.device):
        return value.type
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return type(value)(_plain(v) for v in value) if type(value) is not tuple else tuple(
            _plain(v) for v in value
        )
    return value


def torch_calls(
    model: nn.Module, shape: tuple[int, ...], mode: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Report, list[tuple[str, Any, Any, bool, str, Phase]]]:
    """Analyse `model` and list every call the capture priced:
    (op, args, out, integer-only, module, phase)."""
    seen: list[tuple[str, Any, Any, bool]] = []
    real = recorder.cost_of

    def spy(func: Any, args: Any, kwargs: Any, out: Any) -> Any:
        seen.append((
            op_name(func),
            _plain(tuple(costing.to_shapes(costing.full_args(func, args, kwargs)))),
            _plain(costing.to_shapes(out)),
            costing.integer_only(args, kwargs, out),
        ))
        return real(func, args, kwargs, out)

    monkeypatch.setattr(recorder, "cost_of", spy)
    report = memflops.analyze(model, shape, mode=mode, optimizer=None)  # type: ignore[arg-type]
    monkeypatch.setattr(recorder, "cost_of", real)
    assert len(seen) == len(report.records)
    pairs = zip(seen, report.records, strict=True)
    return report, [(*call, rec.module, rec.phase) for call, rec in pairs]


def spec_calls(spec: Any, mode: str) -> list[tuple[str, Any, Any, bool, str, Phase]]:
    trace = trace_spec(spec, mode=mode)
    return [(c.op, tuple(c.args), c.out, c.integer, module, phase)
            for c, module, phase in trace.calls]


class Add(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Cat(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, 1)


def _module(kind: str, f: dict[str, Any], inputs: tuple[Any, ...], out: Any) -> nn.Module:
    """The PyTorch module a spec layer stands for (the inverse of the spec frontend)."""
    c = inputs[0][1]
    conv = {k: f.get(k) for k in ("stride", "padding", "dilation", "bias")}
    acts: dict[str, Any] = {
        "relu": lambda: nn.ReLU(f["inplace"]), "relu6": lambda: nn.ReLU6(f["inplace"]),
        "leaky_relu": lambda: nn.LeakyReLU(f["negative_slope"], f["inplace"]),
        "gelu": lambda: nn.GELU(approximate=f["approximate"]),
        "silu": lambda: nn.SiLU(f["inplace"]), "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
        "hardswish": lambda: nn.Hardswish(f["inplace"]),
        "hardsigmoid": lambda: nn.Hardsigmoid(f["inplace"]),
    }
    if kind in acts:
        return acts[kind]()  # type: ignore[no-any-return]
    if kind == "conv":
        return nn.Conv2d(c, f["out"], f["kernel"], groups=f["groups"], **conv)
    if kind == "dwconv":
        return nn.Conv2d(c, f["out"] or c, f["kernel"], groups=c, **conv)
    if kind == "bn":
        cls = nn.BatchNorm2d if len(inputs[0]) == 4 else nn.BatchNorm1d
        return cls(c, f["eps"], f["momentum"], f["affine"], f["track_running_stats"])
    if kind == "maxpool":
        return nn.MaxPool2d(f["kernel"], f["stride"], f["padding"], f["dilation"],
                            ceil_mode=f["ceil_mode"])
    if kind == "avgpool":
        return nn.AvgPool2d(f["kernel"], f["stride"], f["padding"], f["ceil_mode"],
                            f["count_include_pad"])
    if kind == "gap":
        return nn.AdaptiveAvgPool2d(1)
    if kind == "adaptive_avgpool":
        return nn.AdaptiveAvgPool2d(f["out"])
    if kind == "flatten":
        return nn.Flatten()
    if kind == "fc":
        return nn.Linear(c, f["out"], f["bias"])
    if kind == "dropout":
        return nn.Dropout(f["p"], f["inplace"])
    return Add() if kind == "add" else Cat()


class SpecNet(nn.Module):
    """A generic torch twin of a spec: one submodule per layer, named as the layer."""

    def __init__(self, spec: Any) -> None:
        super().__init__()
        self.spec = spec
        for r in trace_spec(spec).layers:
            self.add_module(r.layer.name, _module(r.layer.type, dict(r.layer.fields), r.inputs,
                                                  r.lowered.out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {"input": x}
        current = x
        for layer in self.spec.layers:
            first = current if layer.input is None else values[layer.input]
            operands = [first, *(values[r] for r in layer.fields.get("from", ()))]
            current = getattr(self, layer.name)(*operands)
            values[layer.name] = current
            values.setdefault(str(layer.index), current)
        return current


def write_spec(tmp_path: Path, text: str, name: str = "net.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# --- torch-free ------------------------------------------------------------------


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


# --- the article's VGG-16 ----------------------------------------------------------


@pytest.fixture(scope="module")
def torchvision_vgg16() -> nn.Module:
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):
        model: nn.Module = torchvision.models.vgg16()
    # torchvision's AdaptiveAvgPool2d(7) is the identity at 224x224 and not in the paper.
    model.avgpool = nn.Identity()
    return model


def test_vgg16_article_numbers() -> None:
    report = analyze_spec(VGG16)
    rows = report.by_module()
    assert report.totals.params == 138_357_544
    assert report.to_dict()["inputs"] == [
        {"name": "input[0]", "shape": [1, 3, 224, 224], "dtype": "float32"}
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
    assert spec.totals.costs == ref.totals.costs
    assert spec.uncounted_ops == ref.uncounted_ops == ()
    torch_rows = ref.by_module()
    itemsize = 4
    for row in spec.modules:
        if row.path == "flatten":  # torch.flatten in VGG.forward: a view, no module
            assert row.forward.flops == row.activation_bytes == 0
            continue
        other = torch_rows[row.path]
        assert (row.params, row.forward, row.backward, row.output_shape) == (
            other.params, other.forward, other.backward, other.output_shape
        ), row.path
        if row.type in ("Conv2d", "MaxPool2d", "Linear"):  # layers that write a new tensor
            shape = row.output_shape[0]
            assert row.activation_bytes == itemsize * shape[0] * shape[1] * (
                shape[2] * shape[3] if len(shape) == 4 else 1
            )
    assert ref.memory_detail is not None
    assert spec.by_module()[""].activation_bytes == ref.memory_detail.feature_maps
    assert spec.totals.memory.seed_estimate == ref.totals.memory.seed_estimate


def test_vgg16_calls_match_torchvision(
    torchvision_vgg16: nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, calls = torch_calls(torchvision_vgg16, (1, 3, 224, 224), "train", monkeypatch)
    assert spec_calls(load_spec(VGG16), "train") == calls


# --- every layer type, call by call ------------------------------------------------

LAYER_SPECS = {
    "conv-bn-pools": """
        input: [3, 9, 9]
        batch: 2
        layers:
          - {type: conv, out: 8, kernel: 3, padding: 1, bias: false}
          - {type: bn}
          - {type: relu, inplace: true}
          - {type: maxpool, kernel: 3, stride: 2, padding: 1, ceil_mode: true}
          - {type: conv, out: 8, kernel: [1, 3], stride: [1, 2], dilation: 2, padding: [0, 2]}
          - {type: bn, affine: false, momentum: 0.2, eps: 1e-3}
          - {type: avgpool, kernel: 2, ceil_mode: true, count_include_pad: false}
          - {type: dwconv, kernel: 3, padding: 1, out: 16}
          - {type: bn, track_running_stats: false}
          - {type: adaptive_avgpool, out: [2, 1]}
          - {type: flatten}
          - {type: fc, out: 5, bias: false}
          - {type: bn}
          - {type: fc, out: 3}
    """,
    "activations": """
        input: [4, 3, 3]
        batch: 2
        layers:
          - {type: conv, out: 4, kernel: 1}
          - {type: relu6, inplace: true}
          - {type: conv, out: 4, kernel: 1}
          - {type: leaky_relu, negative_slope: 0.2, inplace: true}
          - {type: silu}
          - {type: hardswish, inplace: true}
          - {type: gelu, approximate: tanh}
          - {type: hardsigmoid, inplace: true}
          - {type: sigmoid}
          - {type: tanh}
          - {type: relu}
          - {type: conv, out: 4, kernel: 1}
          - {type: silu, inplace: true}
          - {type: leaky_relu}
          - {type: hardswish}
          - {type: hardsigmoid}
          - {type: relu6}
          - {type: gap}
          - {type: flatten}
          - {type: dropout, p: 0.25}
          - {type: fc, out: 2}
          - {type: dropout, inplace: true}
    """,
    "graph": """
        input: [3, 6, 6]
        batch: 2
        layers:
          - {type: relu}
          - {name: a, type: conv, out: 4, kernel: 3, padding: 1}
          - {name: b, type: conv, out: 4, kernel: 1}
          - {name: unused, type: conv, input: a, out: 2, kernel: 1}
          - {name: c, type: conv, input: a, out: 4, kernel: 1}
          - {name: s, type: add, from: [b, a]}
          - {name: d, type: concat, input: a, from: [s, c, a]}
          - {type: maxpool, kernel: 2}
          - {type: flatten}
          - {type: dropout, p: 0.0}
          - {name: f1, type: fc, out: 6}
          - {name: f2, type: fc, input: f1, out: 6}
          - {type: add, from: [f1, f1]}
    """,
    "input-first": """
        input: [12]
        batch: 3
        layers:
          - {type: flatten}
          - {type: dropout, p: 0.5}
          - {type: fc, out: 4, bias: false}
          - {type: relu, inplace: true}
          - {type: fc, out: 4}
    """,
}


@pytest.mark.parametrize("mode", ["inference", "train"])
@pytest.mark.parametrize("name", list(LAYER_SPECS))
def test_layers_match_torch_call_by_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, mode: str
) -> None:
    spec = load_spec(write_spec(tmp_path, LAYER_SPECS[name]))
    report, calls = torch_calls(SpecNet(spec), (spec.batch, *spec.input), mode, monkeypatch)
    assert spec_calls(spec, mode) == calls
    ours = analyze_spec(spec, mode=mode, optimizer=None)
    assert ours.totals.costs == report.totals.costs
    assert ours.uncounted_ops == report.uncounted_ops
    assert (ours.totals.params, ours.totals.buffers) == (report.totals.params,
                                                         report.totals.buffers)
    assert ours.totals.memory.buffers == report.totals.memory.buffers
    assert report.memory_detail is not None
    assert ours.by_module()[""].activation_bytes == report.memory_detail.feature_maps


def test_batch_norm_counter_is_an_integer_call_at_zero_flops(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, """
        input: [4, 5, 5]
        batch: 2
        layers:
          - {type: bn}
    """))
    calls = spec_calls(spec, "train")
    # num_batches_tracked += 1 on int64, and the empty uint8 reserve (0 by its rule anyway)
    assert [c[0] for c in calls if c[3]] == ["aten.add_", "aten.empty"]
    report = analyze_spec(spec, mode="train", optimizer=None)
    # 5 * B*H*W*C = 5 * 2*5*5*4 = 1,000: no +1 for the int64 counter (was 1,001)
    assert report.total("forward") == 1_000
    (counter,) = [r for r in report.records if r.op == "aten.add_"]
    assert counter.cost == OpCost()  # priced at zero, so not uncounted
    assert report.uncounted_ops == ()


def test_graph_backward_accumulates_gradients(tmp_path: Path) -> None:
    """A tensor read k times gets k gradients and k - 1 adds, charged to the sender.

    In the "graph" spec, `a` is read by b, c, s = c + b + a, and d = cat(a, s, c, a):
    five gradients, four adds; `c` is read by s and d: one add. Autograd runs the
    latest node first (d, s, c, b), and each node sends its gradients in operand
    order (s is two add nodes: (c + b) + a sends to a first, then c, then b), so
    the adds are charged to d (a), s (a), s (c), c (a), b (a). The unused branch
    gets no backward; the first conv's input (relu of the input) needs no gradient.
    """
    trace = trace_spec(write_spec(tmp_path, LAYER_SPECS["graph"]), mode="train")
    adds = [m for c, m, p in trace.calls
            if p is Phase.BACKWARD and c.op == "aten.add" and c.out == (2, 4, 6, 6)]
    assert adds == ["d", "s", "s", "c", "b"]
    backward_modules = {m for _, m, p in trace.calls if p is Phase.BACKWARD}
    assert "unused" not in backward_modules
    first_conv = next(c for c, m, p in trace.calls if c.op == "aten.convolution_backward"
                      and m == "a")
    assert first_conv.args[-1] == [False, True, True]  # no grad_input: relu(input) needs none


# --- the separable/residual example against a hand-built module -----------------------


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
            other.params, other.forward, other.backward, other.output_shape
        ), row.path
    assert ref.memory_detail is not None
    assert spec.by_module()[""].activation_bytes == ref.memory_detail.feature_maps
    assert spec.totals.memory.seed_estimate == ref.totals.memory.seed_estimate
    assert spec.uncounted_ops == ref.uncounted_ops


# --- memory and options ----------------------------------------------------------------


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


def test_json_spec(tmp_path: Path) -> None:
    path = tmp_path / "net.json"
    path.write_text(json.dumps({"input": [4], "layers": [{"type": "fc", "out": 2}]}))
    # (1, 4) @ (4, 2) + bias: 2 * 4 * 2 = 16 FLOPs
    assert analyze_spec(path).totals.costs.forward.flops == 16


# --- broken specs: one line naming file, line, layer and field ------------------------


def _error(tmp_path: Path, text: str, mode: str = "inference") -> str:
    path = write_spec(tmp_path, text, "broken.yaml")
    with pytest.raises(SpecError) as info:
        analyze_spec(path, mode=mode)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message.removeprefix(str(path))


HEAD = """
    input: [3, 8, 8]
    layers:
      - {type: conv, out: 4, kernel: 3}
"""


def test_unknown_layer_type(tmp_path: Path) -> None:
    message = _error(tmp_path, HEAD + "      - {type: convv, out: 4, kernel: 3}\n")
    assert message.startswith(":5: layers[1] field 'type': unknown layer type 'convv'")
    assert "did you mean 'conv'" in message


def test_missing_field(tmp_path: Path) -> None:
    message = _error(tmp_path, HEAD + "      - type: conv\n        out: 4\n")
    assert message.startswith(":5: layers[1] (conv) field 'kernel': missing")


def test_unknown_field(tmp_path: Path) -> None:
    message = _error(tmp_path, HEAD + "      - type: conv\n        out: 4\n        kernal: 3\n")
    assert message.startswith(":7: layers[1] (conv) field 'kernal': unknown field")
    assert "did you mean 'kernel'" in message


def test_wrong_type(tmp_path: Path) -> None:
    message = _error(tmp_path, HEAD + "      - {type: conv, out: four, kernel: 3}\n")
    assert message.startswith(":5: layers[1] (conv) field 'out': expected an integer >= 1")


def test_kernel_larger_than_padded_input(tmp_path: Path) -> None:
    # after the first conv: 6x6; a 9x9 kernel with padding 1 sees 6 + 2*1 = 8
    message = _error(tmp_path, HEAD + "      - {type: conv, out: 4, kernel: 9, padding: 1}\n")
    assert message == (
        ":5: layers[1] (conv) field 'kernel': kernel 9 is larger than the padded input "
        "height 6 + 2*1 = 8"
    )


def test_fc_input_size_mismatch(tmp_path: Path) -> None:
    message = _error(tmp_path, HEAD + "      - {type: flatten}\n"
                                      "      - {type: fc, in: 100, out: 10}\n")
    # 4 * 6 * 6 = 144 features
    assert message == (
        ":6: layers[2] (fc) field 'in': says 100 input features, but the previous layer gives 144"
    )


def test_fc_needs_flat_input(tmp_path: Path) -> None:
    message = _error(tmp_path, HEAD + "      - {type: fc, out: 10}\n")
    assert message.startswith(":5: layers[1] (fc): an fc layer needs a flat input")


def test_add_of_mismatched_shapes(tmp_path: Path) -> None:
    message = _error(tmp_path, HEAD + "      - {type: add, from: input}\n")
    assert message.startswith(":5: layers[1] (add) field 'from': cannot add shapes "
                              "[1, 4, 6, 6] and [1, 3, 8, 8]")


def test_unknown_reference(tmp_path: Path) -> None:
    message = _error(tmp_path, HEAD + "      - {type: add, from: stme}\n")
    assert message.startswith(":5: layers[1] (add) field 'from': 'stme' names no earlier layer")


def test_overwritten_reference(tmp_path: Path) -> None:
    message = _error(tmp_path, HEAD + "      - {name: act, type: relu, inplace: true}\n"
                                      "      - {type: add, from: 0}\n")
    assert message.startswith(":6: layers[2] (add) field 'from': the output of '0' was "
                              "overwritten in place by layers[1]")


def test_inplace_over_a_saved_tensor_in_train(tmp_path: Path) -> None:
    # relu keeps its output for backward; writing over it in place breaks the backward
    text = HEAD + "      - {type: relu}\n      - {type: relu, inplace: true}\n"
    message = _error(tmp_path, text, mode="train")
    assert message.startswith(":6: layers[2] (relu) field 'inplace': overwrites a tensor that "
                              "layers[1] keeps")
    assert analyze_spec(write_spec(tmp_path, text, "ok.yaml")).totals.params == 112


def test_top_level_errors(tmp_path: Path) -> None:
    assert _error(tmp_path, "layers: []\n").startswith(":1: field 'input': missing")
    assert _error(tmp_path, "input: [3, 8, 8]\nlayers: []\n").startswith(
        ":2: field 'layers': expected a non-empty list"
    )
    assert _error(tmp_path, "input: [3, 8, 8]\nlayer: []\n").startswith(
        ":2: field 'layer': unknown top-level field; did you mean 'layers'?"
    )
    assert ": not valid YAML" in _error(tmp_path, "input: [3, 8\n")


def test_json_errors_name_index_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"input": [4], "layers": [{"type": "fc"}]}))
    with pytest.raises(SpecError, match=r"bad\.json: layers\[0\] \(fc\) field 'out': missing"):
        load_spec(path)
