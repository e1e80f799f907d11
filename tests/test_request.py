"""`memflops.analyze`'s one validation layer (`memflops.request`): every malformed
argument is a `UsageError` (exit 2) naming the argument and the value, and an option that
does not apply to the mode is refused, not dropped."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import memflops
from memflops.errors import AnalysisError, UsageError


def _bad_loss(output: Any, targets: Any) -> torch.Tensor:
    raise ValueError("no loss today")


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"fit": 1.5}, "fit: expected a byte count (int), a size such as '24GiB'"),
        ({"fit": True}, "fit: expected a byte count"),
        ({"dtype": 42}, "dtype: expected a dtype name such as 'bf16' or a torch.dtype, got int 42"),
        ({"batch_sweep": [True, 2]}, "batch_sweep: expected a list of positive ints"),
        ({"batch_sweep": 5}, "batch_sweep: expected a list of positive ints"),
        ({"mode": "train", "optimizer": 42}, "optimizer: expected a name such as 'adam'"),
        ({"batch": 0}, "batch: expected a positive int, got int 0"),
        ({"gpu": 42}, "gpu: expected an accelerator name"),
        ({"gpu": "custom:fp16=1e400T,bw=1T,mem=1G"}, "fp16 must be positive and finite"),
        ({"batch_sweep": [10**20]}, "more than PyTorch's int64 byte counts hold"),
        ({"time_constants": [1]}, "time_constants: expected"),
        ({"allocator_conf": 42}, "allocator_conf: expected a string"),
        ({"prompt_len": 8}, "prompt_len does not apply to mode 'inference'"),
        # a real fp8 train step fails: "sum_cpu" not implemented for 'Float8_e4m3fn'
        ({"mode": "train", "dtype": "fp8"}, "dtype float8_e4m3fn in train mode"),
        ({"optimizer": "sgd"}, "optimizer does not apply to mode 'inference'"),
        ({"fit_dimension": "seq"}, "fit_dimension: it says what fit varies"),
        ({"mode": "generate", "fit": "H100 SXM", "prompt_len": 4, "new_tokens": 2},
         "fit does not apply to mode 'generate'"),
        ({"mode": "generate", "batch_sweep": [1, 2], "prompt_len": 4, "new_tokens": 2},
         "batch_sweep does not apply to mode 'generate'"),
        ({"mode": "generate", "autocast": "bf16", "prompt_len": 4, "new_tokens": 2},
         "autocast does not apply to mode 'generate'"),
        ({"mode": "train", "grad_accumulation": 0},
         "grad_accumulation: expected a positive int, the micro-batches per optimizer step, "
         "got int 0"),
        ({"mode": "train", "grad_accumulation": 2.0}, "grad_accumulation: expected a positive "
         "int, the micro-batches per optimizer step, got float 2.0"),
        ({"mode": "train", "grad_accumulation": True}, "grad_accumulation: expected a positive"),
        ({"mode": "train", "grad_accumulation": "4"}, "grad_accumulation: expected a positive"),
        ({"grad_accumulation": 4}, "grad_accumulation does not apply to mode 'inference' "
         "(only to 'train')"),
        ({"mode": "generate", "grad_accumulation": 4, "prompt_len": 4, "new_tokens": 2},
         "grad_accumulation does not apply to mode 'generate'"),
        ({"mode": "train", "grad_accumulation": 4, "parallel": "fsdp=2"},
         "grad_accumulation=4 with parallel: accumulation is analysed on one GPU only"),
    ],
)
def test_malformed_arguments_are_usage_errors(arguments: dict[str, Any], words: str) -> None:
    with pytest.raises(UsageError) as info:
        memflops.analyze(nn.Linear(10, 5), (2, 10), **arguments)
    assert words in str(info.value)


def test_generate_refuses_inputs() -> None:
    with pytest.raises(UsageError, match="inputs do not apply to mode 'generate'"):
        memflops.analyze(nn.Linear(10, 5), (2, 10), mode="generate", prompt_len=4,
                         new_tokens=2)


def test_a_loss_that_raises_is_named() -> None:
    with pytest.raises(AnalysisError, match="the loss function _bad_loss raised ValueError: "
                       "no loss today"):
        memflops.analyze(nn.Linear(10, 5), (2, 10), mode="train", loss=_bad_loss)


def test_lazy_module_is_named() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.LazyLinear(2))
    with pytest.raises(UsageError, match=r"module `1` \(LazyLinear\) has uninitialised "
                       r"parameters \(weight, bias\)"):
        memflops.analyze(model, (2, 3))


@pytest.mark.parametrize(
    ("arguments", "error", "words"),
    [
        ({"inputs": [memflops.TensorSpec((2, 10), "x")]}, UsageError, "dtype: unknown dtype 'x'"),
        ({"batch_sweep": [1, 2], "progress": lambda *a: 1 / 0}, UsageError,
         "progress: the callback raised ZeroDivisionError"),
        ({"progress": 5}, UsageError, "progress: expected a callable"),
        ({"mode": "train", "optimizer": lambda params: 1 / 0}, AnalysisError,
         "the optimizer factory"),
        ({"mode": "train", "loss": "cross_entropy", "targets": {"a": (2,)}}, UsageError,
         "targets: expected one shape"),
        # Linear(10, 5) on (2, 10): 2 rows of 5 logits, so 2 targets, not 3
        ({"mode": "train", "loss": "cross_entropy", "targets": "3:int64"}, UsageError,
         "targets of shape (3,): cross_entropy takes one class index per row"),
    ],
)
def test_callbacks_and_targets(arguments: dict[str, Any], error: type[Exception],
                               words: str) -> None:
    inputs = arguments.pop("inputs", (2, 10))
    with pytest.raises(error) as info:
        memflops.analyze(nn.Linear(10, 5), inputs, **arguments)
    assert words in str(info.value)


def test_advise_names_a_bad_only() -> None:
    with pytest.raises(UsageError, match="only: expected names of changes"):
        memflops.advise(nn.Linear(10, 5), (2, 10), only=5)  # type: ignore[arg-type]
