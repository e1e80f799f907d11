"""Every registered op name is a real ATen op of the installed torch.

The rule modules do not import torch (the layer-spec frontend evaluates the
same rules on plain shapes), so a misspelt or removed op name is caught here.
"""

from __future__ import annotations

import torch

from memflops.flops import rules


def test_every_registered_op_exists_in_torch() -> None:
    missing = [
        op
        for rule in rules()
        for op in rule.ops
        if not op.startswith("aten.") or not hasattr(torch.ops.aten, op.removeprefix("aten."))
    ]
    assert missing == [], f"not ATen ops in torch {torch.__version__}: {missing}"


def test_every_rule_states_its_formula() -> None:
    for rule in rules():
        assert rule.formula.strip(), rule.ops
