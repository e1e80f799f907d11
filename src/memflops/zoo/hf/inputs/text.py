"""Builders of token inputs: ids, masks, segment ids, document boxes."""

from __future__ import annotations

import torch

from memflops.capture.inputs import TensorSpec
from memflops.zoo.hf.inputs.registry import PLACEHOLDER_TOKENS, ConfigView, builds

SPECIAL_TOKEN_KEYS = (
    "pad_token_id", "bos_token_id", "eos_token_id", "unk_token_id", "sep_token_id",
    "cls_token_id", "mask_token_id", "decoder_start_token_id", "pad_index", "eos_index",
    "unk_index", "mask_index", "lang_id", *PLACEHOLDER_TOKENS,
    "boi_token_id", "eoi_token_id", "image_start_token_id", "image_end_token_id",
    "vision_start_token_id", "vision_end_token_id",
)
"""Config keys naming token ids that mean something other than text."""


def ordinary_token(view: ConfigView) -> int:
    """A token id that is plain text: the middle of the vocabulary, stepped down past any
    id the config names as special (padding, placeholders, ...)."""
    special: set[int] = set()
    for config in view.configs():
        for key in SPECIAL_TOKEN_KEYS:
            value = vars(config).get(key)
            values = value if isinstance(value, (list, tuple)) else [value]
            special |= {v for v in values if isinstance(v, int)}
    token = max(1, view.size("vocab_size", default=2) // 2)
    while token in special and token > 0:
        token -= 1
    return token


@builds("input_ids", "qformer_input_ids")  # decoder_input_ids: audio.decoder_tokens
def token_ids(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, seq) token indices, every one `ordinary_token`: a model that reads its ids
    (padding, placeholder tokens) sees plain text without padding. A model whose tokens
    carry audio codebooks (`codebook_step`) gets (B, seq, 1 + codebooks)."""
    step = codebook_step(view)
    if step is not None:
        return TensorSpec((batch, seq, len(step)), torch.int64, values=[[step] * seq] * batch)
    return TensorSpec((batch, seq), torch.int64, values=ordinary_token(view))


def codebook_step(view: ConfigView) -> list[int] | None:
    """Where one table embeds text and audio codebooks (the config has `codebook_vocab_size`
    beside `num_codebooks`: Kyutai STT sums, per step, the embeddings of a text token and of
    one token of each codebook, each offset into its own part of the table): the ids of one
    step, the text token `ordinary_token`, each codebook's the middle of
    `codebook_vocab_size`. Else None (Moshi and CSM take codebooks in other inputs)."""
    codebook_vocab = view.find("codebook_vocab_size")
    count = view.find("num_codebooks")
    if not isinstance(codebook_vocab, int) or not isinstance(count, int):
        return None
    return [ordinary_token(view)] + [codebook_vocab // 2] * count


@builds(
    "attention_mask", "token_type_ids", "decoder_attention_mask", "qformer_attention_mask",
)
def tokens(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, seq) 0/1 mask or segment ids (masks are filled with ones at analysis,
    `capture.inputs.FILLED_INPUTS`)."""
    return TensorSpec((batch, seq), torch.int64)


@builds("bbox")
def boxes(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, seq, 4): one box (x0, y0, x1, y1) per token of a document model."""
    return TensorSpec((batch, seq, 4), torch.int64)
