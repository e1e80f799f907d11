"""Which module is running: forward by hooks, backward by autograd nodes.

Forward: pre/post hooks on every submodule keep a stack of module paths;
the top of the stack is the module an op belongs to.

Backward: when a module's forward returns, every autograd node created
during that call (its sequence number is at least the one at entry) and
reachable from the outputs is tagged with the module's path, inner modules
first, so each node keeps the innermost module that created it. A pre-hook
on each tagged node makes its path current just before autograd runs it, so
backward ops are attributed to the module whose forward they differentiate,
with no guessing from class names.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch._C._autograd import _get_sequence_nr
from torch.utils.hooks import RemovableHandle

from memflops.capture.inputs import flatten_tensors, stored

ROOT = ""
FAILED_IN = "_memflops_failed_in"
"""The attribute an exception leaving a module's forward gets: that module's `Frame`."""
NODE_TAG = "memflops.module"
"""The key of a node's tag in its own `metadata`: nothing outside the graph refers to a
node, so autograd frees each node, and what it holds, as backward consumes the graph (as
checkpointing's recomputation relies on)."""


def in_recomputation() -> bool:
    """Whether a forward runs again inside backward: activation checkpointing recomputes
    under grad mode while autograd runs a node (backward's own ops run without grad mode)."""
    return torch.is_grad_enabled() and torch._C._current_autograd_node() is not None


@dataclass
class Frame:
    path: str
    module: nn.Module
    input_shapes: list[tuple[int, ...]]
    first_node: int
    recompute: bool = False
    """The forward runs again inside backward (activation checkpointing)."""
    region: bool = False
    """Not a module's forward: a function `enter_region` runs under `path`."""


@dataclass
class ModuleTracker:
    """Module attribution for one capture. Use as a context manager."""

    model: nn.Module
    tag_backward: bool = False
    stack: list[Frame] = field(default_factory=list)
    output_shapes: dict[str, list[tuple[int, ...]]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    feature_map_bytes: dict[str, int] = field(default_factory=dict)
    """Bytes of each leaf module's outputs over all its calls, leaving out
    outputs written in place over an input (the article's feature maps)."""
    backward_path: str = ROOT
    recomputed: dict[str, None] = field(default_factory=dict)
    """Modules whose forward ran again inside backward, in order (a set that keeps it)."""
    entered: list[str] = field(default_factory=list)
    """The module of every forward call, in order (recomputations left out)."""
    _paths: dict[int, str] = field(default_factory=dict)
    _handles: list[RemovableHandle] = field(default_factory=list)
    _hooks_by_path: dict[str, Callable[..., None]] = field(default_factory=dict)

    def __enter__(self) -> ModuleTracker:
        for path, module in self.model.named_modules():
            self._paths[id(module)] = path
            self._handles.append(module.register_forward_pre_hook(self._pre, with_kwargs=True))
            self._handles.append(
                module.register_forward_hook(self._post, with_kwargs=True, always_call=True)
            )
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def forget_calls(self) -> None:
        """Forget the calls seen so far (output shapes, counts, feature maps): those of an
        unrecorded run before the recorded one."""
        self.recomputed.clear()
        self.entered.clear()
        self.output_shapes.clear()
        self.calls.clear()
        self.feature_map_bytes.clear()

    @property
    def current(self) -> str:
        return self.stack[-1].path if self.stack else ROOT

    def innermost(self) -> Frame | None:
        return self.stack[-1] if self.stack else None

    def path_of(self, module: nn.Module) -> str | None:
        """The module's path in the model, or None if it is not one of its modules."""
        return self._paths.get(id(module))

    def enter_region(self, path: str, owner: nn.Module | None) -> Frame:
        """Make `path` current for the ops of a function that runs outside module hooks
        (a checkpointed `forward`, which checkpointing runs again in backward)."""
        frame = Frame(path, owner if owner is not None else self.model, [], _get_sequence_nr(),
                      in_recomputation(), region=True)
        self.stack.append(frame)
        return frame

    def leave_region(self, frame: Frame) -> None:
        while self.stack:
            if self.stack.pop() is frame:
                return

    def failed_in(self, exc: BaseException) -> Frame | None:
        """The innermost module whose forward `exc` came out of, if it left one."""
        frame = getattr(exc, FAILED_IN, None)
        return frame if isinstance(frame, Frame) else self.innermost()

    def _pre(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        shapes = [tuple(t.shape) for t in flatten_tensors((args, kwargs))]
        path = self._paths.get(id(module), ROOT)
        recompute = in_recomputation()
        if recompute:
            self.recomputed.setdefault(path, None)
        else:
            self.entered.append(path)
        self.stack.append(Frame(path, module, shapes, _get_sequence_nr(), recompute))

    def _post(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
    ) -> None:
        # Pop down to this module's frame: a submodule whose forward raised
        # and was caught by the model's own code leaves a stale frame.
        while self.stack and (self.stack[-1].module is not module or self.stack[-1].region):
            self.stack.pop()
        if not self.stack:
            return
        frame = self.stack.pop()
        raised = sys.exc_info()[1]
        if output is None and raised is not None:
            # Called by `always_call` as an exception leaves this forward (a model's own
            # error, or checkpointing stopping a recomputation early): the frame is gone,
            # and the error remembers the innermost module it came out of.
            if not hasattr(raised, FAILED_IN):
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(raised, FAILED_IN, frame)
            return
        tensors = flatten_tensors(output)
        if frame.recompute:
            # Not a call of the model's: its outputs and feature maps are those of the
            # forward it repeats; its autograd nodes are tagged for a reentrant
            # checkpoint's backward, which runs through them.
            if self.tag_backward:
                self.tag_nodes(tensors, frame.path, frame.first_node)
            return
        self.calls[frame.path] = self.calls.get(frame.path, 0) + 1
        dense = [stored(t) for t in tensors]  # a jagged output: its packed values
        if not module._modules:
            self._note_feature_maps(frame.path, args, kwargs, dense)
        if frame.path not in self.output_shapes:
            self.output_shapes[frame.path] = [tuple(int(d) for d in t.shape) for t in dense]
        if self.tag_backward:
            self.tag_nodes(tensors, frame.path, frame.first_node)

    def _note_feature_maps(
        self, path: str, args: Any, kwargs: Any, outputs: list[torch.Tensor]
    ) -> None:
        inputs = {stored(t).untyped_storage()._cdata for t in flatten_tensors((args, kwargs))}
        fresh = sum(
            t.numel() * t.element_size()
            for t in outputs
            if t.untyped_storage()._cdata not in inputs
        )
        self.feature_map_bytes[path] = self.feature_map_bytes.get(path, 0) + fresh

    def tag_nodes(self, tensors: list[torch.Tensor], path: str, first_node: int = 0) -> None:
        """Tag untagged autograd nodes created since `first_node` and reachable from `tensors`.

        The walk goes on through nodes a submodule already tagged (they keep
        their tag): ops this module ran itself before calling a submodule
        sit behind that submodule's nodes.
        """
        pending = [t.grad_fn for t in tensors if t.grad_fn is not None]
        seen: set[Any] = set()
        while pending:
            node = pending.pop()
            if node in seen or node._sequence_nr() < first_node:
                continue
            seen.add(node)
            tags: dict[str, Any] = node.metadata  # type: ignore[assignment]  # a property
            if NODE_TAG not in tags:
                tags[NODE_TAG] = path
                node.register_prehook(self._hook_for(path))
            pending.extend(nxt for nxt, _ in node.next_functions if nxt is not None)

    def _hook_for(self, path: str) -> Callable[..., None]:
        hook = self._hooks_by_path.get(path)
        if hook is None:

            def hook(grad_outputs: Any) -> None:
                self.backward_path = path

            self._hooks_by_path[path] = hook
        return hook
