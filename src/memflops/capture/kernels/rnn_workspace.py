"""Bytes of the oneDNN workspace that one `aten.mkldnn_rnn_layer` call allocates.

On CPU, `nn.LSTM` runs each layer and direction as one `mkldnn_rnn_layer`
call. Its fourth output is a uint8 workspace, saved by autograd for the
backward; the meta kernel returns it with 0 bytes, the real kernel with
`pd.workspace_desc().get_size()` bytes. This module gives that size exactly.

When a workspace exists. PyTorch (aten/src/ATen/native/mkldnn/RNN.cpp,
`mkldnn_rnn_layer`) builds a training primitive, and so a workspace, iff
grad mode is enabled when the op runs (`at::GradMode::is_enabled()`); the
op's `train` argument (the module's `training` flag) plays no part. Under
`no_grad` the output is an undefined tensor (None in Python). The kernel
always builds an LSTM primitive (`ideep::lstm_forward_training`), so only
mode 2 (LSTM) can run: `nn.GRU`, `nn.RNN`, LSTMs with `proj_size` and packed
sequences never reach this op (they decompose into `addmm` and elementwise
ops), and calling the op with another mode fails to build a primitive.

The layout. PyTorch gives oneDNN one layer and one direction per call
(n_layer = n_dir = 1; `reverse` picks right-to-left, which does not change
the sizes). oneDNN (src/cpu/rnn/rnn_utils.hpp, `init_conf` for the leading
dimensions and `set_workspace_sizes` for the sizes; src/cpu/rnn/rnn_utils.cpp,
`set_offsets`) lays out seven pieces, each starting on a 4096-byte page, so
the workspace is the sum of the pieces each rounded up to 4096 bytes. With
T time steps, B batch, I input size, H hidden size, s the element size of
the data type (4 for float32, 2 for bfloat16) and `ld(n, s)` oneDNN's
`get_good_ld` (n rounded up to a multiple of 64/s elements, so rows are
64-byte aligned, plus another 64/s when the result is a multiple of 256,
to avoid 4K aliasing):

    gates          T * B * ld(4H, s) * s          (gate pre-activations)
    ht             T * B * ld(H, s) * s           (hidden outputs)
    states         2 * (T+1) * B * ld(max(I, H), s) * s
    states_iter_c  2 * (T+1) * B * H * s          (cell states, c's dtype)
    diff_layer     2 * (T+1) * B * ld(max(I, H), 4) * 4
    diff_iter      2 * (T+1) * B * ld(max(I, H), 4) * 4
    diff_iter_c    2 * (T+1) * B * H * 4

The factor 2 is oneDNN's n_layer + 1, T+1 its n_iter + 1; the diff pieces
hold float32 accumulators whatever the data type. PyTorch passes c in the
input's dtype. The smallest workspace is therefore 7 pages, 28,672 bytes.

Verified on torch 2.14.1 with oneDNN v3.12.0 (x86-64, AVX-512): the real
kernel's size matched this formula to the byte on every one of 923 calls
(300 random modules: T in 1..100, B in 1..64, I and H in 1..300 including non-multiples
of 16 and the aliasing case 4H = 256, 1..3 layers, both directions,
`batch_first` both ways, float32 and bfloat16), and on T=200, B=130, I=512,
H=1024 (1,616,138,240 bytes). float16 never reached the op on that CPU (it
needs AVX512-FP16 or AMX-FP16); other oneDNN versions may lay out
differently.
"""

from __future__ import annotations

from collections.abc import Sequence

PAGE_BYTES = 4096
"""oneDNN starts each workspace piece on a page (`set_offsets`, rnn_utils.cpp)."""

ACCUMULATOR_BYTES = 4
"""The diff-state pieces hold float32 accumulators (oneDNN's `gemm_acc_t`)."""

MODE_NAMES = {0: "rnn_relu", 1: "rnn_tanh", 2: "lstm", 3: "gru"}
"""The op's integer `mode` (cuDNN's numbering, as `ideep::rnn_kind`) to its name."""

