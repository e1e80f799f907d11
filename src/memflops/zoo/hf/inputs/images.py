"""Builders of images and video: (B, C, H, W) pixels, frames, and the patches of vision
towers in the layout each reads (`registry.PixelLayout`)."""

from __future__ import annotations

import math
from fractions import Fraction

import torch

from memflops.capture.inputs import TensorSpec
from memflops.errors import SpecError
from memflops.zoo.hf.inputs.audio import decodes_latents, is_codec, latents, waveform
from memflops.zoo.hf.inputs.registry import (
    ASSUMED,
    ASSUMED_WHEN,
    DEFAULT_FRAMES,
    DEFAULT_GRID_SIDE,
    DEFAULT_IMAGE,
    GRIDS,
    ConfigView,
    PixelLayout,
    builds,
)


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


def window_block(view: ConfigView) -> int | None:
    """Pixels of one window's side in a whole number of patches, for a windowed ViT that
    cuts its patch grid into `num_windows` x `num_windows` windows (RF-DETR; LW-DETR
    names the side `num_windows_side`): `patch_size * num_windows`; None for any other
    model."""
    windows = view.find("num_windows_side", "num_windows")  # LW-DETR: windows in all
    patch = view.find("patch_size")
    if isinstance(windows, int) and windows > 1 and isinstance(patch, int) and patch > 0:
        return windows * patch
    return None


def windowed(view: ConfigView, side: int) -> int:
    """`side` rounded up to a multiple of `window_block`: the windows must tile the grid
    (RF-DETR base: 518 px -> 560, the resolution Roboflow publishes for it)."""
    block = window_block(view)
    return side if block is None else -(-side // block) * block


def windowed_warning(view: ConfigView) -> str | None:
    """What `image_shape` assumed by rounding a windowed ViT's image up, if it did."""
    block = window_block(view)
    if block is None or multiscale_side(view) is not None:
        return None
    _, height, width = _image_shape(view)
    if height % block == 0 and width % block == 0:
        return None
    return (
        f"image sides assumed {windowed(view, height)} x {windowed(view, width)} px: the "
        f"config's {height} x {width} rounded up to a multiple of {block} (patch_size x "
        "num_windows), so its num_windows x num_windows windows tile the patch grid"
    )


for _name in ("pixel_values", "pixel_values_videos"):
    ASSUMED_WHEN[_name] = windowed_warning


def image_shape(view: ConfigView) -> tuple[int, int, int]:
    """(channels, height, width): `num_channels` (3) and `image_size` (int or pair); where
    the config names no size, a timm backbone's input size, else 224; a multi-scale
    encoder's `multiscale_side` before all; a windowed ViT's sides rounded up so its
    windows tile the patch grid (`windowed`)."""
    side = multiscale_side(view)
    if side is not None:
        return view.size("num_channels", default=3), side, side
    channels, height, width = _image_shape(view)
    return channels, windowed(view, height), windowed(view, width)


def _image_shape(view: ConfigView) -> tuple[int, int, int]:
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
    keypoint matcher's (`matches_pairs`): (B, 2, C, H, W); a model that reads sets of
    images (`PixelLayout.SETS`): (B, 1, C, H, W); a vision tower that takes patches: those
    patches, in its `PixelLayout`."""
    if matches_pairs(view):
        return TensorSpec((batch, 2, *image_shape(view)))
    if view.layout == PixelLayout.SETS:
        return TensorSpec((batch, IMAGES_PER_SET, *image_shape(view)))
    if view.layout == PixelLayout.PROMPTED:
        channels, height, width = image_shape(view)
        return TensorSpec((batch, channels, height // 2, width))
    if view.patches:
        return patches_in_layout(view, batch)
    if view.find("num_frames") is not None or reads_video_only(view):
        return TensorSpec((batch, frames(view), *image_shape(view)))
    return TensorSpec((batch, *image_shape(view)))


IMAGES_PER_SET = 1
"""Images per sample of a model that reads a set of images (`PixelLayout.SETS`)."""
ASSUMED["image_attention_mask"] = (
    f"image set assumed: {IMAGES_PER_SET} image per sample, seen by every token"
)


@builds("image_attention_mask")
def image_set_mask(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, seq, `IMAGES_PER_SET`) ones: every token sees its sample's one image."""
    return TensorSpec((batch, seq, IMAGES_PER_SET), torch.int64, values=1)


def matches_pairs(view: ConfigView) -> bool:
    """Whether the model matches keypoints between two images (LightGlue, EfficientLoFTR):
    its type is one transformers maps to a keypoint-matching head, whose input is B pairs
    of images."""
    try:
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_KEYPOINT_MATCHING_MAPPING_NAMES as MATCHERS,
        )
    except ImportError:
        return False
    return getattr(type(view.config), "model_type", None) in MATCHERS


def reads_video_only(view: ConfigView) -> bool:
    """Whether the model's placeholders are for video alone (InstructBLIP Video), so its
    `pixel_values` are frames."""
    fields = vars(view.config)
    return "video_token_index" in fields and "image_token_index" not in fields


@builds("pixel_values_videos")
def video(view: ConfigView, batch: int, seq: int) -> TensorSpec:
    """(B, T, C, H, W), T = `num_frames` or `frames_per_clip` (16)."""
    return TensorSpec((batch, frames(view), *image_shape(view)))


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
    """(B, 3): B images of `patch_grid` patches each (a `PixelLayout.TILES` tower counts
    tiles of merged patches). Its values set how many patches each image has, so they are
    given (see `capture.values.known`)."""
    t, h, w = patch_grid(view)
    if view.layout == PixelLayout.TILES:
        h, w = h // _merge(view), w // _merge(view)
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
    if view.layout == PixelLayout.TILES:  # `patch_grid` sides are multiples of the merge
        merge = _merge(view)
        tiles = batch * t * (h // merge) * (w // merge)
        return TensorSpec((tiles, merge * patch, merge * patch, channels))
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
