"""The dispatch mode that sees every ATen op and records it."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import torch
from torch._subclasses.fake_tensor import (
    DataDependentOutputException,
    DynamicOutputShapeException,
    UnsupportedOperatorException,
)
from torch.nested._internal.nested_tensor import NestedTensor
from torch.utils._python_dispatch import TorchDispatchMode

from memflops.capture import hops
from memflops.capture.costing import KNOWN_VALUES, plain_traffic, price, to_shapes
from memflops.capture.inputs import flatten_tensors, held_tensors
from memflops.capture.kernels.dtype_checks import check_dtypes
from memflops.capture.kernels.jagged_sdpa import in_jagged_code
from memflops.capture.kernels.meta_gaps import RULES as GAP_RULES
from memflops.capture.kernels.meta_gaps import output_for
from memflops.capture.kernels.sizes import real_output_bytes, separate_outputs
from memflops.capture.records import OpRecord, Phase
from memflops.capture.saved_hooks import active_pack_hook, describe
from memflops.capture.tracker import ModuleTracker, in_recomputation
from memflops.capture.values.assumptions import Assumptions
from memflops.capture.values.finite import FiniteChecks
from memflops.capture.values.known import INDEX_LIMIT, KnownValues, readable_values
from memflops.capture.values.python_reads import python_reads
from memflops.errors import AnalysisError, DataDependentError
from memflops.flops import registry
from memflops.memory.storage import StorageTracker

aten = torch.ops.aten
_OP_NAMES: dict[Any, str] = {}
"""op_name per overload, computed once: the dispatch path runs it for every op."""

# Ops that only ask about a tensor; they neither compute nor move data.
METADATA_OPS = frozenset({"prim.device", "prim.layout", "aten.sym_size", "aten.sym_stride",
                          "aten.sym_numel", "aten.sym_storage_offset", "aten.is_same_size",
                          "profiler._record_function_enter",
                          "profiler._record_function_enter_new",
                          "profiler._record_function_exit"})


_DTYPE_NAMES: dict[Any, str] = {}


def _dtype_name(dtype: torch.dtype | None) -> str | None:
    """`bfloat16` for torch.bfloat16, cached (the dispatch path runs it for every op)."""
    if dtype is None:
        return None
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).removeprefix("torch.")
    return name


def placeholder_scalar(func: Any, args: tuple[Any, ...]) -> Any:
    """The value an optimizer's `.item()` reads on fake tensors.

    Optimizers read scalars (step counts, norms) to steer values, never
    shapes, so any value gives the same allocations and FLOPs; 1 is used.
    """
    if func is aten._local_scalar_dense.default and isinstance(args[0], torch.Tensor):
        dtype = args[0].dtype
        if dtype is torch.bool:
            return True
        return 1.0 if dtype.is_floating_point else 1
    return None


def lacks_fake_kernel(func: Any, exc: Exception) -> bool:
    """Whether `exc` says that `func`, an op outside ATen and prims, has no fake (meta)
    implementation: FakeTensorMode raises `UnsupportedOperatorException` for an op
    defined with `torch.library.define`, and a `torch.library.custom_op` raises a
    RuntimeError saying "no fake impl"."""
    namespace = getattr(func, "namespace", "aten")
    if namespace in ("aten", "prims", "prim"):
        return False
    return isinstance(exc, UnsupportedOperatorException) or "no fake impl" in str(exc)


_COMPOSITE: dict[Any, bool] = {}
"""Whether each op the recorder has seen is a composite without a rule of memflops' own
(`_composite`)."""


def _composite(func: Any, name: str) -> bool:
    """Whether `func` is a composite op memflops has no rule for (`OpRecorder._decomposed`)."""
    found = _COMPOSITE.get(func)
    if found is None:
        found = _COMPOSITE[func] = bool(
            getattr(func, "namespace", None) == "aten" and not func.is_view
            and registry.lookup(name) is None
            and torch._C._dispatch_has_kernel_for_dispatch_key(
                func.name(), torch._C.DispatchKey.CompositeImplicitAutograd)
        )
    return found


class OptimizerScalars(TorchDispatchMode):  # type: ignore[no-untyped-call,misc]
    """Lets an optimizer read scalars outside the recorder (its warm-up step)."""

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        value = placeholder_scalar(func, args)
        return func(*args, **(kwargs or {})) if value is None else value


class OpRecorder(TorchDispatchMode):  # type: ignore[no-untyped-call,misc]
    """Record every op with its module, phase and cost."""

    supports_higher_order_operators = True
    """Higher-order ops come here too (`capture.hops`): priced or refused."""

    def __init__(self, tracker: ModuleTracker, storages: StorageTracker | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.tracker = tracker
        self.storages = storages
        self.phase = Phase.FORWARD
        self.records: list[OpRecord] = []
        self.rule_failures: dict[str, str] = {}
        self.finite = FiniteChecks()
        self.values = KnownValues()
        self._reads = ExitStack()
        self.saving: Any = None
        """The pack hook the train step marks saved tensors with, once it is active."""
        self.dense_flex = 0
        """Flex attention calls counted dense: their block mask could not be read."""
        self.unknown_inputs: list[str] = []
        """Inputs whose values memflops fills (masks of ones, token ids) but did not build,
        being too large to hold (`capture.values.known.small_enough`)."""
        self.foreign_hooks: str | None = None
        """Why the step cannot be analysed: saved-tensor hooks of the model's own (the
        error is raised after the forward, not from inside a hook autograd runs)."""

    def __enter__(self) -> OpRecorder:
        """Record, and answer known values Python reads behind the dispatch mode too
        (`capture.values.python_reads`)."""
        self._reads.enter_context(python_reads(self.scalar, self.values.read_real))
        self._reads.enter_context(readable_values(self.values))
        super().__enter__()  # type: ignore[no-untyped-call]
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            super().__exit__(*exc)  # type: ignore[no-untyped-call]
        finally:
            self._reads.close()

    def assumptions(self) -> Assumptions:
        """The values answered by assumption so far (`capture.values.assumptions`)."""
        return Assumptions(
            finite_reads=self.finite.reads,
            filled_reads=self.values.filled_reads,
            assumed_picks=len(self.values.used_picks),
            dense_flex=self.dense_flex,
        )

    def scalar(self, t: Any) -> Any:
        """The value `.item()` of `t` reads if it is known (the read counted), else None."""
        known = self.values.read(t)
        return self.finite.read(t) if known is None else known

    def recomputing(self) -> bool:
        """Whether a forward is running again inside backward: activation checkpointing
        recomputes under grad mode while autograd runs a node; backward's own ops run
        without grad mode (and the seed gradient `backward()` makes is outside any node)."""
        return self.phase is Phase.BACKWARD and in_recomputation()

    def module_path(self) -> str:
        """The module an op belongs to: in backward, the module whose forward made the
        autograd node running, or the module whose forward is being recomputed."""
        if self.phase is Phase.BACKWARD:
            if self.tracker.stack and self.recomputing():
                return self.tracker.current
            return self.tracker.backward_path
        return self.tracker.current

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if any(issubclass(t, NestedTensor) for t in types):
            return NotImplemented  # its own dispatch runs the dense ops on its values, here
        if hops.is_hop(func):
            return self._higher_order(func, args, kwargs)
        tracking = self.phase is not Phase.OPTIMIZER
        if not tracking:
            value = placeholder_scalar(func, args)
            if value is not None:
                return value
        elif func is aten._local_scalar_dense.default:
            known = self.scalar(args[0])
            if known is not None:
                return known
        name = _OP_NAMES.get(func)
        if name is None:
            name = _OP_NAMES[func] = registry.op_name(func)
        if _composite(func, name):
            return self._decomposed(func, args, kwargs)
        shaped = False
        try:
            check_dtypes(func, args)
            out = output_for(func, args, kwargs) if func in GAP_RULES else None
            if out is None:
                out = func(*args, **kwargs)
        except (DataDependentOutputException, DynamicOutputShapeException) as exc:
            out = self.values.shaped_output(name, func, args, kwargs) if tracking else None
            if out is None:
                raise self._data_dependent(func) from exc
            shaped = True
        except (UnsupportedOperatorException, RuntimeError) as exc:
            if not lacks_fake_kernel(func, exc):
                raise
            raise self._no_fake_kernel(func) from exc
        if tracking and not shaped:
            self.values.observe(name, func, args, kwargs, out)
            self.values.pick(func, args, kwargs, out)
            self.finite.observe(name, args, out)
        if name in METADATA_OPS or func.is_view:
            return out
        if self.saving is not None and self.foreign_hooks is None:
            self._check_saved_hooks(name)
        out = separate_outputs(name, out)
        dtype = None
        try:
            if name in KNOWN_VALUES:  # a rule exact with known values (varlen offsets)
                cost, dtype = price(func, name, args, kwargs, out, self.values.real)
            else:
                cost, dtype = self.priced(func, name, args, kwargs, out)
        except Exception as exc:  # a rule's bug must not hide the rest of the model
            self.rule_failures.setdefault(name, f"{type(exc).__name__}: {exc}")
            cost = None
        module = self.module_path()
        if self.storages is not None:
            self._observe_outputs(name, args, out, module)
        self.records.append(OpRecord(name, module, self.phase, cost,
                                     recompute=self.recomputing(), dtype=_dtype_name(dtype)))
        return out

    def _decomposed(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A composite op (`aten.linear`, `aten.matmul`) run as the ops it is made of, each
        recorded here. Autograd decomposes such ops before any dispatch mode sees them; only
        a tensor subclass's own dispatch (a jagged nested tensor's, on its values) calls one
        below autograd, and it must cost what the same op costs on a dense tensor."""
        TorchDispatchMode.__enter__(self)  # type: ignore[no-untyped-call]  # not the reads
        try:
            return func.decompose(*args, **kwargs)
        finally:
            TorchDispatchMode.__exit__(self, None, None, None)  # type: ignore[no-untyped-call]

    def priced(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
               out: Any) -> tuple[registry.OpCost | None, torch.dtype | None]:
        """One call's cost and dtype (`costing.price`); the recorder of a distributed step
        names the size of a collective's process group here."""
        return price(func, name, args, kwargs, out)

    def _higher_order(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A higher-order op: priced as one op, or refused (`capture.hops`)."""
        name = hops.hop_name(func)
        if func.name() not in hops.FLEX:
            raise AnalysisError(hops.refusal(name, self.module_path() or "<root>"))
        out = func(*args, **kwargs)
        dtype = None
        try:
            full, dense = hops.rule_args(name, args, self.values.real)
            self.dense_flex += dense
            rule = registry.lookup(name)
            assert rule is not None, f"{name} has no rule"
            cost = rule.fn(*to_shapes(full), out=to_shapes(out))
            read, written, dtype = plain_traffic(args, out)
            cost = registry.OpCost(cost.macs, cost.flops, 0, read, written)
        except Exception as exc:  # a rule's bug must not hide the rest of the model
            self.rule_failures.setdefault(name, f"{type(exc).__name__}: {exc}")
            cost = None
        module = self.module_path()
        if self.storages is not None:
            self._observe_outputs(name, args, out, module)
        self.records.append(OpRecord(name, module, self.phase, cost,
                                     recompute=self.recomputing(), dtype=_dtype_name(dtype)))
        return out

    def _observe_outputs(self, name: str, args: tuple[Any, ...], out: Any, module: str) -> None:
        assert self.storages is not None
        index = len(self.records)
        real = real_output_bytes(name, args, out)
        if real:
            for i, t in enumerate(out):
                if isinstance(t, torch.Tensor):
                    self.storages.observe(t, self.phase.value, module, index, nbytes=real.get(i))
        for t in flatten_tensors(out):
            self.storages.observe(t, self.phase.value, module, index)
        self.storages.op_count = index + 1

    def _check_saved_hooks(self, name: str) -> None:
        pack = active_pack_hook()
        if pack is None or pack == self.saving:
            return
        path = self.module_path() or "<root>"
        self.foreign_hooks = (
            f"op {name} in module `{path}` runs under saved-tensor hooks of the model's own "
            f"({describe(pack)}): memflops cannot tell where such hooks keep the tensors "
            f"autograd saves (save_on_cpu moves them to host memory), so it would misstate "
            f"the memory; analyse the model without them (without offloading, the peak is an "
            f"upper bound)"
        )

    def _no_fake_kernel(self, func: Any) -> AnalysisError:
        path = self.module_path() or "<root>"
        schema = func._schema.name  # "mylib::op"
        return AnalysisError(
            f"custom op {registry.op_name(func)} in module `{path}` has no fake "
            f"implementation, so it cannot run on fake tensors; register one with "
            f"torch.library.register_fake(\"{schema}\") (or @op.register_fake for a "
            f"torch.library.custom_op) returning empty tensors of the output's shapes"
        )

    def _data_dependent(self, func: Any) -> DataDependentError:
        path = self.module_path() or "<root>"
        if in_jagged_code():
            return DataDependentError(
                f"a jagged nested tensor in module `{path}` needs its sequence lengths "
                f"(op {registry.op_name(func)} reads its offsets), which memflops does not "
                f"know: pass the jagged tensor itself as the input (`--input [3,7]x64`, or "
                f"the tensor in Python), or give the offsets' values "
                f"(TensorSpec(shape, torch.int64, values=[0, 3, 10]))"
            )
        if self.unknown_inputs:
            return DataDependentError(
                f"op {registry.op_name(func)} in module `{path}` reads the values of an "
                f"input, and {', '.join(self.unknown_inputs)} is too large for memflops to "
                f"hold its values (over {INDEX_LIMIT:,} elements); analyse a smaller batch or "
                f"sequence, and scale"
            )
        return DataDependentError(
            f"op {registry.op_name(func)} in module `{path}` needs real tensor values "
            f"(its result depends on data, e.g. .item(), nonzero or a boolean mask), which "
            f"meta tensors do not have; make that step shape-only (fixed sizes) or analyse "
            f"the submodules around it"
        )

    def pack_saved(self, t: Any) -> Any:
        """saved_tensors_hooks pack: note the storage autograd keeps for backward."""
        if self.storages is not None and hasattr(t, "untyped_storage"):
            # a jagged nested tensor autograd saves keeps its values and offsets, the
            # storages its ops made; its own wrapper holds no memory
            for held in held_tensors(t):
                self.storages.mark_saved(held, self.phase.value, self.module_path(),
                                         len(self.records) - 1)
        return t
