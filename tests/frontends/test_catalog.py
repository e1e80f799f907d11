"""`list_models`: names per zoo, filters, and errors for unknown zoos."""

from __future__ import annotations

from pathlib import Path

import pytest

from memflops.errors import UsageError
from memflops.frontends.catalog import list_models, matches

HF_CONFIGS = Path(__file__).resolve().parents[2] / "src" / "memflops" / "zoo" / "hf" / "configs"


def test_torchvision_names() -> None:
    torchvision = pytest.importorskip("torchvision")
    names = list_models("torchvision")
    assert names == sorted(torchvision.models.list_models())
    assert "resnet50" in names and "vgg16" in names


def test_substring_filter_is_case_insensitive() -> None:
    pytest.importorskip("torchvision")
    names = list_models("torchvision", "ResNet")
    assert "resnet50" in names and "wide_resnet50_2" in names
    assert all("resnet" in n for n in names)


def test_glob_filter_anchors_the_name() -> None:
    pytest.importorskip("torchvision")
    names = list_models("torchvision", "resnet*")
    assert "resnet18" in names
    assert "wide_resnet50_2" not in names  # contains "resnet" but does not start with it
    assert list_models("torchvision", "vgg1?") == ["vgg11", "vgg13", "vgg16", "vgg19"]


def test_timm_names() -> None:
    timm = pytest.importorskip("timm")
    names = list_models("timm", "resnet18")
    assert "resnet18" in names
    assert len(list_models("timm")) == len(timm.list_models())


def test_hf_lists_the_shipped_configs() -> None:
    shipped = sorted(p.stem for p in HF_CONFIGS.glob("*.json"))
    assert list_models("hf") == shipped
    assert list_models("HF", "gpt2*") == [n for n in shipped if n.startswith("gpt2")]


def test_all_zoos_give_targets() -> None:
    pytest.importorskip("torchvision")
    names = list_models(None, "vgg16")
    assert "torchvision:vgg16" in names
    assert all(":" in n for n in names)


def test_unknown_zoo_suggests() -> None:
    with pytest.raises(UsageError, match=r"unknown zoo 'tim'; did you mean 'timm'\?"):
        list_models("tim")
    with pytest.raises(UsageError, match="known: torchvision, timm, hf"):
        list_models("keras")


def test_matches() -> None:
    assert matches("efficientnet_b0", "NET_B")  # substring, any case
    assert matches("efficientnet_b0", "*_b0")  # glob over the whole name
    assert not matches("efficientnet_b0", "b0*")
    assert not matches("efficientnet_b0", "resnet")
