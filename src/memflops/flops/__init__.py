"""FLOP rules, one per ATen op, in a registry. Importing this package loads every family."""

from memflops.flops import (  # noqa: F401  (registration side effects)
    activation,
    attention,
    collectives,
    conv,
    data,
    elementwise,
    embedding,
    fft,
    matmul,
    norm,
    optimizer,
    pool,
    reduction,
    rnn,
    roi,
    upsample,
)
from memflops.flops.registry import OpCost, Shape, register, rules

__all__ = ["OpCost", "Shape", "register", "rules"]
