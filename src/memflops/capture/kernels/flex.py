"""`flex_attention` on fake tensors that stand for accelerator tensors.

PyTorch's eager `flex_attention` refuses backward on CPU tensors (its CPU
path is inference only) and compiles its higher-order op with dynamo before
running it. memflops' fake tensors are CPU fakes standing for a GPU's, and
the recorder prices the op itself (`capture.hops`), so for the length of a
capture both are lifted: the device check lets CPU fakes require grad (it
still refuses devices flex attention does not support) and the op is called
directly (torch's own `_FLEX_ATTENTION_DISABLE_COMPILE_DEBUG` switch). Both
are put back on exit.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MODULE = "torch.nn.attention.flex_attention"


@contextmanager
def eager_flex_attention() -> Iterator[None]:
    """Let `flex_attention` run, forward and backward, on CPU fake tensors.

    Only once its module is imported (a model that calls it has imported it): importing
    it takes a second, which an analysis without flex attention does not pay.
    """
    flex: Any = sys.modules.get(MODULE)
    if flex is None:
        yield
        return

    device_check = flex._validate_device
    compile_switch = flex._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG

    def validate_device(query: Any, key: Any, value: Any) -> None:
        if query.device.type != "cpu":
            device_check(query, key, value)

    flex._validate_device = validate_device
    flex._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG = True
    try:
        yield
    finally:
        flex._validate_device = device_check
        flex._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG = compile_switch
