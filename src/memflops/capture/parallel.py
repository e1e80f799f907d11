"""One training step over N GPUs, run by PyTorch's own distributed code on fake tensors.

`ParallelWrapper` (a `capture.session.StepWrapper`) makes the capture session
run its step on a sharded copy of the model, in one process:

- a process group of PyTorch's `"fake"` backend (`FakeStore`, world size N,
  this process rank 0; its collectives are no-ops) is created for the step
  and destroyed after it, with the device mesh on it;
- the model is copied (module objects only: the copy shares the session's
  fake weights) and the copy wrapped: `fsdp=N` with FSDP2's `fully_shard`,
  each block of the model's repeated layer lists first, then the root, as
  torchtitan wraps (`fsdp_units`, `ParallelWrapper._reshards`); `tp=N` with
  DTensor's `parallelize_module` by a plan (`memflops.parallel_options`),
  each planned module's sizes checked first; the model given is never
  changed;
- the step runs as on one GPU. Its ops on distributed tensors are left to
  DTensor (the recorder steps aside, `NotImplemented`), so the recorder sees
  and prices the ops on rank 0's local shards; every collective is recorded
  with its size and group (`Collective`);
- FSDP2 frees gathered parameters by resizing their storage to 0 bytes and
  gathers into the same storage again (`_fsdp_param.alloc_storage` /
  `free_storage`): while the step runs, those two functions also tell the
  storage tracker, so each gather and each free is an allocation event.

Rank 0 holds the largest shard: FSDP2 pads dimension 0 of each parameter to
a multiple of N and rank 0's shard is never shorter than another's (tensor
parallel splits only sizes that divide), so the numbers are those of rank 0
(`ParallelCapture.rank`).
"""

from __future__ import annotations

import copy
import fnmatch
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from memflops.capture.inputs import flatten_tensors
from memflops.capture.recorder import OpRecorder
from memflops.capture.session import CaptureSession
from memflops.capture.tracker import ModuleTracker
from memflops.errors import AnalysisError, MemflopsError, UsageError
from memflops.memory.storage import StorageTracker
from memflops.parallel_options import ParallelSpec

RANK = 0
"""The rank recorded: it holds the largest shard (see the module docstring)."""
COLLECTIVES = {
    "c10d._allgather_base_": ("all_gather", 0, 2),
    "c10d._reduce_scatter_base_": ("reduce_scatter", 1, 2),
    "_c10d_functional.all_gather_into_tensor": ("all_gather", -1, 2),
    "_c10d_functional.reduce_scatter_tensor": ("reduce_scatter", 0, 3),
    "_c10d_functional.all_reduce": ("all_reduce", 0, 2),
    "c10d.allreduce_": ("all_reduce", 0, 1),
}
"""A collective op: (its kind, the argument whose bytes are its size (-1: its output), the
argument naming its process group). The size is that of the whole buffer, as NCCL's tests
count it: the gathered output of an all-gather, the input of a reduce-scatter, the buffer
of an all-reduce. FSDP2 calls the `c10d` ops (HSDP's all-reduce across replicas too),
DTensor the functional ones."""
RING_SENT = {"all_gather": 1, "reduce_scatter": 1, "all_reduce": 2}
"""Bytes each rank sends under the ring algorithm, as a multiple of (N - 1) / N of the
size: 1 for an all-gather or a reduce-scatter, 2 for an all-reduce (a reduce-scatter, then
an all-gather) (NCCL's tests, "bus bandwidth")."""
FUNCTIONAL_ALL_REDUCE = "_c10d_functional.all_reduce"
"""DTensor's all-reduce (tensor parallel's partial sums): it names its group, not the
group's size (`ParallelRecorder.priced`)."""
GATHER_BUFFERS = ("fsdp.all_gather_copy_in", "c10d._allgather_base_")
REDUCE_BUFFERS = ("fsdp.chunk_cat", "c10d._reduce_scatter_base_")
GATHERED_PARAMS = "fsdp.split_with_sizes_copy"
"""FSDP2's copy of the gathered buffer out into each parameter's unsharded storage."""


