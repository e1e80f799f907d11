"""The closed set of memory categories, one per storage."""

from __future__ import annotations

from enum import Enum


class Kind(str, Enum):
    """What a storage holds. Each storage has exactly one kind.

    A storage that plays two roles keeps the more lasting one, in this order:
    parameters, buffers, inputs, optimizer state, KV cache (generation),
    gradients, activations saved for backward, temporaries (activation
    gradients, outputs not saved, optimizer workspaces).
    """

    PARAMS = "params"
    BUFFERS = "buffers"
    INPUTS = "inputs"
    OPTIMIZER = "optimizer"
    KV_CACHE = "kv_cache"
    GRADS = "grads"
    ACTIVATIONS = "activations"
    TEMPORARIES = "temporaries"
