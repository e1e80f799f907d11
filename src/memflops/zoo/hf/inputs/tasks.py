"""Builders of inputs that are another model's output or a task's: embedded inputs,
learned queries, detected regions, task prompts, trajectories."""

from __future__ import annotations

import torch

from memflops.capture.inputs import TensorSpec
from memflops.errors import SpecError
from memflops.zoo.hf.inputs.audio import waveform
from memflops.zoo.hf.inputs.images import pixels
from memflops.zoo.hf.inputs.registry import BUILDERS, Builder, ConfigView, builds

LXMERT_BOXES = 36
"""Regions per image of LXMERT's visual features (its Faster R-CNN extracts 36)."""


@builds("inputs")
def latent_inputs(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """Perceiver's (its config has `num_latents`) already embedded inputs (no
    preprocessor): (B, seq, d_model); a speech encoder-decoder's: its `waveform`."""
    if view.find("num_latents") is None:
        return waveform(view, batch, seq)
    return TensorSpec((batch, seq, view.size("d_model", "hidden_size", default=1)))


@builds("query_embeds")
def query_embeds(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, seq, hidden_size): the learned queries a Q-Former (BLIP-2) reads."""
    return TensorSpec((batch, seq, view.size("hidden_size", default=1)))


@builds("visual_feats")
def visual_feats(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, `LXMERT_BOXES`, visual_feat_dim): features of an image's detected regions."""
    return TensorSpec((batch, LXMERT_BOXES, view.size("visual_feat_dim", default=2048)))


@builds("visual_pos")
def visual_pos(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, `LXMERT_BOXES`, visual_pos_dim): the regions' boxes."""
    return TensorSpec((batch, LXMERT_BOXES, view.size("visual_pos_dim", default=4)))


@builds("task_inputs")
def task_tokens(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, task_seq_len) token ids of OneFormer's task prompt, every one `ordinary_token`
    of its text encoder."""
    token = max(1, view.size("text_encoder_vocab_size", default=2) // 2)
    return TensorSpec((batch, view.size("task_seq_len", default=seq)), torch.int64, values=token)


@builds("prompt_pixel_values", "prompt_masks")
def prompt_image(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """SegGPT's prompt image and its mask: (B, C, H, W), as its `pixel_values`."""
    return pixels(view, batch, seq)


def image_span(view: ConfigView) -> int:
    """Tokens a Kosmos-2 image takes at the start of the text, in its processor's layout:
    `<s> <image>`, the `latent_query_num` tokens its image embeddings replace, `</image>`."""
    return view.size("latent_query_num", default=0) + 3


@builds("image_embeds_position_mask")
def image_positions(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, seq): 1 at the `latent_query_num` tokens right after `<s> <image>`, where the
    model puts the image's embeddings (it puts all of them, so the mask must have room for
    every one: seq >= `image_span`), 0 elsewhere."""
    count = view.size("latent_query_num", default=0)
    if seq < image_span(view):
        raise SpecError(
            f"seq {seq} is shorter than the {image_span(view)} tokens the image takes "
            f"(<s> <image>, {count} image tokens, </image>)"
        )
    row = [0, 0] + [1] * count + [0] * (seq - count - 2)
    return TensorSpec((batch, seq), torch.int64, values=[row] * batch)


def trajectory(*last: str) -> Builder:
    """(B, seq, size) of a Decision Transformer trajectory: sized by the config keys
    `last` (or 1 where none is given)."""

    def build(view: ConfigView, batch: int, seq: int) -> TensorSpec:
        size = view.size(*last, default=1) if last else 1
        return TensorSpec((batch, seq, size))

    return build


BUILDERS["states"] = trajectory("state_dim")
BUILDERS["actions"] = trajectory("act_dim")
BUILDERS["rewards"] = BUILDERS["returns_to_go"] = trajectory()


@builds("timesteps")
def timesteps(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, seq) episode steps, all 0 (an index into the learned table of `max_ep_len`)."""
    return TensorSpec((batch, seq), torch.int64, values=0)


@builds("mm_token_type_ids")
def token_kinds(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, seq) zeros: every token is text (Molmo 2's image tokens are 1)."""
    return TensorSpec((batch, seq), torch.int64, values=0)


@builds("encoder_hidden_states")
def encoder_states(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, seq, encoder_hidden_size): the image features a Q-Former cross-attends to."""
    return TensorSpec((batch, seq, view.size("encoder_hidden_size", "hidden_size", default=1)))
