"""Recurrent layers run as one fused op: `aten.mkldnn_rnn_layer` and its backward.

On CPU, `nn.LSTM` runs each layer and direction as one `mkldnn_rnn_layer`
call (one call per layer and direction; `batch_first` inputs arrive already
transposed, and the count depends only on rows = time steps x batch). `nn.GRU`,
`nn.RNN` and LSTMs with `proj_size` decompose into `addmm`/`mm` and
elementwise ops, which their own rules count.

Notation: G gates (mode 2, LSTM: 4; mode 3, GRU: 3; modes 0/1, RNN relu/tanh:
1), H hidden size, I input size, rows = T*B (the sum of `batch_sizes` when
packed).

MACs, forward: rows * G*H*(I + H), the input and the hidden projections.
MACs, backward: twice the forward: the gradient with respect to the inputs
and the hidden state (dG W) and the one with respect to the weights (dG^T x).

FLOPs (exact), forward, per row: both projections as contractions with their
biases, 2*G*H*(I + H), plus G*H adds summing them (without biases
2*G*H*(I + H) - G*H), plus the cell, per hidden unit: LSTM 18 (3 sigmoids,
4 each; tanh(g) 1; c' = f*c + i*g: 3; h' = o*tanh(c'): 2), GRU 13 (r*hn: 1,
then its add is the n gate's sum; 2 sigmoids 8; tanh 1; h' = n + z*(h - n):
3), RNN 1 (tanh, or relu's compare). As in `activation`: a sigmoid is
1 / (1 + exp(-x)), 4; tanh is one elementary function; their derivatives
g*s*(1 - s) and g*(1 - t^2) are 3 each.

FLOPs (exact), backward: dX = dG W_ih, rows*(2*G*H*I - I); dh = dG W_hh,
rows*(2*G*H*H - H); dW_ih and dW_hh summed over all rows,
2*rows*G*H*(I + H) - G*H*(I + H); the bias gradient G*H*(rows - 1) (the
second bias has the same gradient); plus the cell's derivative per hidden
unit and row: LSTM 23 (dh sum 1, do 1, dc 5, di/dg/df/dc_prev 4, three
sigmoid' 9, tanh' 3), GRU 18 (dh sum 1, dn 2, dz 2, direct dh_prev 1 and its
sum 1, tanh' 3, dr/dhn 2, two sigmoid' 6), RNN tanh 4 (dh sum 1, tanh' 3),
RNN relu 2 (dh sum 1, a compare).
"""

from __future__ import annotations

from typing import Any

from memflops.flops.registry import OpCost, Shape, contraction, numel, register

RNN_RELU, RNN_TANH, LSTM, GRU = 0, 1, 2, 3

# Elementwise FLOPs of one cell per hidden unit and row: (forward, backward).
CELL_FLOPS = {LSTM: (18, 23), GRU: (13, 18), RNN_TANH: (1, 4), RNN_RELU: (1, 2)}


def rows(x: Shape) -> int:
    """Time steps times batch: every input row the layer reads."""
    return numel(x) // x[-1]


def forward_cost(x: Shape, w_ih: Shape, w_hh: Shape, mode: int, hidden: int,
                 has_biases: bool) -> OpCost:
    n = rows(x)
    gh = w_ih[0]  # G*H
    cost = contraction(n * numel(w_ih), n * gh, bias=has_biases)
    cost += contraction(n * numel(w_hh), n * gh, bias=has_biases)
    return cost + OpCost(flops=n * gh + n * hidden * CELL_FLOPS[mode][0])


def backward_cost(x: Shape, w_ih: Shape, w_hh: Shape, mode: int, hidden: int,
                  has_biases: bool) -> OpCost:
    n = rows(x)
    gh, size_in = w_ih
    cost = contraction(n * numel(w_ih), n * size_in)  # dX = dG W_ih
    cost += contraction(n * numel(w_hh), n * hidden)  # dh_prev = dG W_hh
    cost += contraction(n * numel(w_ih), numel(w_ih))  # dW_ih = sum over rows of dG^T x
    cost += contraction(n * numel(w_hh), numel(w_hh))  # dW_hh = sum over rows of dG^T h
    bias = gh * (n - 1) if has_biases else 0
    return cost + OpCost(flops=bias + n * hidden * CELL_FLOPS[mode][1])


@register(
    "aten.mkldnn_rnn_layer",
    formula="MACs = T*B*G*H*(I + H) (G = 4 LSTM, 3 GRU, 1 RNN); FLOPs = 2*T*B*G*H*(I + H)"
    " + T*B*G*H (sum of projections; -2*T*B*G*H without biases) + T*B*H*cell"
    " (LSTM 18, GRU 13, RNN 1)",
)
def mkldnn_rnn_layer(x: Shape, w_ih: Shape, w_hh: Shape, b_ih: Any, b_hh: Any, hx: Any,
                     cx: Any, reverse: bool, batch_sizes: Any, mode: int, hidden_size: int,
                     num_layers: int, has_biases: bool, *_: Any, out: Any) -> OpCost:
    return forward_cost(x, w_ih, w_hh, mode, hidden_size, has_biases)


@register(
    "aten.mkldnn_rnn_layer_backward",
    formula="MACs = 2 * T*B*G*H*(I + H) (inputs/hidden and weights); FLOPs = the four"
    " contractions + G*H*(T*B - 1) bias + T*B*H*cell' (LSTM 23, GRU 18, tanh 4, relu 2)",
)
def mkldnn_rnn_layer_backward(x: Shape, w_ih: Shape, w_hh: Shape, b_ih: Any, b_hh: Any,
                              hx: Any, cx: Any, output: Any, hy: Any, cy: Any,
                              grad_output: Any, grad_hy: Any, grad_cy: Any, reverse: bool,
                              mode: int, hidden_size: int, num_layers: int, has_biases: bool,
                              *_: Any, out: Any) -> OpCost:
    return backward_cost(x, w_ih, w_hh, mode, hidden_size, has_biases)
