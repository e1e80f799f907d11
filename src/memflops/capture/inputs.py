"""What the user says the model takes, turned into `TensorSpec`s.

Accepted forms (Python API): a shape tuple `(8, 3, 224, 224)`; a list of
shapes; a tensor or a tuple/list of tensors (only their shape and dtype are
used, never their values); a dict of keyword inputs whose values are any of
those, e.g. `{"input_ids": (2, 128)}`. Keyword inputs whose name says they
hold indices (`input_ids`, `attention_mask`, ...) default to int64. On the
command line a shape is `8x3x224x224`, optionally with a dtype: `2x128:int64`,
and with `:grad` for an input whose gradient the train step computes:
`1x3x224x224:grad`, `1x3x224x224:bf16:grad` (a tensor passed with
`requires_grad=True` says the same).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.nested._internal.nested_tensor import NestedTensor

from memflops.errors import SpecError
from memflops.tensor_spec import TensorSpec as TensorSpec
from memflops.tensor_spec import dtype_name as dtype_name

INTEGER_INPUT_NAMES = frozenset(
    {
        "input_ids",
        "attention_mask",
        "token_type_ids",
        "position_ids",
        "labels",
        "decoder_input_ids",
        "decoder_attention_mask",
        "cache_position",
    }
)

FILLED_INPUTS = {
    "attention_mask": 1, "decoder_attention_mask": 1, "pixel_mask": 1,
    "past_observed_mask": 1, "input_features_mask": 1, "feature_attention_mask": 1,
}
"""Keyword inputs whose values memflops fills when none are given: masks of ones ("keep
every position": no padding, every pixel and time step observed). Models read them to
decide, e.g., whether attention needs a mask at all (`capture.values.known`)."""

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float64": torch.float64, "fp64": torch.float64, "double": torch.float64,
    "fp8": torch.float8_e4m3fn, "float8_e4m3fn": torch.float8_e4m3fn,
    "float8_e5m2": torch.float8_e5m2,
    "int64": torch.int64, "long": torch.int64, "int32": torch.int32, "int": torch.int32,
    "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool,
}


@dataclass(frozen=True)
class InputSpecs:
    """Positional and keyword inputs of one forward call."""

    args: tuple[TensorSpec, ...]
    kwargs: tuple[tuple[str, TensorSpec], ...] = ()

    def all(self) -> list[tuple[str, TensorSpec]]:
        named = [(f"input[{i}]", spec) for i, spec in enumerate(self.args)]
        return named + list(self.kwargs)


def input_values(name: str, spec: TensorSpec) -> Any:
    """The known values of keyword input `name`: the spec's, else those memflops fills."""
    return spec.values if spec.values is not None else FILLED_INPUTS.get(name)


def real_values(spec: TensorSpec, values: Any, dtype: torch.dtype) -> torch.Tensor:
    """A real tensor holding `values` (a number, or nested lists of `spec.shape`)."""
    if isinstance(values, (int, float, bool)):
        return torch.full(spec.shape, values, dtype=dtype)
    real = torch.tensor(values, dtype=dtype)
    if tuple(real.shape) != tuple(spec.shape):
        raise SpecError(
            f"input values of shape {tuple(real.shape)} do not match the input's shape "
            f"{tuple(spec.shape)}"
        )
    return real


def parse_dtype(text: str | torch.dtype, *, field: str = "dtype") -> torch.dtype:
    if isinstance(text, torch.dtype):
        return text
    if not isinstance(text, str):
        raise SpecError(f"{field}: expected a dtype name such as 'bf16' or a torch.dtype, got "
                        f"{type(text).__name__} {text!r:.60}")
    try:
        return DTYPES[text.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(DTYPES))
        raise SpecError(f"{field}: unknown dtype {text!r}; expected one of: {known}") from None


GRAD_SUFFIX = "grad"
"""The suffix of a shape whose input requires grad: `1x3x224x224:grad`."""


def _suffixes(text: str, parts: list[str]) -> tuple[str, bool]:
    """The dtype text and the grad flag of a shape's `:`-separated suffixes."""
    dtype_text, grad = "", False
    for part in (p.strip() for p in parts):
        if not part:
            raise SpecError(
                f"bad shape {text!r}: a dtype or 'grad' must follow ':', e.g. 2x128:int64 "
                f"or 1x3x224x224:grad"
            )
        if part.lower() == GRAD_SUFFIX:
            if grad:
                raise SpecError(f"bad shape {text!r}: ':grad' given twice")
            grad = True
        elif dtype_text:
            raise SpecError(f"bad shape {text!r}: two dtypes ({dtype_text!r}, {part!r})")
        else:
            dtype_text = part
    return dtype_text, grad


def parse_shape(text: str) -> TensorSpec:
    """`'8x3x224x224'`, `'2x128:int64'`, `'1x3x224x224:bf16:grad'` or a jagged tensor's
    `'[3,7]x16'` -> TensorSpec."""
    body, *suffixes = text.strip().split(":")
    dtype_text, grad = _suffixes(text, suffixes)
    if body.lstrip().startswith("["):
        return _jagged_shape(text, body, dtype_text, grad)
    parts = body.lower().replace(",", "x").replace("*", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise SpecError(
            f"bad shape {text!r}: expected sizes separated by 'x', e.g. 8x3x224x224 "
            "(optionally ':int64', ':grad')"
        ) from None
    check_sizes(dims, f"bad shape {text!r}")
    dtype = parse_dtype(dtype_text, field=f"shape {text!r}") if dtype_text else None
    return TensorSpec(dims, dtype, requires_grad=grad)


def _jagged_shape(text: str, body: str, dtype_text: str, grad: bool) -> TensorSpec:
    """`[3,7]x16`: a jagged nested tensor of sequences of 3 and 7 positions of 16 each."""
    inside, bracket, rest = body.strip()[1:].partition("]")
    try:
        lengths = tuple(int(p) for p in inside.split(","))
        rest = rest.strip().lower()
        if rest and not rest.startswith("x"):
            raise ValueError(rest)
        inner = tuple(int(p) for p in rest[1:].split("x")) if rest else ()
    except ValueError:
        lengths, inner = (), ()
    if not bracket or not lengths:
        raise SpecError(
            f"bad shape {text!r}: a jagged tensor is its sequence lengths in brackets, then "
            f"the size of each position, e.g. [3,7]x16"
        )
    return jagged_spec(lengths, inner, f"bad shape {text!r}",
                       parse_dtype(dtype_text, field=f"shape {text!r}") if dtype_text else None,
                       requires_grad=grad)


def jagged_spec(lengths: Sequence[int], inner: Sequence[int], where: str, dtype: Any,
                *, requires_grad: bool = False) -> TensorSpec:
    """The spec of a jagged nested tensor of sequences of `lengths` positions of `inner`
    shape each, its sizes checked (`where` names it in an error)."""
    check_sizes(list(lengths), f"{where}: sequence lengths")
    shape = (sum(lengths), *inner)
    check_sizes(shape, where)
    return TensorSpec(shape, dtype, requires_grad=requires_grad, lengths=tuple(lengths))


MAX_ELEMENTS = (2**63 - 1) // 8
"""The most elements an input may have: PyTorch counts sizes, elements and bytes in int64,
and an element takes up to 8 bytes."""


def _numbers(value: Sequence[Any]) -> bool:
    """A non-empty sequence of plain numbers: a shape, possibly a malformed one."""
    return bool(value) and all(
        isinstance(d, (int, float)) and not isinstance(d, torch.Tensor) for d in value
    )


def check_sizes(dims: Sequence[Any], where: str, *, allow_empty: bool = False) -> None:
    """Every size an int >= 1 (>= 0 with `allow_empty`) and the whole within PyTorch's
    int64 counts, else a `SpecError` starting with `where` and naming the bad size."""
    for i, d in enumerate(dims):
        if isinstance(d, bool) or not isinstance(d, int):
            raise SpecError(
                f"{where}: size {i} is {type(d).__name__} {d!r}, expected an int"
            )
        if d < (0 if allow_empty else 1):
            raise SpecError(f"{where}: size {i} is {d}; sizes must be >= 1 (an empty "
                            f"tensor has nothing to count)")
    elements = 1
    for d in dims:
        elements *= d
    if elements > MAX_ELEMENTS:
        raise SpecError(
            f"{where}: {elements:.3g} elements, more than PyTorch's int64 byte counts hold "
            f"(at most {MAX_ELEMENTS:.3g})"
        )


def _one(value: Any, where: str, default_dtype: torch.dtype | None) -> TensorSpec:
    if isinstance(value, TensorSpec):
        check_sizes(value.shape, f"{where}: bad shape {value.shape}", allow_empty=True)
        if value.dtype is not None and not isinstance(value.dtype, torch.dtype):
            return replace(value, dtype=parse_dtype(value.dtype, field=f"{where}: dtype"))
        return value
    if isinstance(value, NestedTensor):
        return _jagged_tensor(value, where)
    if isinstance(value, torch.Tensor):
        if value.is_nested or value.layout is not torch.strided:
            kind = "a strided-layout nested" if value.is_nested else f"a {value.layout}"
            raise SpecError(
                f"{where}: {kind} tensor; memflops analyses dense (strided) tensors and "
                "jagged nested tensors (torch.nested, layout=torch.jagged): pass one of them "
                "or its shape"
            )
        return TensorSpec(tuple(int(d) for d in value.shape), value.dtype,
                          requires_grad=value.requires_grad)
    if isinstance(value, str):
        spec = parse_shape(value)
        return spec if spec.dtype is not None else replace(spec, dtype=default_dtype)
    if isinstance(value, (tuple, list, torch.Size)) and _numbers(value):
        check_sizes(value, f"{where}: bad shape {tuple(value)}")
        return TensorSpec(tuple(value), default_dtype)
    raise SpecError(
        f"{where}: expected a shape tuple such as (8, 3, 224, 224), a tensor or a TensorSpec, "
        f"got {type(value).__name__} {value!r:.60}"
    )


def _jagged_tensor(value: NestedTensor, where: str) -> TensorSpec:
    """A real jagged nested tensor's spec: its lengths read from its offsets."""
    why = ("holes (lengths beside its offsets)" if value._lengths is not None
           else f"its ragged dimension at {value._ragged_idx}" if value._ragged_idx != 1
           else None)
    if why is not None:
        raise SpecError(
            f"{where}: a jagged nested tensor with {why}; memflops takes contiguous ones "
            f"ragged in dimension 1, as torch.nested.nested_tensor(..., layout=torch.jagged) "
            f"makes them"
        )
    offsets = value._offsets.tolist()
    lengths = [end - start for start, end in itertools.pairwise(offsets)]
    return jagged_spec(lengths, tuple(value._values.shape[1:]), where, value.dtype,
                       requires_grad=value.requires_grad)


def normalize_inputs(inputs: Any) -> InputSpecs:
    """Any accepted input form -> InputSpecs (see the module docstring)."""
    if inputs is None:
        raise SpecError("no inputs given: pass a shape such as (1, 3, 224, 224)")
    if isinstance(inputs, Mapping):
        kwargs = []
        for name, value in inputs.items():
            default = torch.int64 if name in INTEGER_INPUT_NAMES else None
            kwargs.append((str(name), _one(value, f"inputs[{name!r}]", default)))
        return InputSpecs((), tuple(kwargs))
    if isinstance(inputs, (torch.Tensor, TensorSpec, str)):
        return InputSpecs((_one(inputs, "inputs", None),))
    if isinstance(inputs, (tuple, list, torch.Size)):
        if _numbers(inputs):
            return InputSpecs((_one(inputs, "inputs", None),))
        if not inputs:
            raise SpecError("inputs: empty; pass a shape such as (1, 3, 224, 224)")
        return InputSpecs(tuple(_one(v, f"inputs[{i}]", None) for i, v in enumerate(inputs)))
    raise SpecError(
        f"inputs: expected a shape, a list of shapes, tensors or a dict of keyword inputs, "
        f"got {type(inputs).__name__}"
    )


def flatten_tensors(value: Any) -> list[torch.Tensor]:
    """Every tensor inside nested tuples, lists, dicts and dataclass-like outputs."""
    found: list[torch.Tensor] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            found.append(item)
        elif isinstance(item, Mapping):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif hasattr(item, "__dataclass_fields__"):
            stack.extend(reversed([getattr(item, f) for f in item.__dataclass_fields__]))
    return found


def stored(t: torch.Tensor) -> torch.Tensor:
    """The dense tensor holding `t`'s elements: a jagged nested tensor's packed values (its
    ragged size is no number), `t` itself otherwise."""
    return t._values if isinstance(t, NestedTensor) else t


def dense_view(t: torch.Tensor) -> torch.Tensor:
    """`t`, or a jagged nested tensor's packed values as a view autograd follows back."""
    return t.values() if isinstance(t, NestedTensor) else t  # type: ignore[no-untyped-call]


def held_tensors(t: torch.Tensor) -> list[torch.Tensor]:
    """The dense tensors whose storages `t` keeps alive: a jagged nested tensor's values,
    offsets and lengths (when it has them), else `t` itself."""
    if isinstance(t, NestedTensor):
        return [x for x in (t._values, t._offsets, t._lengths) if x is not None]
    return [t]


def shape_sequence(value: Sequence[int]) -> list[int]:
    return [int(d) for d in value]
