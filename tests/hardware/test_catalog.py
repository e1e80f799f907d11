"""The accelerator catalog (hardware.catalog): its rows, lookup by name, described ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memflops.errors import UsageError
from memflops.hardware.catalog import GIB, accelerator, accelerators, find_accelerator

# The accelerators the time-model issue asks the catalog to hold, by a unique part of
# their name.
REQUIRED = ("V100 SXM2 16GB", "T4", "A10 (PCIe", "A10G", "A100 40GB SXM", "A100 40GB PCIe",
            "A100 80GB SXM", "A100 80GB PCIe", "L4", "L40S", "H100 SXM", "H100 PCIe", "H200",
            "B200", "RTX 3090", "RTX 4090", "RTX 5090", "MI250X", "MI300X", "TPU v4",
            "TPU v5e", "TPU v5p", "Gaudi 2", "Gaudi 3")


def test_the_catalog_holds_at_least_25_accelerators_each_with_a_source() -> None:
    catalog = accelerators()
    assert len(catalog) >= 25
    assert len({a.name for a in catalog}) == len(catalog)
    for acc in catalog:
        assert acc.source.strip(), acc.name
        assert acc.memory_bytes > 0 and acc.bandwidth_bytes_per_s > 0, acc.name
        assert acc.peak_flops, acc.name
        # dense tensor peaks: a half-precision tensor unit is never slower than fp32 vector
        half = acc.peak("bf16") or acc.peak("fp16")
        if half and acc.peak("fp32"):
            assert half >= acc.peak("fp32"), acc.name
    for name in REQUIRED:
        find_accelerator(name)  # unique, or this raises


def test_figures_read_from_the_csv() -> None:
    a100 = find_accelerator("A100 80GB SXM")
    # NVIDIA A100 datasheet: 80 GB (read as GiB), 2,039 GB/s, 312 TFLOPS bf16 dense,
    # 156 TF32, 19.5 fp32, 624 TOPS int8, NVLink 600 GB/s
    assert a100.memory_bytes == 80 * GIB
    assert a100.bandwidth_bytes_per_s == 2_039 * 10**9
    assert (a100.peak("bf16"), a100.peak("tf32"), a100.peak("fp32"), a100.peak("int8")) == (
        312 * 10**12, 156 * 10**12, 19_500 * 10**9, 624 * 10**12)
    assert a100.peak("fp8") is None  # Ampere has no fp8
    assert a100.interconnect_bytes_per_s == 600 * 10**9
    assert find_accelerator("T4").peak("bf16") is None


def test_unknown_and_ambiguous_names_say_what_is_known() -> None:
    # words found in one name only pick it; a typo gets suggestions
    assert find_accelerator("a100 sxm 80gb").name == "NVIDIA A100 80GB SXM"
    assert find_accelerator("L4").name == "NVIDIA L4"  # not L40 or L40S
    with pytest.raises(UsageError, match=r"did you mean .*NVIDIA A100 80GB SXM"):
        find_accelerator("A100 80GB SXN")
    with pytest.raises(UsageError, match="ambiguous: it matches NVIDIA H100 SXM"):
        find_accelerator("H100")
    with pytest.raises(UsageError, match=r"unknown accelerator 'Z9000'.*custom:"):
        find_accelerator("Z9000")


def test_a_custom_accelerator() -> None:
    acc = accelerator("custom:fp16=300T,bw=1.5T,mem=40G,name=mine")
    assert acc.name == "mine"
    assert acc.peak("fp16") == 300 * 10**12
    assert acc.bandwidth_bytes_per_s == 1_500 * 10**9
    assert acc.memory_bytes == 40 * GIB  # a nominal "40G", read as the catalog reads it
    assert accelerator("custom:bf16=1.2e15,bw=3e12,mem=80GB").memory_bytes == 80 * 10**9
    for bad, message in (("custom:fp16=300T", "needs bw="),
                         ("custom:fp16=300T,bw=fast", "expected a rate"),
                         ("custom:fp61=3T,bw=1T", "did you mean fp16"),
                         ("custom:fp16", "expected key=value")):
        with pytest.raises(UsageError, match=message):
            accelerator(bad)


def test_an_accelerator_from_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps({"name": "lab card", "bf16": "400T", "fp32": "50T",
                                "bw": "2T", "mem": "96G"}))
    acc = accelerator(str(path))
    assert (acc.name, acc.peak("bf16"), acc.memory_bytes) == ("lab card", 4 * 10**14, 96 * GIB)
    with pytest.raises(UsageError, match=r"accelerator file .*missing\.json: cannot read"):
        accelerator(str(tmp_path / "missing.json"))
