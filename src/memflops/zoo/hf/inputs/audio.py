"""Builders of audio: waveforms, spectrograms and their masks, audio tokenizers' latents."""

from __future__ import annotations

import torch

from memflops.capture.inputs import TensorSpec
from memflops.zoo.hf.inputs.registry import (
    ASSUMED,
    DEFAULT_HOP,
    ConfigView,
    _product,
    builds,
)
from memflops.zoo.hf.inputs.text import ordinary_token, token_ids


def hop(view: ConfigView) -> int:
    """Samples per frame of a waveform model (see the module docstring)."""
    keys = ("samples_per_token", "conv_stride", "hop_length", "downsampling_ratios",
            "upsampling_ratios")
    for key in keys:
        found = view.find(key, derived=key == "samples_per_token")
        step = found if isinstance(found, int) else _product(found)
        if isinstance(step, int) and step > 0:
            return step
    return DEFAULT_HOP


def is_codec(view: ConfigView) -> bool:
    """Codecs (EnCodec, DAC, Mimi, ...) read a (B, channels, samples) waveform."""
    return any(
        view.find(key) is not None
        for key in ("audio_channels", "upsampling_ratios", "downsampling_ratios", "hop_length")
    )


EXTRACTOR_SIZES: dict[str, dict[str, int]] = {
    # Gemma4FeatureExtractor's default 128 mel bins (its subsampling projection assumes them)
    "gemma4_audio": {"num_mel_bins": 128},
    # GraniteSpeech5FeatureExtractor doubles each frame with its deltas and stacks frames in
    # pairs: 4 * num_mel_bins a row
    "granite_speech5_encoder": {"num_stacked_frames": 4},
}
"""Per (sub-)config `model_type`: sizes of its feature extractor's output that the model's
config does not hold (the model reads the spectrogram as it comes), keyed as the config
keys of other models that do hold them."""


def extractor_size(view: ConfigView, key: str) -> int | None:
    """`key` of `EXTRACTOR_SIZES` for the config or a sub-config, else None."""
    for config in view.configs():
        found = EXTRACTOR_SIZES.get(getattr(type(config), "model_type", ""), {}).get(key)
        if found is not None:
            return found
    return None


def mel_bins(view: ConfigView) -> int:
    """Spectrogram values per row: bins per frame, times the `num_stacked_frames` its
    feature extractor stacks into one row (FunASR: 7; Granite Speech 5: 4, see
    `EXTRACTOR_SIZES`)."""
    stacked = extractor_size(view, "num_stacked_frames")
    return spectrogram_bins(view) * (stacked or view.size("num_stacked_frames", default=1))


def spectrogram_bins(view: ConfigView) -> int:
    """Spectrogram bins per frame (Gemma 4's from `EXTRACTOR_SIZES`)."""
    published = extractor_size(view, "num_mel_bins")
    if published is not None:
        return published
    per_channel = view.find("input_feat_per_channel")
    if isinstance(per_channel, int):  # Speech2Text stacks channels
        return per_channel * view.size("input_channels", default=1)
    return view.size(
        "num_mel_bins", "feature_projection_input_dim", "input_feat_size", "n_mels",
        "feature_size", default=80,
    )


def whisper_window(view: ConfigView) -> int | None:
    """Frames of a whisper-style encoder's fixed window: 2 * `max_source_positions` where
    the same config names `num_mel_bins` (its conv stem halves the frames); else None."""
    for config in view.configs():
        fields = vars(config)
        if fields.get("num_mel_bins") and fields.get("max_source_positions"):
            return 2 * int(fields["max_source_positions"])
    return None


