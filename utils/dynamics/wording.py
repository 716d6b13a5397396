"""Wording decisions of chapter 4's text, each from computed numbers (the shared ones are in
:mod:`utils.wording`)."""
from __future__ import annotations

import math
from typing import Any

from ..validation import check_float
from ..wording import ordering_wording


def encoding_fit_wording(min_r2: float) -> str:
    """How well chapter 1's encoding fits at *every* checkpoint, from the lowest held-out R² over checkpoints:
    "almost perfectly" (>= 0.99), "closely" (>= 0.9), "only partly" (>= 0.5) or "poorly"."""
    min_r2 = float(min_r2)
    if math.isnan(min_r2):
        raise ValueError("min_r2=nan: the encoding's R² is needed at every checkpoint")
    for bound, words in ((0.99, "almost perfectly"), (0.9, "closely"), (0.5, "only partly")):
        if min_r2 >= bound:
            return words
    return "poorly"


def encoding_evidence_wording(initial_r2: float, final_r2: float, tolerance: float = 0.05) -> str:
    """Whether the encoding's fit can be evidence of learning: not when the random initialisation already fits
    within ``tolerance`` of the trained model."""
    check_float("tolerance", tolerance, low=0.0)
    if initial_r2 >= final_r2 - tolerance:
        return (f"the random initialisation fits it as well as the trained model (R² {initial_r2:.3f} at step 0, "
                f"{final_r2:.3f} at the end), so on these models the encoding probe is no evidence of learning; "
                "the frequency probe, whose target does not come from the model, is")
    return (f"training raises its R² from {initial_r2:.3f} at step 0 to {final_r2:.3f} at the end, so on these "
            "models the encoding tracks learning, alongside the frequency probe, whose target does not come from "
            "the model")


def initial_probe_wording(r2: float, tolerance: float = 0.05) -> str:
    """What the frequency probe says of the random initialisation: about zero when ``|R²| <= tolerance``."""
    check_float("tolerance", tolerance, low=0.0)
    if abs(r2) <= tolerance:
        return f"scores about zero on the frequency probe (R² {r2:.2f}), as a random matrix should"
    return f"already scores R² {r2:.2f} on the frequency probe, further from zero than a random matrix should"


def unseen_cloud_wording(spread_initial: float, spread_final: float, shared_final: float, *,
                         spread_tolerance: float = 0.1, shared_threshold: float = 0.5) -> str:
    """How the rows of never-seen tokens move: "move as one rigid cloud" when their spread around their own mean
    changes by at most ``spread_tolerance`` (relative) while at least ``shared_threshold`` of their centred squared
    norm ends up one shared offset; otherwise what fails."""
    check_float("spread_tolerance", spread_tolerance, low=0.0)
    check_float("shared_threshold", shared_threshold, low=0.0, high=1.0)
    if not spread_initial > 0:
        raise ValueError(f"spread_initial={spread_initial} must be positive")
    rigid = abs(spread_final / spread_initial - 1.0) <= spread_tolerance
    shifted = shared_final >= shared_threshold
    if rigid and shifted:
        return "move as one rigid cloud"
    if rigid:
        return "keep their spread but are not displaced as one group"
    return "do not move as one rigid cloud: their spread changes"


def seen_control_wording(probe_r2: float, seen_r2: float, gain: Any) -> str:
    """The early signal against the exposure control at one checkpoint, in words.

    The counts of the batches seen so far are a sample estimate of the target itself, so they are stated as a
    reference (what those batches could teach at most), never as a control ``E`` must beat. The control is the
    exposure record (:func:`utils.dynamics.control.exposure_control`): ``gain`` is the
    :class:`~utils.uncertainty.Check` of what ``E`` adds to it, and its verdict (interval over held-out tokens
    against 0) decides the reading.

    Args:
        probe_r2, seen_r2: held-out R² of the probe of ``E`` and of the seen counts; gain: a ``Check``.
    """
    reference = ordering_wording(probe_r2, seen_r2, 0.02,
                                 higher="the output embedding predicts log frequency better than",
                                 lower="the output embedding predicts log frequency less well than",
                                 same="the output embedding predicts log frequency about as well as")
    interval = f"{gain.value:+.3f} {gain.interval.text('+.3f')} in held-out R² over tokens"
    if gain.verdict == "reproduced":
        reading = (f"it adds to the record of which tokens were targets and how many updates pulled each row "
                   f"({interval}), so the early signal is more than that record")
    elif gain.verdict == "not reproduced":
        reading = (f"it adds nothing to the record of which tokens were targets and how many updates pulled each row "
                   f"({interval}), so the early signal is no more than that record")
    else:
        reading = (f"whether it adds to the record of which tokens were targets and how many updates pulled each row "
                   f"is undetermined ({interval})")
    return (f"{reference} the counts of the batches seen so far (an estimate of the target itself, so a ceiling "
            f"rather than a control); {reading}")


def grid_steps_text(frame: Any, first_step: int | None) -> str:
    """The checkpoints between which a curve crossed for good: ``"256 and 512"``; the first checkpoint alone when it
    was already there, and ``"none (never reached)"`` for None.

    Args:
        frame: the probes of one run (``step`` and ``duplicate_of`` columns); first_step: a step of its distinct rows.
    """
    if first_step is None:
        return "none (never reached)"
    steps = frame.loc[frame["duplicate_of"] == "", "step"].tolist()
    index = steps.index(first_step)
    return f"{first_step}" if index == 0 else f"{steps[index - 1]} and {first_step}"
