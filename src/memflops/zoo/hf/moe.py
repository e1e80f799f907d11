"""Sparse mixture-of-experts blocks made shape-only for analysis.

A Hugging Face sparse-MoE block (a router `gate` and a set of `experts`, as
in Mixtral) sends each token to the `top_k` experts its router picks. It
finds which tokens went where with data-dependent ops (`nonzero`,
`torch.where` on the routing mask), which fake tensors cannot run.
`make_shape_only` swaps each such block for an `EqualShareMoe` that holds
the very same `gate` and `experts` modules (same parameters, same names)
and computes:

1. the router as the block does: logits, softmax, the top-k weights;
2. every token copied once per chosen expert: `tokens * top_k` pairs;
3. expert `i` run on an equal share of the pairs: `pairs // num_experts`
   each, the first `pairs % num_experts` experts one more;
4. each pair weighted by its routing weight, each token's `top_k` results
   summed.

Routing assumption: balanced routing. It leaves the total unchanged: every
token runs through exactly `top_k` experts whatever the router picks, so the
experts' FLOPs together are those of the real active path; only their split
among experts (and the size of each expert's temporaries) assumes balance.
`MoeInfo.warnings` (passed on as `Loaded.warnings`) says so.

A block that returns more than the wrapper does (`representable`: Ernie 4.5 VL's
text and vision expert blocks return flattened outputs and router logits) runs as it
is: its router's picks are assumed balanced by the capture (`capture.values.picks`).

Blocks whose experts are stored as stacked tensors and run as one grouped
GEMM over all token-expert pairs (transformers 5's `grouped_mm` experts:
sort the pairs by expert, `histc` the group sizes, `torch._grouped_mm`) have
fixed shapes whatever the router picks, so they run as they are; only their
parameters per token are worked out here (`native_experts`).

Parameters per token: a token runs through every dense parameter and
`top_k` of the `num_experts` experts of each block, so
`active = total - sum over blocks of (num_experts - top_k) * params_per_expert`.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from memflops.params import count_params
from memflops.zoo.even_split import shares


def _is_fused(experts: nn.Module) -> bool:
    """Experts stored as 3D tensors `gate_up_proj (E, 2I, H)` and `down_proj (E, H, I)`."""
    gate_up = getattr(experts, "gate_up_proj", None)
    down = getattr(experts, "down_proj", None)
    return (
        isinstance(gate_up, torch.Tensor)
        and isinstance(down, torch.Tensor)
        and gate_up.dim() == 3
        and down.dim() == 3
        and not getattr(experts, "has_bias", False)
        and not getattr(experts, "is_transposed", False)
    )


def _num_experts(experts: nn.Module) -> int:
    if isinstance(experts, nn.ModuleList):
        return len(experts)
    return int(experts.get_parameter("gate_up_proj").shape[0])


def _params_per_expert(experts: nn.Module) -> int:
    if isinstance(experts, nn.ModuleList):
        return sum(p.numel() for p in experts[0].parameters())
    gate_up, down = experts.get_parameter("gate_up_proj"), experts.get_parameter("down_proj")
    return int(gate_up[0].numel() + down[0].numel())


def is_sparse_moe(module: nn.Module) -> bool:
    """A block with a router `gate` and `experts` (and nothing else) that routes top-k."""
    children = dict(module.named_children())
    return set(children) == {"gate", "experts"} and isinstance(getattr(module, "top_k", None), int)


def returns_tuple(block: nn.Module) -> bool:
    """Whether `block`'s own `forward` returns a tuple (a `return a, b` in its source).

    A block whose router is a module returns its hidden states alone, and `EqualShareMoe`
    does too; one that returns a tuple beside them (Ernie 4.5 VL's modality experts return
    their outputs flattened, with the router logits) is one it cannot stand in for. A
    `forward` whose source cannot be read is taken to return what the wrapper does."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(type(block).forward)))
    except (OSError, TypeError, SyntaxError):
        return False
    function = tree.body[0]
    pending: list[ast.AST] = list(getattr(function, "body", []))
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue  # a nested function's returns are not the block's
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple):
            return True
        pending += list(ast.iter_child_nodes(node))
    return False


