"""The three FLOP conventions, each stated in one sentence.

Every rule of the registry returns an `OpCost` with two exact integers:
`macs`, the multiply-accumulates of matmul-like work (convolution, matrix
products, attention), and `flops`, every multiply, add, compare, divide and
elementary function the op performs. A convention picks one of them.
"""

from __future__ import annotations

from enum import Enum


class Convention(str, Enum):
    """How a FLOP is counted."""

    EXACT = "exact"
    TWO_MAC = "2mac"
    MAC = "mac"

    @property
    def sentence(self) -> str:
        return _SENTENCES[self]

    @classmethod
    def parse(cls, value: str | Convention) -> Convention:
        from memflops.errors import UsageError

        if isinstance(value, Convention):
            return value
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(c.value for c in cls)
            raise UsageError(f"unknown convention {value!r}; expected one of: {names}") from None


_SENTENCES = {
    Convention.EXACT: (
        "exact: every multiply, add, compare, divide and elementary function is one FLOP, "
        "per the reference article (a bias removes the -1 of a dot product; "
        "batch norm is 5 per element; pooling is K^2 per output element)"
    ),
    Convention.TWO_MAC: (
        "2mac: two FLOPs per multiply-accumulate of matmul-like ops (convolution, matrix "
        "products, attention) and nothing else, as torch.utils.flop_counter.FlopCounterMode counts"
    ),
    Convention.MAC: (
        "mac: one per multiply-accumulate of matmul-like ops and nothing else, "
        "as fvcore and thop count"
    ),
}
