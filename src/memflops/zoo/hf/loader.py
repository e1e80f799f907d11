"""`hf:NAME` and `hf:path/to/config.json`: transformers models built offline.

A model is built from its config alone, on the meta device: no hub access,
no weights. `NAME` is one of the configs shipped in `configs/` (each the
published `config.json` of the official repository, with a `_source` key
saying where its numbers come from), matched case-insensitively by file name
or by the repository id in its `_name_or_path`. Any other config is given by
its path.

The config's `model_type` decides the class (its `architectures` entry is
not used), the first of these that transformers has for it:

- encoder-decoder (`is_encoder_decoder`): the seq2seq LM (T5ForConditionalGeneration),
  else the speech seq2seq model (WhisperForConditionalGeneration);
- a type with a masked-LM head (BERT, RoBERTa): the base model with its
  pooler (BertModel), the model whose size the model cards publish;
- a type with a causal-LM head (GPT-2, Llama, Mistral, ...): the causal LM;
- a type with an image-classification head (ViT): that classifier;
- always last: the base model (DetrModel, TimeSeriesTransformerModel, ...).

Where a mapping gives a tuple of classes (DeiT, with and without its distillation
head), the one the config's `architectures` names is built, else the first.

Attention runs as `sdpa` where the class supports it, else `eager` (also
where a sub-model, such as a detector's backbone, has no SDPA); also
`eager` where the config soft-caps attention logits (Gemma 2), which SDPA
cannot do, and for encoders under transformers 4.x, whose SDPA path reads
the mask's values. Parameters take the config's published `torch_dtype`
(float32 when it names none). `use_cache` is off: an analysed forward
returns no KV cache. Sparse mixture-of-experts blocks are made shape-only
(see `memflops.zoo.hf.moe`). A config that leaves a size None for the
hub config to fill gets the usual value: `head_dim` and
`num_key_value_heads` derived from the heads, a forecaster's
`prediction_length` 24 (`HUB_FILLED`), and, per model type, the value of its
published config (`PUBLISHED`, `PUBLISHED_ROPE`: DeepSeek-V2's routing, GLM-4V's
rotary fraction, ...); a per-language adapter model (X-MOD) its first language.
Random skips of a training step (LayerDrop, SpecAugment) are turned off, with a
warning: whether a layer runs is decided by a random tensor's value, which fake tensors do not have.

Inputs: `Loaded.make_inputs(batch, seq)` gives the keyword inputs the model
takes, text, image, video, audio or time series (see
`memflops.zoo.hf.inputs`); `Loaded.default_input` is batch 1, seq 128
(or the longest a learned position table allows).
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from memflops.errors import (
    FactoryError,
    SpecError,
    TargetNotFoundError,
    UsageError,
    did_you_mean,
)
from memflops.frontends.loaded import Loaded
from memflops.frontends.meta_init import small_constants_on_cpu
from memflops.zoo.hf.inputs import (
    ConfigView,
    HFInputs,
    axial_positions,
    input_names,
    learned_positions,
    reads_bins_first,
)
from memflops.zoo.hf.inputs.tasks import image_span
from memflops.zoo.hf.moe import make_shape_only
from memflops.zoo.hf.repairs import repair_defaults
from memflops.zoo.hf.video_session import session_inputs, takes_session

CONFIG_DIR = Path(__file__).parent / "configs"
MEMFLOPS_KEYS = ("_source",)
"""Keys of a shipped config that are ours, not transformers'."""
DEFAULT_BATCH, DEFAULT_SEQ = 1, 128

