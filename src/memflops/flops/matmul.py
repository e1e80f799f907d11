"""Matrix products: mm, addmm, bmm, baddbmm and their fused forms.

`torch.matmul`, `F.linear`, `nn.Linear` and `torch.einsum` are composite in
PyTorch: they reach the dispatcher as the ops below (plus free views), so
these rules count them. A product of (M, K) by (K, N) is M*N dot products
of length K: M*N*K MACs and M*N*(2K - 1) FLOPs; adding a bias removes the
-1 (the article's FC rule `B*(2*Fin - 1)*Fout`).
"""

from __future__ import annotations

from typing import Any

from memflops.flops.registry import OpCost, Shape, contraction, numel, register


def _scaled(out_elements: int, alpha: float, beta: float | None) -> int:
    """Extra multiplies of `beta * bias + alpha * (a @ b)` beyond a plain biased product."""
    extra = 0 if alpha == 1 else out_elements
    if beta is not None and beta not in (0, 1):
        extra += out_elements
    return extra


@register("aten.mm", formula="(M,K)@(K,N): MACs = M*N*K; FLOPs = M*N*(2K-1)")
def mm(a: Shape, b: Shape, *_: Any, out: Shape) -> OpCost:
    return contraction(a[0] * a[1] * b[1], a[0] * b[1])


@register(
    "aten._int_mm",
    formula="int8 (M,K)@(K,N) into int32: M*N*K multiply-accumulates on integers, stated in"
    " the report's warnings; 0 FLOPs, as every op on integer tensors only",
)
def int_mm(a: Shape, b: Shape, *_: Any, out: Shape) -> OpCost:
    # mm's count; the capture keeps only its MACs, as integer MACs (registry.integer_cost)
    return mm(a, b, out=out)


@register(
    "aten.addmm",
    formula="beta*bias + alpha*(M,K)@(K,N): MACs = M*N*K; FLOPs = 2*M*N*K"
    " (+M*N for alpha != 1, +M*N for beta not in {0, 1}; beta = 0 drops the bias: -M*N)",
)
def addmm(bias: Shape, a: Shape, b: Shape, beta: float = 1, alpha: float = 1, *,
          out: Shape) -> OpCost:
    outputs = a[0] * b[1]
    cost = contraction(a[0] * a[1] * b[1], outputs, bias=beta != 0)
    return cost + OpCost(flops=_scaled(outputs, alpha, beta))


@register("aten.bmm", formula="(B,M,K)@(B,K,N): MACs = B*M*N*K; FLOPs = B*M*N*(2K-1)")
def bmm(a: Shape, b: Shape, *_: Any, out: Shape) -> OpCost:
    return contraction(a[0] * a[1] * a[2] * b[2], numel(out))


@register(
    "aten.baddbmm",
    formula="beta*bias + alpha*(B,M,K)@(B,K,N): MACs = B*M*N*K; FLOPs = 2*B*M*N*K"
    " (+B*M*N per non-unit alpha/beta; beta = 0 drops the bias)",
)
def baddbmm(bias: Shape, a: Shape, b: Shape, beta: float = 1, alpha: float = 1, *,
            out: Shape) -> OpCost:
    outputs = numel(out)
    cost = contraction(a[0] * a[1] * a[2] * b[2], outputs, bias=beta != 0)
    return cost + OpCost(flops=_scaled(outputs, alpha, beta))


@register("aten.dot", "aten.vdot", formula="(K)·(K): MACs = K; FLOPs = 2K-1")
def dot(a: Shape, b: Shape, *_: Any, out: Shape) -> OpCost:
    return contraction(a[0], 1)


@register("aten.mv", formula="(M,K)@(K): MACs = M*K; FLOPs = M*(2K-1)")
def mv(a: Shape, b: Shape, *_: Any, out: Shape) -> OpCost:
    return contraction(a[0] * a[1], a[0])


@register("aten.addmv", formula="bias + (M,K)@(K): MACs = M*K; FLOPs = 2*M*K")
def addmv(bias: Shape, a: Shape, b: Shape, beta: float = 1, alpha: float = 1, *,
          out: Shape) -> OpCost:
    return contraction(a[0] * a[1], a[0], bias=beta != 0) + OpCost(
        flops=_scaled(a[0], alpha, beta)
    )


