"""transformers on memflops' fake tensors: the path an eager run takes, not a trace's.

transformers asks `is_tracing(tensor)` before reading tensor values on a fast path (is
the padding mask all ones? do the position ids hold packed sequences?), and counts a
`FakeTensor` as tracing (`transformers.utils.import_utils.is_fake_tensor`), so on fake
tensors it takes the path of `torch.export`: it builds the 4-D causal mask that an eager
run skips for SDPA's `is_causal`, and with a mask present SDPA cannot use grouped-query
attention, so every layer also copies its keys and values to all heads (`repeat_kv`).
The analysis would then count memory and FLOPs the real step does not have: a tiny Llama
saved 49,152 B more for backward than a real CPU step.

memflops' fake tensors are not a trace where the capture knows their values
(`memflops.capture.values`: an input mask of ones, positions): for those, transformers is
told the tensor is not a `FakeTensor`, and takes the eager path whose reads the known
values answer. A tensor whose values the capture does not know (ViLT's padding mask, built
from the image's pixel mask) is still a `FakeTensor` to transformers, which then takes
the path that reads no value, as it would under a trace, rather than stop the analysis
on a data-dependent read. The original check is put back afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from memflops.capture.values.known import value_readable
from memflops.zoo.hf.offline import offline


def _fake_unless_readable(original: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def is_fake_tensor(x: Any) -> bool:
        return bool(original(x)) and not value_readable(x)

    return is_fake_tensor


@contextmanager
def during_analysis() -> Iterator[None]:
    """transformers' fake-tensor check answers False, while the analysis runs, for the
    tensors whose values the capture can read, and the Hub is switched off (`offline`:
    nothing in an analysis reaches the network)."""
    from transformers.utils import import_utils

    original = getattr(import_utils, "is_fake_tensor", None)
    with offline():
        if original is None:
            yield
            return
        import_utils.is_fake_tensor = _fake_unless_readable(original)  # type: ignore[assignment]
        try:
            yield
        finally:
            import_utils.is_fake_tensor = original
