"""Higher-order operators (`torch.ops.higher_order.*`) as the recorder meets them.

A higher-order op takes functions (a score modifier, a branch, a loop body)
besides tensors. The recorder opts in to them (`supports_higher_order_operators`)
and treats each in one of two ways:

- **priced as one op**: `flex_attention` and `flex_attention_backward`. They
  run on fake tensors (FakeTensorMode implements them) and their rule in
  `flops.attention` sees, in place of the block mask, the number of score
  entries the kernel computes (`computed_entries`): the blocks the mask
  keeps, each whole, read from the block mask's tensors when the capture
  knows their values (built from known inputs), or rebuilt from its
  `mask_mod` on index tensors (causal, sliding window, prefix); otherwise
  None, every entry (dense), and the report says so.
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

from memflops.capture.costing import ValueOf

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


def computed_entries(block_mask: tuple[Any, ...], query: torch.Tensor, key: torch.Tensor,
                     values: ValueOf | None = None) -> int | None:
    """Score entries (batch x heads x query x key) a flex attention kernel computes under
    `block_mask` (`BlockMask.as_tuple()`), or None when the mask cannot be read.

    The kernel skips blocks the mask empties and computes every other block whole
    (partial blocks apply `mask_mod` per entry, after computing it). The block mask the
    model built is fake; its block tensors are read where the capture knows their values
    (`values`: built from known inputs, such as a mask of ones or given document ids),
    else the mask is rebuilt on real index tensors from its `mask_mod`
    (`create_block_mask`, at the batch and head counts the model gave it); a `mask_mod`
    that reads the model's unknown tensors cannot be evaluated: None.
    """
    from torch.nn.attention.flex_attention import noop_mask

    q_len, kv_len = int(block_mask[0]), int(block_mask[1])
    q_block, kv_block, mask_mod = int(block_mask[-3]), int(block_mask[-2]), block_mask[-1]
    mask_batch, mask_heads = (int(d) for d in block_mask[2].shape[:2])
    batch, heads = int(query.shape[0]), int(query.shape[1])
    if mask_mod is noop_mask or mask_mod is None:  # no mask: every entry, exactly
        return batch * heads * int(query.shape[2]) * int(key.shape[2])
    blocks = _known_blocks(block_mask, values) or _rebuilt_blocks(block_mask, mask_batch,
                                                                  mask_heads)
    if blocks is None:
        return None
    with _real():
        kept = _kept_blocks(blocks[0], blocks[1])
        if blocks[2] is not None and blocks[3] is not None:
            kept |= _kept_blocks(blocks[2], blocks[3])
        rows = _block_sizes(q_len, q_block)
        cols = _block_sizes(kv_len, kv_block)
        entries = int((kept.long() * rows[:, None] * cols[None, :]).sum())
    return entries * (batch // mask_batch) * (heads // mask_heads)


Blocks = tuple[torch.Tensor, torch.Tensor, "torch.Tensor | None", "torch.Tensor | None"]
"""A block mask's (kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices)."""


def _real() -> Any:
    """Real tensors inside the capture: no fake mode, no dispatch mode, no autograd."""
    from contextlib import ExitStack

    from torch._subclasses.fake_tensor import unset_fake_temporarily
    from torch.utils._python_dispatch import _disable_current_modes

    stack = ExitStack()
    stack.enter_context(_disable_current_modes())
    stack.enter_context(unset_fake_temporarily())
    stack.enter_context(torch.no_grad())
    return stack


def _known_blocks(block_mask: tuple[Any, ...], values: ValueOf | None) -> Blocks | None:
    """The block tensors' values where the capture knows them all, else None."""
    if values is None:
        return None
    found = [values(t) if t is not None else None for t in block_mask[2:6]]
    if any(v is None for v, t in zip(found, block_mask[2:6], strict=True) if t is not None):
        return None
    return found[0], found[1], found[2], found[3]  # type: ignore[return-value]


def _rebuilt_blocks(block_mask: tuple[Any, ...], mask_batch: int,
                    mask_heads: int) -> Blocks | None:
    """The block tensors of the mask rebuilt from its `mask_mod` on real indices, or None
    when the `mask_mod` reads tensors of the model's (or is too large to rebuild)."""
    from torch._subclasses.fake_tensor import is_fake
    from torch.nn.attention.flex_attention import create_block_mask

    q_len, kv_len = int(block_mask[0]), int(block_mask[1])
    if mask_batch * mask_heads * q_len * kv_len > MAX_MASK_ELEMENTS:
        return None
    try:
        with _real():
            real = create_block_mask(block_mask[-1], mask_batch, mask_heads, q_len, kv_len,
                                     device="cpu",
                                     BLOCK_SIZE=(int(block_mask[-3]), int(block_mask[-2])))
    except Exception:  # the mask reads tensors of the model's, or is not index math
        return None
    if is_fake(real.kv_num_blocks) or is_fake(real.kv_indices):
        return None  # the mask read the model's (fake) tensors
    return real.kv_num_blocks, real.kv_indices, real.full_kv_num_blocks, real.full_kv_indices


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


def rule_args(name: str, args: Sequence[Any],
              values: ValueOf | None = None) -> tuple[list[Any], bool]:
    """The arguments a flex attention rule sees: the block mask replaced by its computed
    entries (None: unknown), and whether it was unknown (counted dense)."""
    at = FLEX[name.removeprefix("higher_order.")]
    full = list(args)
    entries = computed_entries(tuple(full[at]), full[0], full[1], values)
    full[at] = entries
    return full, entries is None
