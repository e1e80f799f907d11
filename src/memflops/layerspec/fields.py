"""The layer types a spec may use: each type's fields, how each is checked, and its
default (`LAYER_FIELDS`). A check returns the normalised value or raises ValueError
saying what was expected; `load` turns that into a one-line `SpecError`. Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[Any], Any]
"""Returns the normalised value or raises ValueError with what was expected."""


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int(minimum: int) -> Check:
    def check(v: Any) -> int:
        if not is_int(v) or v < minimum:
            raise ValueError(f"expected an integer >= {minimum}")
        return int(v)

    return check


def _pair(minimum: int) -> Check:
    """An int `k` (meaning `k x k`) or a list `[h, w]`."""

    def check(v: Any) -> tuple[int, int]:
        if is_int(v) and v >= minimum:
            return (int(v), int(v))
        if isinstance(v, list) and len(v) == 2 and all(is_int(x) and x >= minimum for x in v):
            return (int(v[0]), int(v[1]))
        raise ValueError(f"expected an integer >= {minimum} or a pair [h, w] of them")

    return check


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("expected true or false")
    return v


def _float(low: float, high: float, *, high_open: bool = False) -> Check:
    def check(v: Any) -> float:
        # YAML 1.1 reads `1e-5` (no dot) as a string: accept numeric strings.
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                raise ValueError("expected a number") from None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError("expected a number")
        value = float(v)
        if not low <= value <= high or (high_open and value == high):
            bound = f"{high})" if high_open else f"{high}]"
            raise ValueError(f"expected a number in [{low}, {bound}")
        return value

    return check


def _choice(*choices: str) -> Check:
    def check(v: Any) -> str:
        if v not in choices:
            raise ValueError(f"expected one of: {', '.join(choices)}")
        return str(v)

    return check


def ref(v: Any) -> str:
    if isinstance(v, str) or is_int(v):
        return str(v)
    raise ValueError("expected a layer name or index")


def _refs(v: Any) -> tuple[str, ...]:
    items = v if isinstance(v, list) else [v]
    if not items:
        raise ValueError("expected at least one layer name or index")
    return tuple(ref(x) for x in items)


REQUIRED = object()
"""Marks a field without default."""

INF = float("inf")
_CONV: dict[str, tuple[Check, Any]] = {
    "kernel": (_pair(1), REQUIRED),
    "stride": (_pair(1), 1),
    "padding": (_pair(0), 0),
    "dilation": (_pair(1), 1),
    "bias": (_bool, True),
}
_ACT = {"inplace": (_bool, False)}
_POOL: dict[str, tuple[Check, Any]] = {
    "kernel": (_pair(1), REQUIRED),
    "stride": (_pair(1), None),  # None: the kernel size, as in nn.MaxPool2d
    "padding": (_pair(0), 0),
    "ceil_mode": (_bool, False),
}

LAYER_FIELDS: dict[str, dict[str, tuple[Check, Any]]] = {
    "conv": {"out": (_int(1), REQUIRED), **_CONV, "groups": (_int(1), 1)},
    # depthwise: groups = input channels; `out` a multiple of them (default: the same)
    "dwconv": {"out": (_int(1), None), **_CONV},
    "bn": {
        "eps": (_float(0, INF), 1e-5),
        "momentum": (_float(0, 1), 0.1),
        "affine": (_bool, True),
        "track_running_stats": (_bool, True),
    },
    "relu": dict(_ACT),
    "relu6": dict(_ACT),
    "leaky_relu": {**_ACT, "negative_slope": (_float(-INF, INF), 0.01)},
    "gelu": {"approximate": (_choice("none", "tanh"), "none")},
    "silu": dict(_ACT),
    "sigmoid": {},
    "tanh": {},
    "hardswish": dict(_ACT),
    "hardsigmoid": dict(_ACT),
    "maxpool": {**_POOL, "dilation": (_pair(1), 1)},
    "avgpool": {**_POOL, "count_include_pad": (_bool, True)},
    "gap": {},
    "adaptive_avgpool": {"out": (_pair(1), REQUIRED)},
    "flatten": {},
    "fc": {"out": (_int(1), REQUIRED), "in": (_int(1), None), "bias": (_bool, True)},
    "dropout": {"p": (_float(0, 1, high_open=True), 0.5), "inplace": (_bool, False)},
    "add": {"from": (_refs, REQUIRED)},
    "concat": {"from": (_refs, REQUIRED)},
}

ALIASES = {
    "conv2d": "conv", "depthwise": "dwconv", "batchnorm": "bn", "bn2d": "bn", "linear": "fc",
    "dense": "fc", "cat": "concat", "global_avgpool": "gap", "maxpool2d": "maxpool",
    "avgpool2d": "avgpool", "swish": "silu", "residual": "add",
}
COMMON_FIELDS = ("type", "name", "input")
TOP_FIELDS = ("name", "input", "batch", "dtype", "layers", "description")
