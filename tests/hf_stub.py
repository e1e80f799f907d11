"""A stand-in for a transformers config, as the `hf_inputs` builders read one."""

from __future__ import annotations

from typing import Any


class Config:
    """A config as the builders read it: plain attributes; sub-configs have `to_dict`."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))
