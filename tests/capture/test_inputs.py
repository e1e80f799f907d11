"""Inputs: the same numbers from tensors, meta tensors or shapes; shape and dtype parsing."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import memflops
from memflops.capture.inputs import TensorSpec, normalize_inputs, parse_shape
from memflops.errors import SpecError, UsageError
from memflops.report.model import Report

PHASES = ("forward", "loss", "backward", None)
CONVENTIONS = ("exact", "2mac", "mac")


def analyze(model: torch.nn.Module, inputs: Any) -> Report:
    return memflops.analyze(model, inputs, mode="train", optimizer=None)


def assert_same(reports: list[Report]) -> None:
    first = reports[0]
    for other in reports[1:]:
        assert other.to_dict() == first.to_dict()  # totals, every module, uncounted ops
        assert other.totals.costs == first.totals.costs  # MACs and exact FLOPs per phase
        for phase in PHASES:
            for convention in CONVENTIONS:
                assert other.total(phase, convention) == first.total(phase, convention)
        assert [(r.path, r.forward, r.backward) for r in other.modules] == \
            [(r.path, r.forward, r.backward) for r in first.modules]
    assert first.total("forward", "exact") > first.total("forward", "mac") > 0


def test_image_model_same_from_tensor_meta_and_shape(conv_bn_pool_fc: Any) -> None:
    model = conv_bn_pool_fc(bias=True)
    shape = (2, 3, 8, 8)
    assert_same([
        analyze(model, torch.randn(shape)),
        analyze(model, torch.empty(shape, device="meta")),
        analyze(model, shape),
        analyze(model, "2x3x8x8"),
        analyze(model, [shape]),
    ])


def test_token_model_same_from_tensor_meta_and_shape(functional_transformer: Any) -> None:
    model = functional_transformer(vocab=50, dim=32, heads=4, hidden=64, layers=2)
    ids = torch.randint(0, 50, (2, 16))
    reports = [
        analyze(model, ids),
        analyze(model, torch.empty(2, 16, dtype=torch.int64, device="meta")),
        analyze(model, {"input_ids": (2, 16)}),  # input_ids defaults to int64
        analyze(model, {"input_ids": ids}),
        analyze(model, "2x16:int64"),
    ]
    # Positional and keyword inputs are named differently; the counts are the same.
    for r in reports:
        assert [(s.shape, s.dtype) for _, s in r.inputs] == [((2, 16), torch.int64)]
    assert_same([reports[0], reports[1], reports[4]])
    assert_same([reports[2], reports[3]])
    assert reports[0].totals.costs == reports[2].totals.costs
    assert reports[0].modules == reports[2].modules


def test_parse_shape() -> None:
    assert parse_shape("8x3x224x224") == TensorSpec((8, 3, 224, 224), None)
    assert parse_shape("2x128:int64") == TensorSpec((2, 128), torch.int64)
    assert parse_shape(" 4X5 ") == TensorSpec((4, 5), None)
    assert parse_shape("2,3:bf16") == TensorSpec((2, 3), torch.bfloat16)
    assert parse_shape("16") == TensorSpec((16,), None)
    assert parse_shape("1x3x8x8:grad") == TensorSpec((1, 3, 8, 8), None, requires_grad=True)
    assert parse_shape("1x3x8x8:bf16:grad") == parse_shape("1x3x8x8:grad:bf16") == \
        TensorSpec((1, 3, 8, 8), torch.bfloat16, requires_grad=True)
    assert parse_shape("1x3x8x8:bf16:grad").describe() == "1x3x8x8:bfloat16:grad"


def test_parse_jagged_shape() -> None:
    # a jagged tensor: its sequences' lengths in brackets, then each position's size; its
    # shape is its packed values' (3 + 7 positions)
    assert parse_shape("[3,7]x16") == TensorSpec((10, 16), None, lengths=(3, 7))
    assert parse_shape(" [3, 7] X 4x2:bf16:grad") == TensorSpec(
        (10, 4, 2), torch.bfloat16, requires_grad=True, lengths=(3, 7))
    assert parse_shape("[5]") == TensorSpec((5,), None, lengths=(5,))
    assert parse_shape("[3,7]x16:fp16").describe() == "[3,7]x16:float16"
    many = TensorSpec((45, 8), None, lengths=tuple(range(1, 10)))
    assert many.describe() == "[1,2,3,...,9; 9 sequences]x8" and many.batch == 9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8xax3", "expected sizes separated by 'x', e.g. 8x3x224x224"),
        ("", "expected sizes separated by 'x'"),
        ("2x-1", "size 1 is -1; sizes must be >= 1"),
        ("0x3", "size 0 is 0; sizes must be >= 1"),  # batch 0: nothing to count
        ("99999999999999999999x10", "more than PyTorch's int64 byte counts hold"),
        ("2x3:float7", "unknown dtype 'float7'; expected one of: "),
        ("2x3:", "a dtype or 'grad' must follow ':'"),
        ("2x3:grad:grad", "':grad' given twice"),
        ("2x3:fp16:bf16", "two dtypes"),
        ("[3,7x16", "a jagged tensor is its sequence lengths in brackets"),
        ("[]x16", "a jagged tensor is its sequence lengths in brackets"),
        ("[3,a]x16", "a jagged tensor is its sequence lengths in brackets"),
        ("[3,7]16", "a jagged tensor is its sequence lengths in brackets"),
        ("[3,0]x16", "sequence lengths: size 1 is 0; sizes must be >= 1"),
        ("[3,7]x0", "size 1 is 0; sizes must be >= 1"),
    ],
)
def test_parse_shape_errors(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        parse_shape(text)
    assert repr(text) in str(info.value)  # the message names the bad value
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2


def test_dict_inputs_index_names_default_to_int64() -> None:
    specs = normalize_inputs({"input_ids": (2, 16), "attention_mask": (2, 16),
                              "pixel_values": (2, 3, 8, 8), "labels": "2:int32"})
    assert dict(specs.kwargs) == {
        "input_ids": TensorSpec((2, 16), torch.int64),
        "attention_mask": TensorSpec((2, 16), torch.int64),
        "pixel_values": TensorSpec((2, 3, 8, 8), None),  # the analysis dtype
        "labels": TensorSpec((2,), torch.int32),  # an explicit dtype wins
    }
    assert specs.args == ()


def test_tensor_inputs_keep_their_dtype() -> None:
    specs = normalize_inputs([torch.empty(2, 3, dtype=torch.float16, device="meta"), (4,)])
    assert specs.args == (TensorSpec((2, 3), torch.float16), TensorSpec((4,), None))


def test_inputs_keep_requires_grad() -> None:
    specs = normalize_inputs({"x": torch.empty(2, 3, requires_grad=True), "y": "4:grad",
                              "input_ids": "2x5"})
    assert dict(specs.kwargs) == {
        "x": TensorSpec((2, 3), torch.float32, requires_grad=True),
        "y": TensorSpec((4,), None, requires_grad=True),
        "input_ids": TensorSpec((2, 5), torch.int64),
    }


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (None, "no inputs given"),
        ([], "empty"),
        ((2, -3), "size 1 is -3; sizes must be >= 1"),
        ((0, 10), r"bad shape \(0, 10\): size 0 is 0"),
        ((2, 10.0), r"size 1 is float 10.0, expected an int"),  # not "got int 2"
        ((10**30, 10), "more than PyTorch's int64 byte counts hold"),
        ({"x": 3.5}, r"inputs\['x'\]: expected a shape tuple"),
        ([(2, 3), object()], r"inputs\[1\]: expected a shape tuple"),
        (3.5, "expected a shape, a list of shapes, tensors or a dict"),
    ],
)
def test_input_errors(inputs: Any, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        normalize_inputs(inputs)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors is in prototype")
def test_jagged_tensors_are_taken_and_others_refused_with_where_they_are() -> None:
    """A jagged nested tensor is taken as its lengths; a strided-layout nested tensor, a
    jagged one with holes or ragged elsewhere, and a sparse tensor are named by their place
    in the inputs, not failed on deep inside."""
    parts = [torch.randn(3, 4), torch.randn(5, 4)]
    jagged = torch.nested.nested_tensor(parts, layout=torch.jagged, dtype=torch.bfloat16)
    assert normalize_inputs((torch.randn(2, 4), jagged)).args[1] == TensorSpec(
        (8, 4), torch.bfloat16, lengths=(3, 5))
    with pytest.raises(SpecError, match=r"^inputs\[0\]: a strided-layout nested tensor"):
        normalize_inputs((torch.nested.nested_tensor(parts),))
    holes = torch.nested.narrow(torch.randn(2, 6, 4), 1, torch.tensor([0, 1]),
                                torch.tensor([3, 5]), layout=torch.jagged)
    with pytest.raises(SpecError, match=r"^inputs: a jagged nested tensor with holes"):
        normalize_inputs(holes)
    with pytest.raises(SpecError, match=r"^inputs\['x'\]: a torch.sparse_coo tensor"):
        normalize_inputs({"x": torch.eye(3).to_sparse()})
