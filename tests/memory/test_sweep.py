"""The sweep and fit drivers resize the inputs and keep what is known about them."""

from __future__ import annotations

import torch

import memflops
from memflops.capture.inputs import InputSpecs
from memflops.memory.sweep import resized
from memflops.tensor_spec import TensorSpec


def test_resized_keeps_a_value_every_element_equals() -> None:
    specs = InputSpecs((), (("input_ids", TensorSpec((4, 16), torch.int64, 7)),
                            ("grid", TensorSpec((4, 2), torch.int64, [[1, 2]] * 4))))
    ids, grid = (spec for _, spec in resized(specs, 2, 0).all())
    assert ids == TensorSpec((2, 16), torch.int64, 7)
    assert grid == TensorSpec((2, 2), torch.int64, None)  # per-element values no longer fit



def test_cross_entropy_targets_follow_the_batch() -> None:
    """The sweep's targets are resized with the batch: each point is the step analysed
    directly at that batch with targets of that batch."""
    model = torch.nn.Linear(10, 5)
    report = memflops.analyze(model, (2, 10), mode="train", loss="cross_entropy",
                              targets="2:int64", batch_sweep=[1, 4])
    assert report.sweep is not None
    for point in report.sweep.points:
        alone = memflops.analyze(model, (point.size, 10), mode="train", loss="cross_entropy",
                                 targets=f"{point.size}:int64")
        assert point.peak == alone.totals.memory.peak
