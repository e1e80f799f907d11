"""Builders of inputs that are another model's embeddings or hidden states: a sub-model
analysed alone reads what its parent (or the model it drafts for) would hand it. Their
values are activations, unknown to shape-only analysis; only their sizes matter."""

from __future__ import annotations

from memflops.capture.inputs import TensorSpec
from memflops.zoo.hf.inputs.registry import ConfigView, builds


@builds("inputs_embeds")
def input_embeddings(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, seq, hidden_size): already embedded tokens or frames, for a model whose main
    input they are (Nemotron 3.5 Transcribe's word-timestamp encoder reads the speech
    encoder's states)."""
    return TensorSpec((batch, seq, view.size("hidden_size", default=1)))


@builds("t_cond")
def time_condition(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(1, hidden_size): the sinusoidal embedding of the streaming delay that Voxtral
    Realtime's model hands its text decoder, one for the whole batch (its parent's
    `time_embedding(...)[None, ...]`)."""
    return TensorSpec((1, view.size("hidden_size", default=1)))


@builds("noise_embeds")
def draft_block(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, block_size, hidden_size): the embedded anchor and mask tokens a block-diffusion
    drafter denoises at once (Muse Glimmer's assistant); seq where the config has no
    `block_size`."""
    return TensorSpec((batch, view.size("block_size", default=seq),
                       view.size("hidden_size", default=1)))


@builds("context_hidden_states")
def target_states(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, seq, hidden_size * len(target_layer_ids)): seq accepted tokens' hidden states of
    the target model's `target_layer_ids` layers, concatenated, that a drafter reads."""
    layers = view.find("target_layer_ids")
    count = len(layers) if isinstance(layers, (list, tuple)) else 1
    return TensorSpec((batch, seq, view.size("hidden_size", default=1) * count))