RANDOM_SKIPS: dict[str, Any] = {
    "layerdrop": 0.0, "encoder_layerdrop": 0.0, "decoder_layerdrop": 0.0,
    "apply_spec_augment": False,
}
"""Training-time random skips, and the value that turns each off (see `_no_random_skips`)."""
HUB_FILLED = {"prediction_length": 24}
"""Sizes a config class leaves None for the published config to fill, and the value used
when the config given has none: a forecaster's horizon (24 steps, the config default of
the PatchTST family)."""
PUBLISHED: dict[str, dict[str, Any]] = {
    # deepseek-ai/DeepSeek-V2-Lite config.json (the default config's 64 routed experts)
    "deepseek_v2": {"num_experts_per_tok": 6, "n_group": 1, "topk_group": 1},
    # stepfun-ai/Step-3.5-Flash config.json (its window; the default layers are all full)
    "step3p5": {"sliding_window": 512},
    # zai-org/GLM-4.5V config.json: 96 heads of 128 (not 4096 // 96)
    "glm4v_moe_text": {"head_dim": 128},
    # Salesforce/blip2-opt-2.7b config.json: the image placeholder of its OPT vocabulary
    # (the default text model of all three is OPT; InstructBLIP Video's is for video)
    "blip-2": {"image_token_index": 50265},
    "instructblip": {"image_token_index": 50265},
    "instructblipvideo": {"video_token_index": 50265},
    # Qwen/Qwen3-Omni-30B-A3B-Instruct config.json (thinker_config.text_config): heads of
    # 128; its class has no `head_dim`, and 2048 // 28 default heads is 73, odd, for rotary
    "qwen3_omni_moe_text": {"head_dim": 128},
}
"""Per (sub-)config `model_type`: fields its class leaves None (or lacks) that the model
reads, and the published value filled where the config given has none."""
PUBLISHED_ROPE: dict[str, dict[str, Any]] = {
    # zai-org/GLM-4.1V-9B-Thinking config.json: half of each head rotates (its default
    # `mrope_section` [8, 12, 12] sums to 128 * 0.5 / 2)
    "glm4v_text": {"partial_rotary_factor": 0.5},
    "glm4v_moe_text": {"partial_rotary_factor": 0.5},
    "glm_image_text": {"partial_rotary_factor": 0.5},
    # tencent/HunyuanOCR config.json: `xdrope_section` [16, 16, 16, 16] (sums to 128 / 2)
    "hunyuan_vl_text": {"mrope_section": [16, 16, 16, 16]},
}
"""Per (sub-)config `model_type`: `rope_parameters` keys the model reads, and the published
value filled where the config given has none."""


def shipped_names() -> list[str]:
    """Names of the shipped configs, sorted."""
    return sorted(f.stem for f in CONFIG_DIR.glob("*.json"))


def _read_json(text: str, where: str) -> dict[str, Any]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{where}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("model_type"), str):
        raise SpecError(f"{where}: expected a config.json object with a 'model_type' string")
    return raw


def shipped_config(name: str) -> tuple[str, dict[str, Any]]:
    """(canonical name, raw config) of a shipped model, by name or repository id."""
    wanted = name.strip().lower()
    names = shipped_names()
    for stem in names:
        raw = _read_json((CONFIG_DIR / f"{stem}.json").read_text(), f"shipped config {stem}.json")
        repo = str(raw.get("_name_or_path", ""))
        if wanted in (stem, repo.lower()):
            return stem, raw
    suggestion = did_you_mean(wanted, names)
    raise TargetNotFoundError(
        f"no shipped Hugging Face config {name!r}{suggestion}{' ' if suggestion else '. '}"
        f"Shipped: {', '.join(names)}. Any other: hf:path/to/config.json"
    )


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise UsageError("transformers is not installed: pip install 'memflops[hf]'") from exc
    return transformers


@contextmanager
def _quiet(transformers: Any) -> Iterator[None]:
    """transformers' log at error level only: its notes on configs (deprecated keys,
    generation flags) say nothing about parameters or FLOPs."""
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(level)


