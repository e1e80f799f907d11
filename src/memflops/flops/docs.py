"""Render docs/conventions.md from the rule registry.

    python -m memflops.flops.docs            # rewrite docs/conventions.md
    python -m memflops.flops.docs --check    # exit 1 if it is stale

Run from the repository root (or pass the path). The document states the
three conventions, then lists every registered rule, one table per family
(the module a rule lives in), with its formula in words. A rule contributes
MACs when its formula states them ("MACs = ..."): only matmul-like work
does. The output depends on the registry alone, so it is deterministic.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from memflops.conventions import Convention
from memflops.flops import rules
from memflops.flops.registry import Rule

DEFAULT_PATH = Path("docs/conventions.md")
COMMAND = "python -m memflops.flops.docs"

FLOATING_POINT = (
    "A FLOP is a floating-point operation: ops on integer and boolean tensors only (no"
    " floating-point or complex tensor read or written: index math, counters such as"
    " BatchNorm's `num_batches_tracked += 1`, masks) count 0 FLOPs and 0 MACs under every"
    " convention, rule or no rule, and are not listed in `uncounted_ops`; the"
    " multiply-accumulates a rule counts for such an op (an int8 matrix product,"
    " `torch._int_mm`) are stated in the report's `warnings`, apart from every total."
)
"""Applied once, where a dispatched call is priced (`capture.costing`), not in each rule."""

PRINCIPLES = (
    "Every add, subtract, multiply, divide, compare, logical operation and elementary"
    " function (`exp`, `log`, `sqrt`, `tanh`, `erf`, ...) is one FLOP; constants are free.",
    "A dot product of K terms is K multiplies and K - 1 adds (2K - 1); adding a bias"
    " restores the missing add (2K), the article's \"bias removes the -1\".",
    "Elementwise ops cost a fixed count per *output* element (broadcasting included).",
    "A reduction of n inputs into m outputs combines n - m pairs; per-output finishing"
    " work (the divide of a mean) costs m.",
    "A branch chosen by the data (relu, leaky_relu, elu) is counted at its costlier side.",
    "Backward ops that scatter gradients (pooling, embedding, upsampling, padding) cost one"
    " add per value scattered into the zeroed input gradient.",
    "Normalisation is counted per element as the article counts batch norm: per-channel"
    " or per-row finishing work and the affine gamma/beta are not counted.",
    "Data movement, creation and random number generation cost 0 FLOPs; each such op is"
    " registered with its reason. Views are skipped; an op on floating-point tensors with"
    " no rule is reported in `uncounted_ops`, never counted as 0.",
)

COMPOSITES = (
    ("`torch.matmul`, `@`", "`aten.mm` (2-D, or N-D folded to 2-D by free views),"
     " `aten.bmm` (batched), `aten.mv`, `aten.dot`"),
    ("`F.linear`, `nn.Linear`", "`aten.addmm` with a bias, `aten.mm` without; N-D inputs"
     " are viewed as 2-D"),
    ("`torch.einsum`", "`aten.bmm` (or `mm`) after free permutes and views"),
    ("`F.scaled_dot_product_attention`", "on CPU fake tensors the fused"
     " `aten._scaled_dot_product_flash_attention_for_cpu` (attention family); the math"
     " path (e.g. with dropout) is `aten.mul` (scale), `aten.bmm`, `aten._safe_softmax`,"
     " dropout ops and `aten.bmm`"),
    ("`nn.MultiheadAttention`", "input projections (`aten.addmm`/`aten.mm`), scaled"
     " dot-product attention and the output projection; the inference fast path is"
     " `aten._native_multi_head_attention`"),
    ("`nn.Dropout` (training)", "`aten.bernoulli_` (0), `aten.div_` (1 per element),"
     " `aten.mul` (1 per element); nothing is dispatched in eval mode"),
    ("`F.adaptive_avg_pool2d(x, 1)`", "`aten.mean` over H and W"),
    ("`F.max_pool1d`, `F.avg_pool1d`, `F.adaptive_*_pool1d`", "the 2-d op on an"
     " unsqueezed view"),
    ("`nn.InstanceNorm*d`", "`aten.native_batch_norm` on a (1, B*C, ...) view"),
    ("`nn.RMSNorm`, `F.rms_norm` (CPU)", "`aten.pow`, `aten.mean`, `aten.add_`,"
     " `aten.rsqrt`, `aten.mul`"),
    ("`F.relu6`", "`aten.hardtanh`"),
    ("`F.selu`", "`aten.elu` with its scale"),
    ("`F.normalize`", "`aten.linalg_vector_norm`, `aten.clamp_min`, `aten.div`"),
    ("`F.cross_entropy`", "`aten._log_softmax` and `aten.nll_loss_forward`"),
    ("`F.l1_loss`, `F.kl_div`", "elementwise ops (`sub`, `abs`, `xlogy`, ...) and"
     " `aten.mean` / `aten.sum`"),
)


def _cell(text: str) -> str:
    """Text for a markdown table cell: pipes escaped, and asterisks outside code spans."""
    parts = text.replace("|", "\\|").split("`")
    return "`".join(p if i % 2 else p.replace("*", "\\*") for i, p in enumerate(parts))


def contributes_macs(rule: Rule) -> bool:
    """Whether a rule counts multiply-accumulates: its formula states them."""
    return "MACs" in rule.formula


def _family_table(family: str, family_rules: Sequence[Rule]) -> list[str]:
    lines = [f"### {family}", "", "| ops | formula | MACs |", "| --- | --- | --- |"]
    for rule in family_rules:
        ops = ", ".join(f"`{op}`" for op in rule.ops)
        macs = "yes" if contributes_macs(rule) else "no"
        lines.append(f"| {ops} | {_cell(rule.formula)} | {macs} |")
    lines.append("")
    return lines


def render_conventions() -> str:
    """The whole of docs/conventions.md, from the registry."""
    by_family: dict[str, list[Rule]] = defaultdict(list)
    for rule in rules():
        by_family[rule.family].append(rule)
    op_count = sum(len(rule.ops) for family in by_family.values() for rule in family)

    lines = [
        "# FLOP conventions and per-operator rules",
        "",
        f"<!-- Generated from the rule registry by `{COMMAND}`; do not edit by hand. -->",
        "",
        f"This file is generated: after changing a rule, run `{COMMAND}` from the"
        " repository root (`tests/flops/test_docs.py` fails while it is stale).",
        "",
        "## Conventions",
        "",
        "Every rule returns two exact integers for one call of an ATen op: `macs`, the"
        " multiply-accumulates of matmul-like work, and `flops`, every arithmetic"
        " operation. A report states which convention it uses:",
        "",
    ]
    lines += [f"- {c.sentence}." for c in Convention]
    lines += ["", FLOATING_POINT]
    lines += ["", "## How the rules count", ""]
    lines += [f"- {p}" for p in PRINCIPLES]
    lines += [
        "",
        "## Rules by family",
        "",
        f"{op_count} ops in {len(by_family)} families. Ops are ATen overload packets:"
        " every overload of aten.add (.Tensor, .Scalar, .out) shares one rule; the"
        " in-place aten.add_ is a separate name, registered with the same rule.",
        "",
    ]
    for family in sorted(by_family):
        lines += _family_table(family, by_family[family])
    lines += [
        "## Composite ops counted through what they decompose into",
        "",
        "These calls never reach the dispatcher themselves; the ops they run do, and are"
        " counted by the rules above.",
        "",
        "| call | ops dispatched |",
        "| --- | --- |",
    ]
    lines += [f"| {_cell(call)} | {_cell(ops)} |" for call, ops in COMPOSITES]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=COMMAND, description="Write docs/conventions.md from the FLOP rule registry."
    )
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render_conventions()
    path: Path = args.path
    if args.check:
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            print(f"{path} is stale: run `{COMMAND}` from the repository root", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
