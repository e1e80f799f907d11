"""The reference article's memory estimate, computed as the article states it.

    memory = parameters x {1 inference; SGD 2, SGD+momentum 3, Adam 4 in training}
           + every layer's output feature map x {1 inference; 2 training}

The multiplier counts the parameters, their gradients and one copy per
optimizer state tensor. Generalised here to any optimizer and to frozen
parameters as parameter bytes + trainable parameter bytes (gradients) +
optimizer state bytes, which for SGD, momentum and Adam over fp32 trainable
parameters is exactly the article's 2x, 3x and 4x. Feature maps are the
outputs of leaf modules, once per call; an output written in place over its
input (`ReLU(inplace=True)`) is no new feature map, as the article says.
"""

from __future__ import annotations


def seed_estimate(
    *,
    param_bytes: int,
    trainable_bytes: int,
    optimizer_state_bytes: int,
    feature_map_bytes: int,
    train: bool,
) -> int:
    if not train:
        return param_bytes + feature_map_bytes
    return param_bytes + trainable_bytes + optimizer_state_bytes + 2 * feature_map_bytes
