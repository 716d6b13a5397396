"""Training dynamics: when does the output embedding learn token frequency?

Cho et al. report (abstract) that in the pre-training dynamics of language models the output embedding captures
corpus token frequency in early steps, "even before an obvious convergence of parameters starts".  This package
trains small GPT-NeoX models (Pythia's architecture, untied output embedding) from scratch on the book's corpora,
saving checkpoints on a Pythia-like grid of steps, and probes every checkpoint; the same probe runs on real Pythia
checkpoints (``EleutherAI/pythia-*`` at revisions ``stepN``) where the hub or a local cache is reachable.

Modules, by job (import each name from its module; this file re-exports nothing):

- :mod:`utils.dynamics.parameters`: the checked parameters of chapter 4;
- :mod:`utils.dynamics.training`: model sizes and training configurations, the data schedule, the streamed loss,
  :func:`~utils.dynamics.training.train_run` and its checkpoints on disk;
- :mod:`utils.dynamics.checkpoints`: references to checkpoints (own folders, Pythia revisions), loading them,
  detecting identical ones;
- :mod:`utils.dynamics.probes`: the frequency probe and every per-checkpoint number,
  :func:`~utils.dynamics.probes.probe_checkpoints` and its cache;
- :mod:`utils.dynamics.control`: the seen-count control for the early signal and its cache;
- :mod:`utils.dynamics.scorecard`: milestones of a run and the scorecard's checks;
- :mod:`utils.dynamics.wording`: the wording decisions of chapter 4's text.

Figures are in :mod:`utils.figures.dynamics`.
"""
