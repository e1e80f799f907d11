"""Activation checkpointing of each repeated block (`torch.utils.checkpoint`,
non-reentrant): a block keeps only its input for backward and runs its forward again
there.

The repeated blocks are the children of an `nn.Sequential` or `nn.ModuleList` that are
composite modules of one class, two or more (ResNet's bottlenecks, a decoder's layers),
outermost first. A model that says it supports gradient checkpointing (Hugging Face's
`supports_gradient_checkpointing` and `gradient_checkpointing_enable`, found by duck
typing) is asked to do it itself, non-reentrant. The block's own `forward` is
checkpointed, so module paths and hooks stay as they were.

Under a budget, checkpointing every block may save more than needed: `fewest_blocks`
finds the fewest blocks (those keeping the most activations per forward FLOP first) whose
analysed peak still fits, so the least forward is recomputed (`advise.py`).
"""

from __future__ import annotations

import functools
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch.utils.checkpoint as torch_checkpoint
from torch import nn

from memflops.advisor.changes import Applied, NotApplicable, Step, change

CONTAINERS = (nn.Sequential, nn.ModuleList)


def repeated_blocks(model: nn.Module) -> list[str]:
    """Paths of the repeated blocks (module docstring), outermost only, in order."""
    chosen: list[str] = []
    for path, module in model.named_modules():
        if not isinstance(module, CONTAINERS) or any(_under(path, c) for c in chosen):
            continue
        children = [(n, c) for n, c in module.named_children() if any(True for _ in c.children())]
        counts = Counter(type(c) for _, c in children)
        prefix = f"{path}." if path else ""
        chosen += [prefix + n for n, c in children if counts[type(c)] >= 2]
    return chosen


def _under(path: str, block: str) -> bool:
    return path.startswith(block + ".")


def _checkpointed_forward(block: nn.Module, *args: Any, **kwargs: Any) -> Any:
    forward = type(block).forward.__get__(block)
    return torch_checkpoint.checkpoint(forward, *args, use_reentrant=False, **kwargs)


def checkpoint_block(block: nn.Module) -> None:
    """Run `block`'s forward under non-reentrant checkpointing from now on."""
    block.forward = functools.partial(_checkpointed_forward, block)  # type: ignore[method-assign]


@change(
    "checkpoint-blocks", "activation checkpointing of each repeated block (non-reentrant)",
    kind="memory", preserves_function=True,
)
def checkpoint_blocks(step: Step) -> Applied:
    return _checkpoint_each_block(step, checkpoint_block, {}, "", "")


def _checkpoint_each_block(step: Step, checkpoint: Callable[[nn.Module], None],
                           model_kwargs: dict[str, Any], model_note: str, note: str) -> Applied:
    """Both checkpointing changes: the model's own `gradient_checkpointing_enable`
    (non-reentrant, with `model_kwargs`) when it has one, else `checkpoint` on each repeated
    block; `model_note` and `note` end the change's note in those two cases."""
    if not step.train:
        raise NotApplicable("inference keeps no activations for backward")
    model = step.module
    if getattr(model, "supports_gradient_checkpointing", False) and callable(
        getattr(model, "gradient_checkpointing_enable", None)
    ):
        with warnings.catch_warnings():  # transformers 5 renames it, with a FutureWarning
            warnings.simplefilter("ignore", FutureWarning)
            model.gradient_checkpointing_enable(  # type: ignore[operator]
                gradient_checkpointing_kwargs={"use_reentrant": False, **model_kwargs}
            )
        return Applied(step, tuple(repeated_blocks(model)),
                       "the model's own gradient_checkpointing_enable(use_reentrant=False)"
                       + model_note)
    blocks = repeated_blocks(model)
    if not blocks:
        raise NotApplicable("no nn.Sequential/ModuleList holds two or more composite blocks "
                            "of one class")
    for path in blocks:
        checkpoint(model.get_submodule(path))
    return Applied(step, tuple(blocks), f"{len(blocks)} blocks checkpointed{note}")


def fewest_blocks(count: int, fits: Callable[[int], bool]) -> int:
    """The least k in [1, count] for which `fits(k)` holds, given `fits(count)` holds and
    fewer blocks checkpointed never lower the peak (a binary search: log2(count) calls)."""
    lo, hi = 0, count  # fits(lo) is taken as False, fits(hi) as True
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid
    return hi


SAVED_OPS = frozenset({
    "aten.mm", "aten.addmm", "aten.bmm", "aten.baddbmm", "aten.convolution",
    "aten._scaled_dot_product_flash_attention", "aten._scaled_dot_product_efficient_attention",
    "aten._scaled_dot_product_cudnn_attention", "aten._flash_attention_forward",
    "aten._efficient_attention_forward",
})
"""The ops whose outputs selective checkpointing keeps: matrix products, convolutions and
fused attention, the work that is costly to run again (the ops torchtitan's op-level
selective checkpointing saves, `torchtitan/models/llama3/infra/parallelize.py`'s
`_save_list`, less its every-other-matmul alternation and its collectives)."""


def keep_only(kept: frozenset[str], ctx: Any, op: Any, *args: Any, **kwargs: Any) -> Any:
    """The selective-checkpointing policy: keep the outputs of the ops named in `kept`
    (e.g. "aten.mm"), recompute the rest."""
    policy = torch_checkpoint.CheckpointPolicy
    if str(op.overloadpacket) in kept:
        return policy.MUST_SAVE
    return policy.PREFER_RECOMPUTE


def _selective_context(kept: frozenset[str]) -> Any:
    return torch_checkpoint.create_selective_checkpoint_contexts(  # type: ignore[no-untyped-call]
        functools.partial(keep_only, kept))


def _selectively_checkpointed_forward(block: nn.Module, kept: frozenset[str], *args: Any,
                                      **kwargs: Any) -> Any:
    forward = type(block).forward.__get__(block)
    return torch_checkpoint.checkpoint(forward, *args, use_reentrant=False,
                                       context_fn=functools.partial(_selective_context, kept),
                                       **kwargs)


def checkpoint_block_selectively(block: nn.Module, kept: frozenset[str] = SAVED_OPS) -> None:
    """Run `block`'s forward under selective checkpointing, keeping the outputs of the ops
    named in `kept`."""
    block.forward = functools.partial(  # type: ignore[method-assign]
        _selectively_checkpointed_forward, block, kept)


@change(
    "checkpoint-selective",
    "selective checkpointing of each repeated block: matrix products kept, the rest recomputed",
    kind="memory", preserves_function=True, group="checkpoint-blocks",
)
def checkpoint_selective(step: Step) -> Applied:
    return _checkpoint_each_block(
        step, checkpoint_block_selectively,
        {"context_fn": functools.partial(_selective_context, SAVED_OPS)},
        ", with a selective policy: matrix products kept, the rest recomputed",
        " selectively: outputs of matrix products, convolutions and attention kept, the rest "
        "recomputed in backward")
