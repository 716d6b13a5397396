"""Tokens a model can hardly or never say (chapter 6): under-trained tokens read off the output head, verified by
prompting, their geometry, and what training does to them.

Modules, by job (import each name from its module; this file re-exports nothing):

- :mod:`utils.undertrained.indicators`: the known-unused reference tokens, Magikarp's distance and the other
  indicators, precision at the top of each, agreement among them;
- :mod:`utils.undertrained.prompting`: the copy prompts and the verification of candidates by prompting;
- :mod:`utils.undertrained.geometry`: strict wins, duplicated rows and the head's Q8_0 grid;
- :mod:`utils.undertrained.training`: chapter 4's checkpoints, tokens training never showed, and whether training
  creates or removes unargmaxable tokens;
- :mod:`utils.undertrained.scorecard`: chapter 6's headline checks and the scorecard's figure;
- :mod:`utils.undertrained.records`: the blocks of numbers chapter 6 records with its recorder;
- :mod:`utils.undertrained.wording`: chapter 6's wording decisions;
- :mod:`utils.undertrained.parameters`: chapter 6's checked parameters.

Figures are in :mod:`utils.figures.undertrained`.
"""
