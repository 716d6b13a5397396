"""Which tokens can never be predicted? Argmaxability of a softmax layer (Grivas, Bogoychev & Lopez, ACL 2022).

A token ``c`` of an output layer with embedding ``E`` (V×d, rows ``e_c``) and bias ``b`` (V,) is *argmaxable* when
some input ``x`` makes it the strict argmax of ``E @ x + b``; otherwise it is *unargmaxable* and the model can never
predict it by greedy decoding, whatever the context.  The paper writes the layer ``W`` (V×d, rows ``w_c``) and ``b``;
this package writes ``E`` and ``e_c``, as the rest of the book.

Modules, by job (import each function from its module; this file re-exports nothing):

- :mod:`utils.argmax.prepared`: input checks, the head reduced to its distinct rows, the certified strict-argmax
  check of a point;
- :mod:`utils.argmax.braid`: the fast one-sided test (braid reflect), batched over many tokens;
- :mod:`utils.argmax.lp`: the exact test (Chebyshev-centre linear program, cutting planes);
- :mod:`utils.argmax.verdicts`: :func:`~utils.argmax.verdicts.find_unargmaxable` (both tests on a whole head), the
  :class:`~utils.argmax.verdicts.Verdicts` and their on-disk cache, reading them (token tables, closest calls);
- :mod:`utils.argmax.hull`: the convex-hull brute force in low dimension, the oracle the chapter and the tests
  compare every verdict with;
- :mod:`utils.argmax.prevention`: two remedies, this book's choice (a bias, unit-norm rows);
- :mod:`utils.argmax.sweeps`: random heads and pruned heads;
- :mod:`utils.argmax.scorecard`: chapter 5's headline checks;
- :mod:`utils.argmax.wording`: chapter 5's wording decisions;
- :mod:`utils.argmax.parameters`: the checked parameters of chapter 5.

Figures are in :mod:`utils.figures.argmax`.
"""
