"""The options of one analysis, parsed and checked once: `AnalysisRequest`.

`memflops.analyze` takes its options as keyword arguments (the command line
passes them 1:1); `AnalysisRequest.from_arguments` turns them into one
frozen value, checking them in a fixed order and raising the first error:
mode, convention, dtype, autocast, optimizer, loss, fit dimension, fit
against, batch sweep sizes, fit capacity, allocator options, accelerator
(`gpu`), time constants, parallel layout. The checks that need the model come later and are
methods here, called at the step that needs them, so an error is raised at
the same point of the pipeline whatever else is wrong:
`generate_options()` (generate mode, once the model is resolved) and
`step_config()` (the training targets, once the inputs are built).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from memflops.analyze_options import FIT_AGAINST_CHOICES, MODES
from memflops.capture.inputs import dtype_name, normalize_inputs, parse_dtype
from memflops.capture.step import LossSpec, StepConfig, check_loss
from memflops.conventions import Convention
from memflops.errors import SpecError, UsageError
from memflops.hardware.catalog import Accelerator, accelerator, memory_of
from memflops.hardware.time_model import TimeConstants, parse_constants
from memflops.memory.allocator import AllocatorConfig
from memflops.memory.fit import parse_memory
from memflops.memory.optimizers import OptimizerSpec, check_optimizer
from memflops.memory.sweep import DIMENSIONS
from memflops.parallel_options import ParallelSpec, parse_parallel, read_tp_plan

AUTOCAST_DTYPES = (torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class GenerateOptions:
    """What generate mode runs: a prompt of `prompt_len` tokens, then `new_tokens` decodes."""

    batch: int
    prompt_len: int
    new_tokens: int
    cache_dtype: torch.dtype | None
    """The KV cache's dtype; None: the model's."""


@dataclass(frozen=True)
class AnalysisRequest:
    """The validated options of one `memflops.analyze` call (see its docstring)."""

    mode: str
    convention: Convention
    cast: torch.dtype | None
    """`dtype`: floating parameters and inputs cast to it (None: as the model has them)."""
    autocast: torch.dtype | None
    optimizer: OptimizerSpec | None
    """As given, with "none" read as None (no optimizer step)."""
    loss: LossSpec
    targets: Any
    """The cross-entropy targets as given; `step_config()` reads them."""
    sweep_sizes: tuple[int, ...]
    """Batch sizes of the batch sweep; () for none."""
    capacity: int | None
    """Bytes the step must fit in (`fit`), None when no fit is asked."""
    fit_dimension: str
    fit_against: str
    """"allocated" or "reserved": what `capacity` is held against."""
    allocator_overhead: bool
    allocator: AllocatorConfig
    """The simulated caching allocator's options (`allocator_conf`)."""
    batch: int | None
    seq: int | None
    prompt_len: int | None
    new_tokens: int | None
    cache_dtype: str | torch.dtype | None
    """As given; `generate_options()` reads it (only generate mode uses it)."""
    name: str | None
    accelerator: Accelerator | None = None
    """`gpu`: the accelerator to time the step on (None: no time model)."""
    time_constants: TimeConstants = field(default_factory=TimeConstants)
    """The time model's constants, the defaults overridden by `time_constants`."""
    parallel: ParallelSpec | None = None
    """The step's layout over several GPUs (None: one GPU)."""
    tp_plan: dict[str, str] | None = None
    """The tensor-parallel plan given (None: the model's library's own, for `tp`)."""

    @classmethod
    def from_arguments(
        cls,
        *,
        mode: str,
        convention: str | Convention,
        dtype: str | torch.dtype | None,
        optimizer: OptimizerSpec | None,
        autocast: str | torch.dtype | None,
        loss: LossSpec,
        targets: Any,
        batch_sweep: Sequence[int] | None,
        fit: str | int | None,
        fit_dimension: str,
        allocator_overhead: bool,
        batch: int | None,
        seq: int | None,
        prompt_len: int | None,
        new_tokens: int | None,
        cache_dtype: str | torch.dtype | None,
        name: str | None,
        fit_against: str = "allocated",
        allocator_conf: str | None = None,
        gpu: str | Accelerator | None = None,
        time_constants: str | dict[str, object] | TimeConstants | None = None,
        parallel: str | ParallelSpec | None = None,
        tp_plan: str | dict[str, str] | None = None,
    ) -> AnalysisRequest:
        """`analyze`'s keyword arguments, checked in the order the module docstring gives."""
        if mode not in MODES:
            raise UsageError(f"unknown mode {mode!r}; expected one of: {', '.join(MODES)}")
        conv = Convention.parse(convention)
        cast = _cast_dtype(dtype)
        amp = _autocast_dtype(autocast)
        if isinstance(optimizer, str) and optimizer == "none":
            optimizer = None
        check_optimizer(optimizer)
        check_loss(loss)
        if fit_dimension not in (*DIMENSIONS, "ranks"):
            raise UsageError(
                f"unknown fit_dimension {fit_dimension!r}; expected one of: "
                f"{', '.join(DIMENSIONS)}, ranks"
            )
        if fit_against not in FIT_AGAINST_CHOICES:
            raise UsageError(
                f"unknown fit_against {fit_against!r}; expected one of: "
                f"{', '.join(FIT_AGAINST_CHOICES)}"
            )
        sizes = _sweep_sizes(batch_sweep)
        capacity = _capacity(fit) if fit is not None else None
        allocator = AllocatorConfig.parse(allocator_conf)
        hardware = accelerator(gpu) if isinstance(gpu, str) else gpu
        constants = parse_constants(time_constants)
        if time_constants is not None and hardware is None:
            raise UsageError("time_constants: they set the time model, which needs gpu=")
        layout = parse_parallel(parallel) if isinstance(parallel, str) else parallel
        if layout is not None and mode == "generate":
            raise UsageError("parallel: generate mode runs on one GPU; use mode train or "
                             "inference with parallel")
        if fit_dimension == "ranks" and (layout is None or not (layout.fsdp or layout.modelled)):
            raise UsageError("fit_dimension=ranks: give the layout whose data-parallel ranks "
                             "to vary, with the most to try, e.g. parallel='fsdp=64'")
        plan = read_tp_plan(tp_plan) if tp_plan is not None else None
        if plan is not None and (layout is None or not layout.tp):
            raise UsageError("tp_plan: it applies to tensor parallel; add parallel='tp=N'")
        return cls(
            mode=mode, convention=conv, cast=cast, autocast=amp, optimizer=optimizer, loss=loss,
            targets=targets, sweep_sizes=sizes, capacity=capacity, fit_dimension=fit_dimension,
            fit_against=fit_against, allocator_overhead=allocator_overhead, allocator=allocator,
            batch=batch, seq=seq, prompt_len=prompt_len,
            new_tokens=new_tokens, cache_dtype=cache_dtype, name=name,
            accelerator=hardware, time_constants=constants, parallel=layout, tp_plan=plan,
        )

    @property
    def train(self) -> bool:
        return self.mode == "train"

    @property
    def step_optimizer(self) -> OptimizerSpec | None:
        """The optimizer the step runs: the requested one in training, none otherwise."""
        return self.optimizer if self.train else None

    def step_config(self) -> StepConfig:
        """What the captured step does; parses the cross-entropy targets."""
        targets = normalize_inputs(self.targets).args[0] if self.targets is not None else None
        return StepConfig(
            train=self.train,
            dtype=self.cast,
            optimizer=self.step_optimizer,
            autocast=self.autocast,
            loss=self.loss,
            targets=targets,
        )

    def generate_options(self) -> GenerateOptions:
        """Generate mode's options; it needs `prompt_len` and `new_tokens`."""
        if self.prompt_len is None or self.new_tokens is None:
            raise UsageError("mode generate needs prompt_len and new_tokens")
        kv = (
            parse_dtype(self.cache_dtype, field="cache_dtype")
            if self.cache_dtype is not None
            else None
        )
        return GenerateOptions(self.batch or 1, self.prompt_len, self.new_tokens, kv)