@register(
    "aten._grouped_mm",
    formula="grouped GEMM (mixture-of-experts experts): (M,K)x(G,K,N) or (G,M,K)x(K,N): "
    "MACs = M*N*K; (G,M,K)x(G,K,N): MACs = G*M*N*K; (M,K)x(K,N) with K split in G groups "
    "(a weight gradient): MACs = M*N*K; FLOPs = 2*MACs - outputs. Assumes `offs` routes every "
    "row and no group is empty, as in a balanced mixture of experts",
)
def grouped_mm(a: Shape, b: Shape, *_: Any, out: Shape) -> OpCost:
    if len(a) == 2 and len(b) == 2:
        return contraction(a[0] * a[1] * b[1], numel(out))
    return contraction(numel(out) * a[-1], numel(out))


@register(
    "aten.linalg_solve_triangular",
    formula="solve A X = B (or X A = B) for triangular A (n,n), per right-hand side of n: "
    "substitution does n(n-1)/2 multiply-subtracts and n divides: MACs = n(n-1)/2, "
    "FLOPs = n^2 (n(n-1) without the divides when unitriangular); times batch * rhs",
)
def solve_triangular(a: Shape, b: Shape, upper: bool = False, left: bool = True,
                     unitriangular: bool = False, *_: Any, out: Shape) -> OpCost:
    n = a[-1]
    systems = numel(out) // n if n else 0  # right-hand sides, over the batch
    macs = systems * (n * (n - 1) // 2)
    return OpCost(macs=macs, flops=2 * macs + (0 if unitriangular else systems * n))


def _scaling(outputs: int, bias: Shape | None, scale_result: Shape | None = None) -> OpCost:
    """What a scaled (FP8) product adds to each of its outputs: the accumulator times the
    scale of `a` and the scale of `b` (2 multiplies), plus the bias (1 add), times the
    output scale when it has one (1 multiply)."""
    per_output = 2 + (bias is not None) + (scale_result is not None)
    return OpCost(flops=per_output * outputs)


@register(
    "aten._scaled_mm",
    formula="FP8 (M,K)@(K,N) accumulated in higher precision, then scaled: out = scale_a * "
    "scale_b * (a@b) (+ bias) (* scale_result): MACs = M*N*K; FLOPs = M*N*(2K-1) + 2*M*N "
    "(+M*N for a bias, +M*N for scale_result)",
)
def scaled_mm(a: Shape, b: Shape, scale_a: Shape, scale_b: Shape, bias: Shape | None = None,
              scale_result: Shape | None = None, *_: Any, out: Shape) -> OpCost:
    outputs = a[0] * b[1]
    return contraction(a[0] * a[1] * b[1], outputs) + _scaling(outputs, bias, scale_result)


@register(
    "aten._scaled_mm_v2",
    formula="FP8/FP4 (M,K)@(K,N) with per-recipe scales (lists): as aten._scaled_mm without "
    "scale_result: MACs = M*N*K; FLOPs = M*N*(2K-1) + 2*M*N (+M*N for a bias)",
)
def scaled_mm_v2(a: Shape, b: Shape, scale_a: Any, recipe_a: Any, swizzle_a: Any,
                 scale_b: Any, recipe_b: Any, swizzle_b: Any, bias: Shape | None = None,
                 *_: Any, out: Shape) -> OpCost:
    outputs = numel(out)
    return contraction(outputs * a[-1], outputs) + _scaling(outputs, bias)


@register(
    "aten._scaled_grouped_mm",
    formula="FP8 grouped GEMM (mixture-of-experts experts), scaled: aten._grouped_mm's MACs; "
    "FLOPs = 2*MACs - outputs + 2*outputs (+outputs for a bias, +outputs for scale_result)",
)
def scaled_grouped_mm(a: Shape, b: Shape, scale_a: Shape, scale_b: Shape,
                      offs: Shape | None = None, bias: Shape | None = None,
                      scale_result: Shape | None = None, *_: Any, out: Shape) -> OpCost:
    return grouped_mm(a, b, out=out) + _scaling(numel(out), bias, scale_result)


@register(
    "aten._scaled_grouped_mm_v2",
    formula="FP8/FP4 grouped GEMM with per-recipe scales: as aten._scaled_grouped_mm "
    "without scale_result",
)
def scaled_grouped_mm_v2(a: Shape, b: Shape, scale_a: Any, recipe_a: Any, swizzle_a: Any,
                         scale_b: Any, recipe_b: Any, swizzle_b: Any,
                         offs: Shape | None = None, bias: Shape | None = None, *_: Any,
                         out: Shape) -> OpCost:
    return grouped_mm(a, b, out=out) + _scaling(numel(out), bias)
