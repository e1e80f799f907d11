"""Every family of changes, imported so that each registers its changes, in the order
they are tried and combined: the data of the step, the model's structure (activations,
batch norm, head, convolutions), checkpointing, then precision and the optimizer."""

from memflops.advisor import (  # noqa: F401
    batch,
    batchnorm,
    checkpoint,
    convs,
    head,
    inplace,
    optimizer,
    precision,
)
