"""The rerun pages: the headline checks rerun over sampling seeds, window lengths and the body's precision (the
robustness page, ``book/99_robustness``) and over models (the models page, ``book/98_models``), each run an execution
of the template ``book/headlines.py`` (through :func:`bookbuild.execute.rerun_grid`) with its own results file.

Modules, by job (import each name from its module; this file re-exports nothing):

- :mod:`utils.reruns.parameters`: the checked parameters of the two pages and of the template;
- :mod:`utils.reruns.headlines`: what one run of the template computes and records;
- :mod:`utils.reruns.grids`: the models to compare and the grid of runs over them;
- :mod:`utils.reruns.spread`: the robustness page's tables (every check of every run, their spread);
- :mod:`utils.reruns.models`: the models page's table;
- :mod:`utils.reruns.wording`: the pages' wording decisions.

Figures are in :mod:`utils.figures.reruns`.
"""