@dataclass(frozen=True)
class Collective:
    """One collective call on rank 0."""

    op: str
    """"all_gather", "reduce_scatter" or "all_reduce" (or a pipeline's "send")."""
    bytes: int
    """The collective's size (see `COLLECTIVES`)."""
    group: str
    """The device mesh dimension it runs over."""
    group_size: int
    phase: str
    module: str
    """The module running when it was issued (an FSDP unit's pre-forward or backward)."""

    @property
    def sent_bytes(self) -> int:
        """Bytes each rank sends under the ring algorithm (`RING_SENT`); a pipeline's
        point-to-point "send" sends its whole size."""
        if self.op == "send":
            return self.bytes
        n = self.group_size
        return RING_SENT[self.op] * self.bytes * (n - 1) // n


@dataclass(frozen=True)
class ParallelCapture:
    """What the wrapped step showed beyond the one-GPU capture."""

    spec: ParallelSpec
    rank: int
    units: tuple[str, ...]
    """The modules wrapped by `fully_shard`, in order ("" is the root)."""
    collectives: tuple[Collective, ...]
    unsharded: frozenset[int]
    """Serials of the storages gathered parameters lived in."""
    gather_buffers: frozenset[int]
    reduce_buffers: frozenset[int]

    @property
    def transient(self) -> frozenset[int]:
        """Storages that live for one unit's turn: gathered parameters and buffers."""
        return self.unsharded | self.gather_buffers | self.reduce_buffers


