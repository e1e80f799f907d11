"""Higher-order operators (`torch.ops.higher_order.*`) as the recorder meets them.

A higher-order op takes functions (a score modifier, a branch, a loop body)
besides tensors. The recorder opts in to them (`supports_higher_order_operators`)
and treats each in one of two ways:

- **priced as one op**: `flex_attention` and `flex_attention_backward`. They
  run on fake tensors (FakeTensorMode implements them) and their rule in
  `flops.attention` sees, in place of the block mask, the number of score
  entries the kernel computes (`computed_entries`): the blocks the mask
  keeps, each whole, known when its `mask_mod` can be evaluated on index
  tensors (causal, sliding window, prefix); otherwise None, every entry
  (dense), and the report says so.
- **refused** with a message naming the op: the rest. `cond`, `while_loop`,
  `scan`, `map` and `associative_scan` choose branches or trip counts from
  values fake tensors do not have. `invoke_subgraph` and activation
  checkpointing's forms (`tag_activation_checkpoint`,
  `wrap_activation_checkpoint`) call their function below autograd, where
  composite ops (`matmul`) arrive undecomposed and a train step needs an
  AOT-traced joint graph; eagerly they are plain calls (the same function,
  `torch.utils.checkpoint`), which memflops analyses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

FLEX = {"flex_attention": 4, "flex_attention_backward": 9}
"""The flex attention ops, with the index of their block-mask argument."""

EAGER_FORMS = {
    "invoke_subgraph": "call the function itself",
    "tag_activation_checkpoint": "use torch.utils.checkpoint.checkpoint eagerly",
    "wrap_activation_checkpoint": "use torch.utils.checkpoint.checkpoint eagerly",
}
"""Ops that call one function on their operands, and what to write instead."""

MAX_MASK_ELEMENTS = 1 << 28
"""The largest (B, H, L, S) boolean mask rebuilt to read a block mask's sparsity
(256 MiB); beyond it the call counts dense, as an unknown mask does."""


def hop_name(func: Any) -> str:
    """`higher_order.flex_attention` for `torch.ops.higher_order.flex_attention`."""
    return f"higher_order.{func.name()}"


def is_hop(func: Any) -> bool:
    return isinstance(func, torch._ops.HigherOrderOperator)


def refusal(name: str, path: str) -> str:
    """Why the higher-order op `name` (a `hop_name`) cannot be analysed, and what to do."""
    short = name.removeprefix("higher_order.")
    instead = EAGER_FORMS.get(short)
    if instead is not None:
        why = (f"it calls its function below autograd, as compiled graphs do; {instead} "
               f"and memflops analyses it")
    else:
        why = ("its control flow (a branch, a loop, a scan) depends on tensor values, which "
               "fake tensors do not have; write it as plain Python control flow over fixed "
               "sizes, or analyse the submodules around it")
    return (f"higher-order op {name} in module `{path}` cannot be analysed: {why} (of the "
            f"higher-order ops, memflops prices flex_attention)")


def computed_entries(block_mask: tuple[Any, ...], query: torch.Tensor,
                     key: torch.Tensor) -> int | None:
    """Score entries (batch x heads x query x key) a flex attention kernel computes under
    `block_mask` (`BlockMask.as_tuple()`), or None when the mask cannot be read.

    The kernel skips blocks the mask empties and computes every other block whole
    (partial blocks apply `mask_mod` per entry, after computing it). The block mask the
    model built is fake, so it is rebuilt on real index tensors from its `mask_mod`
    (`create_block_mask`, at the batch and head counts the model gave it); a `mask_mod`
    that reads the model's tensors (padding, document ids) cannot be evaluated: None.
    """
    from torch._subclasses.fake_tensor import is_fake, unset_fake_temporarily
    from torch.nn.attention.flex_attention import create_block_mask, noop_mask

    q_len, kv_len = int(block_mask[0]), int(block_mask[1])
    q_block, kv_block, mask_mod = int(block_mask[-3]), int(block_mask[-2]), block_mask[-1]
    mask_batch, mask_heads = (int(d) for d in block_mask[2].shape[:2])
    batch, heads = int(query.shape[0]), int(query.shape[1])
    if mask_mod is noop_mask or mask_mod is None:  # no mask: every entry, exactly
        return batch * heads * int(query.shape[2]) * int(key.shape[2])
    if mask_batch * mask_heads * q_len * kv_len > MAX_MASK_ELEMENTS:
        return None
    try:
        with unset_fake_temporarily(), torch.no_grad():
            real = create_block_mask(mask_mod, mask_batch, mask_heads, q_len, kv_len,
                                     device="cpu", BLOCK_SIZE=(q_block, kv_block))
            if is_fake(real.kv_num_blocks) or is_fake(real.kv_indices):
                return None  # the mask read the model's (fake) tensors
            kept = _kept_blocks(real.kv_num_blocks, real.kv_indices)
            full_counts, full_indices = real.full_kv_num_blocks, real.full_kv_indices
            if full_counts is not None and full_indices is not None:
                kept |= _kept_blocks(full_counts, full_indices)
            rows = _block_sizes(q_len, q_block)
            cols = _block_sizes(kv_len, kv_block)
            entries = int((kept.long() * rows[:, None] * cols[None, :]).sum())
    except Exception:  # the mask reads tensors of the model's, or is not index math
        return None
    return entries * (batch // mask_batch) * (heads // mask_heads)


def _kept_blocks(counts: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """(B, H, Q blocks, KV blocks) booleans: the first `counts` of `indices` per row."""
    ranks = torch.arange(indices.shape[-1])
    listed = (ranks < counts[..., None]).long()
    kept = torch.zeros(indices.shape, dtype=torch.long)
    return kept.scatter_add_(-1, indices.long(), listed) > 0  # unlisted slots add 0


def _block_sizes(length: int, block: int) -> torch.Tensor:
    """The size of each block of `length` split in blocks of `block` (the last partial)."""
    blocks = math.ceil(length / block)
    sizes = torch.full((blocks,), block, dtype=torch.long)
    if blocks:
        sizes[-1] = length - block * (blocks - 1)
    return sizes


def rule_args(name: str, args: Sequence[Any]) -> tuple[list[Any], bool]:
    """The arguments a flex attention rule sees: the block mask replaced by its computed
    entries (None: unknown), and whether it was unknown (counted dense)."""
    at = FLEX[name.removeprefix("higher_order.")]
    full = list(args)
    entries = computed_entries(tuple(full[at]), full[0], full[1])
    full[at] = entries
    return full, entries is None
