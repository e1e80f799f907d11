"""Every registered op name is a real ATen op of the installed torch.

The rule modules do not import torch (the layer-spec frontend evaluates the
same rules on plain shapes), so a misspelt or removed op name is caught here.
"""

from __future__ import annotations

import torch

from memflops.flops import rules


def _exists(op: str) -> bool:
    """`aten.NAME` in torch; `torchvision.NAME` in torchvision, when it is installed."""
    namespace, _, name = op.partition(".")
    if namespace == "torchvision":
        try:
            import torchvision  # noqa: F401  (registers torch.ops.torchvision)
        except ImportError:
            return True
    elif namespace != "aten":
        return False
    return hasattr(getattr(torch.ops, namespace), name)


def test_every_registered_op_exists_in_torch() -> None:
    missing = [op for rule in rules() for op in rule.ops if not _exists(op)]
    assert missing == [], f"not ATen ops in torch {torch.__version__}: {missing}"


def test_every_rule_states_its_formula() -> None:
    for rule in rules():
        assert rule.formula.strip(), rule.ops
