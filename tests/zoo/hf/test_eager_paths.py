"""transformers is told memflops' fake tensors are not a trace only while an analysis runs."""

from __future__ import annotations

import pytest
import torch

import memflops
from memflops.frontends.zoos import library_adjustments

transformers = pytest.importorskip("transformers")
import_utils = pytest.importorskip("transformers.utils.import_utils")


def tiny_llama() -> torch.nn.Module:
    config = transformers.LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=100, use_cache=False,
    )
    model: torch.nn.Module = transformers.LlamaForCausalLM(config)
    return model


def test_only_during_the_analysis_of_a_transformers_model() -> None:
    original = import_utils.is_fake_tensor
    fake = torch._subclasses.FakeTensorMode().from_tensor(torch.zeros(2))
    with library_adjustments(tiny_llama()):
        assert import_utils.is_fake_tensor(fake) is False
    assert import_utils.is_fake_tensor is original
    assert import_utils.is_fake_tensor(fake) is True
    with library_adjustments(torch.nn.Linear(2, 2)):
        assert import_utils.is_fake_tensor is original


def test_the_sdpa_path_an_eager_run_takes() -> None:
    """No 4-D mask is built and attention runs grouped-query SDPA with `is_causal`: the
    forward has no `repeat_kv` copy (aten.clone) and no mask select (aten.where)."""
    report = memflops.analyze(tiny_llama(), [torch.zeros((2, 16), dtype=torch.int64)])
    ops = {rec.op for rec in report.records}
    assert "aten._scaled_dot_product_flash_attention_for_cpu" in ops
    assert not ops & {"aten.clone", "aten.where"}
    assert import_utils.is_fake_tensor(torch._subclasses.FakeTensorMode().from_tensor(
        torch.zeros(1))) is True
