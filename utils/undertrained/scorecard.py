"""Chapter 6's headline checks and the scorecard's figure.

Every check says what its interval is over: the closeness lift over tokens (a bootstrap of the prompted top list and
the random controls), the tokens that cannot win strictly over what the head's Q8_0 rounding may have merged, and
the tokens that training made unargmaxable over the sample of tokens tested (an exact binomial bound:
:func:`share_bound`; with no hit, the rule of three).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scipy import stats

from ..uncertainty import Check, Interval, exact
from ..validation import check_float, check_int, check_positive_int
from .prompting import Prompting

if TYPE_CHECKING:
    pass


def share_bound(k: int, n: int, level: float = 0.95) -> Interval:
    """The exact binomial (Clopper-Pearson) bounds of a share seen ``k`` times in ``n`` sampled tokens, each bound
    one-sided at ``level``: -> Interval with unit "sampled token". With ``k = 0`` the upper bound is
    ``1 - (1 - level) ** (1 / n)``, about ``3 / n`` at 95% (the rule of three)."""
    n = check_positive_int("n", n)
    k = check_int("k", k, minimum=0, maximum=n)
    level = check_float("level", level, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    low = 0.0 if k == 0 else float(stats.beta.ppf(1 - level, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(level, k + 1, n - k))
    return Interval(low, high, level, 0, "sampled token")


def rule_of_three(n: int) -> float:
    """3 / n: the rule-of-three approximation of the 95% upper bound of a share never seen in ``n`` samples."""
    return 3.0 / check_positive_int("n", n)


def headline_checks(lift: float, lift_interval: Any, n_unargmaxable: int, n_duplicate: int, *,
                    quantised: bool = False, changes: dict[str, dict[str, int]] | None = None) -> list:
    """The chapter's checks (:class:`utils.uncertainty.Check`), each saying what its interval is over:

    - the closeness lift above 0 (interval over tokens: the top list and the random controls resampled);
    - the verified under-trained tokens that cannot win strictly (unargmaxable or duplicate rows) at most 0: exact for
      a float head; for a ``quantised`` head the interval runs from none to all of the duplicates being rounding
      ties of the Q8_0 storage;
    - with chapter 4's models (``changes``: size -> created, tested, V), the share of sampled tokens that training
      made unargmaxable at most 0, with the exact binomial bound over the sampled tokens (:func:`share_bound`)."""
    n_unargmaxable = check_int("n_unargmaxable", n_unargmaxable, minimum=0)
    n_duplicate = check_int("n_duplicate", n_duplicate, minimum=0)
    n_cannot_win = n_unargmaxable + n_duplicate
    if quantised and n_duplicate:
        cannot_win = ("cannot win strictly: verified under-trained tokens of the de-quantised head that are "
                      "unargmaxable or have a duplicate row (interval: from none to all of the duplicates being Q8_0 "
                      "rounding ties)")
        interval = Interval(float(n_unargmaxable), float(n_cannot_win), 1.0, 0, "rounding")
    else:
        cannot_win = ("cannot win strictly: verified under-trained tokens that are unargmaxable or have a duplicate "
                      "row (exact: a property of the head)")
        interval = exact(n_cannot_win)
    checks = [
        Check("closeness to the unused mean: precision of its top list minus the random base rate (interval over "
              "tokens: the top list and the random controls resampled)", lift, lift_interval, 0.0, "above", ".2f"),
        Check(cannot_win, float(n_cannot_win), interval, 0.0, "below", ".0f"),
    ]
    if changes:
        created, tested, V = worst_training_change(changes)
        checks.append(Check(
            f"made unargmaxable by training: share of chapter 4's tokens ({tested:,} sampled of {V:,}; interval: "
            f"exact binomial bounds over the sampled tokens, 95% one-sided, the rule of three when none)",
            created / tested, share_bound(created, tested), 0.0, "below", ".2%"))
    return checks


def scorecard_figure(model: str, prompting: Prompting, n_unargmaxable: int, n_duplicate: int) -> str:
    """The chapter's figure for the scorecard, in words, from the prompting and the verdicts of its candidates."""
    n_verified = int(prompting.hits(prompting.candidates).sum())
    return (f"{n_verified} of {len(prompting.candidates)} candidates of {model} under-trained "
            f"(random tokens: {prompting.hits(prompting.control).mean():.0%}); of those, "
            f"{n_unargmaxable} unargmaxable, {n_duplicate} duplicate rows")


def worst_training_change(changes: dict[str, dict[str, int]]) -> tuple[int, int, int]:
    """(created, tested, V) of the size whose share of tokens made unargmaxable is largest (the first on ties);
    ``changes``: size -> :func:`utils.undertrained.training.created_removed` (with "V")."""
    if not changes:
        raise ValueError("changes must hold at least one size")
    size = max(changes, key=lambda s: changes[s]["created"] / changes[s]["tested"])
    return changes[size]["created"], changes[size]["tested"], changes[size]["V"]
