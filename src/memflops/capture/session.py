"""One capture session: the fake world one step or one generation call runs in.

Every mode (`capture.step`: inference and train; `capture.generate`) sets up
the same things, and this class owns them for the length of a `with` block:

- the `FakeTensorMode`, in which the mode makes its inputs;
- the model's weights swapped for fake stand-ins (`capture.fake`), and the
  values of its small real buffers noted through their stand-ins, so the
  recorder knows them (`capture.values.known`);
- the `ModuleTracker` (backward tagged too when training), the
  `StorageTracker` (when memory is tracked) and the `OpRecorder` feeding it;
- the storages alive before the recorded step: weights, inputs, and what
  the mode adds (optimizer state, KV cache), each noted with its `Kind`.

On entry it sets the caller's ambient torch state aside and the modules'
training flags and grad mode for the mode (train: `train()` and grad enabled;
otherwise `eval()` and no grad); on exit it puts back the grad mode, the
weights, every module's own flag and every attribute the forward created or
replaced on a module (`capture.isolation`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from types import TracebackType
from typing import Any, Protocol

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensor

from memflops.capture.fake import capture_fake_mode, fake_weights
from memflops.capture.inputs import held_tensors, stored
from memflops.capture.isolation import ambient_neutral, module_state_kept
from memflops.capture.kernels.flex import eager_flex_attention
from memflops.capture.kernels.jagged_sdpa import gpu_jagged_attention
from memflops.capture.recorder import OpRecorder
from memflops.capture.tracker import ModuleTracker
from memflops.capture.values.known import small_enough
from memflops.memory.kinds import Kind
from memflops.memory.storage import StorageTracker


def small_real_buffers(model: nn.Module) -> list[torch.Tensor]:
    """Buffers holding real values (a live model's, or small constants a meta build kept on
    the CPU): their values are known to the analysis (`capture.values.known`)."""
    return [
        b for b in model.buffers()
        if b.device.type != "meta" and not isinstance(b, FakeTensor) and small_enough(b)
    ]


def _restore_training_flags(flags: list[tuple[nn.Module, bool]]) -> None:
    for module, flag in flags:
        module.training = flag


class StepWrapper(Protocol):
    """Runs the step on a wrapping of the model instead of the model itself: PyTorch's own
    distributed code applied to a copy (`memflops.capture.parallel`)."""

    def wrapped(self, session: CaptureSession) -> AbstractContextManager[nn.Module]:
        """The model the step runs, built once the session's weights are fake."""

    def recorder(self, tracker: ModuleTracker, storages: StorageTracker | None) -> OpRecorder:
        """The recorder of the wrapped model's step."""

    def local(self, t: torch.Tensor) -> torch.Tensor:
        """The tensor holding this rank's storage of `t` (a distributed tensor's shard)."""

    def result(self, session: CaptureSession) -> Any:
        """What the wrapping found in the step (`Capture.parallel`)."""

    def finish(self, cap: Any) -> Any:
        """The step's `Capture` as the layout leaves it: unchanged where the step ran the
        layout, a modelled layout's formulas applied otherwise (`capture.data_parallel`)."""


class CaptureSession:
    """The fake mode, trackers and recorder of one capture, and what it must restore."""

    def __init__(
        self, model: nn.Module, *, train: bool, dtype: torch.dtype | None,
        track_memory: bool = True, wrapper: StepWrapper | None = None,
    ) -> None:
        """`dtype`: the stand-ins' floating dtype (None: each weight's own). `wrapper`: run
        the step on its wrapping of the model (`session.model` is then the wrapped one)."""
        self.model = model
        self.wrapper = wrapper
        self.train = train
        self.dtype = dtype
        self.fake_mode = capture_fake_mode()
        self.tracker = ModuleTracker(model, tag_backward=train)
        self.storages = StorageTracker() if track_memory else None
        self.recorder = OpRecorder(self.tracker, self.storages)
        self._constants: list[tuple[torch.Tensor, torch.Tensor]] = []
        """(real buffer, its fake stand-in) for each of `small_real_buffers`."""
        self._restore = ExitStack()
        self.checkpointed: list[str] = []
        """The module of each activation-checkpointing region the step ran."""

    def __enter__(self) -> CaptureSession:
        with ExitStack() as stack:  # unwound at once if entering fails half-way
            stack.enter_context(module_state_kept(self.model))
            stack.enter_context(ambient_neutral())
            stack.callback(_restore_training_flags, [(m, m.training) for m in self.model.modules()])
            self.model.train(self.train)
            constants = small_real_buffers(self.model)
            stand_ins = stack.enter_context(fake_weights(self.model, self.fake_mode, self.dtype))
            if self.wrapper is not None:
                self.model = stack.enter_context(self.wrapper.wrapped(self))
                self.tracker = ModuleTracker(self.model, tag_backward=self.train)
                self.recorder = self.wrapper.recorder(self.tracker, self.storages)
            stack.enter_context(self.tracker)
            stack.enter_context(torch.set_grad_enabled(self.train))
            stack.enter_context(eager_flex_attention())
            stack.enter_context(gpu_jagged_attention())
            self._constants = [(c, stand_ins[id(c)]) for c in constants]
            self.note_constants(self.recorder)
            self._restore = stack.pop_all()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._constants = []
        self._restore.__exit__(exc_type, exc, traceback)

    def note_constants(self, recorder: OpRecorder) -> None:
        """Tell `recorder` the values of `small_real_buffers` through their fake stand-ins."""
        for original, fake in self._constants:
            recorder.values.note(fake, original.detach().to(fake.dtype))

    @contextmanager
    def recording(self, recorder: OpRecorder | None = None) -> Iterator[OpRecorder]:
        """Run in the fake mode under `recorder` (by default the session's own)."""
        recorder = self.recorder if recorder is None else recorder
        with self.fake_mode, recorder:
            yield recorder

    def note_preexisting(self, kind: Kind, tensors: Iterable[torch.Tensor]) -> None:
        """Storages alive before the recorded step starts, of `kind` (a storage keeps the
        first kind it is noted with: note them in `Kind`'s order of precedence)."""
        if self.storages is not None:
            for t in tensors:
                for held in held_tensors(t):  # a jagged input: its values and offsets
                    self.storages.preexisting_tensor(self.local(held), kind)

    def note_weights_and_inputs(self, inputs: Sequence[torch.Tensor]) -> None:
        """The storages every mode has before its step: parameters, buffers, inputs."""
        self.note_preexisting(Kind.PARAMS, self.model.parameters())
        self.note_preexisting(Kind.BUFFERS, self.model.buffers())
        self.note_preexisting(Kind.INPUTS, inputs)

    def serials(self, tensors: Iterable[torch.Tensor | None]) -> frozenset[int]:
        """The serials of the tracked storages of `tensors` (None entries skipped)."""
        if self.storages is None:
            return frozenset()
        found = (self.storages.serial_of(self.local(stored(t))) for t in tensors
                 if t is not None)
        return frozenset(s for s in found if s is not None)

    def local(self, t: torch.Tensor) -> torch.Tensor:
        """The tensor holding this process's storage of `t` (`t` itself unless wrapped)."""
        return t if self.wrapper is None else self.wrapper.local(t)

    def wrapped_result(self) -> Any:
        """What the wrapper found in the step (None without one)."""
        return None if self.wrapper is None else self.wrapper.result(self)
