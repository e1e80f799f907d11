"""The Hugging Face Hub switched off while memflops builds or analyses a model.

Only `hf:owner/name` asks for the Hub (its config.json, `config.hub_config`). A config
that names another hub model inside it (UperNet's or DPT's `backbone:
"openmmlab/upernet-convnext-small"`) would make transformers resolve huggingface.co
while the model is built; under `offline()` it cannot, and the config is refused in one
line instead. `offline()` sets what huggingface_hub and transformers read (the
environment variables and huggingface_hub's constant, read by its `is_offline_mode`)
and restores them after.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def hub_reference(raw: dict[str, Any]) -> str | None:
    """The hub model a config names inside it (`backbone: "owner/name"` with no
    `backbone_config`), or None."""
    backbone = raw.get("backbone")
    if isinstance(backbone, str) and "/" in backbone and not raw.get("backbone_config"):
        return backbone
    return None


@contextmanager
def offline() -> Iterator[None]:
    """No request to the Hub for the length of the block (see the module docstring)."""
    saved_env = {name: os.environ.get(name) for name in _VARIABLES}
    constants = _hub_constants()
    saved_constant = getattr(constants, "HF_HUB_OFFLINE", None)
    os.environ.update(dict.fromkeys(_VARIABLES, "1"))
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if constants is not None:
            constants.HF_HUB_OFFLINE = saved_constant


def _hub_constants() -> Any:
    try:
        import huggingface_hub.constants as constants
    except ImportError:
        return None
    return constants
