"""transformers is told memflops' fake tensors are not a trace only while an analysis runs."""

from __future__ import annotations

import pytest
import torch

import memflops
from memflops.capture.values.known import KnownValues, readable_values
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
    known = torch._subclasses.FakeTensorMode().from_tensor(torch.zeros(3))
    values = KnownValues()
    values.note(known, torch.ones(3))
    with library_adjustments(tiny_llama()):
        with readable_values(values):  # as while the capture records
            assert import_utils.is_fake_tensor(known) is False  # its values can be read
            assert import_utils.is_fake_tensor(fake) is True  # they cannot: a trace's path
            assert import_utils.is_fake_tensor(torch.zeros(2)) is False
        assert import_utils.is_fake_tensor(known) is True  # no capture recording
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


def test_a_mask_whose_values_are_unknown_takes_the_path_that_reads_none() -> None:
    """ViLT builds its padding mask from the image's pixel mask, whose values the capture
    does not know: transformers' eager path would read `padding_mask.all()` and stop the
    analysis on a data-dependent read (the HF coverage run's vilt and timesfm2_5); told the
    mask is fake, it builds the mask instead, as under a trace."""
    from transformers import ViltConfig, ViltModel

    config = ViltConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, image_size=32, patch_size=16, vocab_size=100,
                        max_position_embeddings=16)
    torch.manual_seed(0)
    report = memflops.analyze(ViltModel(config), {
        "input_ids": torch.zeros((2, 8), dtype=torch.int64), "pixel_values": (2, 3, 32, 32)},
        mode="train")
    assert report.totals.memory.peak > 0 and not report.uncounted_ops
    assert import_utils.is_fake_tensor(torch._subclasses.FakeTensorMode().from_tensor(
        torch.zeros(1))) is True

