"""Example inputs of a transformers model: which keyword inputs it takes, and their shapes.

`HFInputs(batch, seq)` gives one `TensorSpec` per input the model takes. Each input
name has one builder in `BUILDERS` (filled by `@builds`), which reads the sizes it
needs from the model's config (or a sub-config: `vision_config`, `audio_config`,
`encoder_config`, ...). What `seq` means, input by input:

- `input_ids`, the masks, `decoder_input_ids`: (B, seq) int64; seq = tokens. Their
  values are known (`capture.known_values`): every id is one ordinary token
  (`ordinary_token`), every mask one, so a model that reads them (padding lengths,
  placeholder tokens) sees plain text without padding.
- `grid_thw`, `image_grid_thw` and the patches of a vision tower: B images of
  `patch_grid` patches, the grid's values given. The patches come in the layout the
  tower reads (`PixelLayout`): flattened rows beside a grid (Qwen2-VL), one small image
  per patch (Kimi K2.5), (B, patches, row) beside each image's patch positions (SigLIP 2,
  Gemma 4), or one strip of patches beside `target_sizes` (MiniCPM-V).
- `bbox`: (B, seq, 4) int64, one box per token (document models).
- inputs that are another model's output or a task's: Perceiver's embedded `inputs` and
  a Q-Former's `query_embeds` (B, seq, width); an audio tokenizer decoder's `latents`
  (B, hidden_size, seq); LXMERT's 36 regions; a Decision Transformer's trajectory of
  seq steps; OneFormer's task prompt; SegGPT's prompt image. Optional inputs the model
  cannot run without are fed beside their partner (`COMPANIONS`).
- `pixel_values`: (B, C, H, W) from `num_channels` (3) and `image_size` (224); a video
  model's (its config has `num_frames`) and `pixel_values_videos`: (B, T, C, H, W),
  T = `num_frames` (or `frames_per_clip`; 16). seq is not used.
- `input_values`, a waveform: (B, seq * hop) samples, codecs (B, channels, seq * hop);
  seq = frames of `hop` samples. A spectrogram (the config has `max_length` and
  `num_mel_bins`, AST): (B, max_length, bins); seq is not used.
- `input_features`, `audio_mel`, a spectrogram: (B, seq, bins); seq = frames. A
  whisper-style encoder (its config has `num_mel_bins` and `max_source_positions`)
  takes its fixed window: (B, bins, 2 * max_source_positions); seq is not used.
- time series (`past_values`, ...): (B, context_length + largest lag[, channels]),
  the model's window, and (B, prediction_length[, channels]) for the future values;
  seq is not used.

`hop` is the config's `samples_per_token` (a waveform must be a whole number of
tokens: Muse Spark), else the product of its `conv_stride` (wav2vec2 family: 320
samples), else its `hop_length`, else the product of its `downsampling_ratios` or
`upsampling_ratios` (codecs), else 320. Fixed sizes are the model's own: learned
positions, a fixed audio window or a forecast window leave no other choice.

Which inputs a model takes (`input_names`): its `main_input_name`, every required
argument of its `forward`, and these companions where `forward` accepts them:
`attention_mask` for text encoders, `decoder_input_ids` for encoder-decoders, `bbox`
for document models, the time-series features beside `past_values`, and, for
models that pair modalities without placeholder tokens (CLIP-style dual encoders,
grounding, audio-text), both the text and the image, video or audio input. A model
that splices images, video or audio into its text at placeholder tokens (its config
names an `image_token_id`, ...) gets text alone: where the placeholders sit is data,
which shape-only analysis does not have.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import torch

from memflops.capture.inputs import TensorSpec
from memflops.errors import SpecError

Builder = Callable[["ConfigView", int, int], TensorSpec]
BUILDERS: dict[str, Builder] = {}
"""Input name -> (config, batch, seq) -> its TensorSpec."""

DEFAULT_IMAGE, DEFAULT_FRAMES, DEFAULT_HOP = 224, 16, 320
TEXT = "input_ids"
MODALITIES = ("pixel_values", "pixel_values_videos", "input_values", "input_features")
"""Inputs that carry an image, a video or audio."""
TIME_SERIES = (
    "past_time_features", "past_observed_mask", "future_values", "future_time_features",
    "static_categorical_features", "static_real_features", "past_values_padding", "freq",
)
"""Companions of `past_values`, fed where `forward` takes them and the config sizes them."""
PLACEHOLDER_TOKENS = (
    "image_token_id", "image_token_index", "video_token_id", "video_token_index",
    "audio_token_id", "audio_token_index",
)


def builds(*names: str) -> Callable[[Builder], Builder]:
    """Register `fn` as the builder of `names`; a name has one builder."""

    def register(fn: Builder) -> Builder:
        for name in names:
            if name in BUILDERS:
                raise ValueError(f"input {name!r} already has a builder")
            BUILDERS[name] = fn
        return fn

    return register


@dataclass(frozen=True)
class ConfigView:
    """A config and its sub-configs, searched in that order for a size."""

    config: Any
    bins_first: bool = False
    """A spectrogram is (B, bins, frames), not (B, frames, bins) (see `reads_bins_first`)."""
    layout: str = "image"
    """How the model reads an image (see `PixelLayout`)."""

    @property
    def patches(self) -> bool:
        """Images come as patches with their grid or positions, not as (B, C, H, W)."""
        return self.layout not in (PixelLayout.IMAGE, PixelLayout.PROMPTED)

    def configs(self) -> Iterator[Any]:
        """The config, then its sub-configs breadth-first."""
        queue, seen = [self.config], set()
        while queue:
            config = queue.pop(0)
            if id(config) in seen:
                continue
            seen.add(id(config))
            yield config
            queue += [v for v in vars(config).values() if hasattr(v, "to_dict")]

    def find(self, *keys: str, derived: bool = False) -> Any:
        """The first key set (not None) in the config, else in a sub-config; else None.
        `derived`: a key may also be a property the config class computes (Muse Spark's
        `samples_per_token`); off by default, as a property may describe another domain
        (NeuCodec's `hop_length` is at its output sampling rate, not its input's)."""
        for config in self.configs():
            for key in keys:
                value = vars(config).get(key)
                if value is None and derived and isinstance(
                    getattr(type(config), key, None), property
                ):
                    value = _read_property(config, key)
                if value is not None:
                    return value
        return None

    def size(self, *keys: str, default: int) -> int:
        found = self.find(*keys)
        return int(found) if isinstance(found, int) else default


def _read_property(config: Any, key: str) -> Any:
    try:
        return getattr(config, key)
    except Exception:  # a derived size the config cannot compute is absent
        return None


def _product(values: Any) -> int | None:
    return math.prod(int(v) for v in values) if isinstance(values, (list, tuple)) else None


# --- text --------------------------------------------------------------------------------


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


@builds("input_ids", "decoder_input_ids", "qformer_input_ids")
def token_ids(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, seq) token indices, every one `ordinary_token`: a model that reads its ids
    (padding, placeholder tokens) sees plain text without padding."""
    return TensorSpec((batch, seq), torch.int64, values=ordinary_token(view))


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


