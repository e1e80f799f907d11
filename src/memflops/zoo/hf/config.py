"""Hugging Face configs as memflops reads them: shipped or given config.json files made
into transformers configs, offline.

A config that leaves a size None for the hub config to fill gets the usual value:
`head_dim` and `num_key_value_heads` derived from the heads, a forecaster's
`prediction_length` 24 (`HUB_FILLED`), and, per model type, the value of its published
config (`PUBLISHED`, `PUBLISHED_ROPE`: DeepSeek-V2's routing, GLM-4V's rotary fraction,
...); a per-language adapter model (X-MOD) its first language. `use_cache` is off: an
analysed forward returns no KV cache. Random skips of a training step (LayerDrop,
SpecAugment) are turned off by `no_random_skips`, with a warning.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from memflops.errors import SpecError, TargetNotFoundError, UsageError, did_you_mean
from memflops.files import load_json

CONFIG_DIR = Path(__file__).parent / "configs"
MEMFLOPS_KEYS = ("_source",)
"""Keys of a shipped config that are ours, not transformers'."""

RANDOM_SKIPS: dict[str, Any] = {
    "layerdrop": 0.0, "encoder_layerdrop": 0.0, "decoder_layerdrop": 0.0,
    "apply_spec_augment": False,
}
"""Training-time random skips, and the value that turns each off (see `no_random_skips`)."""
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


def read_json(text: str, where: str) -> dict[str, Any]:
    raw = load_json(text, where)
    if not isinstance(raw, dict) or not isinstance(raw.get("model_type"), str):
        raise SpecError(f"{where}: expected a config.json object with a 'model_type' string")
    return raw


def shipped_config(name: str) -> tuple[str, dict[str, Any]]:
    """(canonical name, raw config) of a shipped model, by name or repository id."""
    wanted = name.strip().lower()
    names = shipped_names()
    for stem in names:
        raw = read_json((CONFIG_DIR / f"{stem}.json").read_text(), f"shipped config {stem}.json")
        repo = str(raw.get("_name_or_path", ""))
        if wanted in (stem, repo.lower()):
            return stem, raw
    suggestion = did_you_mean(wanted, names)
    raise TargetNotFoundError(
        f"no shipped Hugging Face config {name!r}{suggestion}{' ' if suggestion else '. '}"
        f"Shipped: {', '.join(names)}. Any other: hf:owner/name (from your Hugging Face "
        f"cache, or the Hub) or hf:path/to/config.json"
    )


REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
"""A Hugging Face repository id as users write it: `owner/name`."""


def hub_config(repo_id: str) -> tuple[str, dict[str, Any]]:
    """(repository id, raw config.json) through transformers' own config loading: the
    user's local Hugging Face cache, or the Hub when online (the config only, no weights;
    `HF_HUB_OFFLINE=1` keeps it to the cache)."""
    transformers = import_transformers()
    try:
        with quiet(transformers):
            raw, _ = transformers.PretrainedConfig.get_config_dict(repo_id)
    except Exception as exc:  # transformers and the hub raise many kinds; one line here
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TargetNotFoundError(
            f"hf:{repo_id}: not a shipped config, and transformers could not load its "
            f"config.json from the local Hugging Face cache or the Hub ({reason}); fetch it "
            f"once with `hf download {repo_id} config.json` (a gated model needs `hf auth "
            f"login` first), or give the file: hf:path/to/config.json"
        ) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("model_type"), str):
        raise SpecError(f"hf:{repo_id}: its config.json has no 'model_type' string")
    return repo_id, raw


def import_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise UsageError("transformers is not installed: pip install 'memflops[hf]'") from exc
    return transformers


@contextmanager
def quiet(transformers: Any) -> Iterator[None]:
    """transformers' log at error level only: its notes on configs (deprecated keys,
    generation flags) say nothing about parameters or FLOPs."""
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(level)


MAX_REPEATS = 10_000
"""Most layers (or experts, or blocks of a stage) a config may ask for. Building is
linear in them (100,000 GPT-2 blocks: over 5 minutes and 2.5 GB); the deepest published
models have under 200 layers and the widest mixtures 256 experts (DeepSeek-V3)."""
_REPEATED = re.compile(r"layers|n_layer|experts|blocks|depths?$")


def _check_repeats(fields: dict[str, Any], where: str) -> None:
    """Every count of repeated modules, at any depth of the config, within `MAX_REPEATS`."""
    stack: list[tuple[str, Any]] = list(fields.items())
    while stack:
        key, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{key}.{k}", v) for k, v in value.items())
            continue
        counts = value if isinstance(value, list) else [value]
        if not _REPEATED.search(key.rpartition(".")[2]):
            continue
        for count in counts:
            name = key.rpartition(".")[2]
            if (isinstance(count, int) and not isinstance(count, bool) and count < 0
                    and name.startswith(("num_", "n_"))):  # a count, not a layer index (-1)
                raise SpecError(f"{where}: {key} = {count}: a count of modules is >= 0")
            if isinstance(count, int) and not isinstance(count, bool) and count > MAX_REPEATS:
                raise SpecError(
                    f"{where}: {key} = {count:,}: more repeated modules than memflops builds "
                    f"({MAX_REPEATS:,}; published models have under 200 layers and 256 "
                    f"experts); analyse fewer and scale"
                )


FLOATING_NAMES = ("float32", "float16", "bfloat16", "float64", "float", "half", "double",
                  "auto")
"""The `dtype` (`torch_dtype`) values a config may give: transformers builds a model only
in a floating dtype ("auto": the checkpoint's)."""


def _check_dtype(dtype: Any, where: str) -> None:
    if dtype is None:
        return
    name = dtype.removeprefix("torch.") if isinstance(dtype, str) else None
    if name not in FLOATING_NAMES:
        raise SpecError(f"{where}: dtype (torch_dtype) {dtype!r:.60}: expected a floating "
                        f"dtype name, one of: {', '.join(FLOATING_NAMES)}")


def make_config(raw: dict[str, Any], where: str) -> Any:
    """A transformers config from a config.json dict, with `use_cache` off."""
    transformers = import_transformers()
    fields = {k: v for k, v in raw.items() if k not in MEMFLOPS_KEYS}
    if "torch_dtype" in fields:  # the published name; transformers 5 calls it `dtype`
        fields.setdefault("dtype", fields.pop("torch_dtype"))
    model_type = fields["model_type"]
    _check_repeats(fields, where)
    _check_dtype(fields.get("dtype"), where)
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
        with quiet(transformers):
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
    for part in sub_configs(config):
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
    for part in sub_configs(config):
        _derive_attention_sizes(part)


def sub_configs(config: Any) -> list[Any]:
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


def no_random_skips(config: Any) -> dict[str, Any]:
    """Turns off, in `config` and its sub-configs, the random parts of a training step
    that decide on a random tensor's value, which shape-only analysis does not have:
    LayerDrop (skip a layer with probability p) and SpecAugment (mask random frames).
    Returns the settings it changed, with their old values."""
    changed: dict[str, Any] = {}
    for part in sub_configs(config):
        for key, off in RANDOM_SKIPS.items():
            value = vars(part).get(key)
            if isinstance(value, (bool, int, float)) and value != off:
                changed[key] = value
                setattr(part, key, off)
    return changed


def random_skips_warning(changed: dict[str, Any]) -> tuple[str, ...]:
    if not changed:
        return ()
    found = ", ".join(f"{k}={v}" for k, v in sorted(changed.items()))
    return (
        f"random training skips off ({found}): the training step runs every layer and "
        "masks no frames",
    )