def make_config(raw: dict[str, Any], where: str) -> Any:
    """A transformers config from a config.json dict, with `use_cache` off."""
    transformers = _import_transformers()
    fields = {k: v for k, v in raw.items() if k not in MEMFLOPS_KEYS}
    if "torch_dtype" in fields:  # the published name; transformers 5 calls it `dtype`
        fields.setdefault("dtype", fields.pop("torch_dtype"))
    model_type = fields["model_type"]
    if model_type not in transformers.CONFIG_MAPPING:
        raise SpecError(
            f"{where}: model_type {model_type!r} is unknown to transformers "
            f"{transformers.__version__}"
        )
    config_class = transformers.CONFIG_MAPPING[model_type]
    for key, value in HUB_FILLED.items():
        if fields.get(key) is None and _defaults_to_none(config_class, key):
            fields[key] = value
    try:
        with _quiet(transformers):
            config = _from_dict(config_class, fields)
    except Exception as exc:
        raise SpecError(f"{where}: transformers rejected the config: {exc}") from exc
    config.use_cache = False
    _fill_published(config)
    _derive_sizes(config)
    _default_language(config)
    return config


def _from_dict(config_class: Any, fields: dict[str, Any]) -> Any:
    """`config_class.from_dict(fields)`; where that fails, the class's own constructor. A
    timm wrapper's `from_dict` (TimmWrapperConfig, Gemma 3n's vision tower) reads the
    `num_classes` every published timm config.json has, and rejects a config without it;
    its constructor takes the class's default (`AutoConfig.for_model` builds it so)."""
    try:
        return config_class.from_dict(fields)
    except Exception as exc:
        try:
            return config_class(**fields)
        except Exception:
            raise exc from None


def _default_language(config: Any) -> None:
    """A model with one adapter per language (X-MOD) runs the config's `default_language`;
    left None, the first of its `languages` (every adapter has the same size)."""
    fields = vars(config)
    languages = fields.get("languages")
    if "default_language" in fields and fields["default_language"] is None and languages:
        config.default_language = languages[0]


def _fill_published(config: Any) -> None:
    """Fills, in `config` and its sub-configs, the `PUBLISHED` fields and `PUBLISHED_ROPE`
    rotary settings its class leaves unset, from the published config of its model."""
    for part in _sub_configs(config):
        # the class's type: `from_dict` may pass the outer `model_type` on to a sub-config
        model_type = str(getattr(type(part), "model_type", ""))
        for key, value in PUBLISHED.get(model_type, {}).items():
            if vars(part).get(key) is None:
                setattr(part, key, copy.deepcopy(value))
        rope = vars(part).get("rope_parameters")
        if isinstance(rope, dict):
            for key, value in PUBLISHED_ROPE.get(model_type, {}).items():
                rope.setdefault(key, copy.deepcopy(value))


def _derive_sizes(config: Any) -> None:
    """Fills the attention sizes a config (or a sub-config) leaves None with transformers'
    usual derivation: `num_key_value_heads` = `num_attention_heads` (multi-head
    attention), `head_dim` = `hidden_size // num_attention_heads`."""
    for part in _sub_configs(config):
        _derive_attention_sizes(part)


def _sub_configs(config: Any) -> list[Any]:
    """`config` and the configs it holds directly (`text_config`, `vision_config`, ...)."""
    return [config, *(v for v in vars(config).values() if hasattr(v, "to_dict"))]


def _derive_attention_sizes(config: Any) -> None:
    fields = vars(config)
    heads, hidden = fields.get("num_attention_heads"), fields.get("hidden_size")
    if not isinstance(heads, int) or heads < 1:
        return
    if "num_key_value_heads" in fields and fields["num_key_value_heads"] is None:
        config.num_key_value_heads = heads
    if "head_dim" in fields and fields["head_dim"] is None and isinstance(hidden, int):
        config.head_dim = hidden // heads


def _defaults_to_none(config_class: Any, key: str) -> bool:
    try:
        param = inspect.signature(config_class.__init__).parameters.get(key)
    except (TypeError, ValueError):
        return False
    return param is not None and param.default is None


def model_kind(config: Any) -> str:
    """"seq2seq", "encoder", "decoder", "image" or "base" (see the module docstring)."""
    from transformers.models.auto import modeling_auto as auto

    model_type = config.model_type
    if getattr(config, "is_encoder_decoder", False):
        return "seq2seq"
    if model_type in auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "encoder"
    if model_type in auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "decoder"
    if model_type in auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES:
        return "image"
    return "base"


