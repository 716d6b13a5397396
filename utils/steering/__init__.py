"""Steering a token's averaged probability by editing its row of the output embedding (Cho et al., Section 5).

If ``-log alpha_w ≈ A · E_w + B``, the edit ``E_w' = E_w - log(r) · u`` with any direction ``u`` such that
``A · u = 1`` moves the *predicted* ``-log alpha_w`` by ``-log r``, i.e. multiplies the predicted ``alpha_w`` by
``r``.  The paper's direction is ``u = Ω A^{-1}``, which we read as ``u_i = 1 / (k A_i)`` on the ``k`` dimensions of
largest ``|A_i|`` and 0 elsewhere (our reading, not the paper's text).  What an edit *achieves* is measured without
running the model, from per-position log-normalisers of cached hidden states.

Modules, by job (import each function from its module; this file re-exports nothing):

- :mod:`utils.steering.edits`: the edits (mask, minimal-norm, logit bias), the edited head, argument checks;
- :mod:`utils.steering.measure`: the per-position base statistics and their disk cache, the closed-form shortcut
  (:func:`measure.steering_sweep`), side effects on the other tokens, summaries of a sweep;
- :mod:`utils.steering.nulls`: null edits with the same predicted shift, the comparison and its verdicts;
- :mod:`utils.steering.scorecard`: the token sample, the choice of k, per-document sums and the scorecard's checks
  (:func:`scorecard.headline_checks`);
- :mod:`utils.steering.forward`: cross-checks and generation with the real model;
- :mod:`utils.steering.experiments`: few-shot fits of A, side effects of an edit;
- :mod:`utils.steering.tables`: the tables of chapter 2's sections;
- :mod:`utils.steering.wording`: chapter 2's wording decisions;
- :mod:`utils.steering.parameters`: the checked parameters of chapter 2.

Figures are in :mod:`utils.figures.steering`.
"""