# --- images and video --------------------------------------------------------------------


def timm_input_size(view: ConfigView) -> tuple[int, int, int] | None:
    """(C, H, W) a timm backbone (a `timm_wrapper` sub-config naming an `architecture`)
    was made for: timm's `pretrained_cfg["input_size"]` of that architecture; else None."""
    name = next(
        (vars(c).get("architecture") for c in view.configs()
         if getattr(c, "model_type", None) == "timm_wrapper"),
        None,
    )
    if not isinstance(name, str):
        return None
    try:
        import timm
    except ImportError:
        return None
    found = timm.get_pretrained_cfg(name)
    size = getattr(found, "input_size", None)
    return (int(size[0]), int(size[1]), int(size[2])) if size and len(size) == 3 else None


def multiscale_side(view: ConfigView) -> int | None:
    """Side of the image a multi-scale patch encoder (Depth Pro) needs: its smallest
    `scaled_images_ratios` scale must still cover one `patch_size` patch; else None."""
    ratios, patch = view.find("scaled_images_ratios"), view.find("patch_size")
    if not isinstance(ratios, (list, tuple)) or not ratios or not isinstance(patch, int):
        return None
    return math.ceil(patch / Fraction(str(min(ratios))))


def image_shape(view: ConfigView) -> tuple[int, int, int]:
    """(channels, height, width): `num_channels` (3) and `image_size` (int or pair); where
    the config names no size, a timm backbone's input size, else 224; a multi-scale
    encoder's `multiscale_side` before all."""
    side = multiscale_side(view)
    if side is not None:
        return view.size("num_channels", default=3), side, side
    size = view.find("image_size", "img_size", "input_size", "max_img_size")  # TVP pads to max
    timm_size = timm_input_size(view) if size is None else None
    if timm_size is not None:
        return timm_size
    if isinstance(size, dict):  # {"height": h, "width": w}
        size = (size.get("height", DEFAULT_IMAGE), size.get("width", DEFAULT_IMAGE))
    if isinstance(size, (list, tuple)) and len(size) >= 2:
        height, width = int(size[-2]), int(size[-1])
    else:
        height = width = int(size) if isinstance(size, int) else DEFAULT_IMAGE
    return view.size("num_channels", default=3), height, width


