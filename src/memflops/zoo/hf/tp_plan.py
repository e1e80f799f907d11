"""The tensor-parallel plan of a Hugging Face model: its own `tp_plan`.

transformers declares, per model family, which linear layers split by
columns or rows over the ranks (`base_model_tp_plan` in each config, joined
with the LM head's into the model's `tp_plan`, module names to styles:
attention q/k/v projections and the MLP's gate/up column-wise, the output
and down projections row-wise, the embedding row-wise, the LM head
column-wise with its output gathered). The attention then runs on
`heads / N` heads per rank, so both head counts must divide by N.
"""

from __future__ import annotations

from typing import Any

from memflops.errors import UsageError

HEAD_FIELDS = ("num_attention_heads", "num_key_value_heads")


def plan(model: Any, world_size: int) -> dict[str, str] | None:
    """The model's plan for `world_size` ranks, None when transformers gives none."""
    found = getattr(model, "tp_plan", None)
    if not found:
        return None
    config = getattr(model, "config", None)
    for field in HEAD_FIELDS:
        heads = getattr(config, field, None)
        if isinstance(heads, int) and heads % world_size:
            raise UsageError(
                f"tp={world_size}: {type(model).__name__} has {field} = {heads}, which "
                f"{world_size} ranks cannot split evenly; choose a tp size that divides it"
            )
    return {str(k): str(v) for k, v in dict(found).items()}
