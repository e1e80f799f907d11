"""Even splits of a count (zoo.even_split), the balanced routing assumption."""

from __future__ import annotations

import pytest

from memflops.zoo.hf.moe import shares

pytest.importorskip("transformers")


def test_shares() -> None:
    assert shares(70, 8) == [9] * 6 + [8] * 2  # 70 = 8*8 + 6
    assert shares(6, 8) == [1] * 6 + [0] * 2
    assert sum(shares(123, 7)) == 123
