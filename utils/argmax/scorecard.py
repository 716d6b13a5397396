"""Chapter 5's headline checks: unargmaxable in theory, rarely in practice, and preventable.
"""
from __future__ import annotations

from typing import Any

from ..uncertainty import Check, exact
from ..validation import check_float
from .verdicts import Verdicts


def headline_checks(
    random_sweep: Any,
    verdicts: Verdicts,
    prevention: dict[str, Verdicts],
    *,
    theory_share: float = 0.1,
) -> list:
    """The scorecard's checks of "unargmaxable in theory, rarely in practice, and preventable".

    Every number here is a property of a head (random heads drawn from a seed, the real model's output layer), not
    of any text, so each check's interval is :func:`utils.uncertainty.exact`: there are no texts to resample. Each
    check's name says what it is exact for: the one random head drawn per setting, and all the real head's tokens
    or only the tested sample.

    Checks (:class:`utils.uncertainty.Check`):

    - in theory: the smallest share of unargmaxable classes among the random heads of the sweep's smallest
      dimension is at least ``theory_share``;
    - rarely in practice: the tested tokens of the real head include at most 0 unargmaxable ones ("duplicate"
      rows, which tie with their twin, are counted apart, as in :meth:`Verdicts.counts`);
    - prevention: after every remedy in ``prevention`` except the first (the head before any remedy), at most 0
      classes are unargmaxable (the largest count over the remedies).

    Args:
        random_sweep: the frame of :func:`utils.argmax.sweeps.random_model_sweep` (columns dim, share).
        verdicts: the verdicts of the real head (:func:`utils.argmax.verdicts.find_unargmaxable`).
        prevention: name -> verdicts, the head before any remedy first, then one entry per remedy.
        theory_share: threshold of the "in theory" check, a share in (0, 1).
    """

    theory_share = check_float("theory_share", theory_share, low=0.0, high=1.0, low_inclusive=False,
                               high_inclusive=False)
    if len(random_sweep) == 0:
        raise ValueError("random_sweep holds no random head")
    if len(prevention) < 2:
        raise ValueError(f"prevention must hold the head before any remedy and at least one remedy; got "
                         f"{list(prevention)}")
    low_dim = int(random_sweep["dim"].min())
    low_share = float(random_sweep.loc[random_sweep["dim"] == low_dim, "share"].min())
    n_unargmaxable = verdicts.count("unargmaxable")
    remedies = list(prevention)[1:]
    after = max(prevention[name].count("unargmaxable") for name in remedies)
    V = int(verdicts.meta.get("V", len(verdicts)))
    tested = (f"all {V:,} tokens of the real head (exact: a property of the head)" if len(verdicts) >= V else
              f"the {len(verdicts):,} tested of the real head's {V:,} (exact for that sample only)")
    return [
        Check(f"in theory: smallest share of unargmaxable classes of the random heads in d={low_dim} (exact for the "
              f"one head drawn per setting from the seed; no interval over other draws)", low_share,
              exact(low_share), theory_share, "above", ".1%"),
        Check(f"rarely in practice: unargmaxable tokens among {tested}", float(n_unargmaxable),
              exact(n_unargmaxable), 0.0, "below", ".0f"),
        Check(f"prevention: unargmaxable classes after the worse of {', '.join(remedies)} (exact for the one random "
              f"head drawn from the seed)", float(after), exact(after), 0.0, "below", ".0f"),
    ]
