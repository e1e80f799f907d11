"""Reserved memory of a captured step: the caching allocator (`memory.allocator`) run over
the step's allocations and frees, in the steady state, and the device total nvidia-smi shows.

Steady state. The cache persists from one step to the next, so what a training loop
reserves is what a later step reserves, after the first has filled the cache. The
step's events are replayed twice through one allocator and the second pass is
reported, its peaks counted from its start (`torch.cuda.reset_peak_memory_stats()`):

- before the first pass: the cuBLAS workspaces, then the storages alive before the
  step (parameters, buffers, inputs, optimizer state, KV cache), in the order the
  capture noted them;
- the first pass allocates the optimizer state where a first real step does, when
  its optimizer starts (`torch.optim` creates it lazily), so that its blocks come
  after the activations' segments, as on a GPU;
- between the passes, what the step created and still holds at its end is freed
  (gradients: `zero_grad(set_to_none=True)`; anything else the step left), and
  what it freed of the storages alive before it is allocated again (a new batch of
  inputs, the next KV cache): every pass then starts as the captured step did.

The cuBLAS workspace (`aten/src/ATen/cuda/CublasHandlePool.cpp`,
`parseChosenWorkspaceSize`, `setCublasWorkspace`, `getCUDABlasLtWorkspace`): PyTorch
allocates it through the caching allocator the first time a thread runs a cuBLAS
call on a stream, and keeps it; the map it keeps them in is per thread. Its size
is `CUBLAS_WORKSPACE_BYTES` (`CUBLAS_WORKSPACE_CONFIG` changes it); cuBLASLt shares
it (unified workspaces, the default on CUDA). A step with matrix products in its
forward (or optimizer) gets one; a training step with matrix products in backward
gets a second for autograd's device thread. It is inside `reserved`.

The device total adds the CUDA context (`memory.fit.CUDA_CONTEXT_BYTES`), which holds
the loaded kernels of CUDA, cuBLAS and cuDNN; it is not allocator memory. Not
simulated: cuDNN's convolution workspaces (chosen per call at run time by the
algorithm search), NCCL buffers, and memory other processes hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

from memflops.capture.records import OpRecord, Phase
from memflops.memory.allocator import AllocatorConfig, CachingAllocator, OutOfMemory
from memflops.memory.fit import CUDA_CONTEXT_BYTES

if TYPE_CHECKING:
    from memflops.capture.step import Capture
    from memflops.memory.storage import StorageTracker

CUBLAS_WORKSPACE_BYTES = 4096 * 8 * 1024
"""32 MiB: PyTorch's default cuBLAS workspace on compute capability 9.x, 10.x and 12.x
(Hopper, Blackwell), ":4096:8" in `CUBLAS_WORKSPACE_CONFIG` terms. Earlier GPUs get
4096 KiB x 2 + 16 KiB x 8 = 8,519,680 B (`parseChosenWorkspaceSize`)."""

_CUBLAS_OPS = frozenset({
    "mm", "addmm", "bmm", "baddbmm", "addbmm", "mv", "addmv", "dot", "vdot", "_scaled_mm",
    "_addmm_activation", "addr", "matmul", "linear",
})
"""ATen ops that run on cuBLAS (the ATen op name without its namespace and overload)."""

_STEP_KEYS = 1 << 48
"""Added to the keys of storages a second pass creates, so that they differ from the
first pass's."""

ASSUMPTIONS = (
    f"reserved: PyTorch's CUDA caching allocator (torch 2.14.1) simulated over the step in "
    f"steady state; it includes the cuBLAS workspaces ({CUBLAS_WORKSPACE_BYTES // 2**20} MiB "
    f"each, torch's default on Hopper and Blackwell)",
    f"device total: reserved + a CUDA context of {CUDA_CONTEXT_BYTES // 2**20} MiB (a round "
    f"figure for CUDA 13 with lazy kernel loading; benchmarks/gpu_memory_validate.py measures "
    f"yours); cuDNN convolution workspaces are not simulated",
)


