"""Values attached to tensors by identity, dropped when the tensor dies.

A tensor cannot be a dict key as it is (its `==` is elementwise), and its id
is reused once it is gone; `TensorTable` keys by id, keeps a weak reference,
checks on every lookup that the tensor is still the one stored, and drops
the entry when the tensor is collected.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import torch

V = TypeVar("V")


class TensorTable(Generic[V]):
    """{tensor: value} by identity. `on_drop(key, value)` runs when a tensor dies."""

    def __init__(self, on_drop: Callable[[int, V], None] | None = None) -> None:
        self._entries: dict[int, tuple[weakref.ref[torch.Tensor], V]] = {}
        self._on_drop = on_drop

    def __bool__(self) -> bool:
        return bool(self._entries)

    def get(self, t: Any) -> V | None:
        entry = self._entries.get(id(t))
        return entry[1] if entry is not None and entry[0]() is t else None

    def set(self, t: torch.Tensor, value: V) -> None:
        key = id(t)

        def dropped(_ref: Any) -> None:
            entry = self._entries.pop(key, None)
            if entry is not None and self._on_drop is not None:
                self._on_drop(key, entry[1])

        self._entries[key] = (weakref.ref(t, dropped), value)

    def pop(self, key: int) -> None:
        """Forget the tensor whose id is `key` (no `on_drop`)."""
        self._entries.pop(key, None)
