"""Every family of changes, imported so that each registers its changes; the order of
the imports is the order of the registry, in which changes are tried and combined. A
combination does not depend on it: checkpointing wraps a block's forward, which looks up
its submodules (rewritten or not) each time it runs, and the other changes touch
separate modules or options."""

from memflops.advisor import (  # noqa: F401
    accumulation,
    batch,
    batchnorm,
    checkpoint,
    convs,
    downsample,
    freeze,
    head,
    inplace,
    optimizer,
    precision,
    sharding,
)
