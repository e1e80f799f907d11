"""`hf:NAME` and `hf:path/to/config.json`: transformers models built offline.

A model is built from its config alone, on the meta device: no weights.
`NAME` is one of the configs shipped in `configs/` (each the published
`config.json` of the official repository, with a `_source` key saying where
its numbers come from), matched case-insensitively by file name or by the
repository id in its `_name_or_path`; these work offline. Any other
repository id (`hf:meta-llama/Llama-3.1-8B`) is read through transformers'
own config loading (`config.hub_config`): the user's Hugging Face cache, or
the Hub when online, config.json only. Any other config is given by its path.

The config is read and completed by `config` (published values the
default leaves unset, no KV cache, no random training skips); `classes`
chooses and builds the transformers class; sparse mixture-of-experts blocks
are made shape-only (`moe`); broken default configs are repaired first
(`repairs`).

Inputs: `Loaded.make_inputs(batch, seq)` gives the keyword inputs the model
takes, text, image, video, audio or time series (see
`memflops.zoo.hf.inputs`); `Loaded.default_input` is batch 1, seq 128
(or the longest a learned position table allows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from memflops.errors import SpecError, TargetNotFoundError
from memflops.files import read_text
from memflops.frontends.loaded import Loaded
from memflops.zoo.hf.classes import build, model_kind
from memflops.zoo.hf.config import (
    REPO_ID,
    hub_config,
    make_config,
    no_random_skips,
    random_skips_warning,
    read_json,
    shipped_config,
)
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
from memflops.zoo.hf.offline import hub_reference, offline
from memflops.zoo.hf.repairs import repair_defaults
from memflops.zoo.hf.video_session import session_inputs, takes_session

DEFAULT_BATCH, DEFAULT_SEQ = 1, 128


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


def load_hf(target: str, attention: str | None = None) -> Loaded:
    """`NAME` of a shipped config, or a path to a config.json (see the module docstring);
    the model is built with the Hub switched off (`offline`): only `hf:owner/name` reads
    the Hub, for its config.json. `attention`: its attention implementation (`sdpa`,
    `eager`, `flex_attention`; None: SDPA where the model supports it)."""
    if target.endswith(".json") or ("/" in target and Path(target).is_file()):
        path = Path(target)
        if not path.is_file():
            raise TargetNotFoundError(f"no such file: {target} (target hf:{target})")
        name, raw = target, read_json(read_text(path, target), target)
    else:
        try:
            name, raw = shipped_config(target)
        except TargetNotFoundError:
            if not REPO_ID.match(target):
                raise
            name, raw = hub_config(target)
    try:
        with offline():
            return _built(name, raw, attention)
    except SpecError as exc:
        named = hub_reference(raw)
        if named is None:
            raise
        raise SpecError(
            f"hf:{name}: its backbone {named!r} is a Hub model, and memflops never reaches "
            f"the network to build a model: give the backbone's config as backbone_config "
            f"(or fetch it once into your Hugging Face cache: hf download {named} config.json)"
        ) from exc


def _built(name: str, raw: dict[str, Any], attention: str | None) -> Loaded:
    config = make_config(raw, f"hf:{name}")
    repaired = repair_defaults(config)
    changed = no_random_skips(config)
    module = build(config, attention)
    moe = make_shape_only(module)
    # a video segmenter's forward takes a session (`memflops.zoo.hf.video_session`)
    video = session_inputs(module, config, f"hf:{name}") if takes_session(config) else None
    inputs = video or _inputs_for(module, config, f"hf:{name}")
    warnings = (*repaired, *(moe.warnings if moe else ()), *random_skips_warning(changed),
                *inputs.warnings())  # what the inputs assume
    return Loaded(
        module,
        name,
        inputs(DEFAULT_BATCH, min(DEFAULT_SEQ, inputs.max_seq or DEFAULT_SEQ)),
        make_inputs=inputs,
        active_params_per_token=moe.active_params if moe else None,
        warnings=warnings,
        max_seq=inputs.max_seq if getattr(inputs, "takes_tokens", False) else None,
        inference_only=video is not None,
    )
