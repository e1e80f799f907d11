"""The article's three ways to cut convolution FLOPs, applied to every eligible
`nn.Conv2d` with its output shape kept (each conv becomes an `nn.Sequential` of two):

- `conv-5x5-as-3x3`: a 5x5 conv (stride 1) as two 3x3 convs, Cin -> M -> Cout with
  M = min(Cin, Cout), the padding split between them. Per output point 9*M*(Cin + Cout)
  multiply-adds instead of 25*Cin*Cout: 18/25 when Cin = Cout.
- `conv-nxn-as-1xn-nx1`: an n x n conv (n >= 3) as 1 x n then n x 1, Cin -> M -> Cout,
  stride and padding split by axis: n*M*(Cin + Cout) per output point (at stride 1)
  instead of n^2*Cin*Cout.
- `conv-depthwise-separable`: a k x k conv (k >= 2) as a depthwise k x k conv (Cin
  groups, same stride, padding and dilation) then a pointwise 1 x 1: k^2*Cin + Cin*Cout
  per output point instead of k^2*Cin*Cout.

Eligible: groups 1, dilation 1 (the first two), zero padding given as numbers, square
kernels, and fewer multiply-adds per output point than the original (with M the smaller
channel count this always holds for the first two, 9*M*(Cin + Cout) <= 18*Cin*Cout <
25*Cin*Cout; the depthwise form needs Cout >= 2). No activation is put between the two
convs: the factorised conv is still linear, but it cannot hold every function the original
can, so the model must be retrained.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from memflops.advisor.advice import ArticleClaim
from memflops.advisor.changes import Applied, NotApplicable, Step, change

Rewrite = Callable[[nn.Conv2d], nn.Sequential | None]


def _like(conv: nn.Conv2d, cin: int, cout: int, kernel: tuple[int, int],
          stride: tuple[int, int], padding: tuple[int, int], *, groups: int = 1,
          dilation: tuple[int, int] = (1, 1), bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, dilation=dilation,
                     groups=groups, bias=bias, device=conv.weight.device,
                     dtype=conv.weight.dtype)


def _plain(conv: nn.Conv2d) -> bool:
    return (conv.groups == 1 and _padding(conv) is not None
            and conv.padding_mode == "zeros" and conv.kernel_size[0] == conv.kernel_size[1])


def _padding(conv: nn.Conv2d) -> tuple[int, int] | None:
    """The conv's padding as numbers; None for "same"/"valid"."""
    padding = conv.padding
    if isinstance(padding, str):
        return None
    return int(padding[0]), int(padding[1])


def five_as_two_threes(conv: nn.Conv2d) -> nn.Sequential | None:
    if not _plain(conv) or conv.kernel_size != (5, 5) or conv.stride != (1, 1) or \
            conv.dilation != (1, 1):
        return None
    ph, pw = _padding(conv) or (0, 0)
    first = (ph // 2, pw // 2)
    second = (ph - first[0], pw - first[1])
    # Output side: (H + 2p - 5) + 1 = (H + 2p1 - 3 + 1) + 2p2 - 3 + 1 with p1 + p2 = p.
    cin, cout = conv.in_channels, conv.out_channels
    mid = min(cin, cout)
    if 9 * mid * (cin + cout) >= 25 * cin * cout:
        return None
    return nn.Sequential(
        _like(conv, cin, mid, (3, 3), (1, 1), first),
        _like(conv, mid, cout, (3, 3), (1, 1), second, bias=conv.bias is not None),
    )


def one_by_n_then_n_by_one(conv: nn.Conv2d) -> nn.Sequential | None:
    n = conv.kernel_size[0]
    if not _plain(conv) or n < 3 or conv.dilation != (1, 1):
        return None
    ph, pw = _padding(conv) or (0, 0)
    sh, sw = conv.stride
    cin, cout = conv.in_channels, conv.out_channels
    mid = min(cin, cout)
    if n * mid * (cin + cout) >= n * n * cin * cout:
        return None
    # 1 x n acts on the width only (its stride and padding), n x 1 on the height only.
    return nn.Sequential(
        _like(conv, cin, mid, (1, n), (1, sw), (0, pw)),
        _like(conv, mid, cout, (n, 1), (sh, 1), (ph, 0), bias=conv.bias is not None),
    )


def depthwise_separable(conv: nn.Conv2d) -> nn.Sequential | None:
    k = conv.kernel_size[0]
    if not _plain(conv) or k < 2 or conv.in_channels < 2:
        return None
    cin, cout = conv.in_channels, conv.out_channels
    if k * k * cin + cin * cout >= k * k * cin * cout:
        return None
    return nn.Sequential(
        _like(conv, cin, cin, (k, k), (conv.stride[0], conv.stride[1]),
              _padding(conv) or (0, 0), groups=cin,
              dilation=(conv.dilation[0], conv.dilation[1])),
        _like(conv, cin, cout, (1, 1), (1, 1), (0, 0), bias=conv.bias is not None),
    )


def rewrite_convs(step: Step, rewrite: Rewrite, what: str) -> Applied:
    """Replace every conv `rewrite` accepts; not applicable when it accepts none."""
    replaced = []
    for path, module in list(step.module.named_modules()):
        if isinstance(module, nn.Conv2d) and path:
            new = rewrite(module)
            if new is not None:
                new.train(module.training)
                step.module.set_submodule(path, new)
                replaced.append(path)
    if not replaced:
        raise NotApplicable(f"no {what}")
    return Applied(step, tuple(replaced), f"{len(replaced)} convolutions rewritten")


@change("conv-5x5-as-3x3", "5x5 convolutions as two 3x3", kind="flops",
        preserves_function=False, architecture=True, group="conv-rewrite",
        article_claim=ArticleClaim("two 3x3 kernels for one 5x5: 18/25 of the MACs "
                                   "(Cin = Cout)", "macs_forward", None))
def conv_5x5(step: Step) -> Applied:
    return rewrite_convs(step, five_as_two_threes,
                         "5x5 Conv2d with stride 1, groups 1, dilation 1, zero padding, that "
                         "two 3x3 would make cheaper")


@change("conv-nxn-as-1xn-nx1", "n x n convolutions as 1 x n then n x 1", kind="flops",
        preserves_function=False, architecture=True, group="conv-rewrite",
        article_claim=ArticleClaim("n x n as 1 x n + n x 1: 2n instead of n^2 per output "
                                   "point (Cin = Cout)", "macs_forward", None))
def conv_nxn(step: Step) -> Applied:
    return rewrite_convs(step, one_by_n_then_n_by_one,
                         "square n x n Conv2d (n >= 3) with groups 1, dilation 1, zero "
                         "padding, that 1 x n + n x 1 would make cheaper")


@change("conv-depthwise-separable", "convolutions as depthwise-separable (k x k dw + 1 x 1)",
        kind="flops", preserves_function=False, architecture=True, group="conv-rewrite",
        article_claim=ArticleClaim("depthwise then pointwise: k^2*Cin + Cin*Cout instead of "
                                   "k^2*Cin*Cout per output point", "macs_forward", None))
def conv_depthwise(step: Step) -> Applied:
    return rewrite_convs(step, depthwise_separable,
                         "square k x k Conv2d (k >= 2) with groups 1 and zero padding, that "
                         "depthwise + pointwise would make cheaper")