class EventLike(Protocol):
    """One allocation (`alloc` True) or free of the step; `key` names the storage."""

    @property
    def key(self) -> int: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def alloc(self) -> bool: ...


class StepEvent(NamedTuple):
    """An `EventLike` written by hand (tests, benchmarks)."""

    key: int
    nbytes: int
    alloc: bool


@dataclass(frozen=True)
class ReservedMemory:
    """The allocator's view of the steady-state step (bytes)."""

    config: AllocatorConfig
    reserved: int
    """Peak reserved bytes (`reserved_bytes.all.peak`)."""
    allocated_peak: int
    """Peak allocated bytes as the allocator counts them: rounded blocks, unsplit rests
    and the cuBLAS workspaces (`allocated_bytes.all.peak`)."""
    requested_peak: int
    """Peak bytes requested (`requested_bytes.all.peak`)."""
    allocated_at_reserved_peak: int
    """The most bytes in use while the reserved bytes stood at their peak."""
    segments: int
    """Segments held then (expandable: one per stream and pool)."""
    by_pool: tuple[tuple[str, int, int, int], ...]
    """Then, per pool: (pool, reserved, allocated, segments)."""
    workspaces: int
    """Bytes of cuBLAS workspaces, inside `reserved`."""
    num_alloc_retries: int
    """Cache releases forced by the capacity (0 without one)."""

    @property
    def fragmentation(self) -> int:
        """Reserved bytes not in use at the reserved peak."""
        return self.reserved - self.allocated_at_reserved_peak

    @property
    def cuda_context(self) -> int:
        return CUDA_CONTEXT_BYTES

    @property
    def device_total(self) -> int:
        """What nvidia-smi shows for the process: reserved + the CUDA context."""
        return self.reserved + CUDA_CONTEXT_BYTES


def cublas_workspaces(records: Iterable[OpRecord]) -> int:
    """cuBLAS workspaces the step allocates: one for the thread running forward (and the
    optimizer), one for autograd's device thread when backward has matrix products."""
    threads: set[bool] = set()
    for rec in records:
        if rec.op.split(".")[1] in _CUBLAS_OPS:
            threads.add(rec.phase is Phase.BACKWARD)
            if len(threads) == 2:
                break
    return len(threads)


def simulate_steady(
    resident: Sequence[tuple[int, int]],
    step: Sequence[EventLike],
    config: AllocatorConfig,
    *,
    workspaces: int = 0,
    deferred: tuple[frozenset[int], int] = (frozenset(), 0),
    capacity: int | None = None,
    stop_at: int | None = None,
) -> CachingAllocator:
    """Run the step twice through one allocator (see the module docstring); the returned
    allocator's statistics are those of the second pass.

    `resident`: (key, bytes) of the storages alive before the step. `deferred`: the
    keys of those the first pass allocates only at step event index `at`, and `at`.
    `capacity` bounds the reserved bytes (`allocator.OutOfMemory` when the step cannot
    fit). `stop_at` stops the second pass once the allocator has seen that many events
    (`CachingAllocator.events`), for a look at the segments at that moment, such as the
    reserved peak's (`AllocatorStats.tight_event`).
    """
    allocator = CachingAllocator(config, capacity)
    malloc, free = allocator.malloc, allocator.free
    for i in range(workspaces):
        malloc(-1 - i, CUBLAS_WORKSPACE_BYTES)
    late, at = deferred
    resident_keys = {key for key, _ in resident}
    for key, nbytes in resident:
        if key not in late:
            malloc(key, nbytes)
    for i, event in enumerate(step):
        if i == at and late:
            for key, nbytes in resident:
                if key in late:
                    malloc(key, nbytes)
        if event.alloc:
            malloc(event.key, event.nbytes)
        else:
            free(event.key)
    # Between steps: what the step made and still holds goes, what it consumed of the
    # storages alive before it comes again.
    live = set(allocator.live_keys)
    for held in allocator.live_keys:
        if held not in resident_keys and isinstance(held, int) and held >= 0:
            free(held)
    for key, nbytes in resident:
        if key not in live:
            malloc(key, nbytes)
    allocator.reset_peaks()
    for event in step:
        if stop_at is not None and allocator.events >= stop_at:
            break
        key = event.key if event.key in resident_keys else event.key + _STEP_KEYS
        if event.alloc:
            malloc(key, event.nbytes)
        else:
            free(key)
    return allocator


