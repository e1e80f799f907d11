"""The options of one analysis, parsed and checked once: `AnalysisRequest`.

`memflops.analyze` takes its options as keyword arguments (the command line
passes them 1:1); `AnalysisRequest.from_arguments` turns them into one
frozen value, checking them in a fixed order and raising the first error:
each argument's kind (`fit=1.5`, `dtype=42`, `batch_sweep=[True, 2]` are
refused by name before any is read), mode, convention, dtype, autocast,
optimizer, loss, fit dimension, fit against, batch sweep sizes, fit capacity,
allocator options, accelerator (`gpu`), time constants, parallel layout, and
last whether
each given option applies to the mode (generate mode takes no fit, sweep,
seq, optimizer or autocast; only generate mode takes prompt_len, new_tokens,
cache_dtype; only train mode takes grad_accumulation): an option that would
be dropped is refused instead.
The checks that need the model come later and are
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

from memflops.analyze_options import (
    ATTENTIONS,
    FIT_AGAINST,
    FIT_AGAINST_CHOICES,
    FIT_DIMENSION,
    LOSS,
    MODES,
    OPTIMIZER,
)
from memflops.capture.inputs import dtype_name, normalize_inputs, parse_dtype
from memflops.capture.step import LossSpec, StepConfig, check_loss
from memflops.conventions import Convention
from memflops.errors import SpecError, UsageError
from memflops.hardware.catalog import Accelerator, accelerator, memory_of
from memflops.hardware.time_model import TimeConstants, parse_constants
from memflops.memory.allocator import AllocatorConfig
from memflops.memory.optimizers import OptimizerSpec, check_optimizer
from memflops.memory.sweep import DIMENSIONS
from memflops.parallel_options import ParallelSpec, parse_parallel, read_tp_plan

AUTOCAST_DTYPES = (torch.float16, torch.bfloat16)
FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)


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
    grad_accumulation: int = 1
    """Micro-batches per optimizer step (the inputs are one micro-batch); 1: none."""
    attention: str | None = None
    """The attention implementation a Hugging Face target is built with (None: its own)."""

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
        grad_accumulation: int | None = None,
        attention: str | None = None,
    ) -> AnalysisRequest:
        """`analyze`'s keyword arguments, checked in the order the module docstring gives."""
        _check_types(
            mode=mode, convention=convention, dtype=dtype, optimizer=optimizer,
            autocast=autocast, loss=loss, batch_sweep=batch_sweep, fit=fit,
            fit_dimension=fit_dimension, allocator_overhead=allocator_overhead, batch=batch,
            seq=seq, prompt_len=prompt_len, new_tokens=new_tokens, cache_dtype=cache_dtype,
            name=name, fit_against=fit_against, allocator_conf=allocator_conf, gpu=gpu,
            time_constants=time_constants, parallel=parallel, tp_plan=tp_plan,
            grad_accumulation=grad_accumulation, attention=attention,
        )
        if mode not in MODES:
            raise UsageError(f"unknown mode {mode!r}; expected one of: {', '.join(MODES)}")
        conv = Convention.parse(convention)
        cast = _cast_dtype(dtype)
        if mode == "train" and cast in FP8_DTYPES:
            raise UsageError(
                f"dtype {dtype_name(cast)} in train mode: PyTorch has no autograd for fp8 "
                f"parameters (its sum and backward kernels refuse fp8; fp8 training keeps "
                f"bf16/fp32 weights and scales matmuls, as torchao's float8 does); use "
                f"dtype='bf16' or autocast='bf16'"
            )
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
        if attention is not None and attention not in ATTENTIONS:
            raise UsageError(f"unknown attention {attention!r}; expected one of: "
                             f"{', '.join(ATTENTIONS)}")
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
        if layout is not None and layout.pipelined and mode != "train":
            raise UsageError("parallel: pp models a training step's pipeline (forwards and "
                             "backwards of micro-batches); use mode train")
        if layout is not None and layout.pipelined and (batch_sweep or fit is not None):
            raise UsageError("parallel: pp takes the batch the micro-batches split; a batch "
                             "sweep or fit with it is not modelled: analyse each batch")
        if fit_dimension == "ranks" and (layout is None or not layout.data_parallel):
            raise UsageError("fit_dimension=ranks: give the layout whose data-parallel ranks "
                             "to vary, with the most to try, e.g. parallel='fsdp=64'")
        plan = read_tp_plan(tp_plan) if tp_plan is not None else None
        if plan is not None and (layout is None or not layout.tp):
            raise UsageError("tp_plan: it applies to tensor parallel; add parallel='tp=N'")
        _check_applies(
            mode, optimizer=optimizer, autocast=autocast, loss=loss, targets=targets,
            batch_sweep=batch_sweep, fit=fit, fit_dimension=fit_dimension,
            fit_against=fit_against, seq=seq, prompt_len=prompt_len, new_tokens=new_tokens,
            cache_dtype=cache_dtype, grad_accumulation=grad_accumulation,
        )
        if grad_accumulation is not None and grad_accumulation > 1 and layout is not None:
            raise UsageError(f"grad_accumulation={grad_accumulation} with parallel: "
                             f"accumulation is analysed on one GPU only for now; leave out "
                             f"one of them")
        return cls(
            mode=mode, convention=conv, cast=cast, autocast=amp, optimizer=optimizer, loss=loss,
            targets=targets, sweep_sizes=sizes, capacity=capacity, fit_dimension=fit_dimension,
            fit_against=fit_against, allocator_overhead=allocator_overhead, allocator=allocator,
            batch=batch, seq=seq, prompt_len=prompt_len,
            new_tokens=new_tokens, cache_dtype=cache_dtype, name=name,
            accelerator=hardware, time_constants=constants, parallel=layout, tp_plan=plan,
            grad_accumulation=grad_accumulation or 1, attention=attention,
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
        targets = None
        if self.targets is not None:
            given = normalize_inputs(self.targets)
            if len(given.args) != 1 or given.kwargs:
                raise UsageError(f"targets: expected one shape such as (8,) or '8:int64', got "
                                 f"{self.targets!r:.60}")
            targets = given.args[0]
        return StepConfig(
            train=self.train,
            dtype=self.cast,
            optimizer=self.step_optimizer,
            autocast=self.autocast,
            loss=self.loss,
            targets=targets,
            micro_batches=self.grad_accumulation,
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


_POSITIVE = ("a positive int", lambda v: _is_int(v) and v >= 1)
_DTYPE = ("a dtype name such as 'bf16' or a torch.dtype",
          lambda v: isinstance(v, (str, torch.dtype)))
_TEXT = ("a string", lambda v: isinstance(v, str))
_ACCEPTED: dict[str, tuple[str, Any]] = {
    "mode": _TEXT,
    "convention": ("a name such as 'exact' or a Convention",
                   lambda v: isinstance(v, (str, Convention))),
    "dtype": _DTYPE,
    "autocast": _DTYPE,
    "cache_dtype": _DTYPE,
    "optimizer": ("a name such as 'adam', a torch.optim.Optimizer or a factory taking the "
                  "parameter list", lambda v: isinstance(v, (str, torch.optim.Optimizer))
                  or callable(v)),
    "loss": ("'sum', 'cross_entropy' or a callable loss(output, targets)",
             lambda v: isinstance(v, str) or callable(v)),
    "batch_sweep": ("a list of positive ints such as [1, 8, 32]",
                    lambda v: isinstance(v, Sequence) and not isinstance(v, str) and len(v) > 0
                    and all(_is_int(n) and n >= 1 for n in v)),
    "fit": ("a byte count (int), a size such as '24GiB' or an accelerator name such as 'H200'",
            lambda v: isinstance(v, str) or (_is_int(v) and v >= 1)),
    "fit_dimension": _TEXT,
    "fit_against": _TEXT,
    "allocator_overhead": ("True or False", lambda v: isinstance(v, bool)),
    "batch": _POSITIVE,
    "seq": _POSITIVE,
    "prompt_len": _POSITIVE,
    "new_tokens": _POSITIVE,
    "name": _TEXT,
    "allocator_conf": _TEXT,
    "gpu": ("an accelerator name such as 'H100 SXM', custom:..., a JSON file or an "
            "Accelerator", lambda v: isinstance(v, (str, Accelerator))),
    "time_constants": ("'matmul=0.6,overhead=5us', a mapping or TimeConstants",
                       lambda v: isinstance(v, (str, dict, TimeConstants))),
    "parallel": ("a layout such as 'fsdp=8' or 'fsdp=4,tp=2', or a ParallelSpec",
                 lambda v: isinstance(v, (str, ParallelSpec))),
    "tp_plan": ("a JSON file of module pattern -> style, or such a mapping",
                lambda v: isinstance(v, (str, dict))),
    "grad_accumulation": ("a positive int, the micro-batches per optimizer step", _POSITIVE[1]),
    "attention": _TEXT,
}
"""What each argument of `analyze` accepts (None aside, where it is the default): the
words of the error and the check."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_types(**arguments: Any) -> None:
    """Each argument of the accepted kind, else a `UsageError` naming it and its value."""
    for name, value in arguments.items():
        wanted, accepts = _ACCEPTED[name]
        if value is not None and not accepts(value):
            raise UsageError(f"{name}: expected {wanted}, got {type(value).__name__} "
                             f"{_excerpt(value)}")


def _excerpt(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_MODE_OPTIONS: dict[str, tuple[str, ...]] = {
    "inference": ("autocast", "batch_sweep", "fit", "seq"),
    "train": ("optimizer", "autocast", "loss", "targets", "batch_sweep", "fit", "seq",
              "grad_accumulation"),
    "generate": ("prompt_len", "new_tokens", "cache_dtype"),
}
"""The options each mode applies; the others, given, are refused (never silently dropped).
Options with a default (`optimizer`, `loss`, `fit_dimension`, `fit_against`) count as
given when they differ from it."""


def _check_applies(mode: str, **options: Any) -> None:
    defaults = {"optimizer": OPTIMIZER, "loss": LOSS, "fit_dimension": FIT_DIMENSION,
                "fit_against": FIT_AGAINST}
    given = [n for n, v in options.items()
             if v is not None and not (n in defaults and _same(v, defaults[n]))]
    if "targets" in given and _same(options["loss"], "sum"):
        raise UsageError("targets: the loss 'sum' takes none; give loss='cross_entropy' (or a "
                         "callable loss) with them, or leave them out")
    applies = _MODE_OPTIONS[mode]
    for name in given:
        if name in ("fit_dimension", "fit_against"):
            if options["fit"] is None:
                raise UsageError(f"{name}: it says what fit varies or holds against; give fit= "
                                 f"too (or leave {name} out)")
        elif name not in applies:
            modes = [m for m, names in _MODE_OPTIONS.items() if name in names]
            raise UsageError(f"{name} does not apply to mode {mode!r} (only to "
                             f"{' and '.join(repr(m) for m in modes)}); leave it out")


def _same(value: Any, default: Any) -> bool:
    return isinstance(value, str) and value == default


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
        return fit
    return memory_of(fit, "fit")
