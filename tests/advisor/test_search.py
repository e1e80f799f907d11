"""The budget search: cheapest first, one change per group, every answer analysed whole
(savings do not add), and the closest combination when nothing fits."""

from __future__ import annotations

from memflops.advisor.advice import Measured
from memflops.advisor.search import Candidate, cheapest_fit

BASE = 100


def _m(peak: int) -> Measured:
    return Measured(params=1, flops_forward=1, flops_step=1, flops_recompute=0,
                    macs_forward=1, peak=peak, activations=0)


def _c(name: str, group: str, peak: int, *, preserves: bool = False, rewrites: bool = False,
       flops: int = 0) -> Candidate:
    return Candidate(name, group, preserves, rewrites, peak - BASE, flops, _m(peak))


class Analyses:
    """The peak of each combination, as an analysis would give it; records what was asked."""

    def __init__(self, peaks: dict[frozenset[str], int]) -> None:
        self.peaks = peaks
        self.asked: list[tuple[str, ...]] = []

    def __call__(self, names: tuple[str, ...]) -> Measured | None:
        self.asked.append(names)
        return _m(self.peaks[frozenset(names)])


def test_fits_as_it_is() -> None:
    fit = cheapest_fit(_m(BASE), 100, [_c("a", "a", 50)], Analyses({}))
    assert fit.fits and fit.changes == () and fit.note == "the step fits as it is"


def test_function_preserving_first_even_when_it_recomputes() -> None:
    # ckpt keeps the function (and recomputes), bf16 changes numerics: ckpt alone fits.
    candidates = [_c("bf16", "precision", 40), _c("ckpt", "ckpt", 60, preserves=True, flops=9)]
    fit = cheapest_fit(_m(BASE), 60, candidates, Analyses({}))
    assert fit.fits and fit.changes == ("ckpt",)


def test_a_recipe_change_before_an_architecture_rewrite() -> None:
    candidates = [_c("dw", "conv", 30, rewrites=True), _c("bf16", "precision", 55)]
    fit = cheapest_fit(_m(BASE), 60, candidates, Analyses({}))
    assert fit.changes == ("bf16",)


def test_a_combination_is_judged_by_its_own_analysis_not_the_sum() -> None:
    # Summed, ckpt + bf16 would save 40 + 30 = 70 (peak 30); analysed together the peak is 65,
    # over the budget of 50, so the search goes on to the next combination.
    candidates = [_c("ckpt", "ckpt", 60, preserves=True), _c("bf16", "precision", 70),
                  _c("sgd", "optimizer", 75)]
    analyses = Analyses({frozenset({"ckpt", "bf16"}): 65, frozenset({"ckpt", "sgd"}): 70,
                         frozenset({"bf16", "sgd"}): 60, frozenset({"ckpt", "bf16", "sgd"}): 45})
    fit = cheapest_fit(_m(BASE), 50, candidates, analyses)
    assert fit.fits and fit.changes == ("ckpt", "bf16", "sgd")
    assert fit.measured is not None and fit.measured.peak == 45
    assert analyses.asked[-1] == ("ckpt", "bf16", "sgd")
    assert ("ckpt", "bf16") in [names for names, _ in fit.tried]


def test_one_change_per_group() -> None:
    candidates = [_c("sgd", "optimizer", 60), _c("adam8bit", "optimizer", 55)]
    analyses = Analyses({})
    fit = cheapest_fit(_m(BASE), 10, candidates, analyses)
    assert analyses.asked == []  # no pair of one group is ever analysed
    assert not fit.fits and fit.changes == ("adam8bit",)


def test_nothing_fits_shows_the_closest_analysed() -> None:
    candidates = [_c("ckpt", "ckpt", 60, preserves=True), _c("bf16", "precision", 70)]
    analyses = Analyses({frozenset({"ckpt", "bf16"}): 42})
    fit = cheapest_fit(_m(BASE), 20, candidates, analyses)
    assert not fit.fits and fit.changes == ("ckpt", "bf16")
    assert fit.measured is not None and fit.measured.peak == 42
    assert fit.note.startswith("nothing fits")


def test_no_change_saves_anything() -> None:
    fit = cheapest_fit(_m(BASE), 20, [_c("a", "a", 120)], Analyses({}))
    assert not fit.fits and fit.measured is None
    assert fit.note.startswith("no change the search may combine lowers the peak")


def test_a_combination_that_cannot_be_analysed_is_passed_over() -> None:
    candidates = [_c("ckpt", "ckpt", 60, preserves=True), _c("bf16", "precision", 70),
                  _c("sgd", "optimizer", 75)]

    def analyse(names: tuple[str, ...]) -> Measured | None:
        return None if names == ("ckpt", "bf16") else _m(40)

    fit = cheapest_fit(_m(BASE), 50, candidates, analyse)
    assert fit.fits and fit.changes == ("ckpt", "sgd")
    assert [names for names, _ in fit.tried] == [("ckpt", "sgd")]