def feature_frames(view: ConfigView, seq: int) -> int:
    """Spectrogram frames: a whisper-style window, else `seq` times the config's
    `audio_length_per_tok` (a streaming model adds one text token per that many frames:
    Voxtral Realtime, 8), else `seq`; rounded up to whole `audio_chunk` frames."""
    frames = whisper_window(view) or seq * view.size("audio_length_per_tok", default=1)
    chunk = audio_chunk(view)
    return -(-frames // chunk) * chunk


def audio_chunk(view: ConfigView) -> int:
    """Frames of one chunk of a chunked audio encoder: 2 * `n_window` (Qwen3-ASR attends
    within chunks of 2 * `n_window` frames and refuses a padded length that is not whole
    chunks); 1 for other models."""
    window = view.find("n_window")
    return 2 * window if isinstance(window, int) and window > 0 else 1


def decodes_latents(view: ConfigView) -> bool:
    """Whether the model is the decoder half of an audio tokenizer (its config type ends in
    `_decoder`: Mimi, Pocket TTS, VibeVoice), which reads latents, not a waveform."""
    model_type = getattr(type(view.config), "model_type", "")
    return isinstance(model_type, str) and model_type.endswith("_decoder") and is_codec(view)


@builds("latents")
def latents(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, hidden_size, seq): seq frames of an audio tokenizer's continuous latents."""
    return TensorSpec((batch, view.size("hidden_size", default=1), seq))


@builds("input_values")
def waveform(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, seq * hop) samples; codecs (B, channels, seq * hop); AST's spectrogram
    (B, max_length, mel bins)."""
    max_length = view.find("max_length")
    if isinstance(max_length, int) and view.find("num_mel_bins") is not None:
        return TensorSpec((batch, max_length, mel_bins(view)))
    samples = seq * hop(view)
    if is_codec(view):
        return TensorSpec((batch, view.size("audio_channels", default=1), samples))
    return TensorSpec((batch, samples))


FIRST_LAYERS = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)


def reads_bins_first(module: torch.nn.Module, view: ConfigView) -> bool:
    """Whether the model reads a spectrogram as (B, bins, frames): its first layer (in
    registration order) is a `Conv1d` over `mel_bins` channels (Whisper, CLVP), or it is a
    chunked audio encoder (`audio_chunk` > 1: Qwen3-ASR's Conv2d stem reads one image of
    bins x frames). Speech2Text (bins from `input_feat_per_channel`) has a Conv1d stem too
    but transposes (B, frames, bins) itself."""
    if view.find("input_feat_per_channel") is not None:
        return False
    if audio_chunk(view) > 1:
        return True
    first = next((m for m in module.modules() if isinstance(m, FIRST_LAYERS)), None)
    return isinstance(first, torch.nn.Conv1d) and first.in_channels == mel_bins(view)


def clap_crops(view: ConfigView) -> int | None:
    """Spectrograms per clip of an audio tower that reads them as an image's channels (its
    config has `enable_fusion`: CLAP): ClapFeatureExtractor stacks 4 (the whole clip
    shrunk, and 3 crops of it) where fusion is on, else gives 1. None for other models."""
    fusion = view.find("enable_fusion")
    if not isinstance(fusion, bool):
        return None
    return 4 if fusion else 1


@builds("input_features", "audio_mel")
def spectrogram(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """Whisper-style (B, mel bins, window); other (B, bins, frames) readers (B, bins,
    frames); CLAP (B, crops, frames, mel bins) (see `clap_crops`); the rest (B, frames,
    mel bins) (frames: `feature_frames`)."""
    frames = feature_frames(view, seq)
    crops = clap_crops(view)
    if crops is not None:
        return TensorSpec((batch, crops, frames, mel_bins(view)))
    if whisper_window(view) is not None or view.bins_first:
        return TensorSpec((batch, mel_bins(view), frames))
    return TensorSpec((batch, frames, mel_bins(view)))


@builds("input_features_mask", "feature_attention_mask")
def feature_mask(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, frames) 0/1 mask of a spectrogram."""
    return TensorSpec((batch, feature_frames(view, seq)), torch.int64)


@builds("audio_mel_mask")
def mel_padding(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, frames) bool, True at padding (Gemma 3n)."""
    return TensorSpec((batch, feature_frames(view, seq)), torch.bool)


@builds("decoder_input_ids")
def decoder_tokens(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """`token_ids`; a decoder of several audio codebooks per step (its `decoder_config`
    has `num_channels`: Dia, 9) (B, seq, channels), every id an `ordinary_token` of the
    decoder's vocabulary."""
    decoder = vars(view.config).get("decoder_config")
    channels = vars(decoder).get("num_channels") if hasattr(decoder, "to_dict") else None
    if not isinstance(channels, int):
        return token_ids(view, batch, seq)
    token = ordinary_token(ConfigView(decoder))
    return TensorSpec((batch, seq, channels), torch.int64, values=token)


# --- a text-to-speech training step's targets (FastSpeech 2) ---------------------------

FRAMES_PER_TOKEN = 7
"""Spectrogram frames each input token (a phoneme) lasts in `duration_labels`. About 80 ms
of speech, a phoneme's typical length (English runs about 12 phones a second), in
FastSpeech 2 Conformer's frames: its hub checkpoint (espnet/fastspeech2_conformer) is
ESPnet's LJSpeech recipe, 22,050 Hz audio cut in hops of 256 samples (the product of its
HiFi-GAN's `upsample_rates`, 8 * 8 * 2 * 2): 0.08 * 22050 / 256 = 6.9 frames."""
ASSUMED["duration_labels"] = (
    f"speech durations assumed: every input token lasts {FRAMES_PER_TOKEN} spectrogram "
    "frames (about 80 ms, a typical phoneme), none of them padding"
)


@builds("duration_labels")
def durations(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, seq) frames per token, every one `FRAMES_PER_TOKEN`: the length regulator repeats
    each token's state that many times, so the values size the decoder's sequence."""
    return TensorSpec((batch, seq), torch.int64, values=FRAMES_PER_TOKEN)


@builds("spectrogram_labels")
def target_spectrogram(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, seq * `FRAMES_PER_TOKEN`, mel bins): the spectrogram the durations lay out. Its
    values are known to be no padding (FastSpeech 2 masks frames whose bins are all -100)
    and are 0: only the padding mask, not the values, steers the step."""
    return TensorSpec((batch, seq * FRAMES_PER_TOKEN, mel_bins(view)), values=0.0)


@builds("pitch_labels", "energy_labels")
def token_curve(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, seq, 1): a pitch or energy value per token."""
    return TensorSpec((batch, seq, 1))
