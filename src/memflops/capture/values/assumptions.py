"""The report's warnings for values a capture assumed instead of reading them.

Fake tensors have no values; where a model's control flow read one anyway, the
capture answered it under an assumption, and the report says how often:

- checks for non-finite numbers read as "every number is finite"
  (`capture.values.finite`);
- values read that depend on inputs memflops filled, such as masks of ones
  (`capture.values.known`);
- top-k/argmax picks over computed values assumed balanced
  (`capture.values.picks`);
- flex attention block masks that could not be read, counted dense
  (`capture.hops`).

Every mode that captures (inference, train, generate) states them with the same
sentences, built here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Assumptions:
    """How many values a capture answered by assumption (the module docstring)."""

    finite_reads: int = 0
    filled_reads: int = 0
    assumed_picks: int = 0
    dense_flex: int = 0
    """Flex attention calls whose block mask memflops could not read, counted dense."""

    def __add__(self, other: Assumptions) -> Assumptions:
        return Assumptions(
            self.finite_reads + other.finite_reads,
            self.filled_reads + other.filled_reads,
            self.assumed_picks + other.assumed_picks,
            self.dense_flex + other.dense_flex,
        )

    def warnings(self) -> list[str]:
        """One sentence per kind of assumption made, none when nothing was assumed."""
        found = []
        if self.finite_reads:
            found.append(
                f"{self.finite_reads} check(s) for non-finite numbers (isnan, isinf, isfinite) "
                "read as 'every number is finite': fake tensors have no values"
            )
        if self.filled_reads:
            found.append(
                f"{self.filled_reads} value(s) read from inputs memflops filled (masks of ones: "
                "no padding; a vision tower's grid sizes): the model's control flow follows them"
            )
        if self.assumed_picks:
            found.append(
                f"{self.assumed_picks} top-k/argmax pick(s) over computed values steered the "
                "run, assumed balanced (row i picks indices (i*k+j) mod n, j < k): each row "
                "still picks k, so expert FLOPs total the real active path; their split among "
                "experts assumes balance"
            )
        if self.dense_flex:
            found.append(
                f"{self.dense_flex} flex_attention call(s) counted dense (every query-key "
                "score, an upper bound): their block mask's mask_mod reads tensors of the "
                "model whose values memflops does not know (padding, document ids; give "
                "them as inputs with values), so it cannot tell which blocks are skipped"
            )
        return found