def frames(view: ConfigView) -> int:
    return view.size("num_frames", "frames_per_clip", default=DEFAULT_FRAMES)


@builds("pixel_values")
def pixels(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, C, H, W); a video model's (the config has `num_frames`): (B, T, C, H, W); a
    vision tower that takes patches: those patches, in its `PixelLayout`."""
    if view.layout == PixelLayout.PROMPTED:
        channels, height, width = image_shape(view)
        return TensorSpec((batch, channels, height // 2, width))
    if view.patches:
        return patches_in_layout(view, batch)
    if view.find("num_frames") is not None or reads_video_only(view):
        return TensorSpec((batch, frames(view), *image_shape(view)))
    return TensorSpec((batch, *image_shape(view)))


def reads_video_only(view: ConfigView) -> bool:
    """Whether the model's placeholders are for video alone (InstructBLIP Video), so its
    `pixel_values` are frames."""
    fields = vars(view.config)
    return "video_token_index" in fields and "image_token_index" not in fields


@builds("pixel_values_videos")
def video(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, T, C, H, W), T = `num_frames` or `frames_per_clip` (16)."""
    return TensorSpec((batch, frames(view), *image_shape(view)))


# --- vision towers that take flattened patches and their grid ------------------------------

GRIDS = ("grid_thw", "image_grid_thw")
"""Inputs that give, per image, its (frames, height, width) in patches."""
POSITIONS = ("spatial_shapes", "pixel_position_ids")
"""Inputs that give each image's patch grid or patch positions beside (B, patches, row)."""
DEFAULT_GRID_SIDE = 16


