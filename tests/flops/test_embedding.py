"""Embedding rules: a lookup is free, its gradient is a scatter-add."""

from __future__ import annotations

import torch

from ._meta import aten, flops, meta, rule_of


def test_embedding_lookup_is_free() -> None:
    table, idx = meta(100, 16), meta(4, 7, dtype=torch.long)
    assert flops(aten.embedding.default, table, idx) == 0


def test_embedding_backward_scatter_adds_every_gradient() -> None:
    grad, idx = meta(4, 7, 16), meta(4, 7, dtype=torch.long)
    # 4 * 7 rows of 16 added into the table: 448
    assert flops(aten.embedding_dense_backward.default, grad, idx, 100, -1, False) == 448
    # scale_grad_by_freq divides each row by its count too: 896
    assert flops(aten.embedding_dense_backward.default, grad, idx, 100, -1, True) == 896


def test_embedding_bag() -> None:
    table, idx, offsets = meta(50, 8), meta(12, dtype=torch.long), meta(3, dtype=torch.long)
    op = aten._embedding_bag.default
    # 12 rows into 3 bags: (12 - 3) * 8 = 72 adds
    assert flops(op, table, idx, offsets, False, 0) == 72
    # mean: + 3 * 8 divides = 96
    assert flops(op, table, idx, offsets, False, 1) == 96


def test_embedding_bag_backward() -> None:
    rule = rule_of("aten._embedding_bag_backward")
    # 6 indices in bags, rows of 4: 24 adds (sum); mean adds 24 divides
    args = ((2, 4), (6,), (2,), (6,), (2,), (2,), 10, False)
    assert rule(*args, 0, False, None, out=(10, 4)).flops == 24
    assert rule(*args, 1, False, None, out=(10, 4)).flops == 48
    assert rule(*args, 0, False, (6,), out=(10, 4)).flops == 48  # per-sample weights
