"""Storage lifetimes during a capture.

Every storage an op creates is noted with its size, the op index, phase and
module that created it; a `weakref.finalize` on the storage notes the moment
it is freed (CPython frees deterministically, and PyTorch keeps one Python
object per live storage, so the callback fires exactly when the last tensor
using it goes). Fake tensors have real sizes and no data, so the byte counts
are those a GPU run would allocate, before allocator rounding.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch

from memflops.memory.kinds import Kind


@dataclass
class StorageInfo:
    nbytes: int
    op_index: int
    phase: str
    module: str


@dataclass(frozen=True)
class Event:
    """An allocation (`alloc` True) or a free, in the order they happened.

    `op_index` is the index of the op record that created the storage (for a
    free: the number of ops recorded so far).
    """

    key: int
    nbytes: int
    alloc: bool
    op_index: int


@dataclass
class StorageTracker:
    """Notes allocations and frees of storages; knows which were saved for backward.

    Storages are named by a serial number, not by address: an address can be
    reused once its storage is freed.
    """

    events: list[Event] = field(default_factory=list)
    info: dict[int, StorageInfo] = field(default_factory=dict)
    saved: set[int] = field(default_factory=set)
    preexisting: dict[int, Kind] = field(default_factory=dict)
    op_count: int = 0
    step_end: int | None = None
    """The number of events when the step ended (`end_step`); later ones are the capture's
    own tear-down. None: the step has not ended."""
    _live: dict[int, int] = field(default_factory=dict)
    _host: set[int] = field(default_factory=set)

    def on_host(self, t: torch.Tensor) -> None:
        """Never count `t`'s storage: it lives in host memory, not on the accelerator."""
        self._host.add(int(t.untyped_storage()._cdata))

    def serial_of(self, t: torch.Tensor) -> int | None:
        """The serial of `t`'s storage if it is being tracked."""
        return self._live.get(int(t.untyped_storage()._cdata))

    def observe(
        self, t: torch.Tensor, phase: str, module: str, op_index: int, nbytes: int | None = None
    ) -> int:
        """Note `t`'s storage; if it is new, record its allocation. Returns its serial.

        `nbytes` replaces the storage's own size where the real kernel
        allocates a different one (see `memflops.capture.kernels.sizes`).
        """
        storage = t.untyped_storage()
        address = int(storage._cdata)
        serial = self._live.get(address)
        if serial is None:
            if address in self._host:
                return -1
            serial = len(self.info)
            nbytes = int(storage.nbytes()) if nbytes is None else nbytes
            self._live[address] = serial
            self.info[serial] = StorageInfo(nbytes, op_index, phase, module)
            self.events.append(Event(serial, nbytes, True, op_index))
            weakref.finalize(storage, self._freed, address, serial, nbytes)
        return serial

    def preexisting_tensor(self, t: torch.Tensor, kind: Kind) -> None:
        """A storage alive before the step starts (parameter, buffer, input, state).

        A storage noted twice keeps the kind it was first noted with: callers note
        storages in `Kind`'s order of precedence.
        """
        serial = self.observe(t, "before", "", -1)
        self.preexisting.setdefault(serial, kind)

    def release(self, t: torch.Tensor) -> None:
        """`t`'s storage was resized to 0 bytes, its object kept (FSDP2 frees gathered
        parameters so): its bytes are freed now. Resized up again, `observe` notes it as a
        new allocation with a new serial."""
        serial = self._live.pop(int(t.untyped_storage()._cdata), None)
        if serial is not None:
            self.events.append(Event(serial, self.info[serial].nbytes, False, self.op_count))

    def mark_saved(self, t: torch.Tensor, phase: str, module: str, op_index: int) -> None:
        self.saved.add(self.observe(t, phase, module, op_index))

    def end_step(self) -> None:
        """Note that the step is over: frees from now on are not the step's."""
        self.step_end = len(self.events)

    def _freed(self, address: int, serial: int, nbytes: int) -> None:
        if self._live.get(address) == serial:
            del self._live[address]
            self.events.append(Event(serial, nbytes, False, self.op_count))