class PixelLayout:
    """How a vision tower reads its image (`pixel_values`)."""

    IMAGE = "image"
    """(B, C, H, W)."""
    FLAT = "flat"
    """(B * t * h * w, `patch_width`) rows beside a `GRIDS` input (Qwen2-VL)."""
    CONV = "conv"
    """(B * h * w, C, patch, patch), one small image per patch, beside a `GRIDS` input: the
    `PATCH_IMAGES` towers, whose patch Conv2d reads the patches as they come (the other
    Conv2d towers, Video LLaMA 3, HunYuan-VL, GLM-Image, view flat rows as patches)."""
    ROWS = "rows"
    """(B, h * w, `patch_width`) beside a `POSITIONS` input (SigLIP 2, Gemma 4)."""
    PROMPTED = "prompted"
    """(B, C, H / 2, W) beside a prompt image of that size: SegGPT stacks the two into its
    `image_size`."""
    STRIP = "strip"
    """(1, C, patch, B * h * w * patch): every image's patches side by side in one strip,
    beside `target_sizes` (MiniCPM-V)."""

    @staticmethod
    def of(names: tuple[str, ...], config: Any) -> str:
        """The layout of the model of `config`, fed `names`."""
        if "target_sizes" in names:
            return PixelLayout.STRIP
        if "prompt_pixel_values" in names:
            return PixelLayout.PROMPTED
        if any(n in POSITIONS for n in names):
            return PixelLayout.ROWS
        if any(n in GRIDS for n in names):
            patch_images = getattr(type(config), "model_type", None) in PATCH_IMAGES
            return PixelLayout.CONV if patch_images else PixelLayout.FLAT
        return PixelLayout.IMAGE


PATCH_IMAGES = ("kimi_k25_vision",)
"""Vision towers that read each patch as a (C, patch, patch) image (`PixelLayout.CONV`)."""


def _merge(view: ConfigView) -> int:
    found = view.find(
        "spatial_merge_size", "merge_size", "merge_kernel_size", "pooling_kernel_size",
        "window_kernel_size",
    )
    if isinstance(found, (list, tuple)) and found:
        found = found[0]
    return int(found) if isinstance(found, int) and found > 0 else 1