def summarize(allocator: CachingAllocator, workspaces: int) -> ReservedMemory:
    """The `ReservedMemory` of a `simulate_steady` run."""
    stats = allocator.stats
    return ReservedMemory(
        config=allocator.config,
        reserved=stats.reserved_peak,
        allocated_peak=stats.allocated_peak,
        requested_peak=stats.requested_peak,
        allocated_at_reserved_peak=stats.tight_allocated,
        segments=sum(segments for *_, segments in stats.tight_by_pool),
        by_pool=stats.tight_by_pool,
        workspaces=workspaces * CUBLAS_WORKSPACE_BYTES,
        num_alloc_retries=stats.num_alloc_retries,
    )


@dataclass(frozen=True)
class StepProgram:
    """What `simulate_steady` replays for a captured step (see its arguments)."""

    resident: tuple[tuple[int, int], ...]
    step: tuple[EventLike, ...]
    deferred: tuple[frozenset[int], int]
    workspaces: int

    def run(
        self, config: AllocatorConfig, *, capacity: int | None = None, stop_at: int | None = None
    ) -> CachingAllocator:
        return simulate_steady(
            self.resident, self.step, config, workspaces=self.workspaces,
            deferred=self.deferred, capacity=capacity, stop_at=stop_at,
        )


def step_program(
    storages: StorageTracker,
    records: Sequence[OpRecord],
    optimizer_state: frozenset[int] = frozenset(),
) -> StepProgram:
    """The steady-state program of a captured step: its storage events up to the step's
    end, those alive before it as resident, and `optimizer_state` (serials) allocated in
    the first pass where the optimizer starts."""
    events = storages.events
    if storages.step_end is not None:
        events = events[: storages.step_end]
    resident = tuple((e.key, e.nbytes) for e in events if e.alloc and e.op_index < 0)
    step = tuple(e for e in events if not e.alloc or e.op_index >= 0)
    late = optimizer_state & {key for key, _ in resident}
    start = next((i for i, r in enumerate(records) if r.phase is Phase.OPTIMIZER), None)
    at = len(step)
    if late and start is not None:
        at = next((i for i, e in enumerate(step) if e.op_index >= start), len(step))
    return StepProgram(resident, step, (frozenset(late), at), cublas_workspaces(records))


def reserved_memory(
    storages: StorageTracker,
    records: Sequence[OpRecord],
    config: AllocatorConfig,
    *,
    optimizer_state: frozenset[int] = frozenset(),
    capacity: int | None = None,
) -> ReservedMemory:
    """The steady-state `ReservedMemory` of a captured step (`step_program`, run).
    Raises `allocator.OutOfMemory` when `capacity` cannot hold it."""
    program = step_program(storages, records, optimizer_state)
    return summarize(program.run(config, capacity=capacity), program.workspaces)


def simulate_capture(
    cap: Capture, config: AllocatorConfig, *, capacity: int | None = None
) -> ReservedMemory:
    """`reserved_memory` of a captured step (train or inference)."""
    assert cap.storages is not None
    return reserved_memory(
        cap.storages, cap.records, config, optimizer_state=cap.optimizer_state,
        capacity=capacity,
    )


def device_need(cap: Capture, config: AllocatorConfig, capacity: int) -> int:
    """The device total a step needs, judged as the GPU judges it: the step fits in
    `capacity` bytes of device memory if the allocator, holding the CUDA context aside,
    never fails to reserve a segment, releasing its cache when full as PyTorch does.
    Returns a total at most `capacity` if it fits, above it if not."""
    free_run = simulate_capture(cap, config)
    if free_run.device_total <= capacity:
        return free_run.device_total
    try:
        held = simulate_capture(cap, config, capacity=max(capacity - CUDA_CONTEXT_BYTES, 0))
    except OutOfMemory:
        return free_run.device_total
    return held.device_total
