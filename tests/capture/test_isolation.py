"""The analysis leaves the caller's model and ambient torch state as they were, and the
ambient state does not change its numbers (`memflops.capture.isolation`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

import memflops

_SPEC = importlib.util.spec_from_file_location(
    "hostile_model", Path(__file__).parents[1] / "fixtures" / "hostile_model.py"
)
assert _SPEC is not None and _SPEC.loader is not None
hostile = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(hostile)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("factory", ["registers", "caches"])
@pytest.mark.parametrize("mode", ["inference", "train"])
def test_attributes_a_forward_creates_are_removed(factory: str, mode: str) -> None:
    model = getattr(hostile, factory)()
    reference = getattr(hostile, factory)()
    reference.load_state_dict(model.state_dict())
    before = _state(model)
    memflops.analyze(model, (3, 4), mode=mode)
    after = _state(model)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(isinstance(v, FakeTensor) for v in vars(model).values())
    x = torch.randn(3, 4)
    out = model(x)
    assert type(out) is torch.Tensor
    assert torch.equal(out, reference(x))  # the real forward, as on a model never analysed


def test_attributes_are_put_back_when_the_forward_fails() -> None:
    model = hostile.registers()
    with pytest.raises(memflops.errors.ForwardError):
        memflops.analyze(model, (3, 5))  # 5 features into Linear(4, 4)
    assert "scale" not in dict(model.named_buffers())
    assert type(model(torch.randn(3, 4))) is torch.Tensor


def _totals(report: memflops.Report) -> dict[str, object]:
    totals: dict[str, object] = report.to_dict()["totals"]
    return totals


def test_anomaly_detection_changes_no_number_and_stays_on() -> None:
    model = nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 2))
    plain = _totals(memflops.analyze(model, (2, 10), mode="train"))
    with torch.autograd.set_detect_anomaly(True):
        anomalous = _totals(memflops.analyze(model, (2, 10), mode="train"))
        assert torch.is_anomaly_enabled()
    assert anomalous == plain


def test_ambient_autocast_changes_no_number_and_stays_on() -> None:
    model = nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 2))
    plain = _totals(memflops.analyze(model, (2, 10), mode="train"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ambient = _totals(memflops.analyze(model, (2, 10), mode="train"))
        assert torch.is_autocast_enabled("cpu")
    assert ambient == plain


def test_train_under_the_callers_inference_mode() -> None:
    model = nn.Linear(10, 5)
    plain = _totals(memflops.analyze(model, (2, 10), mode="train"))
    with torch.inference_mode():
        inside = _totals(memflops.analyze(model, (2, 10), mode="train"))
        assert torch.is_inference_mode_enabled()
    assert inside == plain


def test_inside_the_callers_fake_mode_and_meta_device() -> None:
    model = nn.Linear(10, 5)
    plain = _totals(memflops.analyze(model, (2, 10)))
    with FakeTensorMode():
        assert _totals(memflops.analyze(model, (2, 10))) == plain
    with torch.device("meta"):
        assert _totals(memflops.analyze(model, (2, 10))) == plain


def test_the_analysis_own_autocast_inside_the_callers() -> None:
    """AMP asked for inside the caller's autocast: the same numbers as at top level (the
    cast cache cleared when the analysis' autocast ends, as at top level)."""
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    plain = _totals(memflops.analyze(model, (8, 64), mode="train", autocast="bf16"))
    with torch.autocast("cpu", dtype=torch.float16):
        inside = _totals(memflops.analyze(model, (8, 64), mode="train", autocast="bf16"))
        assert torch.get_autocast_dtype("cpu") == torch.float16
    assert inside == plain


class TakesMask(nn.Module):
    """A keyword attention_mask it never reads, beside a float input."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.lin(x)
        return out


def test_a_huge_filled_mask_is_never_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mask of ones 20,000 x 20,000 (400 M elements, 3.2 GB as int64) stays fake: its
    values are not built for real, being too large to be kept anyway."""
    import memflops.capture.step as step
    from memflops.capture.values.known import INDEX_LIMIT

    built: list[int] = []
    real_values = step.real_values

    def recording(spec: memflops.TensorSpec, values: object, dtype: torch.dtype) -> torch.Tensor:
        built.append(int(torch.Size(spec.shape).numel()))
        return real_values(spec, values, dtype)

    monkeypatch.setattr(step, "real_values", recording)
    memflops.analyze(TakesMask(), {"x": (2, 4), "attention_mask": (20_000, 20_000)})
    memflops.analyze(TakesMask(), {"x": (2, 4), "attention_mask": (2, 8)})
    assert built == [16]  # only the small mask: 2 x 8
    assert INDEX_LIMIT < 20_000 * 20_000


def test_a_failing_meta_kernel_logs_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    """torch logs a 17-line traceback when a meta kernel fails; the analysis reports the
    error itself (a ForwardError naming the module) and leaves the logger as it was."""
    import logging

    logger = logging.getLogger("torch._subclasses.fake_tensor")
    filters = list(logger.filters)
    model = nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Linear(10, 5))
    with pytest.raises(memflops.errors.ForwardError, match="module `0` \\(Linear\\)"):
        memflops.analyze(model, (2, 7))
    assert capfd.readouterr().err == ""
    assert logger.filters == filters


class RandomWork(nn.Module):
    """Chooses how much work to do with real random draws, as wav2vec2-style time masking
    chooses how many spans to mask: NumPy and Python's random decide how many matmuls
    run (a torch draw inside the forward is a fake tensor, refused when read)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import random

        import numpy

        times = int(numpy.random.randint(1, 50)) + random.randint(1, 50)
        for _ in range(times):
            x = self.proj(x)
        return x


def test_random_work_costs_the_same_every_time_and_leaves_the_callers_draws() -> None:
    import random

    import numpy

    model = RandomWork()
    random.seed(7)
    numpy.random.seed(7)
    torch.manual_seed(7)
    expected = (random.random(), float(numpy.random.rand()), float(torch.rand(1)))
    random.seed(7)
    numpy.random.seed(7)
    torch.manual_seed(7)
    # the generators are seeded for the analysis: the same draws, the same FLOPs
    first = memflops.analyze(model, (2, 8)).totals.costs.forward.flops
    assert memflops.analyze(model, (2, 8)).totals.costs.forward.flops == first
    # and put back after it: the caller's next draws are the ones they would have been
    assert (random.random(), float(numpy.random.rand()), float(torch.rand(1))) == expected