def patch_grid(view: ConfigView) -> tuple[int, int, int]:
    """(t, h, w) patches of one image: one temporal group, and a side of
    `image_size / patch_size` patches (the square root of `num_patches`; 16 where the
    config names neither), rounded up to a multiple of the merge (or pooling) size: merged
    patch groups must tile the image."""
    patch = view.size("patch_size", default=14)
    size, count = view.find("image_size"), view.find("num_patches")
    if isinstance(size, int) and size >= patch:
        side = size // patch
    else:
        side = math.isqrt(count) if isinstance(count, int) and count > 0 else DEFAULT_GRID_SIDE
    merge = _merge(view)
    side = -(-side // merge) * merge
    return 1, side, side


def patch_width(view: ConfigView) -> int:
    """Values per flattened patch: channels x temporal patch x patch x patch."""
    patch = view.size("patch_size", default=14)
    channels = view.size("in_channels", "num_channels", default=3)
    temporal = view.size("temporal_patch_size", "patch_temporal", default=1)
    return channels * temporal * patch * patch


@builds(*GRIDS)
def grid(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, 3): B images of `patch_grid` patches each. Its values set how many patches
    each image has, so they are given (see `capture.known_values`)."""
    t, h, w = patch_grid(view)
    return TensorSpec((batch, 3), torch.int64, values=[[t, h, w]] * batch)


@builds("merge_sizes")
def merge_sizes(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B,): each image's merge size (patches merged per side), given as values."""
    return TensorSpec((batch,), torch.int64, values=[_merge(view)] * batch)


def flat_patches(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B * t * h * w, `patch_width`): the patches of B images, one row each."""
    t, h, w = patch_grid(view)
    return TensorSpec((batch * t * h * w, patch_width(view)))


def patches_in_layout(view: ConfigView, batch: int) -> TensorSpec:
    """The patches of B images of `patch_grid` patches, in the view's `PixelLayout`."""
    t, h, w = patch_grid(view)
    patch = view.size("patch_size", default=14)
    channels = view.size("num_channels", "in_channels", default=3)
    if view.layout == PixelLayout.CONV:
        return TensorSpec((batch * t * h * w, channels, patch, patch))
    if view.layout == PixelLayout.ROWS:
        return TensorSpec((batch, h * w, patch_width(view)))
    if view.layout == PixelLayout.STRIP:
        return TensorSpec((1, channels, patch, batch * h * w * patch))
    return flat_patches(view, batch, 0)


@builds("spatial_shapes", "target_sizes")
def spatial_shapes(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, 2): each image's (h, w) in patches (`patch_grid`), given as values."""
    _, h, w = patch_grid(view)
    return TensorSpec((batch, 2), torch.int64, values=[[h, w]] * batch)


@builds("pixel_attention_mask")
def patch_mask(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, h * w) ones: every patch of every image is real, none padding."""
    _, h, w = patch_grid(view)
    return TensorSpec((batch, h * w), torch.int64, values=1)


@builds("pixel_position_ids")
def patch_positions(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, h * w, 2): each patch's (x, y) in its image, row by row, given as values."""
    _, h, w = patch_grid(view)
    one = [[x, y] for y in range(h) for x in range(w)]
    return TensorSpec((batch, h * w, 2), torch.int64, values=[one] * batch)


@builds("hidden_states")
def hidden_input(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """What a model that names its input `hidden_states` reads: a vision tower with a patch
    grid its `flat_patches`; an audio tokenizer's decoder its `latents`; an audio
    tokenizer's encoder its `waveform`."""
    if view.layout == PixelLayout.FLAT:
        return flat_patches(view, batch, seq)
    if decodes_latents(view):
        return latents(view, batch, seq)
    if is_codec(view):
        return waveform(view, batch, seq)
    raise SpecError(
        "`hidden_states` is fed only to vision towers with a patch grid and audio tokenizers"
    )


# --- audio -------------------------------------------------------------------------------


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


def mel_bins(view: ConfigView) -> int:
    """Spectrogram values per row: bins per frame, times the `num_stacked_frames` its
    feature extractor stacks into one row (FunASR: 7; Granite Speech 5: 4, see
    `hf.PUBLISHED`)."""
    return spectrogram_bins(view) * view.size("num_stacked_frames", default=1)


def spectrogram_bins(view: ConfigView) -> int:
    """Spectrogram bins per frame."""
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
    Voxtral Realtime, 8), else `seq`."""
    return whisper_window(view) or seq * view.size("audio_length_per_tok", default=1)


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
    registration order) is a `Conv1d` over `mel_bins` channels (Whisper, CLVP). Speech2Text
    (bins from `input_feat_per_channel`) has such a stem too but transposes (B, frames, bins)
    itself."""
    if view.find("input_feat_per_channel") is not None:
        return False
    first = next((m for m in module.modules() if isinstance(m, FIRST_LAYERS)), None)
    return isinstance(first, torch.nn.Conv1d) and first.in_channels == mel_bins(view)


@builds("input_features", "audio_mel")
def spectrogram(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """Whisper-style (B, mel bins, window); other (B, bins, frames) readers (B, bins,
    frames); the rest (B, frames, mel bins) (frames: `feature_frames`)."""
    frames = feature_frames(view, seq)
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


# --- time series -------------------------------------------------------------------------


def past_length(view: ConfigView) -> int:
    """`context_length` plus the largest lag (lags read further back)."""
    lags = view.find("lags_sequence")
    longest = max((int(v) for v in lags), default=0) if isinstance(lags, (list, tuple)) else 0
    return view.size("context_length", default=DEFAULT_FRAMES) + longest


def _series(view: ConfigView, batch: int, steps: int) -> tuple[int, ...]:
    channels = view.size("num_input_channels", "input_size", default=1)
    if view.find("num_input_channels") is not None or channels > 1:
        return batch, steps, channels
    return batch, steps


@builds("past_values", "past_observed_mask")
def past_values(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, past length[, channels])."""
    return TensorSpec(_series(view, batch, past_length(view)))


@builds("future_values")
def future_values(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, prediction_length[, channels])."""
    return TensorSpec(_series(view, batch, view.size("prediction_length", default=1)))


@builds("past_time_features")
def past_time_features(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, past length, num_time_features)."""
    return TensorSpec((batch, past_length(view), view.size("num_time_features", default=1)))


@builds("future_time_features")
def future_time_features(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, prediction_length, num_time_features)."""
    steps = view.size("prediction_length", default=1)
    return TensorSpec((batch, steps, view.size("num_time_features", default=1)))


@builds("static_categorical_features")
def static_categorical(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, num_static_categorical_features) category indices."""
    count = view.size("num_static_categorical_features", default=0)
    return TensorSpec((batch, count), torch.int64)


@builds("static_real_features")
def static_real(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, num_static_real_features)."""
    return TensorSpec((batch, view.size("num_static_real_features", default=0)))


@builds("past_values_padding")
def past_padding(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, past length) 0/1 padding flags (TimesFM)."""
    return TensorSpec((batch, past_length(view)), torch.int64)


@builds("freq")
def frequency(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, 1) frequency class of each series (TimesFM)."""
    return TensorSpec((batch, 1), torch.int64)


SIZED_BY = {
    "static_categorical_features": "num_static_categorical_features",
    "static_real_features": "num_static_real_features",
}
"""Optional inputs fed only where the config gives them a nonzero size."""


# --- inputs that are other models' outputs, or a task's -----------------------------------

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


@builds("image_embeds_position_mask")
def image_positions(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, seq) zeros: no token is an image placeholder (where they sit is data)."""
    return TensorSpec((batch, seq), torch.int64, values=0)


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


COMPANIONS = {
    "states": ("actions", "rewards", "returns_to_go", "timesteps", "attention_mask"),
    TEXT: ("visual_feats", "visual_pos"),
    "pixel_values": ("image_embeds_position_mask", "mm_token_type_ids"),
    "input_features": ("input_features_mask",),
    "query_embeds": ("encoder_hidden_states",),
}
"""Optional inputs the model cannot run without, fed where `forward` takes them beside
the key's input: a trajectory's other parts, LXMERT's regions, Molmo 2's token kinds,
Kosmos-2's placeholder mask, the mask of a spectrogram, the image a Q-Former reads."""


# --- which inputs ------------------------------------------------------------------------


def forward_parameters(module: torch.nn.Module) -> dict[str, inspect.Parameter]:
    try:
        params = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return {}
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {name: p for name, p in params.items() if p.kind not in variadic}


def splices_modalities(config: Any) -> bool:
    """Whether the model puts images, video or audio into its text at placeholder tokens:
    its config has a placeholder's id, even one left None for the hub config to fill."""
    return any(key in vars(config) or hasattr(type(config), key) for key in PLACEHOLDER_TOKENS)


def input_names(module: torch.nn.Module, config: Any, kind: str) -> tuple[str, ...]:
    """The inputs `module` is fed (see the module docstring); `kind` as `hf.model_kind`."""
    params = forward_parameters(module)
    main = getattr(module, "main_input_name", TEXT)
    wanted = [main] if isinstance(main, str) and (main in params or not params) else []
    wanted += [n for n, p in params.items() if p.default is inspect.Parameter.empty]
    companions = []
    if kind == "encoder":
        companions.append("attention_mask")
    if kind == "seq2seq" or getattr(config, "is_encoder_decoder", False):
        companions.append("decoder_input_ids")
    if TEXT in wanted:
        companions.append("bbox")
    if "past_values" in wanted:
        view = ConfigView(config)
        companions += [n for n in TIME_SERIES if n not in SIZED_BY or view.find(SIZED_BY[n])]
    pairs = [TEXT, *MODALITIES]
    if any(n in wanted for n in pairs) and not splices_modalities(config):
        companions += pairs
    if any(n in wanted for n in MODALITIES) and "qformer_input_ids" in wanted:
        companions.append(TEXT)  # InstructBLIP's language model reads text beside the image
    for name in [*wanted, *companions]:
        if name in params or name == main:
            companions += COMPANIONS.get(name, ())
    if "pixel_values" in wanted or "pixel_values" in companions:
        # optional, but a tower of packed patches needs each image's size (MiniCPM-V,
        # SigLIP 2's dual encoder)
        companions += ["target_sizes", "spatial_shapes"]
        if "spatial_shapes" in params:
            companions.append("pixel_attention_mask")
    required = set(wanted)
    wanted += [n for n in companions if n in params]
    if "pixel_values" in wanted and "pixel_values_videos" not in required:
        # images, or video where they are required: Molmo 2 refuses both at once
        wanted = [n for n in wanted if n != "pixel_values_videos"]
    return tuple(dict.fromkeys(n for n in wanted if n in BUILDERS))


# --- how long a token sequence may be ---------------------------------------------------

POSITION_KEYS = (
    "max_position_embeddings", "n_positions", "max_text_positions", "max_target_positions",
    "max_encoder_position_embeddings", "max_decoder_position_embeddings",
)
"""Config keys that size a table of token positions (audio frames' `max_source_positions`
is not one: a spectrogram's length is not `seq`)."""


def _is_position_table(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1].lower()
    return "pos" in leaf or leaf == "wpe"  # GPT-2 calls its table `wpe`


def learned_positions(module: torch.nn.Module, config: Any) -> int | None:
    """Longest token sequence `module`'s learned position tables allow, else None.

    A learned table is an `nn.Embedding` named for positions whose size is a
    `POSITION_KEYS` value of the config or a sub-config (a rotary or relative
    encoding has no such table, and no limit). Its first usable row is after its
    `offset` (BART: 2) and after its padding row (RoBERTa counts positions from
    `pad_token_id + 1`). The shortest table decides.
    """
    view = ConfigView(config)
    sizes = {
        value for part in view.configs() for key in POSITION_KEYS
        if isinstance(value := vars(part).get(key), int)
    }
    limits = []
    for name, table in module.named_modules():
        if not isinstance(table, torch.nn.Embedding) or not _is_position_table(name):
            continue
        offset = getattr(table, "offset", 0)
        offset = offset if isinstance(offset, int) else 0
        if not {table.num_embeddings, table.num_embeddings - offset} & sizes:
            continue
        padding = 0 if table.padding_idx is None else table.padding_idx + 1
        limits.append(table.num_embeddings - offset - padding)
    return min(limits, default=None)


def axial_positions(config: Any) -> int | None:
    """Positions of an axial position table (Reformer, `axial_pos_embds`): the product of
    `axial_pos_shape`; a training step must fill it exactly. Else None."""
    view = ConfigView(config)
    shape = view.find("axial_pos_shape")
    return _product(shape) if view.find("axial_pos_embds") else None


@dataclass(frozen=True)
class HFInputs:
    """`(batch, seq) -> keyword inputs` of one model (see the module docstring)."""

    name: str
    names: tuple[str, ...]
    """The inputs fed, in order."""
    config: Any = field(compare=False, repr=False)
    max_seq: int | None = None
    """Longest token sequence a learned position table allows; None: no limit."""
    bins_first: bool = False
    """A spectrogram input is (B, bins, frames) (see `reads_bins_first`)."""
    train_seq: int | None = None
    """The one token sequence a training step takes (`axial_positions`); None: any."""

    def __call__(self, batch: int, seq: int) -> dict[str, TensorSpec]:
        if batch < 1 or seq < 1:
            raise SpecError(f"{self.name}: batch and seq must be >= 1, got {batch} and {seq}")
        if self.max_seq is not None and seq > self.max_seq and TEXT in self.names:
            raise SpecError(
                f"{self.name}: seq {seq} is longer than its {self.max_seq} learned positions"
            )
        layout = PixelLayout.of(self.names, self.config)
        view = ConfigView(self.config, self.bins_first, layout)
        return {name: BUILDERS[name](view, batch, seq) for name in self.names}

    @property
    def takes_tokens(self) -> bool:
        return TEXT in self.names