def model_class(config: Any) -> tuple[Any, type[nn.Module]]:
    """(transformers Auto class, model class) built for `config`: the first mapping of its
    kind that has the type (see the module docstring), else the base model."""
    import transformers
    from transformers.models.auto import modeling_auto as auto

    seq2seq = (auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING, transformers.AutoModelForSeq2SeqLM)
    speech = (auto.MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING, transformers.AutoModelForSpeechSeq2Seq)
    by_kind: dict[str, list[tuple[Any, Any]]] = {
        "seq2seq": [seq2seq, speech],
        "decoder": [(auto.MODEL_FOR_CAUSAL_LM_MAPPING, transformers.AutoModelForCausalLM)],
        "image": [
            (
                auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING,
                transformers.AutoModelForImageClassification,
            )
        ],
    }
    base = (auto.MODEL_MAPPING, transformers.AutoModel)
    candidates = [*by_kind.get(model_kind(config), []), base]
    for mapping, auto_class in candidates:
        if type(config) in mapping:
            try:
                return auto_class, _pick_class(mapping[type(config)], config)
            except ValueError:  # the class is not exported
                cls = _unexported_class(mapping, config)
                return _Unexported(cls), cls
    raise SpecError(
        f"transformers {transformers.__version__} has no model class for {config.model_type!r}"
    )


def _unexported_class(mapping: Any, config: Any) -> type[nn.Module]:
    """The class `mapping` names for `config` where its package does not export it (Voxtral
    Realtime's text model, defined in its modeling file but left out of its `__all__`)."""
    import importlib

    from transformers.models.auto.configuration_auto import model_type_to_module_name

    name = mapping._model_mapping[config.model_type]
    package = model_type_to_module_name(config.model_type)
    modeling = importlib.import_module(f"transformers.models.{package}.modeling_{package}")
    found = getattr(modeling, name, None)
    if not isinstance(found, type) or not issubclass(found, nn.Module):
        raise SpecError(f"transformers defines no class {name} for {config.model_type!r}")
    return found


class _Unexported:
    """Builds an unexported class (see `_unexported_class`) where an Auto class cannot."""

    def __init__(self, cls: type[nn.Module]) -> None:
        self.cls = cls

    def from_config(self, config: Any, **kwargs: Any) -> nn.Module:
        return self.cls._from_config(config, **kwargs)  # type: ignore[attr-defined,no-any-return]


def _pick_class(entry: Any, config: Any) -> type[nn.Module]:
    """The class an Auto class builds from a mapping entry: the entry itself, or, where the
    entry is a tuple of classes (DeiT: with and without a distillation head), the one the
    config's `architectures` names, else the first."""
    if not isinstance(entry, (list, tuple)):
        return entry  # type: ignore[no-any-return]
    named = set(getattr(config, "architectures", None) or ())
    chosen = next((c for c in entry if c.__name__ in named), entry[0])
    return chosen  # type: ignore[no-any-return]


def build(config: Any) -> nn.Module:
    """The model for `config` on the meta device, in the config's dtype."""
    transformers = _import_transformers()
    auto_class, cls = model_class(config)
    if getattr(config, "architectures", None) is None:
        # The Auto class reads it to choose among a tuple of classes, and fails on None.
        config.architectures = [cls.__name__]
    attention = "sdpa" if getattr(cls, "_supports_sdpa", False) else "eager"
    if getattr(config, "attn_logit_softcapping", None) is not None:
        attention = "eager"  # SDPA cannot soft-cap the logits (Gemma 2)
    if _major(transformers.__version__) < 5 and model_kind(config) == "encoder":
        attention = "eager"  # 4.x encoders read the mask's values before SDPA
    fields = vars(config)  # not getattr: transformers 5 warns on reading `torch_dtype`
    dtype = _dtype(fields.get("dtype") or fields.get("torch_dtype"))
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device("meta"), small_constants_on_cpu(), _quiet(transformers):
            module: nn.Module = _from_config(auto_class, config, attention)
    except Exception as exc:
        text = str(exc).strip().splitlines()
        raise FactoryError(
            f"building {cls.__name__} from its config raised {type(exc).__name__}: "
            f"{text[0] if text else ''}"
        ) from exc
    finally:
        torch.set_default_dtype(previous)
    return module


