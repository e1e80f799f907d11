"""transformers on memflops' fake tensors: the path an eager run takes, not a trace's.

transformers asks `is_tracing(tensor)` before reading tensor values on a fast path (is
the padding mask all ones? do the position ids hold packed sequences?), and counts a
`FakeTensor` as tracing (`transformers.utils.import_utils.is_fake_tensor`), so on fake
tensors it takes the path of `torch.export`: it builds the 4-D causal mask that an eager
run skips for SDPA's `is_causal`, and with a mask present SDPA cannot use grouped-query
attention, so every layer also copies its keys and values to all heads (`repeat_kv`).
The analysis would then count memory and FLOPs the real step does not have: a tiny Llama
saved 49,152 B more for backward than a real CPU step.

memflops' fake tensors are not a trace: the values those reads need are answered by the
capture's known values (`memflops.capture.values`), or the analysis stops with a clear
data-dependent error. So, for the length of an analysis, transformers is told that no
tensor is a `FakeTensor`; the original check is put back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from memflops.zoo.hf.offline import offline


def _never_fake(x: Any) -> bool:
    return False


@contextmanager
def during_analysis() -> Iterator[None]:
    """transformers' fake-tensor check answers False while the analysis runs, and the Hub
    is switched off (`offline`: nothing in an analysis reaches the network)."""
    from transformers.utils import import_utils

    original = getattr(import_utils, "is_fake_tensor", None)
    with offline():
        if original is None:
            yield
            return
        import_utils.is_fake_tensor = _never_fake
        try:
            yield
        finally:
            import_utils.is_fake_tensor = original