def fsdp_units(model: nn.Module) -> list[str]:
    """The modules FSDP wraps, innermost first: each child of every list of two or more
    modules of one type that hold parameters (a model's repeated blocks), outermost lists
    only, then the root ("")."""
    units: list[str] = []

    def walk(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            path = f"{prefix}.{name}" if prefix else name
            if _repeated(child):
                units.extend(f"{path}.{n}" for n, _ in child.named_children())
            else:
                walk(path, child)

    walk("", model)
    return [*units, ""]


def _repeated(module: nn.Module) -> bool:
    if not isinstance(module, (nn.ModuleList, nn.Sequential)):
        return False
    children = list(module.children())
    return (
        len(children) >= 2
        and len({type(c) for c in children}) == 1
        and all(any(True for _ in c.parameters()) for c in children)
    )


@contextmanager
def fake_process_group(world_size: int) -> Iterator[None]:
    """The default process group of the `"fake"` backend, rank 0 of `world_size`, for the
    length of the block; destroyed after it."""
    if not dist.is_available():
        raise AnalysisError("parallel: this torch is built without torch.distributed")
    if dist.is_initialized():
        raise UsageError(
            "parallel: a torch.distributed process group is already initialized in this "
            "process; analyse with --parallel outside a distributed job (memflops makes its "
            "own fake one)"
        )
    from torch.testing._internal.distributed.fake_pg import FakeStore  # registers "fake"

    dist.init_process_group("fake", store=FakeStore(), rank=RANK, world_size=world_size)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _copy_sharing_weights(model: nn.Module) -> nn.Module:
    """A copy of the module tree whose parameters and buffers are the model's own objects."""
    memo: dict[int, Any] = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    return copy.deepcopy(model, memo)


class ParallelWrapper:
    """FSDP2 full shard, or tensor parallel by `tp_plan`, over `spec.world_size` ranks (see
    the module docstring)."""

    def __init__(self, spec: ParallelSpec, tp_plan: dict[str, str] | None = None) -> None:
        if spec.tp and not tp_plan:
            raise UsageError("parallel: tp needs a plan (tp_plan)")
        self.spec = spec
        self.tp_plan = tp_plan or {}
        self._units: list[str] = []
        self._recorder: ParallelRecorder | None = None
        self._groups: dict[str, tuple[str, int]] = {}

    @contextmanager
    def wrapped(self, session: CaptureSession) -> Iterator[nn.Module]:
        from torch.distributed.device_mesh import init_device_mesh

        names = tuple(name for name, _ in self.spec.dims)
        with ExitStack() as stack:
            stack.enter_context(warnings.catch_warnings())
            # FSDP2 warns when a wrapped module returns a view (an in-place op on it would
            # skip a gather): advice to the model's author, not a finding of the analysis
            warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view")
            stack.enter_context(fake_process_group(self.spec.world_size))
            stack.enter_context(_meshes_built_outside_fake_mode())
            mesh = init_device_mesh("cpu", tuple(n for _, n in self.spec.dims),
                                    mesh_dim_names=names)
            meshes = {name: mesh[name] if len(names) > 1 else mesh for name in names}
            if self.spec.hsdp:  # FSDP2 on the 2-D (replicate, shard) mesh: HSDP
                meshes["hsdp"] = mesh["replicate", "fsdp"] if self.spec.tp else mesh
            self._groups = {meshes[name].get_group().group_name: (name, self.spec.size(name))
                            for name in names}
            model = _copy_sharing_weights(session.model)
            with session.fake_mode:
                try:
                    if self.spec.tp:  # tensor parallel first, then FSDP over its shards
                        self._split_tensors(model, meshes["tp"])
                    if self.spec.fsdp:
                        self._shard_fully(model, meshes["hsdp" if self.spec.hsdp else "fsdp"])
                except MemflopsError:
                    raise
                except Exception as exc:
                    raise AnalysisError(
                        f"parallel: PyTorch could not build {self.spec.label} of "
                        f"{type(model).__name__}: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}"
                    ) from exc
            if self.spec.fsdp:
                stack.enter_context(_storage_resizes_noted(session, self))
            stack.enter_context(_shape_propagation_unrecorded())
            yield model

    def _shard_fully(self, model: nn.Module, mesh: Any) -> None:
        from torch.distributed.fsdp import fully_shard

        self._units = fsdp_units(model)
        for path, reshard in zip(self._units, self._reshards(), strict=True):
            fully_shard(model.get_submodule(path), mesh=mesh, reshard_after_forward=reshard,
                        mp_policy=mixed_precision(self.spec.mp))

    def _split_tensors(self, model: nn.Module, mesh: Any) -> None:
        from torch.distributed.tensor.parallel import parallelize_module

        check_splits(model, self.tp_plan, self.spec.size("tp"))
        parallelize_module(model, mesh, {k: tp_style(v) for k, v in self.tp_plan.items()})
        replicate_unplanned(model, mesh)

    def _reshards(self) -> list[bool]:
        # see the module docstring
        """`reshard_after_forward` of each unit. On: torchtitan's default policy (its
        `apply_fsdp`, torchtitan/models/llama3/infra/parallelize.py): every block but the
        last frees its parameters after forward, the last block and the root keep them,
        since backward gathers them first. Off: no unit frees them before backward."""
        blocks = len(self._units) - 1
        on = self.spec.reshard_after_forward
        return [on and i < blocks - 1 for i in range(blocks)] + [False]

    def recorder(self, tracker: ModuleTracker, storages: StorageTracker | None) -> OpRecorder:
        self._recorder = ParallelRecorder(tracker, storages)
        self._recorder.groups = self._groups
        return self._recorder

    def local(self, t: torch.Tensor) -> torch.Tensor:
        from torch.distributed.tensor import DTensor

        return t._local_tensor if isinstance(t, DTensor) else t

    def finish(self, cap: Any) -> Any:
        """The capture unchanged: the step ran the layout."""
        return cap

    def result(self, session: CaptureSession) -> ParallelCapture:
        rec = self._recorder
        assert rec is not None
        return ParallelCapture(
            spec=self.spec, rank=RANK, units=tuple(self._units),
            collectives=tuple(rec.collectives), unsharded=frozenset(rec.unsharded),
            gather_buffers=frozenset(rec.gather_buffers),
            reduce_buffers=frozenset(rec.reduce_buffers),
        )


MP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def mixed_precision(name: str | None) -> Any:
    """FSDP2's `MixedPrecisionPolicy` for `mp=` (`parallel_options.MIXED_PRECISION`):
    parameters gathered and computed in that dtype, gradients reduced in float32 (the
    policy torchtitan uses, `mixed_precision_param`/`_reduce`); None: FSDP2's default, no
    casts."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if name is None:
        return MixedPrecisionPolicy()
    return MixedPrecisionPolicy(param_dtype=MP_DTYPES[name], reduce_dtype=torch.float32)


def replicate_unplanned(model: nn.Module, mesh: Any) -> None:
    """Every module whose own parameters the plan left whole (norms, biases of modules it
    does not name) gets them as replicated distributed tensors, computing on its inputs
    as replicated ones and returning plain tensors: every rank holds them whole, as a
    tensor-parallel job does, and the optimizer sees one kind of parameter (PyTorch's
    foreach kernels refuse a list mixing plain and distributed tensors)."""
    from torch.distributed.tensor import DTensor, Replicate, distribute_module

    def replicated(module: nn.Module, inputs: Any, device_mesh: Any) -> Any:
        return tuple(
            DTensor.from_local(t, device_mesh, [Replicate()], run_check=False)
            if isinstance(t, torch.Tensor) and not isinstance(t, DTensor) else t
            for t in inputs
        )

    def local(module: nn.Module, outputs: Any, device_mesh: Any) -> Any:
        if isinstance(outputs, DTensor):
            return outputs.to_local()
        if isinstance(outputs, tuple):
            return tuple(o.to_local() if isinstance(o, DTensor) else o for o in outputs)
        return outputs

    from torch.distributed.tensor import DTensor as _DTensor

    for module in list(model.modules()):
        own = [p for p in module.parameters(recurse=False)]
        if own and not any(isinstance(p, _DTensor) for p in own):
            distribute_module(module, mesh, input_fn=replicated, output_fn=local)


def tp_style(name: str) -> Any:
    """The DTensor `ParallelStyle` of a plan's style name (`parallel_options.TP_STYLES`)."""
    from torch.distributed.tensor import Replicate
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel

    if name == "colwise":
        return ColwiseParallel()
    if name == "rowwise":
        return RowwiseParallel()
    if name == "embedding_rowwise":
        return RowwiseParallel(input_layouts=Replicate())
    return ColwiseParallel(output_layouts=Replicate())


SPLIT_SIZES = {
    "colwise": (nn.Linear, "out_features"), "colwise_gather_output": (nn.Linear, "out_features"),
    "rowwise": (nn.Linear, "in_features"), "embedding_rowwise": (nn.Embedding, "num_embeddings"),
}
"""The module type each style splits, and the size it splits over the ranks."""


def check_splits(model: nn.Module, plan: dict[str, str], world_size: int) -> None:
    """Every pattern of `plan` names at least one module, of the type its style splits, whose
    split size divides by `world_size` (a `UsageError` naming the module and sizes)."""
    names = [n for n, _ in model.named_modules() if n]
    for pattern, style in plan.items():
        matched = [n for n in names if _matches(n, pattern)]
        if not matched:
            raise UsageError(
                f"tp_plan: {pattern!r} names no module of {type(model).__name__}"
            )
        kind, field = SPLIT_SIZES[style]
        for name in matched:
            module = model.get_submodule(name)
            if not isinstance(module, kind):
                raise UsageError(
                    f"tp_plan: {name} is a {type(module).__name__}; style {style} splits an "
                    f"nn.{kind.__name__}"
                )
            size = int(getattr(module, field))
            if size % world_size:
                raise UsageError(
                    f"tp={world_size}: {name} ({type(module).__name__}) has {field} = {size}, "
                    f"which {world_size} ranks cannot split evenly"
                )


def _matches(name: str, pattern: str) -> bool:
    """`*` matches one name between dots, as `parallelize_module` reads a plan."""
    atoms, wanted = name.split("."), pattern.split(".")
    return len(atoms) == len(wanted) and all(fnmatch.fnmatchcase(a, w)
                                             for a, w in zip(atoms, wanted, strict=True))


def _is_distributed(value: Any) -> bool:
    """Whether `value` is, or (in lists/tuples/dicts) holds, a distributed tensor."""
    from torch.distributed.tensor import DTensor

    if isinstance(value, DTensor):
        return True
    if isinstance(value, (list, tuple)):
        return any(_is_distributed(v) for v in value)
    if isinstance(value, dict):
        return any(_is_distributed(v) for v in value.values())
    return False


class ParallelRecorder(OpRecorder):  # type: ignore[no-untyped-call]
    """`OpRecorder` of a distributed step: records rank 0's local ops and its collectives."""

    def __init__(self, tracker: ModuleTracker, storages: StorageTracker | None) -> None:
        super().__init__(tracker, storages)
        self.collectives: list[Collective] = []
        self.unsharded: set[int] = set()
        self.gather_buffers: set[int] = set()
        self.reduce_buffers: set[int] = set()
        self.groups: dict[str, tuple[str, int]] = {}
        """The device mesh dimension and size of each process group, by the group's name."""

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        if _is_distributed(args) or _is_distributed(kwargs):
            # DTensor runs the op on the local shards (and redistributes), each op of
            # which comes back here on plain tensors.
            return NotImplemented
        out = super().__torch_dispatch__(func, types, args, kwargs)
        name = str(func.overloadpacket)
        kwargs = kwargs or {}
        if name in COLLECTIVES:
            self._note_collective(name, args, out)
        if name in GATHER_BUFFERS:  # FSDP2's; DTensor's outputs are the step's own tensors
            self._mark(self.gather_buffers, args, out)
        elif name in REDUCE_BUFFERS:
            self._mark(self.reduce_buffers, args, out, kwargs.get("out"))
        elif name == GATHERED_PARAMS:
            self._mark(self.unsharded, kwargs.get("out"))
        return out

    def priced(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
               out: Any) -> tuple[Any, Any]:
        """A functional all-reduce names its process group (`group_name`); its rule needs
        the group's size, which this recorder knows from the mesh it built."""
        if name == FUNCTIONAL_ALL_REDUCE and isinstance(args[2], str) and args[2] in self.groups:
            args = (*args[:2], self.groups[args[2]][1], *args[3:])
        return super().priced(func, name, args, kwargs, out)

    def _observe_outputs(self, name: str, args: tuple[Any, ...], out: Any, module: str) -> None:
        """Storages on the meta device are no memory: DTensor makes them to work out the
        global shapes of its results."""
        if any(t.device.type == "meta" for t in flatten_tensors(out)):
            if self.storages is not None:
                self.storages.op_count = len(self.records) + 1
            return
        super()._observe_outputs(name, args, out, module)

    def pack_saved(self, t: Any) -> Any:
        """Autograd saves a distributed tensor: note its local shard's storage (the wrapper's
        own storage is no memory, and noting it would keep the tensor alive)."""
        from torch.distributed.tensor import DTensor

        if isinstance(t, DTensor):
            super().pack_saved(t._local_tensor)
            return t
        return super().pack_saved(t)

    def _note_collective(self, name: str, args: tuple[Any, ...], out: Any) -> None:
        kind, index, group_at = COLLECTIVES[name]
        value = out if index < 0 else args[index]
        tensors = value if isinstance(value, (list, tuple)) else [value]  # c10d: a list
        group = args[group_at]
        # a functional collective names its group; a c10d one passes it
        name = group if isinstance(group, str) else dist.ProcessGroup.unbox(group).group_name
        dim, size = self.groups[name]
        self.collectives.append(Collective(
            op=kind, bytes=sum(int(t.numel()) * t.element_size() for t in tensors), group=dim,
            group_size=size, phase=self.phase.value, module=self.module_path(),
        ))

    def _mark(self, serials: set[int], *values: Any) -> None:
        if self.storages is None:
            return
        for value in values:
            tensors = value if isinstance(value, (list, tuple)) else [value]
            for t in tensors:
                if isinstance(t, torch.Tensor):
                    serial = self.storages.serial_of(t)
                    if serial is not None:
                        serials.add(serial)


@contextmanager
def _meshes_built_outside_fake_mode() -> Iterator[None]:
    """A `DeviceMesh` computes its coordinates with tensor ops that need real values (FSDP2
    builds one when it shards a tensor-parallel parameter): while the wrapper holds, each
    is built outside the dispatch modes."""
    from torch.distributed.device_mesh import DeviceMesh
    from torch.utils._python_dispatch import _disable_current_modes

    original = DeviceMesh.__init__

    def outside(self: Any, *args: Any, **kwargs: Any) -> None:
        with _disable_current_modes():
            original(self, *args, **kwargs)

    DeviceMesh.__init__ = outside  # type: ignore[method-assign]
    try:
        yield
    finally:
        DeviceMesh.__init__ = original  # type: ignore[method-assign]


@contextmanager
def _shape_propagation_unrecorded() -> Iterator[None]:
    """DTensor works out the global shape of an op's result by running the op on fake
    tensors of the global shapes (`ShardingPropagator._propagate_tensor_meta_non_cached`).
    That is no work of any rank: while the step runs, it runs outside the dispatch modes
    (in a fake mode of its own), so the recorder neither prices nor allocates it."""
    from torch.distributed.tensor._sharding_prop import ShardingPropagator
    from torch.utils._python_dispatch import _disable_current_modes

    original = ShardingPropagator._propagate_tensor_meta_non_cached

    def unrecorded(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _disable_current_modes():
            return original(self, *args, **kwargs)

    ShardingPropagator._propagate_tensor_meta_non_cached = unrecorded  # type: ignore[method-assign]
    try:
        yield
    finally:
        ShardingPropagator._propagate_tensor_meta_non_cached = original  # type: ignore[method-assign]


@contextmanager
def _storage_resizes_noted(
    session: CaptureSession, wrapper: ParallelWrapper
) -> Iterator[None]:
    """While the step runs, FSDP2's storage resizes are allocations and frees of the
    storage tracker (see the module docstring)."""
    from torch.distributed.fsdp._fully_shard import _fsdp_param, _fsdp_param_group

    storages = session.storages
    if storages is None:
        yield
        return
    alloc, free = _fsdp_param.alloc_storage, _fsdp_param.free_storage

    def noted_alloc(tensor: torch.Tensor) -> None:
        alloc(tensor)
        rec = wrapper._recorder
        if rec is not None:
            serial = storages.observe(tensor, rec.phase.value, rec.module_path(),
                                      len(rec.records))
            rec.unsharded.add(serial)

    def noted_free(tensor: torch.Tensor) -> None:
        storages.release(tensor)
        free(tensor)

    patched: list[tuple[Any, str, Callable[[torch.Tensor], None]]] = [
        (_fsdp_param, "alloc_storage", noted_alloc),
        (_fsdp_param, "free_storage", noted_free),
        (_fsdp_param_group, "alloc_storage", noted_alloc),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patched]
    try:
        for owner, name, fn in patched:
            setattr(owner, name, fn)
        yield
    finally:
        for owner, name, fn in originals:
            setattr(owner, name, fn)
