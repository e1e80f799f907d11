"""Bounded reading of the user's files (`memflops.files`, and the layer-list loader's
YAML bounds): every hostile file is one `SpecError` line, found in bounded time and
memory."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from memflops.errors import SpecError
from memflops.files import MAX_FILE_BYTES, read_text
from memflops.layerspec.load import MAX_NODES, load_spec

# Seven levels of nine aliases: 9^7 = 4,782,969 values once expanded.
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdef", "bcdefg", strict=True)
) + "input: [*g]\nlayers: []\n"


def _refused(path: Path, words: str) -> str:
    started = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert time.perf_counter() - started < 5  # found at once, not after expanding
    message = str(info.value)
    assert words in message and "\n" not in message and len(message) < 300, message
    return message


def test_alias_bomb_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    assert MAX_NODES < 9**7
    _refused(path, f"more than {MAX_NODES:,} values once its aliases (*name) are expanded")


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "alias.yaml"
    path.write_text("input: [3, 8, 8]\nlayers:\n  - &c {type: conv, out: 4, kernel: 3}\n"
                    "  - *c\n")
    assert [layer.type for layer in load_spec(path).layers] == ["conv", "conv"]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_nesting_100000_deep(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text("[" * 100_000 + "]" * 100_000)
    _refused(path, "nested too deeply (more than 100 levels")


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"input: [3, 8, 8]\nlayers:\n  - type: conv # \xe9\n")
    _refused(path, "latin.yaml:3: not UTF-8 text (byte 0xe9 at offset")


def test_dev_zero_and_huge_files_are_read_up_to_the_limit(tmp_path: Path) -> None:
    link = tmp_path / "zero.yaml"
    os.symlink("/dev/zero", link)
    _refused(link, f"larger than {MAX_FILE_BYTES // 2**20} MiB")


def test_a_file_name_too_long(tmp_path: Path) -> None:
    path = tmp_path / ("a" * 300 + ".yaml")
    message = _refused(path, "cannot read: File name too long")
    assert "..." in message  # the name elided in the middle


def test_a_dtype_that_is_a_list(tmp_path: Path) -> None:
    path = tmp_path / "dtype.yaml"
    path.write_text("input: [3, 8, 8]\ndtype: [float32]\nlayers: []\n")
    _refused(path, "field 'dtype': expected one of: float32")


def test_read_text_reads_utf8(tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    path.write_text('{"name": "caf\u00e9"}', encoding="utf-8")
    assert read_text(path, "ok.json") == '{"name": "caf\u00e9"}'