_LSTM_GATES = 4
_DTYPE_BYTES = (2, 4)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def good_leading_dim(dim: int, elem_bytes: int) -> int:
    """oneDNN's `get_good_ld`: `dim` padded to 64 bytes, then + 64 bytes if a multiple of 256."""
    step = 64 // elem_bytes
    ld = _round_up(dim, step)
    return ld + step if ld % 256 == 0 else ld


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def onednn_rnn_workspace_bytes(mode: str, seq_len: int, batch: int, input_size: int,
                               hidden_size: int, *, dtype_bytes: int = 4) -> int:
    """Bytes of the workspace one `mkldnn_rnn_layer` call allocates in training.

    `input_size` is that layer's input width (see `layer_input_size`);
    `dtype_bytes` is 4 for float32, 2 for bfloat16. The layout and its
    sources are in the module docstring. Only `mode="lstm"` exists: the
    kernel cannot run the other modes. A call under `no_grad` allocates no
    workspace (use `workspace_bytes_from_op`, which takes grad mode).

    >>> onednn_rnn_workspace_bytes("lstm", 5, 3, 17, 33)
    57344
    """
    if mode != "lstm":
        raise ValueError(
            f"mode {mode!r}: aten.mkldnn_rnn_layer only runs LSTMs (mode 'lstm'); "
            "GRU and vanilla RNNs decompose into addmm and elementwise ops on CPU")
    if dtype_bytes not in _DTYPE_BYTES:
        raise ValueError(
            f"dtype_bytes must be 4 (float32) or 2 (bfloat16), got {dtype_bytes!r}")
    _check_positive(seq_len=seq_len, batch=batch, input_size=input_size,
                    hidden_size=hidden_size)
    steps = seq_len * batch  # T * B rows of per-step buffers
    states = 2 * (seq_len + 1) * batch  # (n_layer + 1) * (n_iter + 1) * B rows
    width = max(input_size, hidden_size)
    acc = ACCUMULATOR_BYTES
    pieces = (
        steps * good_leading_dim(_LSTM_GATES * hidden_size, dtype_bytes) * dtype_bytes,
        steps * good_leading_dim(hidden_size, dtype_bytes) * dtype_bytes,
        states * good_leading_dim(width, dtype_bytes) * dtype_bytes,
        states * hidden_size * dtype_bytes,
        states * good_leading_dim(width, acc) * acc,
        states * good_leading_dim(width, acc) * acc,
        states * hidden_size * acc,
    )
    return sum(_round_up(piece, PAGE_BYTES) for piece in pieces)


def layer_input_size(input_size: int, hidden_size: int, layer: int, bidirectional: bool) -> int:
    """Input width of layer `layer`: the module's input size, then H times the directions."""
    return input_size if layer == 0 else hidden_size * (2 if bidirectional else 1)


def lstm_workspace_bytes(seq_len: int, batch: int, input_size: int, hidden_size: int,
                         num_layers: int = 1, bidirectional: bool = False, *,
                         dtype_bytes: int = 4) -> tuple[int, ...]:
    """Workspace bytes of each `mkldnn_rnn_layer` call of one `nn.LSTM` forward with grad.

    One entry per call in dispatch order: layer 0 forward, layer 0 reverse
    (if bidirectional), layer 1 forward, ... Give `seq_len` and `batch`
    whatever `batch_first` is; an unbatched input has batch 1.
    """
    _check_positive(num_layers=num_layers)
    directions = 2 if bidirectional else 1
    return tuple(
        onednn_rnn_workspace_bytes(
            "lstm", seq_len, batch, layer_input_size(input_size, hidden_size, layer, bidirectional),
            hidden_size, dtype_bytes=dtype_bytes)
        for layer in range(num_layers) for _ in range(directions))


def workspace_bytes_from_op(input_shape: Sequence[int], mode: int, hidden_size: int,
                            dtype_bytes: int, grad_enabled: bool) -> int:
    """Workspace bytes of one `aten.mkldnn_rnn_layer.default` call, from its arguments.

    `input_shape` is argument 0's shape, always time-major (T, B, I) (the
    caller transposes `batch_first` inputs first); `mode` is argument 9,
    `hidden_size` argument 10; `dtype_bytes` is argument 0's element size;
    `grad_enabled` is `torch.is_grad_enabled()` when the op is dispatched
    (argument 15, `train`, does not decide). 0 when grad is disabled.
    """
    if not grad_enabled:
        return 0
    if len(input_shape) != 3:
        raise ValueError(
            f"mkldnn_rnn_layer input must be (T, B, I), got shape {tuple(input_shape)}")
    seq_len, batch, input_size = input_shape
    name = MODE_NAMES.get(mode, str(mode))
    return onednn_rnn_workspace_bytes(name, seq_len, batch, input_size, hidden_size,
                                      dtype_bytes=dtype_bytes)
