"""The batch sweep and the fit, driven: the same step analysed again at other sizes.

`fit_line` and `largest_fitting` (`memory.fit`) are the arithmetic; the
drivers here set dimension 0 (batch) or 1 (sequence) of every input to a
size and call `measure`, which analyses the step on those inputs and
returns its peak and the article's estimate, in bytes. They live beside
`memory.fit`, not in it, because `Sweep` and `Fit` belong to the torch-free
report while the inputs here are torch's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace

from memflops.capture.inputs import InputSpecs, check_sizes
from memflops.errors import MemflopsError, UsageError
from memflops.memory.fit import (
    SEARCH_LIMIT,
    Fit,
    Sweep,
    SweepPoint,
    fit_line,
    largest_fitting,
)
from memflops.tensor_spec import TensorSpec

AXES = {"batch": 0, "seq": 1}
"""The input dimension each fit dimension varies."""
DIMENSIONS = tuple(AXES)

Measure = Callable[[InputSpecs], tuple[int, int, int | None]]
"""Analyses the step on the given inputs: (peak, seed estimate, reserved) in bytes."""
Need = Callable[[InputSpecs], int]
"""The bytes the step needs on the given inputs, to hold against a capacity."""


def sweep_batch(specs: InputSpecs, sizes: Sequence[int], measure: Measure) -> Sweep:
    """The peak at each batch size, and the line peak = constant + per_item x batch."""
    points = []
    for size in sizes:
        with _at("batch sweep", "batch", size):
            peak, seed, reserved = measure(resized(specs, size, AXES["batch"]))
        points.append(SweepPoint(size, peak, seed, reserved))
    constant, per_item = fit_line([(p.size, p.peak) for p in points])
    return Sweep("batch", tuple(points), constant, per_item)


def fit_size(
    specs: InputSpecs, capacity: int, dimension: str, need: Need, against: str = "allocated",
    limits: Mapping[str, tuple[int, str]] | None = None,
) -> Fit:
    """The largest batch (or sequence length) whose `need` fits in `capacity` bytes;
    `against` names what `need` measures ("allocated" or "reserved"). `limits` caps a
    dimension below the search limit, with the reason (a model's learned positions)."""
    axis = AXES[dimension]
    _check_axis(specs, axis, dimension)
    limit, reason = (limits or {}).get(dimension, (SEARCH_LIMIT, "the search limit"))
    def need_at(n: int) -> int:
        with _at("fit", dimension, n):
            return need(resized(specs, n, axis))

    fitted = largest_fitting(need_at, capacity, dimension=dimension,
                             limit=min(limit, SEARCH_LIMIT))
    return replace(fitted, against=against, limit_reason=reason)


@contextmanager
def _at(task: str, dimension: str, size: int) -> Iterator[None]:
    """An error of an analysis the sweep or fit ran says so: the user gave another size."""
    try:
        yield
    except MemflopsError as exc:
        raise type(exc)(f"{task}, analysing {dimension} {size:,}: {exc}") from exc


def _check_axis(specs: InputSpecs, axis: int, dimension: str) -> None:
    for name, spec in specs.all():
        if len(spec.shape) <= axis:
            raise UsageError(
                f"fit_dimension={dimension}: input {name} of shape {spec.describe()} has no "
                f"dimension {axis} to vary"
            )


def resized(specs: InputSpecs, size: int, axis: int) -> InputSpecs:
    """The same inputs with dimension `axis` (0: batch, 1: sequence) set to `size`.

    A known value every element equals (`TensorSpec.values`, e.g. Hugging Face's token
    ids) is kept; known contents given element by element no longer fit the new shape
    and are dropped."""

    def resize(spec: TensorSpec) -> TensorSpec:
        if spec.lengths is not None:
            raise UsageError(
                f"input {spec.describe()} is a jagged tensor: its sequences have lengths of "
                f"their own, which memflops does not invent; a batch or sequence sweep, a fit "
                f"and pipeline micro-batches resize every input, so analyse the jagged "
                f"tensors you want one by one"
            )
        if len(spec.shape) <= axis:
            return spec
        shape = list(spec.shape)
        shape[axis] = size
        check_sizes(shape, f"size {size:,} gives an input of shape {tuple(shape)}")
        values = None if isinstance(spec.values, (list, tuple)) else spec.values
        return replace(spec, shape=tuple(shape), values=values)

    return InputSpecs(
        tuple(resize(s) for s in specs.args), tuple((k, resize(s)) for k, s in specs.kwargs)
    )
