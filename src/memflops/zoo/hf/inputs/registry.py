"""The registry of input builders, and the view of a config they read sizes from.

A builder makes one input's `TensorSpec` from (`ConfigView`, batch, seq); `builds` registers
it under the input names it makes, one builder per name (see the package docstring)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from memflops.capture.inputs import TensorSpec

Builder = Callable[["ConfigView", int, int], TensorSpec]
BUILDERS: dict[str, Builder] = {}
"""Input name -> (config, batch, seq) -> its TensorSpec."""
ASSUMED: dict[str, str] = {}
"""Input name -> what its builder assumes that the config does not say (a prompt's
length), for the report's warnings."""
ASSUMED_WHEN: dict[str, Callable[[ConfigView], str | None]] = {}
"""Input name -> what its builder assumes for this config alone (a windowed ViT's image
side rounded up), or None where it assumes nothing; for the report's warnings."""

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
    TILES = "tiles"
    """(B * t * h/m * w/m, m * patch, m * patch, C), one tile of m x m patches (m the merge
    size) per language-model image token, channels last, beside a `GRIDS` input counted in
    tiles: the `MERGED_TILES` towers (Inkling 2)."""
    STRIP = "strip"
    """(1, C, patch, B * h * w * patch): every image's patches side by side in one strip,
    beside `target_sizes` (MiniCPM-V)."""

    SETS = "sets"
    """(B, images, C, H, W), a set of images per sample, beside an `image_attention_mask`
    saying which tokens see which image (IDEFICS)."""

    @staticmethod
    def of(names: tuple[str, ...], config: Any) -> str:
        """The layout of the model of `config`, fed `names`."""
        if "image_attention_mask" in names:  # fed to `IMAGE_SETS` models only
            return PixelLayout.SETS
        if "target_sizes" in names:
            return PixelLayout.STRIP
        if "prompt_pixel_values" in names:
            return PixelLayout.PROMPTED
        if any(n in POSITIONS for n in names):
            return PixelLayout.ROWS
        if any(n in GRIDS for n in names):
            model_type = getattr(type(config), "model_type", None)
            if model_type in MERGED_TILES:
                return PixelLayout.TILES
            return PixelLayout.CONV if model_type in PATCH_IMAGES else PixelLayout.FLAT
        return PixelLayout.IMAGE


IMAGE_SETS = ("idefics",)
"""Models that read a set of images per sample beside a token-to-image mask
(`PixelLayout.SETS`); other models' `image_attention_mask` (FLAVA: per patch) is not fed."""
PATCH_IMAGES = ("kimi_k25_vision",)
"""Vision towers that read each patch as a (C, patch, patch) image (`PixelLayout.CONV`)."""
MERGED_TILES = ("inkling2_vision",)
"""Vision towers that read a tile of merged patches per image token (`PixelLayout.TILES`)."""


