"""Model states per rank under ZeRO, by the published formulas (torch-free).

These count parameters, gradients and optimizer state only: no activations,
buffers, communication buffers or gathered parameters. memflops' own
numbers come from the captured step (`capture.parallel`, `capture.data_parallel`);
these formulas are what the captured numbers are checked against and
compared with (tests/capture/test_data_parallel.py, benchmarks/PARALLEL.md).
"""

from __future__ import annotations

import math


def zero_model_states(
    stage: int, world: int, params: int, grads: int, optimizer: int
) -> tuple[int, int, int]:
    """(parameter, gradient, optimizer-state) bytes per rank under ZeRO stage `stage`
    over `world` ranks, from their one-GPU bytes (Rajbhandari et al. 2020, "ZeRO: Memory
    Optimizations Toward Training Trillion Parameter Models", section 5.1 and Figure 1):
    stage 0 (plain data parallel) keeps all three whole; stage 1 (P_os) partitions the
    optimizer state, stage 2 (P_os+g) the gradients too, stage 3 (P_os+g+p) the parameters
    too. A partition is ceil(bytes / world), an even split."""
    if stage not in (0, 1, 2, 3) or world < 1:
        raise ValueError(f"ZeRO stage {stage} over {world} ranks")

    def split(n: int, from_stage: int) -> int:
        return math.ceil(n / world) if stage >= from_stage else n

    return split(params, 3), split(grads, 2), split(optimizer, 1)


def deepspeed_zero2_gpu_bytes(total_params: int, gpus: int) -> int:
    """DeepSpeed's `estimate_zero2_model_states_mem_needs` without CPU offload
    (deepspeed/runtime/zero/stage_1_and_2.py): 4 bytes per parameter whole (16-bit
    parameters and gradients) plus 16 bytes per parameter split over the GPUs (fp32 master
    parameters, Adam's two moments and an fp32 gradient), int(16 * params / gpus)."""
    return 4 * total_params + int(16 * total_params / gpus)


def deepspeed_zero3_gpu_bytes(total_params: int, largest_layer_params: int, gpus: int) -> int:
    """DeepSpeed's `estimate_zero3_model_states_mem_needs` without offload
    (deepspeed/runtime/zero/stage3.py): the largest layer gathered whole, 4 bytes per
    parameter of it, plus int(18 * params / gpus) (its sharded 16-bit parameters and
    gradients, fp32 master parameters and Adam's moments, and 2 more bytes per
    parameter)."""
    return 4 * largest_layer_params + int(18 * total_params / gpus)
