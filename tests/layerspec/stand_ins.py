"""Stand-ins and helpers shared by these tests: spec files written, the torch modules a
layer list stands for, paths of the examples."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from memflops.errors import SpecError
from memflops.layerspec.analyze import analyze_spec


def write_spec(tmp_path: Path, text: str, name: str = "net.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


ROOT = Path(__file__).resolve().parents[2]


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


VGG16 = ROOT / "examples" / "vgg16.yaml"


def spec_error(tmp_path: Path, text: str, mode: str = "inference") -> str:
    path = write_spec(tmp_path, text, "broken.yaml")
    with pytest.raises(SpecError) as info:
        analyze_spec(path, mode=mode)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message.removeprefix(str(path))


class Add(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


HEAD = """
    input: [3, 8, 8]
    layers:
      - {type: conv, out: 4, kernel: 3}
"""


class Cat(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, 1)
