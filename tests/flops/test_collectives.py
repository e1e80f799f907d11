"""Rules of collectives and of FSDP2's buffer copies (`memflops.flops.collectives`)."""

from __future__ import annotations

from memflops.flops.registry import Shape, lookup


def test_reduce_scatter_adds_the_other_ranks_partial_shards() -> None:
    rule = lookup("c10d._reduce_scatter_base_")
    assert rule is not None
    # 8 ranks, a flat buffer of 8 * 1391 elements, a shard of 1391: 7 * 1391 = 9737 adds
    cost = rule.fn(Shape((1391,)), Shape((8 * 1391,)), None, None, True, -1)
    assert cost.flops == 9737 and cost.macs == 0


def test_gathers_and_copies_do_no_arithmetic() -> None:
    for op in ("c10d._allgather_base_", "fsdp.all_gather_copy_in",
               "fsdp.split_with_sizes_copy", "fsdp.chunk_cat"):
        rule = lookup(op)
        assert rule is not None
        assert rule.fn(Shape((8,)), Shape((64,)), out=None).flops == 0
