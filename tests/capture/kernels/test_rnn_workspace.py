"""The oneDNN LSTM workspace formula against the real CPU kernel, to the byte."""

from __future__ import annotations

import random
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from memflops.capture.kernels.rnn_workspace import (
    good_leading_dim,
    lstm_workspace_bytes,
    onednn_rnn_workspace_bytes,
    workspace_bytes_from_op,
)

RNN_LAYER = torch.ops.aten.mkldnn_rnn_layer.default


class _Workspaces(TorchDispatchMode):
    """Records, for each real `mkldnn_rnn_layer` call, its arguments and workspace bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[tuple[int, ...], int, int, int, bool, int | None]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func is RNN_LAYER:
            ws = out[3]
            self.calls.append((tuple(args[0].shape), args[9], args[10], args[0].element_size(),
                               torch.is_grad_enabled(),
                               None if ws is None else ws.untyped_storage().nbytes()))
        return out


def _measure(model: nn.Module, x: torch.Tensor, grad: bool = True) -> _Workspaces:
    rec = _Workspaces()
    with torch.set_grad_enabled(grad), rec:
        model(x)
    return rec


def _lstm_run(seq: int, batch: int, inp: int, hidden: int, layers: int, bi: bool, bf: bool,
              dtype: torch.dtype = torch.float32) -> _Workspaces:
    torch.manual_seed(0)
    model = nn.LSTM(inp, hidden, layers, bidirectional=bi, batch_first=bf).to(dtype)
    x = torch.randn((batch, seq, inp) if bf else (seq, batch, inp), dtype=dtype)
    return _measure(model, x)


def _grid(n: int) -> list[tuple[int, int, int, int, int, bool, bool]]:
    rng = random.Random(20240601)
    sizes = [1, 3, 16, 17, 33, 64, 100, 129]
    return [(rng.choice([1, 2, 3, 7, 16, 31, 50, 100]), rng.choice([1, 2, 3, 5, 8, 17, 64]),
             rng.choice(sizes), rng.choice(sizes), rng.randint(1, 3),
             rng.random() < 0.5, rng.random() < 0.5) for _ in range(n)]


def _skip_without_onednn(rec: _Workspaces) -> None:
    if not rec.calls:
        pytest.skip("nn.LSTM does not dispatch aten.mkldnn_rnn_layer on this build/CPU")


def test_worked_example() -> None:
    # T=5, B=3, I=17, H=33, float32; ld(132)=144, ld(33)=48, ld(max(17, 33))=48:
    # gates 5*3*144*4 = 8640 -> 12288; ht 5*3*48*4 = 2880 -> 4096;
    # states 2*6*3*48*4 = 6912 -> 8192; c 2*6*3*33*4 = 4752 -> 8192;
    # diff states 6912 -> 8192 twice; diff c 4752 -> 8192;
    # 12288 + 4096 + 5*8192 = 57344
    assert onednn_rnn_workspace_bytes("lstm", 5, 3, 17, 33) == 57344


def test_leading_dim_avoids_multiples_of_256() -> None:
    # 4H = 256 floats pads to 272; 1000 pads to 1008; bfloat16 pads to 32 elements
    assert good_leading_dim(256, 4) == 272
    assert good_leading_dim(1000, 4) == 1008
    assert good_leading_dim(33, 2) == 64
    # T=2, B=2, I=1, H=64: gates 2*2*272*4 = 4352 -> 8192 (not 4096), the other
    # six pieces (1024 or 3072 bytes) one page each: 8192 + 6*4096 = 32768
    assert onednn_rnn_workspace_bytes("lstm", 2, 2, 1, 64) == 32768


def test_smallest_workspace_is_seven_pages() -> None:
    # every piece fits in one page: 7 * 4096 = 28672
    assert onednn_rnn_workspace_bytes("lstm", 1, 1, 1, 1) == 28672


def test_bfloat16_halves_only_the_data_pieces() -> None:
    # T=5, B=3, I=17, H=33, bfloat16: ld(132, 2)=160, ld(33, 2)=64:
    # gates 15*160*2 = 4800 -> 8192; ht 15*64*2 = 1920 -> 4096;
    # states 36*64*2 = 4608 -> 8192; c 36*33*2 = 2376 -> 4096;
    # float32 diff pieces as for float32: 8192 * 3 = 24576; total 49152
    assert onednn_rnn_workspace_bytes("lstm", 5, 3, 17, 33, dtype_bytes=2) == 49152


def test_module_calls_follow_layers_and_directions() -> None:
    # layer 0 sees I=17, layer 1 sees 2*33 = 66: ld(66)=80, so states 36*80*4 = 11520
    # -> 12288 (and both diff states), 57344 + 3*4096 = 69632
    assert lstm_workspace_bytes(5, 3, 17, 33, 2, True) == (57344, 57344, 69632, 69632)


def test_other_modes_and_dtypes_are_refused() -> None:
    with pytest.raises(ValueError, match="only runs LSTMs"):
        onednn_rnn_workspace_bytes("gru", 5, 3, 17, 33)
    with pytest.raises(ValueError, match="dtype_bytes"):
        onednn_rnn_workspace_bytes("lstm", 5, 3, 17, 33, dtype_bytes=8)
    with pytest.raises(ValueError, match="seq_len"):
        onednn_rnn_workspace_bytes("lstm", 0, 3, 17, 33)


def test_matches_real_kernel_on_a_grid() -> None:
    configs = _grid(64)
    measured = 0
    for seq, batch, inp, hidden, layers, bi, bf in configs:
        rec = _lstm_run(seq, batch, inp, hidden, layers, bi, bf)
        _skip_without_onednn(rec)
        expected = lstm_workspace_bytes(seq, batch, inp, hidden, layers, bi)
        got = tuple(nbytes for *_, nbytes in rec.calls)
        assert got == expected, (seq, batch, inp, hidden, layers, bi, bf)
        for shape, mode, hid, size, grad, nbytes in rec.calls:
            assert workspace_bytes_from_op(shape, mode, hid, size, grad) == nbytes
        measured += len(rec.calls)
    assert measured >= 64


def test_matches_real_kernel_in_bfloat16() -> None:
    for seq, batch, inp, hidden, layers, bi, bf in _grid(12):
        rec = _lstm_run(seq, batch, inp, hidden, layers, bi, bf, torch.bfloat16)
        if not rec.calls:
            pytest.skip("bfloat16 LSTM does not reach oneDNN on this CPU")
        expected = lstm_workspace_bytes(seq, batch, inp, hidden, layers, bi, dtype_bytes=2)
        assert tuple(nbytes for *_, nbytes in rec.calls) == expected


def test_grad_mode_not_train_flag_decides() -> None:
    model, x = nn.LSTM(17, 33), torch.randn(5, 3, 17)
    rec = _measure(model.eval(), x, grad=True)  # train=False, yet a workspace
    _skip_without_onednn(rec)
    assert [c[-1] for c in rec.calls] == [57344]
    rec = _measure(model.train(), x, grad=False)  # train=True, no workspace
    assert [c[-1] for c in rec.calls] == [None]
    shape, mode, hid, size, grad, _ = rec.calls[0]
    assert workspace_bytes_from_op(shape, mode, hid, size, grad) == 0


def test_gru_and_rnn_do_not_reach_the_op() -> None:
    x = torch.randn(5, 3, 17)
    for model in (nn.GRU(17, 33), nn.RNN(17, 33), nn.RNN(17, 33, nonlinearity="relu")):
        assert _measure(model, x).calls == []
