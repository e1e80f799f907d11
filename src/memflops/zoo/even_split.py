"""Splitting a count evenly: the balanced assumption of routers and samplers."""

from __future__ import annotations


def shares(pairs: int, num_experts: int) -> list[int]:
    """`pairs` split as evenly as integers allow: the first `pairs % num_experts` get one more."""
    q, r = divmod(pairs, num_experts)
    return [q + 1 if i < r else q for i in range(num_experts)]