def _from_config(auto_class: Any, config: Any, attention: str) -> nn.Module:
    """Built with `attention`; with `eager` where a sub-model (a backbone) has no SDPA."""
    try:
        module: nn.Module = auto_class.from_config(config, attn_implementation=attention)
    except ValueError as exc:
        if attention == "eager" or "does not support an attention implementation" not in str(exc):
            raise
        module = auto_class.from_config(config, attn_implementation="eager")
    return module


def _major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def _dtype(value: Any) -> torch.dtype:
    """The published `torch_dtype` (a dtype or its name); float32 when none or "auto"."""
    found = value if isinstance(value, torch.dtype) else getattr(torch, str(value), None)
    return found if isinstance(found, torch.dtype) and found.is_floating_point else torch.float32


def _inputs_for(module: nn.Module, config: Any, name: str) -> HFInputs:
    names = input_names(module, config, model_kind(config))
    view = ConfigView(config)
    bins_first = reads_bins_first(module, view)
    axial = axial_positions(config)
    limits = [n for n in (learned_positions(module, config), axial) if n is not None]
    shortest = image_span(view) if "image_embeds_position_mask" in names else None
    return HFInputs(
        name, names, config, min(limits, default=None), bins_first, axial, min_seq=shortest
    )


def load_hf(target: str) -> Loaded:
    """`NAME` of a shipped config, or a path to a config.json (see the module docstring)."""
    if target.endswith(".json") or ("/" in target and Path(target).is_file()):
        path = Path(target)
        if not path.is_file():
            raise TargetNotFoundError(f"no such file: {target} (target hf:{target})")
        name, raw = target, _read_json(path.read_text(), target)
    else:
        name, raw = shipped_config(target)
    config = make_config(raw, f"hf:{name}")
    repaired = repair_defaults(config)
    changed = _no_random_skips(config)
    module = build(config)
    moe = make_shape_only(module)
    # a video segmenter's forward takes a session (`memflops.zoo.hf.video_session`)
    video = session_inputs(module, config, f"hf:{name}") if takes_session(config) else None
    inputs = video or _inputs_for(module, config, f"hf:{name}")
    warnings = (*repaired, *(moe.warnings if moe else ()), *_random_skips_warning(changed),
                *inputs.warnings())  # what the inputs assume
    return Loaded(
        module,
        name,
        inputs(DEFAULT_BATCH, min(DEFAULT_SEQ, inputs.max_seq or DEFAULT_SEQ)),
        make_inputs=inputs,
        active_params_per_token=moe.active_params if moe else None,
        warnings=warnings,
        inference_only=video is not None,
    )


def _no_random_skips(config: Any) -> dict[str, Any]:
    """Turns off, in `config` and its sub-configs, the random parts of a training step
    that decide on a random tensor's value, which shape-only analysis does not have:
    LayerDrop (skip a layer with probability p) and SpecAugment (mask random frames).
    Returns the settings it changed, with their old values."""
    changed: dict[str, Any] = {}
    for part in _sub_configs(config):
        for key, off in RANDOM_SKIPS.items():
            value = vars(part).get(key)
            if isinstance(value, (bool, int, float)) and value != off:
                changed[key] = value
                setattr(part, key, off)
    return changed


def _random_skips_warning(changed: dict[str, Any]) -> tuple[str, ...]:
    if not changed:
        return ()
    found = ", ".join(f"{k}={v}" for k, v in sorted(changed.items()))
    return (
        f"random training skips off ({found}): the training step runs every layer and "
        "masks no frames",
    )