def _cast_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    cast = parse_dtype(dtype) if dtype is not None else None
    if cast is not None and not cast.is_floating_point:
        raise SpecError(f"dtype {dtype_name(cast)} is not a floating dtype")
    return cast


def _autocast_dtype(autocast: str | torch.dtype | None) -> torch.dtype | None:
    amp = parse_dtype(autocast, field="autocast") if autocast is not None else None
    if amp is not None and amp not in AUTOCAST_DTYPES:
        raise SpecError(f"autocast: expected fp16 or bf16, got {dtype_name(amp)}")
    return amp


def _sweep_sizes(sizes: Sequence[int] | None) -> tuple[int, ...]:
    if sizes is None:
        return ()
    checked = tuple(sizes)
    if not checked or any(not isinstance(n, int) or n < 1 for n in checked):
        raise UsageError(f"batch_sweep: expected positive integers, got {list(checked)}")
    return checked


def _capacity(fit: str | int) -> int:
    """Bytes from an int, a size string ("24GiB") or an accelerator name ("H200")."""
    if isinstance(fit, int):
        if fit <= 0:
            raise UsageError(f"fit: expected a positive byte count, got {fit}")
        return fit
    if fit.strip()[:1].isdigit():
        return parse_memory(fit)
    return memory_of(fit, "fit")
