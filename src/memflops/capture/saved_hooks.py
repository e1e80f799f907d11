"""Saved-tensor hooks of the model's own: refused, since memflops cannot tell where they
keep what autograd saves.

The capture marks activations with its own `saved_tensors_hooks`. A model that installs
hooks itself (`torch.autograd.graph.saved_tensors_hooks`, `save_on_cpu` offloading
activations to host memory) takes the place of the capture's hooks for the ops inside:
their saved tensors would go unseen, and a hook that moves a tensor to the host frees
device memory that the fake tensors (all on one device) cannot show. Activation
checkpointing's own hooks are not the model's: they pass through to the hooks that were
active when the checkpoint began, as torch itself resolves them
(`torch.utils.checkpoint._current_user_saved_tensors_hooks`).
"""

from __future__ import annotations

from typing import Any

import torch


def active_pack_hook() -> Any:
    """The pack hook a tensor saved now would go through, past checkpointing's own."""
    hooks: Any = torch._C._autograd._top_saved_tensors_default_hooks(False)
    while hooks is not None and getattr(hooks[0], "_checkpoint_internal", False):
        hooks = getattr(hooks[0], "_user_hooks", None)
    return None if hooks is None else hooks[0]


def describe(pack: Any) -> str:
    """A pack hook as the model's code names it: `save_on_cpu` for torch's offloading
    (a function local to its `__init__`), `Model.forward` for a lambda made there."""
    name = getattr(pack, "__qualname__", None) or type(pack).__name__
    return str(name).split(".<locals>")[0].removesuffix(".__init__")
