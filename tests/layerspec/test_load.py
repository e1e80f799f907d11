"""Reading a layer-list spec (layerspec.load): every problem is one line naming file,
line, layer and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memflops.errors import SpecError
from memflops.layerspec.analyze import analyze_spec, load_spec

from .stand_ins import HEAD, spec_error


def test_json_spec(tmp_path: Path) -> None:
    path = tmp_path / "net.json"
    path.write_text(json.dumps({"input": [4], "layers": [{"type": "fc", "out": 2}]}))
    # (1, 4) @ (4, 2) + bias: 2 * 4 * 2 = 16 FLOPs
    assert analyze_spec(path).totals.costs.forward.flops == 16


def test_unknown_layer_type(tmp_path: Path) -> None:
    message = spec_error(tmp_path, HEAD + "      - {type: convv, out: 4, kernel: 3}\n")
    assert message.startswith(":5: layers[1] field 'type': unknown layer type 'convv'")
    assert "did you mean 'conv'" in message


def test_missing_field(tmp_path: Path) -> None:
    message = spec_error(tmp_path, HEAD + "      - type: conv\n        out: 4\n")
    assert message.startswith(":5: layers[1] (conv) field 'kernel': missing")


def test_unknown_field(tmp_path: Path) -> None:
    message = spec_error(tmp_path, HEAD + "      - type: conv\n        out: 4\n        kernal: 3\n")
    assert message.startswith(":7: layers[1] (conv) field 'kernal': unknown field")
    assert "did you mean 'kernel'" in message


def test_wrong_type(tmp_path: Path) -> None:
    message = spec_error(tmp_path, HEAD + "      - {type: conv, out: four, kernel: 3}\n")
    assert message.startswith(":5: layers[1] (conv) field 'out': expected an integer >= 1")


def test_top_level_errors(tmp_path: Path) -> None:
    assert spec_error(tmp_path, "layers: []\n").startswith(":1: field 'input': missing")
    assert spec_error(tmp_path, "input: [3, 8, 8]\nlayers: []\n").startswith(
        ":2: field 'layers': expected a non-empty list"
    )
    assert spec_error(tmp_path, "input: [3, 8, 8]\nlayer: []\n").startswith(
        ":2: field 'layer': unknown top-level field; did you mean 'layers'?"
    )
    assert ": not valid YAML" in spec_error(tmp_path, "input: [3, 8\n")


def test_json_errors_name_index_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"input": [4], "layers": [{"type": "fc"}]}))
    with pytest.raises(SpecError, match=r"bad\.json: layers\[0\] \(fc\) field 'out': missing"):
        load_spec(path)
