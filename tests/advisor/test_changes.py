"""The registry of changes: selection by name, and names checked with a suggestion."""

from __future__ import annotations

import pytest

from memflops.advisor import all_changes  # noqa: F401  (registers every change)
from memflops.advisor.changes import CHANGES, change, select
from memflops.errors import UsageError


def test_select_keeps_registry_order_and_applies_only_then_skip() -> None:
    names = [c.name for c in select(only=["bf16,bn-removed", "batch-halved"], skip=["bf16"])]
    assert names == ["batch-halved", "bn-removed"]


def test_every_change_is_selected_by_default_but_those_on_request() -> None:
    assert [c.name for c in select()] == [n for n, c in CHANGES.items() if not c.on_request]
    assert [n for n, c in CHANGES.items() if c.on_request] == ["fsdp-8", "fewest-gpus"]


def test_an_unknown_name_is_a_usage_error_with_the_close_names() -> None:
    with pytest.raises(UsageError, match=r"only: unknown change 'bn-remove'; did you mean "
                       r"bn-removed"):
        select(only=["bn-remove"])
    with pytest.raises(UsageError, match="skip: unknown change 'nothing-like-it'"):
        select(skip=["nothing-like-it"])


def test_a_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        change("bf16", "again", kind="both", preserves_function=False)(lambda step: None)  # type: ignore[arg-type,return-value]


def test_groups_make_precision_optimizer_and_conv_rewrites_exclusive() -> None:
    assert CHANGES["amp-bf16"].group == CHANGES["bf16"].group == "precision"
    assert CHANGES["adam8bit"].group == CHANGES["sgd-momentum"].group == "optimizer"
    assert CHANGES["conv-5x5-as-3x3"].group == CHANGES["conv-depthwise-separable"].group
    assert not CHANGES["batch-halved"].searchable


def test_architecture_rewrites_are_marked_for_the_search() -> None:
    rewrites = {name for name, c in CHANGES.items() if c.architecture}
    assert rewrites == {"bn-removed", "gap-head", "conv-5x5-as-3x3", "conv-nxn-as-1xn-nx1",
                        "conv-depthwise-separable", "first-downsample-doubled"}
    assert all(not CHANGES[name].preserves_function for name in rewrites)
