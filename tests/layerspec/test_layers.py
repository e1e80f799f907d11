"""Lowering layers to ATen calls (layerspec.layers), call by call against torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import memflops
from memflops.capture import costing, recorder
from memflops.capture.records import Phase
from memflops.flops.registry import OpCost, op_name
from memflops.layerspec.analyze import analyze_spec, load_spec, trace_spec
from memflops.report.model import Report

from .stand_ins import LAYER_SPECS, VGG16, Add, Cat, write_spec


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
    real = recorder.price

    def spy(func: Any, name: str, args: Any, kwargs: Any, out: Any) -> Any:
        seen.append((
            op_name(func),
            _plain(tuple(costing.to_shapes(costing.full_args(func, args, kwargs)))),
            _plain(costing.to_shapes(out)),
            costing.integer_only(args, kwargs, out),
        ))
        return real(func, name, args, kwargs, out)

    monkeypatch.setattr(recorder, "price", spy)
    report = memflops.analyze(model, shape, mode=mode, optimizer=None)  # type: ignore[arg-type]
    monkeypatch.setattr(recorder, "price", real)
    assert len(seen) == len(report.records)
    pairs = zip(seen, report.records, strict=True)
    return report, [(*call, rec.module, rec.phase) for call, rec in pairs]


def spec_calls(spec: Any, mode: str) -> list[tuple[str, Any, Any, bool, str, Phase]]:
    trace = trace_spec(spec, mode=mode)
    return [(c.op, tuple(c.args), c.out, c.integer, module, phase)
            for c, module, phase in trace.calls]


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


def test_vgg16_calls_match_torchvision(
    torchvision_vgg16: nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, calls = torch_calls(torchvision_vgg16, (1, 3, 224, 224), "train", monkeypatch)
    assert spec_calls(load_spec(VGG16), "train") == calls


@pytest.mark.parametrize("mode", ["inference", "train"])
@pytest.mark.parametrize("name", list(LAYER_SPECS))
def test_layers_match_torch_call_by_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, mode: str
) -> None:
    spec = load_spec(write_spec(tmp_path, LAYER_SPECS[name]))
    report, calls = torch_calls(SpecNet(spec), (spec.batch, *spec.input), mode, monkeypatch)
    assert spec_calls(spec, mode) == calls
    ours = analyze_spec(spec, mode=mode, optimizer=None)
    assert ours.totals.costs == report.totals.costs.arithmetic()  # a spec prices no bytes
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
    assert counter.cost.arithmetic == OpCost()  # priced at zero, so not uncounted
    assert report.uncounted_ops == ()
