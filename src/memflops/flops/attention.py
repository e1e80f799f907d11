"""Scaled dot-product attention: every fused kernel PyTorch may dispatch to, forward
and backward.

Shapes: query (B, H, L, E), key (B, Hkv, S, E), value (B, Hkv, S, Ev). Kernels
`_flash_attention_*` and `_efficient_attention_*` take (B, L, H, E) instead,
and their varlen forms take packed sequences with cumulative offsets. When
the capture knows the offsets' values (`capture.costing.KNOWN_VALUES`) each
sequence counts at its own lengths, exactly; otherwise the lengths are data,
so each of the N sequences counts at the maximum lengths (max_q, max_k), an
upper bound (FlopCounterMode does the same on fake tensors). Jagged nested
tensors reach these kernels with their offsets (`capture.kernels.jagged_sdpa`).
Grouped-query
attention (Hkv < H) costs as H heads: each query head meets a whole key.

MACs, forward: B*H*L*S*E (scores Q K^T) + B*H*L*S*Ev (probabilities times V).
The full L x S score matrix is counted, causal or not: causal masking (and a
sliding window) is not subtracted, as the math backend computes the full
matrix and FlopCounterMode counts it; skipping masked entries is a kernel's
saving, not a property of the model.

MACs, backward: the fused kernels keep only the output and the row
log-sum-exp, so they recompute the scores: five products, Q K^T again,
dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q, that is
B*H*L*S*(3E + 2Ev), as FlopCounterMode's flash/efficient formula counts.

FLOPs (exact), per batch element and head, R = L rows of n = S scores:
  forward  = (2LSE - LS) + (2LSEv - LEv)   the two products (`contraction`)
           + LS                             the scale (one multiply per score)
           + LS   when an additive mask/bias is given (2*LS for ALiBi: slope
                  times distance, then the add)
           + R(n-1) + Rn + Rn + R(n-1) + Rn softmax over S: max (compares),
                  subtract max, exp, sum, divide
           + 2LS  when dropout p > 0 (P * mask * 1/(1-p), as `activation` counts
                  dropout; drawing the mask is random generation, 0)
  backward = 5 products as contractions: scores (2LSE - LS), dV (2LSEv - SEv),
                  dP (2LSEv - LS), dQ (2LSE - LE), dK (2LSE - SE)
           + LS (scale) + LS/2LS (mask/ALiBi, as forward)
           + 2LS  probabilities from the saved log-sum-exp (subtract, exp)
           + L(2Ev - 1)  D = rowsum(dO * O)
           + 2LS  dS = P * (dP - D)
           + LS   dS times the scale
           + 4LS  when dropout p > 0 (the dropped P again for dV, and dP back
                  through the mask: 2 each)
           + B*(H - Hkv)*S*(E + Ev) adds summing dK, dV over each query-head group.
The causal mask costs nothing (applied by index); no gradient of a bias is
computed beyond dS itself (the same matrix).

`aten._native_multi_head_attention`, the inference fast path of
`nn.MultiheadAttention`, is a whole layer (projections, attention, output
projection); its rule adds the projections to the forward above.

Flex attention (`torch.nn.attention.flex_attention`, a higher-order op) costs
as above over the score entries its kernel computes: the blocks its block
mask keeps, each block whole (a partial block applies `mask_mod` after
computing its scores), known when the capture can evaluate the `mask_mod`
(`capture.hops`); otherwise, every entry (dense, an upper bound the report
states). Its `score_mod` is user code run per score inside the kernel; its
arithmetic is not counted.

Every op named here exists in PyTorch 2.14 (tests check it); the names are
plain strings so this module imports without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from memflops.flops.registry import OpCost, Shape, contraction, numel, register


@dataclass(frozen=True)
class Geometry:
    """One attention call: N sequences of H query heads (Hkv key heads), L x S scores."""

    batch: int
    heads: int
    kv_heads: int
    q_len: int
    kv_len: int
    head_dim: int
    v_dim: int
    computed: int | None = None
    """Score entries a block-sparse kernel computes (flex attention's block mask); None:
    every entry."""

    @property
    def pairs(self) -> int:
        """Score entries computed: (batch, head, query, key) tuples, all unless `computed`."""
        if self.computed is not None:
            return self.computed
        return self.batch * self.heads * self.q_len * self.kv_len


def bhle(q: Shape, k: Shape, v: Shape) -> Geometry:
    """(B, H, L, E) layout, as `F.scaled_dot_product_attention` takes it."""
    return Geometry(q[0], q[1], k[1], q[2], k[2], q[3], v[3])


def blhe(q: Shape, k: Shape, v: Shape) -> Geometry:
    """(B, L, H, E) layout of `_flash_attention_*` and `_efficient_attention_*`."""
    return Geometry(q[0], q[2], k[2], q[1], k[1], q[3], v[3])


def packed(q: Shape, k: Shape, v: Shape, offsets: Shape, max_q: int | None,
           max_k: int | None) -> Geometry:
    """Varlen: (total, H, E) or (1, total, H, E) with N + 1 cumulative offsets.

    Each of the N sequences counts at (max_q, max_k) (the total when a kernel
    is not told the maximum): the lengths are data, so this is an upper bound.
    """
    q3, k3, v3 = q[-3:], k[-3:], v[-3:]
    n = offsets[0] - 1
    return Geometry(n, q3[1], k3[1], max_q or q3[0], max_k or k3[0], q3[2], v3[2])


def _layouts(q: Shape, k: Shape, v: Shape, offsets: Any, offsets_k: Any, max_q: Any,
             max_k: Any) -> list[Geometry]:
    """(B, L, H, E), or packed varlen sequences: each at its own lengths when the capture
    knows the offsets (`varlen_geometries`), else at the maximum lengths."""
    if offsets is not None:
        return varlen_geometries(q, k, v, offsets, offsets_k, max_q, max_k)
    return [blhe(q, k, v)]


def _forward_sum(geometries: list[Geometry], **kwargs: Any) -> OpCost:
    return sum((forward_cost(g, **kwargs) for g in geometries), OpCost())


def _backward_sum(geometries: list[Geometry], **kwargs: Any) -> OpCost:
    return sum((backward_cost(g, **kwargs) for g in geometries), OpCost())


def _softmax(rows: int, entries: int) -> int:
    """Softmax of `rows` rows holding `entries` in all (n each: entries = rows * n): max
    (n - 1 compares), subtract, exp, sum (n - 1 adds), divide: 5 * entries - 2 * rows."""
    return 5 * entries - 2 * rows


def _bias_cost(mask: bool, alibi: bool) -> int:
    """FLOPs per score of an additive mask (1) or ALiBi bias (2: slope * distance, add)."""
    return 2 if alibi else int(mask)


def forward_cost(g: Geometry, *, mask: bool = False, alibi: bool = False,
                 dropout: float = 0.0) -> OpCost:
    """Cost of one attention forward (see the module docstring)."""
    bh = g.batch * g.heads
    scores = contraction(g.pairs * g.head_dim, g.pairs)
    weighted = contraction(g.pairs * g.v_dim, bh * g.q_len * g.v_dim)
    extra = g.pairs * (1 + _bias_cost(mask, alibi)) + _softmax(bh * g.q_len, g.pairs)
    if dropout > 0:
        extra += 2 * g.pairs
    return scores + weighted + OpCost(flops=extra)


def backward_cost(g: Geometry, *, mask: bool = False, alibi: bool = False,
                  dropout: float = 0.0) -> OpCost:
    """Cost of one fused attention backward, recomputing the scores (see the module docstring)."""
    bh = g.batch * g.heads
    p, e, ev = g.pairs, g.head_dim, g.v_dim
    products = (
        contraction(p * e, p)                           # scores recomputed: Q K^T
        + contraction(p * ev, bh * g.kv_len * ev)       # dV = P^T dO
        + contraction(p * ev, p)                        # dP = dO V^T
        + contraction(p * e, bh * g.q_len * e)          # dQ = dS K
        + contraction(p * e, bh * g.kv_len * e)         # dK = dS^T Q
    )
    extra = p * (1 + _bias_cost(mask, alibi))  # scale and bias of the recomputed scores
    extra += 2 * p  # P = exp(scores - logsumexp)
    extra += bh * g.q_len * (2 * ev - 1)  # D = rowsum(dO * O)
    extra += 2 * p + p  # dS = P * (dP - D), then times the scale
    if dropout > 0:
        extra += 4 * p
    extra += g.batch * (g.heads - g.kv_heads) * g.kv_len * (e + ev)  # sum dK, dV over groups
    return products + OpCost(flops=extra)


def _mask(value: Any) -> bool:
    return isinstance(value, Shape)


_FORWARD = "MACs = B*H*L*S*(E + Ev) (full L x S matrix, causal not subtracted); FLOPs = " \
    "both products as contractions + LS scale + LS mask + softmax R*(5n-2) + 2LS dropout"
_BACKWARD = "MACs = B*H*L*S*(3E + 2Ev) (5 products: scores recomputed, dV, dP, dQ, dK); " \
    "FLOPs = the 5 contractions + scale/mask/exp of the recomputed scores + softmax " \
    "backward + 4LS dropout"
_OR_VARLEN = " or packed varlen sequences (jagged tensors' too), each at its own length when " \
    "the offsets are known, else every one at (max_q, max_k), an upper bound"
_FORWARD_BLHE = _FORWARD + "; (B, L, H, E)" + _OR_VARLEN
_BACKWARD_BLHE = _BACKWARD + "; (B, L, H, E)" + _OR_VARLEN
_FORWARD_PACKED = _FORWARD + "; (B, H, L, E)" + _OR_VARLEN
_BACKWARD_PACKED = _BACKWARD + "; (B, H, L, E)" + _OR_VARLEN


# --- (B, H, L, E) kernels behind F.scaled_dot_product_attention -------------


@register("aten._scaled_dot_product_flash_attention_for_cpu", formula=_FORWARD)
def sdpa_flash_cpu(q: Shape, k: Shape, v: Shape, dropout_p: float, is_causal: bool,
                   attn_mask: Shape | None, *_: Any, out: Any) -> OpCost:
    return forward_cost(bhle(q, k, v), mask=_mask(attn_mask), dropout=dropout_p)


@register("aten._scaled_dot_product_flash_attention_for_cpu_backward", formula=_BACKWARD)
def sdpa_flash_cpu_backward(grad_out: Shape, q: Shape, k: Shape, v: Shape, o: Shape,
                            lse: Shape, dropout_p: float, is_causal: bool,
                            attn_mask: Shape | None, *_: Any, out: Any) -> OpCost:
    return backward_cost(bhle(q, k, v), mask=_mask(attn_mask), dropout=dropout_p)


@register("aten._scaled_dot_product_flash_attention", formula=_FORWARD)
def sdpa_flash(q: Shape, k: Shape, v: Shape, *rest: Any, out: Any) -> OpCost:
    # The `.quantized` overload puts three descale tensors before dropout_p.
    dropout_p = rest[3] if len(rest) > 4 else rest[0]
    return forward_cost(bhle(q, k, v), dropout=dropout_p)


@register(
    "aten._scaled_dot_product_efficient_attention",
    "aten._scaled_dot_product_cudnn_attention",
    formula=_FORWARD,
)
def sdpa_efficient(q: Shape, k: Shape, v: Shape, attn_bias: Shape | None,
                   compute_log_sumexp: bool, dropout_p: float, *_: Any, out: Any) -> OpCost:
    return forward_cost(bhle(q, k, v), mask=_mask(attn_bias), dropout=dropout_p)


@register("aten._scaled_dot_product_fused_attention_overrideable", formula=_FORWARD)
def sdpa_overrideable(q: Shape, k: Shape, v: Shape, attn_bias: Shape | None,
                      dropout_p: float, *_: Any, out: Any) -> OpCost:
    return forward_cost(bhle(q, k, v), mask=_mask(attn_bias), dropout=dropout_p)


@register("aten._scaled_dot_product_flash_attention_backward", formula=_BACKWARD)
def sdpa_flash_backward(grad_out: Shape, q: Shape, k: Shape, v: Shape, o: Shape, lse: Shape,
                        cum_seq_q: Any, cum_seq_k: Any, max_q: int, max_k: int,
                        dropout_p: float, *_: Any, out: Any) -> OpCost:
    return backward_cost(bhle(q, k, v), dropout=dropout_p)


@register("aten._scaled_dot_product_efficient_attention_backward", formula=_BACKWARD)
def sdpa_efficient_backward(grad_out: Shape, q: Shape, k: Shape, v: Shape,
                            attn_bias: Shape | None, o: Shape, lse: Shape, seed: Any,
                            offset: Any, dropout_p: float, *_: Any, out: Any) -> OpCost:
    return backward_cost(bhle(q, k, v), mask=_mask(attn_bias), dropout=dropout_p)


@register("aten._scaled_dot_product_cudnn_attention_backward", formula=_BACKWARD)
def sdpa_cudnn_backward(grad_out: Shape, q: Shape, k: Shape, v: Shape, o: Shape, lse: Shape,
                        seed: Any, offset: Any, attn_bias: Shape | None, cum_seq_q: Any,
                        cum_seq_k: Any, max_q: int, max_k: int, dropout_p: float, *_: Any,
                        out: Any) -> OpCost:
    return backward_cost(bhle(q, k, v), mask=_mask(attn_bias), dropout=dropout_p)


@register(
    "aten._scaled_dot_product_fused_attention_overrideable_backward", formula=_BACKWARD
)
def sdpa_overrideable_backward(grad_out: Shape, q: Shape, k: Shape, v: Shape,
                               attn_bias: Shape | None, grad_input_mask: Any, o: Shape,
                               lse: Shape, cum_seq_q: Any, cum_seq_k: Any, max_q: int,
                               max_k: int, dropout_p: float, *_: Any, out: Any) -> OpCost:
    return backward_cost(bhle(q, k, v), mask=_mask(attn_bias), dropout=dropout_p)


# --- the kernels themselves: (B, L, H, E) or packed varlen ---------------------


@register("aten._flash_attention_forward", formula=_FORWARD_BLHE)
def flash_forward(q: Shape, k: Shape, v: Shape, cum_seq_q: Shape | None, cum_seq_k: Any,
                  max_q: int, max_k: int, dropout_p: float, *rest: Any, out: Any) -> OpCost:
    # rest[6] is alibi_slopes in the default overload (17 arguments), rest[9]
    # in `.quantized` (three descale tensors come first).
    alibi = rest[9] if len(rest) == 10 else rest[6] if len(rest) > 6 else None
    g = _layouts(q, k, v, cum_seq_q, cum_seq_k, max_q, max_k)
    return _forward_sum(g, alibi=_mask(alibi), dropout=dropout_p)


@register("aten._flash_attention_backward", formula=_BACKWARD_BLHE)
def flash_backward(grad_out: Shape, q: Shape, k: Shape, v: Shape, o: Shape, lse: Shape,
                   cum_seq_q: Shape | None, cum_seq_k: Any, max_q: int, max_k: int,
                   dropout_p: float, *_: Any, out: Any) -> OpCost:
    return _backward_sum(_layouts(q, k, v, cum_seq_q, cum_seq_k, max_q, max_k),
                         dropout=dropout_p)


@register("aten._efficient_attention_forward", formula=_FORWARD_BLHE)
def efficient_forward(q: Shape, k: Shape, v: Shape, bias: Shape | None,
                      cu_seqlens_q: Shape | None, cu_seqlens_k: Any, max_seqlen_q: int | None,
                      max_seqlen_k: int | None, dropout_p: float, *_: Any, out: Any) -> OpCost:
    g = _layouts(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k)
    return _forward_sum(g, mask=_mask(bias), dropout=dropout_p)


@register("aten._efficient_attention_backward", formula=_BACKWARD_BLHE)
def efficient_backward(grad_out: Shape, q: Shape, k: Shape, v: Shape, bias: Shape | None,
                       o: Shape, cu_seqlens_q: Shape | None, cu_seqlens_k: Any,
                       max_seqlen_q: int, max_seqlen_k: int, lse: Shape, dropout_p: float,
                       *_: Any, out: Any) -> OpCost:
    g = _layouts(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k)
    return _backward_sum(g, mask=_mask(bias), dropout=dropout_p)


def _cudnn_layouts(q: Shape, k: Shape, v: Shape, cum_seq_q: Any, cum_seq_k: Any,
                   max_q: int, max_k: int) -> list[Geometry]:
    """(B, H, L, E), or packed (total, H, E) with offsets (`varlen_geometries`)."""
    if cum_seq_q is not None and len(q) == 3:
        return varlen_geometries(q, k, v, cum_seq_q, cum_seq_k, max_q, max_k)
    return [bhle(q, k, v)]


@register("aten._cudnn_attention_forward", formula=_FORWARD_PACKED)
def cudnn_forward(q: Shape, k: Shape, v: Shape, attn_bias: Shape | None,
                  cum_seq_q: Shape | None, cum_seq_k: Any, max_q: int, max_k: int,
                  compute_log_sumexp: bool, dropout_p: float, *_: Any, out: Any) -> OpCost:
    g = _cudnn_layouts(q, k, v, cum_seq_q, cum_seq_k, max_q, max_k)
    return _forward_sum(g, mask=_mask(attn_bias), dropout=dropout_p)


@register("aten._cudnn_attention_backward", formula=_BACKWARD_PACKED)
def cudnn_backward(grad_out: Shape, q: Shape, k: Shape, v: Shape, o: Shape, lse: Shape,
                   seed: Any, offset: Any, attn_bias: Shape | None,
                   cum_seq_q: Shape | None, cum_seq_k: Any, max_q: int, max_k: int,
                   dropout_p: float, *_: Any, out: Any) -> OpCost:
    g = _cudnn_layouts(q, k, v, cum_seq_q, cum_seq_k, max_q, max_k)
    return _backward_sum(g, mask=_mask(attn_bias), dropout=dropout_p)


@register("aten._scaled_dot_product_attention_math_for_mps", formula=_FORWARD)
def sdpa_math_mps(q: Shape, k: Shape, v: Shape, attn_mask: Shape | None,
                  dropout_p: float, *_: Any, out: Any) -> OpCost:
    return forward_cost(bhle(q, k, v), mask=_mask(attn_mask), dropout=dropout_p)


# --- nn.MultiheadAttention's inference fast path --------------------------------


@register(
    "aten._native_multi_head_attention",
    formula="in projections (B*L + 2*B*S)*D^2 + attention B*L*S*2D + out projection B*L*D^2"
    " MACs (D = embed_dim); FLOPs = the projections as contractions (with their biases) +"
    " attention as above + B*L*S*H to average the weights over heads when returned averaged",
)
def native_multi_head_attention(query: Shape, key: Shape, value: Shape, embed_dim: int,
                                num_head: int, qkv_weight: Shape, qkv_bias: Shape | None,
                                proj_weight: Shape, proj_bias: Shape | None,
                                mask: Shape | None, need_weights: bool,
                                average_attn_weights: bool, *_: Any, out: Any) -> OpCost:
    """`nn.MultiheadAttention` in eval mode without grad: one op for the whole layer.

    query (B, L, D), key and value (B, S, D): projections of q, k and v by
    the (3D, D) in-projection, attention with H heads of D/H, and the (D, D)
    out-projection. A mask counts one add per score; returned weights
    averaged over the heads cost H - 1 adds and a divide per (query, key).
    """
    d = embed_dim
    rows_q, rows_kv = numel(query) // d, numel(key) // d
    batch = query[0] if len(query) == 3 else 1
    q_len, kv_len = rows_q // batch, rows_kv // batch
    biased = qkv_bias is not None
    cost = contraction(rows_q * d * d, rows_q * d, bias=biased)  # q projection
    cost += contraction(2 * rows_kv * d * d, 2 * rows_kv * d, bias=biased)  # k and v
    g = Geometry(batch, num_head, num_head, q_len, kv_len, d // num_head, d // num_head)
    cost += forward_cost(g, mask=mask is not None)
    cost += contraction(rows_q * d * d, rows_q * d, bias=proj_bias is not None)
    if need_weights and average_attn_weights:
        cost += OpCost(flops=g.pairs)  # (H - 1) adds + 1 divide per (b, query, key)
    return cost


# --- flex attention (higher-order ops) -------------------------------------------

_FLEX = "over the score entries the kernel computes (the block mask's kept blocks, each " \
    "whole; every L x S entry when the mask is unknown); score_mod's own arithmetic not counted"


@register("higher_order.flex_attention", formula="MACs = entries*(E + Ev); FLOPs as the "
          "SDPA forward (no mask term) " + _FLEX)
def flex_attention(q: Shape, k: Shape, v: Shape, score_mod: Any, computed: int | None,
                   *_: Any, out: Any) -> OpCost:
    """`computed`: the block mask's score entries, put in its place by the capture."""
    return forward_cost(replace(bhle(q, k, v), computed=computed))


@register("higher_order.flex_attention_backward", formula="MACs = entries*(3E + 2Ev); FLOPs "
          "as the fused SDPA backward " + _FLEX)
def flex_attention_backward(q: Shape, k: Shape, v: Shape, o: Shape, lse: Shape,
                            grad_out: Shape, grad_lse: Any, fw_graph: Any, joint_graph: Any,
                            computed: int | None, *_: Any, out: Any) -> OpCost:
    return backward_cost(replace(bhle(q, k, v), computed=computed))


# --- variable-length attention (torch.nn.attention.varlen) -----------------------


def varlen_geometries(q: Shape, k: Shape, v: Shape, cu_q: Any, cu_k: Any, max_q: int,
                      max_k: int) -> list[Geometry]:
    """Packed (total, H, E) sequences: one geometry per sequence when the cumulative
    offsets are known (lists of ints, put there by the capture), else N sequences at
    (max_q, max_k), an upper bound (`packed`)."""
    if isinstance(cu_q, list):
        offsets_k = cu_k if isinstance(cu_k, list) else cu_q
        return [
            Geometry(1, q[-2], k[-2], q_end - q_start, k_end - k_start, q[-1], v[-1])
            for q_start, q_end, k_start, k_end in zip(cu_q, cu_q[1:], offsets_k, offsets_k[1:],
                                                      strict=False)
        ]
    return [packed(q, k, v, cu_q, max_q, max_k)]


_VARLEN = "; packed (total, H, E) sequences: each at its own length when the offsets are " \
    "known, else every one at (max_q, max_k), an upper bound"


@register("torch_attn._varlen_attn", formula=_FORWARD + _VARLEN)
def varlen_attn(q: Shape, k: Shape, v: Shape, cu_q: Any, cu_k: Any, max_q: int, max_k: int,
                *_: Any, out: Any) -> OpCost:
    return _forward_sum(varlen_geometries(q, k, v, cu_q, cu_k, max_q, max_k))


@register("torch_attn._varlen_attn_out", formula=_FORWARD + _VARLEN + "; into `out`")
def varlen_attn_out(into: Shape, q: Shape, k: Shape, v: Shape, cu_q: Any, cu_k: Any,
                    max_q: int, max_k: int, *_: Any, out: Any) -> OpCost:
    return varlen_attn(q, k, v, cu_q, cu_k, max_q, max_k, out=out)


@register("torch_attn._varlen_attn_backward", formula=_BACKWARD + _VARLEN)
def varlen_attn_backward(grad_out: Shape, q: Shape, k: Shape, v: Shape, o: Shape, lse: Shape,
                         cu_q: Any, cu_k: Any, max_q: int, max_k: int, *_: Any,
                         out: Any) -> OpCost:
    return _backward_sum(varlen_geometries(q, k, v, cu_q, cu_k, max_q, max_k))
