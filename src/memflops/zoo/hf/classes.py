"""The transformers class built for a config, and building it on the meta device.

The config's `model_type` decides the class, the first of these that transformers has
for it:

- encoder-decoder (`is_encoder_decoder`): the seq2seq LM (T5ForConditionalGeneration),
  else the speech seq2seq model (WhisperForConditionalGeneration);
- a type with a masked-LM head (BERT, RoBERTa): the base model with its
  pooler (BertModel), the model whose size the model cards publish;
- a type with a causal-LM head (GPT-2, Llama, Mistral, ...): the causal LM;
- a type with an image-classification head (ViT): that classifier;
- always last: the base model (DetrModel, TimeSeriesTransformerModel, ...).

Where a mapping gives a tuple of classes (DeiT, with and without its distillation
head), the one the config's `architectures` names is built, else the first.

Attention runs as `sdpa` where the class supports it, else `eager` (also where a
sub-model, such as a detector's backbone, has no SDPA); also `eager` where the config
soft-caps attention logits (Gemma 2), which SDPA cannot do, and for encoders under
transformers 4.x, whose SDPA path reads the mask's values. Parameters take the config's
published `torch_dtype` (float32 when it names none).
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn

from memflops.errors import FactoryError, SpecError, UsageError
from memflops.frontends.meta_init import small_constants_on_cpu
from memflops.zoo.hf.config import import_transformers, quiet


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


def build(config: Any, attention: str | None = None) -> nn.Module:
    """The model for `config` on the meta device, in the config's dtype; with `attention`
    (`sdpa`, `eager`, `flex_attention`) as given, else SDPA where the model supports it."""
    transformers = import_transformers()
    auto_class, cls = model_class(config)
    if getattr(config, "architectures", None) is None:
        # The Auto class reads it to choose among a tuple of classes, and fails on None.
        config.architectures = [cls.__name__]
    if attention is not None:
        return _built_with(transformers, auto_class, cls, config, attention)
    attention = "sdpa" if getattr(cls, "_supports_sdpa", False) else "eager"
    if getattr(config, "attn_logit_softcapping", None) is not None:
        attention = "eager"  # SDPA cannot soft-cap the logits (Gemma 2)
    if _major(transformers.__version__) < 5 and model_kind(config) == "encoder":
        attention = "eager"  # 4.x encoders read the mask's values before SDPA
    return _built_with(transformers, auto_class, cls, config, attention, fallback=True)


def _built_with(transformers: Any, auto_class: Any, cls: Any, config: Any, attention: str,
                *, fallback: bool = False) -> nn.Module:
    """Built with `attention`; with `fallback`, eager where a sub-model (a backbone) has no
    SDPA; a requested implementation the model refuses is a `UsageError` naming it."""
    fields = vars(config)  # not getattr: transformers 5 warns on reading `torch_dtype`
    dtype = _dtype(fields.get("dtype") or fields.get("torch_dtype"))
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device("meta"), small_constants_on_cpu(), quiet(transformers):
            module: nn.Module = _from_config(auto_class, config, attention, fallback)
    except Exception as exc:
        text = str(exc).strip().splitlines()
        if not fallback and isinstance(exc, (ValueError, ImportError)):
            raise UsageError(f"attention: {cls.__name__} cannot be built with "
                             f"{attention!r}: {text[0] if text else type(exc).__name__}") from exc
        raise FactoryError(
            f"building {cls.__name__} from its config raised {type(exc).__name__}: "
            f"{text[0] if text else ''}"
        ) from exc
    finally:
        torch.set_default_dtype(previous)
    return module


def _from_config(auto_class: Any, config: Any, attention: str, fallback: bool) -> nn.Module:
    """Built with `attention`; with `fallback`, with `eager` where a sub-model (a backbone)
    has no SDPA."""
    try:
        module: nn.Module = auto_class.from_config(config, attn_implementation=attention)
    except ValueError as exc:
        if (not fallback or attention == "eager"
                or "does not support an attention implementation" not in str(exc)):
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
