"""Example inputs of a transformers model: which keyword inputs it takes, and their shapes.

`HFInputs(batch, seq)` gives one `TensorSpec` per input the model takes. Each input
name has one builder in `BUILDERS` (filled by `@builds`), which reads the sizes it
needs from the model's config (or a sub-config: `vision_config`, `audio_config`,
`encoder_config`, ...). What `seq` means, input by input:

- `input_ids`, the masks, `decoder_input_ids`: (B, seq) int64; seq = tokens. Their
  values are known (`capture.values.known`): every id is one ordinary token
  (`ordinary_token`), every mask one, so a model that reads them (padding lengths,
  placeholder tokens) sees plain text without padding.
- `grid_thw`, `image_grid_thw` and the patches of a vision tower: B images of
  `patch_grid` patches, the grid's values given. The patches come in the layout the
  tower reads (`PixelLayout`): flattened rows beside a grid (Qwen2-VL), one small image
  per patch (Kimi K2.5), (B, patches, row) beside each image's patch positions (SigLIP 2,
  Gemma 4), or one strip of patches beside `target_sizes` (MiniCPM-V).
- `bbox`: (B, seq, 4) int64, one box per token (document models).
- a text-to-speech training step's targets (FastSpeech 2): `duration_labels` (B, seq),
  every token `audio.FRAMES_PER_TOKEN` frames (assumed, and reported); the spectrogram
  they lay out (B, seq * frames, bins), with pitch and energy (B, seq, 1) per token.
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
from dataclasses import dataclass, field
from typing import Any

import torch

from memflops.capture.inputs import TensorSpec
from memflops.errors import SpecError
from memflops.zoo.hf.inputs import embeddings as embeddings  # registers its builders
from memflops.zoo.hf.inputs import tasks as tasks  # registers its builders
from memflops.zoo.hf.inputs import vision_tasks as vision_tasks  # registers builders
from memflops.zoo.hf.inputs.audio import hop, reads_bins_first, spectrogram
from memflops.zoo.hf.inputs.images import (
    image_shape,
    merge_sizes,
    patch_grid,
    patch_positions,
    pixels,
)
from memflops.zoo.hf.inputs.registry import (
    ASSUMED,
    ASSUMED_WHEN,
    BUILDERS,
    IMAGE_SETS,
    MODALITIES,
    PLACEHOLDER_TOKENS,
    TEXT,
    TIME_SERIES,
    ConfigView,
    PixelLayout,
    _product,
)
from memflops.zoo.hf.inputs.series import SIZED_BY
from memflops.zoo.hf.inputs.text import ordinary_token

__all__ = [
    "ASSUMED", "BUILDERS", "COMPANIONS",
    "ConfigView", "HFInputs", "PixelLayout", "axial_positions", "hop",
    "image_shape", "input_names", "learned_positions", "merge_sizes", "ordinary_token",
    "patch_grid", "patch_positions", "pixels", "reads_bins_first", "spectrogram",
    "splices_modalities",
]


COMPANIONS = {
    "states": ("actions", "rewards", "returns_to_go", "timesteps", "attention_mask"),
    TEXT: ("visual_feats", "visual_pos", "spectrogram_labels", "duration_labels",
           "pitch_labels", "energy_labels", "mm_token_type_ids"),
    "pixel_values": ("image_embeds_position_mask", "mm_token_type_ids", "image_attention_mask"),
    "input_features": ("input_features_mask",),
    "query_embeds": ("encoder_hidden_states",),
}
"""Optional inputs the model cannot run without, fed where `forward` takes them beside
the key's input: a trajectory's other parts, LXMERT's regions, the targets FastSpeech 2
refuses to train without, the token kinds of text that could hold images (all text;
Molmo 2 refuses to train without them),
Kosmos-2's placeholder mask, IDEFICS's image-to-token mask, the mask of a spectrogram,
the image a Q-Former reads."""
PASSED_ON = ("t_cond",)
"""Inputs a text model's `forward` takes only through `**kwargs` and hands on to its layers
(Voxtral Realtime's time condition), fed where a layer's `forward` names them."""


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
    aliases = getattr(type(config), "attribute_map", {})  # Molmo 2: image_patch_id
    return any(
        key in vars(config) or hasattr(type(config), key) or key in aliases
        for key in PLACEHOLDER_TOKENS
    )


def input_names(module: torch.nn.Module, config: Any, kind: str) -> tuple[str, ...]:
    """The inputs `module` is fed (see the module docstring); `kind` as `hf.model_kind`."""
    params = forward_parameters(module)
    main = getattr(module, "main_input_name", TEXT)
    wanted = [main] if isinstance(main, str) and (main in params or not params) else []
    wanted += [n for n, p in params.items() if p.default is inspect.Parameter.empty]
    if not wanted and TEXT in params:  # a text tower under a vision class's main input (SAM 3)
        wanted = [TEXT]
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
    if TEXT in wanted:
        wanted += sorted(set(PASSED_ON) & _passed_on(module, params))
    if getattr(type(config), "model_type", None) not in IMAGE_SETS:  # FLAVA's is per patch
        wanted = [n for n in wanted if n != "image_attention_mask"]
    if "pixel_values" in wanted and "pixel_values_videos" not in required:
        # images, or video where they are required: Molmo 2 refuses both at once
        wanted = [n for n in wanted if n != "pixel_values_videos"]
    return tuple(dict.fromkeys(n for n in wanted if n in BUILDERS))


def _passed_on(module: torch.nn.Module, params: dict[str, inspect.Parameter]) -> set[str]:
    """Inputs a `forward` with `**kwargs` hands on to its layers: the parameters a layer's
    `forward` names that the model's own `forward` neither takes nor mentions (a model that
    names one makes it itself: Voxtral Realtime computes the `t_cond` its text model
    takes)."""
    try:
        signature = inspect.signature(module.forward).parameters.values()
        source = inspect.getsource(type(module).forward)
    except (TypeError, ValueError, OSError):
        return set()
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature):
        return set()
    layers = {type(m) for m in module.modules() if m is not module}
    named = {n for cls in layers for n in _layer_parameter_names(cls)} - set(params)
    return {n for n in named if n not in source}


def _layer_parameter_names(cls: type[torch.nn.Module]) -> set[str]:
    try:
        return set(inspect.signature(cls.forward).parameters) - {"self"}
    except (TypeError, ValueError):
        return set()


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


SINGLE_SAMPLE = {
    "tvp": (
        "transformers' TVP (checked with 5.23.0) views its (width, hidden) table of column "
        "positions as (batch, 1, width, hidden) in `add_2d_positional_embeddings`, which "
        "only a batch of 1 fits"
    ),
}
"""Config `model_type` -> why its transformers model runs only a batch of one sample."""


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
    min_seq: int | None = None
    """Shortest token sequence the inputs fit in (Kosmos-2's image tokens); None: 1."""

    def __call__(self, batch: int, seq: int) -> dict[str, TensorSpec]:
        if batch < 1 or seq < 1:
            raise SpecError(f"{self.name}: batch and seq must be >= 1, got {batch} and {seq}")
        if self.min_seq is not None and seq < self.min_seq:
            raise SpecError(
                f"{self.name}: seq {seq} is shorter than the {self.min_seq} tokens its inputs "
                "take (text around an image's tokens)"
            )
        if self.max_seq is not None and seq > self.max_seq and TEXT in self.names:
            raise SpecError(
                f"{self.name}: seq {seq} is longer than its {self.max_seq} learned positions"
            )
        single = SINGLE_SAMPLE.get(getattr(type(self.config), "model_type", ""))
        if single is not None and batch > 1:
            raise SpecError(f"{self.name}: batch {batch} > 1 cannot run: {single}")
        view = self._view()
        return {name: BUILDERS[name](view, batch, seq) for name in self.names}

    def _view(self) -> ConfigView:
        return ConfigView(self.config, self.bins_first, PixelLayout.of(self.names, self.config))

    def warnings(self) -> tuple[str, ...]:
        """What the builders of these inputs assume that the config does not say
        (`registry.ASSUMED`, `registry.ASSUMED_WHEN`), once each, for the report."""
        view = self._view()
        found = [ASSUMED[n] for n in self.names if n in ASSUMED]
        found += [w for n in self.names if n in ASSUMED_WHEN and (w := ASSUMED_WHEN[n](view))]
        return tuple(dict.fromkeys(found))

    @property
    def max_batch(self) -> int | None:
        """Largest batch the model runs (`SINGLE_SAMPLE`); None: no limit."""
        return 1 if getattr(type(self.config), "model_type", "") in SINGLE_SAMPLE else None

    @property
    def takes_tokens(self) -> bool:
        return TEXT in self.names
