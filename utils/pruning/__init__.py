"""Deleting output-embedding dimensions (Cho et al., section on sparsity): which to delete, and what it costs.

A head that keeps only the hidden dimensions ``keep`` (k of d) computes ``h[:, keep] @ E[:, keep].T + b``: the
deleted dimensions simply stop contributing to every logit.  A *criterion* orders the d dimensions from least to
most important (first = deleted first); :func:`utils.pruning.criteria.keep_columns` turns an order and a fraction
into the kept columns.

Modules, by job (import each name from its module; this file re-exports nothing):

- :mod:`utils.pruning.criteria`: the criteria (saliencies, dimension scores, deletion orders), how many dimensions a
  fraction deletes and which columns stay;
- :mod:`utils.pruning.sweep`: the streamed deletion sweep over cached hidden states, its positions and context
  groups, thresholds and largest safe fractions, the choice of criterion on training text, the two-halves yardstick;
- :mod:`utils.pruning.scorecard`: per-window sums, the bootstrap over held-out documents and the scorecard's
  :func:`~utils.pruning.scorecard.headline_checks`;
- :mod:`utils.pruning.heads`: pruned heads (columns zeroed, deleted coordinates replaced by their means);
- :mod:`utils.pruning.generation`: text sampled from real pruned models and its cache, MAUVE, text statistics;
- :mod:`utils.pruning.basis_control`: deleting coordinates against deleting directions of other bases;
- :mod:`utils.pruning.wording`: the wording decisions of chapter 3's text;
- :mod:`utils.pruning.parameters`: the checked parameters of chapter 3.

Figures are in :mod:`utils.figures.pruning`.
"""
