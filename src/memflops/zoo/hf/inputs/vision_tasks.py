"""Builders of the prompts of open-vocabulary detectors: the class names and the task
sentence OmDet-Turbo reads beside its image.

OmDet-Turbo's processor tokenizes each image's task sentence and every class name apart,
each padded to its text encoder's `max_position_embeddings` tokens (CLIP's 77), and
flattens the class names of all images into one batch; `classes_structure` says how many
belong to each image. How many classes a prompt names is the user's choice: the builders
take `DETECTOR_CLASSES` per image, and the report says so (`ASSUMED`)."""

from __future__ import annotations

import torch

from memflops.capture.inputs import TensorSpec
from memflops.zoo.hf.inputs.registry import ASSUMED, BUILDERS, Builder, ConfigView, builds
from memflops.zoo.hf.inputs.text import ordinary_token

DETECTOR_CLASSES = 80
"""Class names per image of an open-vocabulary detector's prompt: COCO's 80 categories,
the zero-shot benchmark of the OmDet-Turbo paper (arXiv 2403.06892)."""
PROMPT_TOKENS = 77
"""Tokens of one prompt where the config names no text length: CLIP's context length, to
which OmDet-Turbo's processor pads (`max_length` 77)."""

for _name in ("classes_input_ids", "classes_attention_mask", "classes_structure"):
    ASSUMED[_name] = (
        f"open-vocabulary prompt assumed: {DETECTOR_CLASSES} class names per image (COCO's "
        "categories), each padded to the text encoder's length"
    )


def prompt_tokens(view: ConfigView) -> int:
    """Tokens of one tokenized prompt: the text encoder's `max_position_embeddings`."""
    return view.size("max_position_embeddings", default=PROMPT_TOKENS)


def _prompts(per_image: int, mask: bool) -> Builder:
    """(B * `per_image`, `prompt_tokens`) prompts: ids each `ordinary_token`, or a mask
    of ones, given as values (the model keys a cache of embeddings on them)."""

    def build(view: ConfigView, batch: int, seq: int) -> TensorSpec:
        value = 1 if mask else ordinary_token(view)
        return TensorSpec((batch * per_image, prompt_tokens(view)), torch.int64, values=value)

    return build


BUILDERS["classes_input_ids"] = _prompts(DETECTOR_CLASSES, mask=False)
BUILDERS["classes_attention_mask"] = _prompts(DETECTOR_CLASSES, mask=True)
BUILDERS["tasks_input_ids"] = _prompts(1, mask=False)
BUILDERS["tasks_attention_mask"] = _prompts(1, mask=True)


@builds("classes_structure")
def classes_structure(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B,): classes per image, `DETECTOR_CLASSES` each, given as values."""
    return TensorSpec((batch,), torch.int64, values=[DETECTOR_CLASSES] * batch)