def representable(block: nn.Module) -> bool:
    """Whether `EqualShareMoe` returns what `block` does: `(hidden_states, router_logits)`
    for an `nn.Linear` gate, the hidden states alone for a router module."""
    return isinstance(block.get_submodule("gate"), nn.Linear) or not returns_tuple(block)


def _gate_buffers(block: nn.Module, gate: nn.Module) -> tuple[str, ...]:
    """Buffers of `block` its router's `forward` takes after the hidden states, by name
    (MiniMax-M2's block hands its router `e_score_correction_bias`)."""
    try:
        params = list(inspect.signature(gate.forward).parameters.values())[1:]
    except (TypeError, ValueError):
        return ()
    buffers = dict(block.named_buffers(recurse=False))
    required = [p.name for p in params if p.default is inspect.Parameter.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return tuple(required) if all(n in buffers for n in required) else ()


class EqualShareMoe(nn.Module):
    """A sparse-MoE block that routes shapes, not tokens (see the module docstring).

    Holds the original `gate` and `experts`. A `gate` that is an `nn.Linear`
    (transformers 4.x) gives logits, and the block returns
    `(hidden_states, router_logits)` as those blocks do; a router module
    (transformers 5.x) returns `(logits, weights, indices)` itself, and the
    block returns the hidden states alone.
    """

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.gate = block.get_submodule("gate")
        self.experts = block.get_submodule("experts")
        self.top_k = int(getattr(block, "top_k", 0))
        self.num_experts = _num_experts(self.experts)
        self.jitter_noise = float(getattr(block, "jitter_noise", 0.0) or 0.0)
        self.norm_topk_prob = bool(getattr(block, "norm_topk_prob", True))
        self.returns_router_logits = isinstance(self.gate, nn.Linear)
        self.gate_buffers = _gate_buffers(block, self.gate)
        for name in self.gate_buffers:
            persistent = name not in block._non_persistent_buffers_set
            self.register_buffer(name, block.get_buffer(name), persistent=persistent)

    def _route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(router logits, top-k weights (tokens, top_k))."""
        out = self.gate(x, *(self.get_buffer(n) for n in self.gate_buffers))
        if isinstance(out, tuple):
            return out[0], out[1]
        probs = F.softmax(out, dim=-1, dtype=torch.float)
        weights, _ = torch.topk(probs, self.top_k, dim=-1)
        if self.norm_topk_prob:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        return out, weights.to(x.dtype)

    def _expert(self, i: int, x: torch.Tensor, fused: tuple[Any, Any] | None) -> torch.Tensor:
        experts: Any = self.experts
        if fused is None:
            out: torch.Tensor = experts[i](x)
            return out
        gate_up, down = fused
        h = F.linear(x, gate_up[i])  # (n, 2I)
        if hasattr(experts, "_apply_gate"):
            h = experts._apply_gate(h)
        else:
            g, u = h.chunk(2, dim=-1)
            h = experts.act_fn(g) * u  # (n, I)
        return F.linear(h, down[i])  # (n, H)

    def forward(self, hidden_states: torch.Tensor) -> Any:
        shape = hidden_states.shape
        hidden = shape[-1]
        if self.training and self.jitter_noise > 0:
            noise = torch.empty_like(hidden_states).uniform_(
                1.0 - self.jitter_noise, 1.0 + self.jitter_noise
            )
            hidden_states = hidden_states * noise
        x = hidden_states.reshape(-1, hidden)  # (T, H)
        tokens = x.shape[0]
        logits, weights = self._route(x)  # (T, E), (T, k)
        pairs = x.unsqueeze(1).expand(tokens, self.top_k, hidden).reshape(-1, hidden)  # (T*k, H)
        fused = None
        if not isinstance(self.experts, nn.ModuleList):
            experts: Any = self.experts
            fused = (experts.gate_up_proj.unbind(0), experts.down_proj.unbind(0))
        chunks = pairs.split_with_sizes(shares(tokens * self.top_k, self.num_experts))
        outs = torch.cat([self._expert(i, c, fused) for i, c in enumerate(chunks)])  # (T*k, H)
        weighted = outs * weights.reshape(-1, 1)
        out = weighted.view(tokens, self.top_k, hidden).sum(dim=1).to(hidden_states.dtype)
        out = out.reshape(shape)
        return (out, logits) if self.returns_router_logits else out


@dataclass(frozen=True)
class MoeInfo:
    """What `make_shape_only` changed, and the parameter counts it implies."""

    blocks: int
    """Sparse-MoE blocks replaced."""
    total_params: int
    active_params: int
    """Parameters one token runs through: total - inactive experts."""
    warnings: tuple[str, ...]


def _top_k(model: nn.Module, block: nn.Module) -> int | None:
    """Experts per token of a block: its own `top_k`, its router's, or the config's."""
    for owner in (block, getattr(block, "gate", None), getattr(block, "router", None),
                  getattr(model, "config", None)):
        for attr in ("top_k", "num_experts_per_tok"):
            k = getattr(owner, attr, None)
            if isinstance(k, int) and not isinstance(k, bool) and k > 0:
                return k
    return None


def native_experts(model: nn.Module) -> list[tuple[str, int, int, int]]:
    """(path, num_experts, top_k, params per expert) of each experts module of `model`
    that stacks its experts' weights along dim 0 and is left to run as it is."""
    found = []
    for name, module in model.named_modules():
        experts = getattr(module, "num_experts", None)
        params = list(module.parameters(recurse=False))
        if (not isinstance(experts, int) or experts < 2 or not params
                or any(p.dim() < 2 or p.shape[0] != experts for p in params)
                or not any(p.dim() == 3 for p in params)):
            continue
        block = model.get_submodule(name.rpartition(".")[0])  # "" is the model itself
        if isinstance(block, EqualShareMoe):
            continue  # routed by shape already
        k = _top_k(model, block)
        if k is None or k >= experts:
            continue
        found.append((name, experts, k, sum(p.numel() for p in params) // experts))
    return found


def make_shape_only(model: nn.Module) -> MoeInfo | None:
    """Swap every sparse-MoE block of `model` for an `EqualShareMoe`, and count the
    active parameters of both those and native grouped experts; None if it has neither."""
    found = [(name, m) for name, m in model.named_modules() if is_sparse_moe(m)]
    # a block the wrapper cannot stand in for runs as it is: its experts' picks are
    # assumed balanced (`capture.values.picks`), grouped experts are counted below
    found = [(name, m) for name, m in found if representable(m)]
    warnings: list[str] = []
    replaced = 0
    inactive = 0
    layouts: set[tuple[int, int]] = set()
    for name, block in found:
        experts = block.get_submodule("experts")
        if not (isinstance(experts, nn.ModuleList) or _is_fused(experts)):
            warnings.append(
                f"mixture-of-experts block {name} ({type(block).__name__}) has an expert layout "
                "memflops cannot route by shape; left as it is (its forward may need real data)"
            )
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        shaped = EqualShareMoe(block)
        setattr(parent, child, shaped)
        replaced += 1
        inactive += (shaped.num_experts - shaped.top_k) * _params_per_expert(experts)
        layouts.add((shaped.num_experts, shaped.top_k))
    native = native_experts(model)  # after the swaps: experts left to run as they are
    if not found and not native:
        return None
    for _, experts_count, k, per_expert in native:
        inactive += (experts_count - k) * per_expert
    if native:
        routing = ", ".join(sorted({f"top-{k} of {e}" for _, e, k, _ in native}))
        warnings.append(
            f"mixture of experts: {len(native)} grouped-experts block(s) ({routing}) run as the "
            "model does, one grouped GEMM over the tokens x top_k pairs: their FLOPs hold for "
            "any routing; active parameters per token count top_k experts per block"
        )
    total = count_params(model).total
    if replaced:
        routing = ", ".join(f"top-{k} of {e}" for e, k in sorted(layouts))
        warnings.append(
            f"mixture of experts: {replaced} sparse block(s) ({routing}) analysed with balanced "
            "routing: each expert gets an equal share of the tokens x top_k pairs; the total is "
            "that of any routing, the per-expert split assumes balance"
        )
    return MoeInfo(replaced, total, total - inactive, tuple(warnings))
