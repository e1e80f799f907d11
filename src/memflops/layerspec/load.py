"""Read a layer-list spec (YAML or JSON) and check every field.

A spec describes a network layer by layer, as a paper's table does::

    name: vgg16             # optional
    input: [3, 224, 224]    # one sample: (C, H, W) or (features,)
    batch: 1                # optional, default 1
    dtype: float32          # optional: float32, float16, bfloat16, float64
    layers:
      - {type: conv, out: 64, kernel: 3, padding: 1}
      - {type: relu, inplace: true}
      - {type: maxpool, kernel: 2}

Each layer takes the previous layer's output, or the output of the layer
named in `input:` (`input` itself names the network input). `add` and
`concat` combine that tensor with the outputs of the layers named in
`from:`, in that order. A layer is named by `name:`, or by its index.
`fields.LAYER_FIELDS` lists every type, its fields and their defaults.

Every problem raises `SpecError` with one line naming the file, the YAML
line, the layer index and the field. This module does not import torch.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from memflops.errors import SpecError
from memflops.files import MAX_DEPTH, load_json, read_text, too_deep
from memflops.layerspec.fields import (
    ALIASES,
    COMMON_FIELDS,
    LAYER_FIELDS,
    REQUIRED,
    TOP_FIELDS,
    is_int,
    ref,
)

ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}
DTYPE_ALIASES = {
    "fp32": "float32", "float": "float32", "fp16": "float16", "half": "float16",
    "bf16": "bfloat16", "fp64": "float64", "double": "float64",
}
INPUT_NAME = "input"
"""The name by which `input:` and `from:` refer to the network input."""


# --- where a value came from -------------------------------------------------


class _LocatedDict(dict[str, Any]):
    """A mapping read from YAML that remembers the line of each key."""

    line: int | None = None
    key_lines: dict[str, int]


class _Loader(yaml.SafeLoader):  # type: ignore[misc]
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LocatedDict:
    mapping = _LocatedDict(
        {str(key): value for key, value in loader.construct_mapping(node, deep=True).items()}
    )
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {
        str(key.value): key.start_mark.line + 1 for key, _ in node.value
    }
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _line_of(mapping: Any, key: str | None = None) -> int | None:
    if not isinstance(mapping, _LocatedDict):
        return None
    if key is not None and key in mapping.key_lines:
        return mapping.key_lines[key]
    return mapping.line


# --- the parsed spec ---------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """Where a layer sits: the file, its index and its YAML line (None for JSON)."""

    file: str
    index: int | None = None
    type: str | None = None
    line: int | None = None
    key_lines: Mapping[str, int] | None = None

    def error(self, field: str | None, problem: str) -> SpecError:
        """A one-line `SpecError`: `file:line: layers[i] (type) field 'f': problem`."""
        line = self.line
        if field is not None and self.key_lines and field in self.key_lines:
            line = self.key_lines[field]
        head = f"{self.file}:{line}" if line is not None else self.file
        what = []
        if self.index is not None:
            what.append(f"layers[{self.index}]" + (f" ({self.type})" if self.type else ""))
        if field is not None:
            what.append(f"field '{field}'")
        return SpecError(f"{head}: {' '.join(what)}: {problem}" if what else f"{head}: {problem}")


@dataclass(frozen=True)
class Layer:
    """One layer: its type, name, where it is written, and every field with defaults filled."""

    type: str
    name: str
    index: int
    input: str | None
    fields: Mapping[str, Any]
    where: Where

    def __getitem__(self, field: str) -> Any:
        return self.fields[field]

    def error(self, field: str | None, problem: str) -> SpecError:
        return self.where.error(field, problem)


@dataclass(frozen=True)
class Spec:
    """A whole layer-list spec, checked field by field (shapes are checked by the analysis)."""

    name: str
    file: str
    input: tuple[int, ...]
    batch: int
    dtype: str
    layers: tuple[Layer, ...]

    @property
    def itemsize(self) -> int:
        return ITEMSIZE[self.dtype]


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=2, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


# --- reading -----------------------------------------------------------------


MAX_NODES = 100_000
"""Values a YAML spec may hold once its aliases are expanded (VGG-16's spec holds ~300).
An alias bomb (`b: [*a, *a, ...]` nested) is refused before anything is built from it."""


def _read(path: Path, label: str) -> Any:
    text = read_text(path, label)
    if path.suffix.lower() == ".json":
        return load_json(text, label)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expanded(node, label)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{label}:{mark.line + 1}" if mark is not None else label
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{where}: not valid YAML: {problem}") from exc
    except RecursionError as exc:
        raise too_deep(label) from exc
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_expanded(root: yaml.Node, label: str) -> None:
    """The document's size with every alias expanded, and its depth, within bounds; counted
    on the node graph (an alias is a shared node), bottom-up, without expanding it."""
    size: dict[int, int] = {}
    level: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in size:
            continue
        children = _children(node)
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in size)
            continue
        size[id(node)] = 1 + sum(size[id(c)] for c in children)
        level[id(node)] = 1 + max((level[id(c)] for c in children), default=0)
        if level[id(node)] > MAX_DEPTH:
            raise too_deep(label)
        if size[id(node)] > MAX_NODES:
            line = node.start_mark.line + 1
            raise SpecError(
                f"{label}:{line}: more than {MAX_NODES:,} values once its aliases (*name) are "
                f"expanded; a layer list needs a few hundred (an alias bomb?)"
            )


def _shape(value: Any, where: Where, field: str) -> tuple[int, ...]:
    if (
        not isinstance(value, list)
        or not value
        or not all(is_int(d) and d >= 1 for d in value)
    ):
        raise where.error(
            field, f"expected the shape of one sample as a list of sizes >= 1, e.g. "
            f"[3, 224, 224] or [784], got {value!r:.80}"
        )
    return tuple(int(d) for d in value)


def _layer(raw: Any, index: int, label: str, names: set[str]) -> Layer:
    where = Where(label, index, line=_line_of(raw),
                  key_lines=raw.key_lines if isinstance(raw, _LocatedDict) else None)
    if not isinstance(raw, dict):
        raise where.error(None, f"expected a mapping such as {{type: conv, out: 64, kernel: 3}}, "
                                f"got {type(raw).__name__}")
    if "type" not in raw:
        raise where.error("type", f"missing; expected one of: {', '.join(LAYER_FIELDS)}")
    written = raw["type"]
    if not isinstance(written, str):
        raise where.error("type", f"expected a string, got {written!r:.80}")
    kind = ALIASES.get(written.lower(), written.lower())
    if kind not in LAYER_FIELDS:
        known = list(LAYER_FIELDS) + list(ALIASES)
        raise where.error(
            "type", f"unknown layer type {written!r:.80}{_did_you_mean(written.lower(), known)} "
            f"(known: {', '.join(LAYER_FIELDS)})"
        )
    where = Where(label, index, kind, where.line, where.key_lines)
    schema = LAYER_FIELDS[kind]
    for key in raw:
        if key not in schema and key not in COMMON_FIELDS:
            allowed = [*COMMON_FIELDS, *schema]
            raise where.error(
                str(key), f"unknown field{_did_you_mean(str(key), allowed)} "
                f"(a {kind} layer takes: {', '.join(allowed)})"
            )
    fields: dict[str, Any] = {}
    for key, (check, default) in schema.items():
        if key not in raw:
            if default is REQUIRED:
                raise where.error(key, f"missing; a {kind} layer needs it")
            fields[key] = default if default is None else check(default)
            continue
        try:
            fields[key] = check(raw[key])
        except (ValueError, TypeError) as exc:
            raise where.error(key, f"{exc}, got {raw[key]!r:.80}") from None
    name = raw.get("name", str(index))
    if not isinstance(name, (str, int)) or isinstance(name, bool) or not str(name):
        raise where.error("name", f"expected a non-empty string, got {name!r:.80}")
    name = str(name)
    if name in names or name == INPUT_NAME:
        raise where.error("name", f"{name!r:.80} is already taken; names must be unique "
                                  f"({INPUT_NAME!r:.80} is the network input)")
    source = raw.get("input")
    if source is not None:
        try:
            source = ref(source)
        except (ValueError, TypeError) as exc:
            raise where.error("input", f"{exc}, got {source!r:.80}") from None
    return Layer(kind, name, index, source, fields, where)


def parse_spec(data: Any, label: str) -> Spec:
    """Check a spec already read into Python values (`label` names it in errors)."""
    top = Where(label, line=_line_of(data))
    if not isinstance(data, dict):
        raise top.error(None, "expected a mapping with 'input' and 'layers'")
    top = Where(label, line=_line_of(data), key_lines=getattr(data, "key_lines", None))
    for key in data:
        if key not in TOP_FIELDS:
            hint = _did_you_mean(str(key), list(TOP_FIELDS))
            raise top.error(str(key), f"unknown top-level field{hint} "
                                      f"(expected: {', '.join(TOP_FIELDS)})")
    if "input" not in data:
        raise top.error("input", "missing; give the shape of one sample, e.g. [3, 224, 224]")
    shape = _shape(data["input"], top, "input")
    batch = data.get("batch", 1)
    if not is_int(batch) or batch < 1:
        raise top.error("batch", f"expected an integer >= 1, got {batch!r:.80}")
    dtype = data.get("dtype", "float32")
    dtype = DTYPE_ALIASES.get(dtype, dtype) if isinstance(dtype, str) else dtype
    if not isinstance(dtype, str) or dtype not in ITEMSIZE:
        raise top.error("dtype", f"expected one of: {', '.join(ITEMSIZE)}, got {dtype!r:.60}")
    name = data.get("name", Path(label).stem)
    if not isinstance(name, str):
        raise top.error("name", f"expected a string, got {name!r:.80}")
    raw_layers = data.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise top.error("layers", "expected a non-empty list of layers")
    layers: list[Layer] = []
    names: set[str] = set()
    for i, raw in enumerate(raw_layers):
        layer = _layer(raw, i, label, names)
        names.add(layer.name)
        layers.append(layer)
    return Spec(name, label, shape, int(batch), dtype, tuple(layers))


def load_spec(path: str | Path) -> Spec:
    """Read and check a YAML (`.yaml`, `.yml`) or JSON (`.json`) layer-list spec."""
    p = Path(path)
    return parse_spec(_read(p, str(path)), str(path))


SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def is_spec_path(target: str) -> bool:
    """Whether a CLI target names a layer-list spec file (by its suffix)."""
    return Path(target).suffix.lower() in SPEC_SUFFIXES
