"""The log-linear encoding ``-log alpha_w ≈ A · E_w + B`` (Cho et al.) and chapter 1's analyses of it.

Modules, by job (import each name from its module; this file re-exports nothing):

- :mod:`utils.encoding.fit`: the fit core every chapter shares (token split, least squares, refitters, the fit of a
  pass, token counts, dimensions by weight);
- :mod:`utils.encoding.accuracy`: token-level intervals of the fit, fits by position groups, the worst-fitted tokens;
- :mod:`utils.encoding.sparsity`: refits on the top dimensions of ``|A|``, the lasso path;
- :mod:`utils.encoding.dispersion`: what makes the encoding accurate (statistics of groups of positions, their rank
  correlation with R², the condition check);
- :mod:`utils.encoding.transfer`: the fit carried to other corpora;
- :mod:`utils.encoding.output_space`: the fit on restricted output spaces;
- :mod:`utils.encoding.basis_control`: is the encoding's sparsity a property of the model's basis;
- :mod:`utils.encoding.scorecard`: chapter 1's headline checks;
- :mod:`utils.encoding.wording`: chapter 1's wording decisions;
- :mod:`utils.encoding.parameters`: chapter 1's checked parameters.

Figures are in :mod:`utils.figures.encoding`; bases of the embedding space (shared with chapter 3) in
:mod:`utils.basis`.
"""
