"""Reading the user's files with bounds: a layer-list spec, a config.json, an accelerator
file. Torch-free.

`read_text` reads at most `MAX_FILE_BYTES` (a symlink to /dev/zero or a runaway file is
refused once the limit is passed, not read to the end), decodes UTF-8 (a byte that is
not names its line), and turns every OS error (no such file, a name too long, a
directory) into one `SpecError` line. `load_json` parses with a bounded nesting depth.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memflops.errors import SpecError

MAX_FILE_BYTES = 16 * 2**20
"""16 MiB: far above any spec or config (VGG-16's spec is 1 KiB; a config.json a few
KiB), far below what would exhaust memory."""
MAX_DEPTH = 100
"""Nesting depth of lists and mappings a spec or config may have (they use under 10)."""


def read_text(path: str | Path, label: str, *, limit: int = MAX_FILE_BYTES) -> str:
    """The text of `path`, UTF-8, at most `limit` bytes; else a `SpecError` naming `label`."""
    label = excerpt(label)
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise SpecError(f"{label}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:  # an embedded NUL in the name
        raise SpecError(f"{label}: cannot read: {exc}") from exc
    if len(data) > limit:
        raise SpecError(f"{label}: larger than {limit // 2**20} MiB; a spec or config is a few "
                        f"KiB (is it the right file?)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SpecError(f"{label}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                        f"offset {exc.start}); save the file as UTF-8") from exc


def excerpt(text: str, limit: int = 80) -> str:
    """`text`, its middle elided past `limit` characters (a file name too long to read)."""
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-(limit // 2 - 3):]}"


def depth(value: Any) -> int:
    """Nesting depth of lists and dicts in `value` (shared parts walked once; iterative)."""
    deepest, stack, seen = 0, [(value, 1)], set()
    while stack:
        item, level = stack.pop()
        if isinstance(item, (list, dict)) and id(item) not in seen:
            seen.add(id(item))
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def load_json(text: str, label: str) -> Any:
    """`json.loads(text)`, with errors and too-deep nesting as one `SpecError` line."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{label}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    except RecursionError as exc:
        raise too_deep(label) from exc
    if depth(value) > MAX_DEPTH:
        raise too_deep(label)
    return value


def too_deep(label: str) -> SpecError:
    return SpecError(f"{label}: nested too deeply (more than {MAX_DEPTH} levels of lists or "
                     f"mappings)")
