"""Record a chapter's headline numbers: glued into the text and written to the results file of *that run*.

Numbers in prose are never typed by hand: a chapter records each value with its recorder, ``rec(name, value, fmt,
description)``, and its markdown refers to the value with ``{glue:text}`\\`<chapter>.<name>\\``.

Every chapter starts with :func:`start_run`, which returns the chapter's :class:`Recorder` (the one way a chapter
records a value or its scorecard), starts its results file afresh and writes, under the key
``_run``, what produced it: the parameters, the model, its revision and a fingerprint of its head, the corpus
fingerprints, the code version, the date and (updated on every write) the seconds since the start. Where the file
goes: the folder in ``LOGLINEAR_RESULTS`` when it is set (``bookbuild`` sets it: the published book's
``_build/results/``, or a rerun's own folder), otherwise ``_build/reruns/<chapter>-<hash of the parameters>.json``
(the folder movable with ``LOGLINEAR_RERUNS``), so that a plain papermill rerun never touches the published book's
files. The chapter prints where its results go.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch
from IPython import get_ipython
from IPython.display import display
from myst_nb import glue

from . import cache
from .corpora import CORPORA, SPLITS, corpus_fingerprint
from .head import output_head
from .parameters import parameter_names
from .paths import BUILD_DIR, REPO_ROOT, RESULTS_DIR
from .uncertainty import Check, combine

RERUNS_DIR: Path = BUILD_DIR / "reruns"
RUN_KEY = "_run"
_CURRENT: dict[str, tuple[Path, float]] = {}  # chapter -> (results file of the run in progress, start time)


def _to_jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    return value


def results_path(chapter: str, results_dir: Path | None = None) -> Path:
    """The results file a chapter writes: of the run in progress (see :func:`start_run`), else in ``results_dir``,
    ``LOGLINEAR_RESULTS`` or the published ``_build/results/``."""
    if results_dir is None and chapter in _CURRENT:
        return _CURRENT[chapter][0]
    return Path(results_dir or os.environ.get("LOGLINEAR_RESULTS", RESULTS_DIR)) / f"{chapter}.json"


def code_version() -> str:
    """The git commit of the checkout (with ``+dirty`` when it has uncommitted changes) and a hash of ``utils``."""
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "utils").rglob("*.py")):
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        digest.update(path.read_bytes())
    try:
        commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        commit += "+dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "no git checkout"
    return f"{commit}; utils {digest.hexdigest()[:12]}"


def start_run(chapter: str, namespace: dict[str, Any], loaded: Any = None) -> Recorder:
    """Start ``chapter``'s results afresh and record what produces them; returns the chapter's recorder.

    Args:
        namespace: the chapter's globals; the values of its parameters-cell names are recorded.
        loaded: the model the chapter runs (a :class:`utils.models.LoadedModel`), or None for a chapter without one.
    """

    names = parameter_names(chapter)
    parameters = {name: _to_jsonable(namespace[name]) for name in names if name in namespace}
    key = cache.key_of(parameters)[:10]
    folder = os.environ.get("LOGLINEAR_RESULTS")
    reruns = Path(os.environ.get("LOGLINEAR_RERUNS", RERUNS_DIR))
    path = Path(folder) / f"{chapter}.json" if folder else reruns / f"{chapter}-{key}.json"
    run: dict[str, Any] = {
        "chapter": chapter,
        "parameters": parameters,
        "parameters_key": key,
        "code_version": code_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "corpora": {f"{name}_{split}": corpus_fingerprint(name, split) for name in CORPORA for split in SPLITS},
        "threads": torch.get_num_threads(),  # torch's threads: they change the last bits of threaded sums
        # the vector instructions torch's kernels run with (AVX2, AVX512, ...): they change the last bits too
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if loaded is not None:
        run["model"] = {"name": loaded.name, "identity": loaded.identity, "revision": loaded.revision,
                        "head_fingerprint": cache.fingerprint(output_head(loaded.model).E),
                        "device": str(loaded.compute.device), "precision": loaded.compute.precision,
                        "precision_reason": loaded.compute.reason}
    _CURRENT[chapter] = (path, time.perf_counter())
    _write(path, {RUN_KEY: run}, chapter)
    shown = path.resolve().relative_to(REPO_ROOT) if path.resolve().is_relative_to(REPO_ROOT) else path
    print(f"This run's results: {shown}")
    return Recorder(chapter, path)


def _write(path: Path, data: dict[str, Any], chapter: str) -> None:
    if chapter in _CURRENT and _CURRENT[chapter][0] == path and RUN_KEY in data:
        data[RUN_KEY]["seconds"] = round(time.perf_counter() - _CURRENT[chapter][1], 1)
    cache.write(path, lambda target: target.write_text(json.dumps(data, indent=2, sort_keys=True)))


def load_results(chapter: str, results_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """The recorded numbers of ``chapter`` (empty when the chapter has not run)."""
    path = results_path(chapter, results_dir)
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def format_value(value: Any, fmt: str | None) -> str:
    if fmt is None:
        return str(value)
    return format(value, fmt)


class Recorder:
    """A chapter's run, bound to its results file: ``rec(name, value, fmt, description)`` records one value (a
    chapter's package records a block by taking ``rec``, as :func:`utils.pruning.records.record_sweep` does),
    ``rec.scorecard(figure, checks)`` the chapter's claim. Made by :func:`start_run`.

    Attributes:
        chapter: the chapter's name (``01_encoding``); values are glued as ``<chapter>.<name>``.
        path: the results file of this run.
    """

    def __init__(self, chapter: str, path: Path) -> None:
        self.chapter = chapter
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Recorder({self.chapter!r}, {str(self.path)!r})"

    def __call__(self, name: str, value: Any, fmt: str | None = None, description: str = "", *,
                 display: bool = False) -> None:
        """Glue ``value`` as ``<chapter>.<name>`` and merge it into the run's results file.

        The glued object is the formatted string (so prose shows exactly what the JSON's ``text`` holds); the
        JSON keeps the raw value too. The file is rewritten atomically. ``display`` shows the value in the cell's
        output (on the page too); otherwise it shows only where the notebook runs (:func:`show_in_notebook`).
        Nothing is returned, so a chapter cell ending in a record displays nothing on the page.
        """
        if name == RUN_KEY:
            raise ValueError(f"name={name!r} is reserved for the run's provenance")
        text = format_value(value, fmt)
        glue(f"{self.chapter}.{name}", text, display=display)
        if not display:
            show_in_notebook(f"{self.chapter}.{name}", text, description)
        data = json.loads(self.path.read_text()) if self.path.exists() else {}
        data[name] = {"value": _to_jsonable(value), "text": text, "description": description}
        _write(self.path, data, self.chapter)

    def scorecard(self, figure: str, checks: list[Check]) -> None:
        """Record the chapter's scorecard entry for the front page.

        Args:
            figure: this book's figure for the claim, as a short text built from computed values.
            checks: the claim's checks, each a number with its interval over texts and a threshold
                (:class:`utils.uncertainty.Check`).

        Records ``scorecard_figure``, ``verdict`` (:func:`utils.uncertainty.combine` of the checks' verdicts, each
        from :func:`utils.uncertainty.decide`), ``verdict_mark`` (the verdict with its sign, for the front page's
        table), ``scorecard_short`` (each check's short name, number and interval: the front page's row),
        ``verdict_reason`` (each check with its number, interval, threshold and verdict) and ``checks`` (the same
        as data). Returns nothing, so a chapter cell ending in it shows no stray value.
        """
        if not checks:
            raise ValueError("checks must hold at least one check of the claim")
        verdict = combine([check.verdict for check in checks])
        self("scorecard_figure", figure, description="this book's figure for the chapter's claim")
        self("verdict", verdict, description="scorecard verdict")
        self("verdict_mark", f"{VERDICT_SIGNS[verdict]} {verdict}", description="the verdict with its sign")
        self("scorecard_short", short_checks(checks),
             description="each check's short name, number and interval (the front page's row)")
        self("verdict_reason", "; ".join(check.describe() for check in checks),
             description="each check: number, interval (its name says over what), threshold, verdict")
        self("checks", [{"name": c.name, "value": c.value, "low": c.interval.low, "high": c.interval.high,
                         "level": c.interval.level, "unit": c.interval.unit, "n_boot": c.interval.n_boot,
                         "threshold": c.threshold, "direction": c.direction, "verdict": c.verdict,
                         "fmt": c.fmt, "n_groups": c.interval.n_groups}
                        for c in checks], description="the checks behind the verdict")


#: metadata of the outputs shown only where a notebook is run (JupyterLab, the executed runs); the book's staging
#: (:func:`bookbuild.stage.stage`) drops them, because the book shows each figure where its ``{glue:figure}`` sits
LAB_ONLY = {"loglinear": {"lab_only": True}}


def show_in_notebook(key: str, text: str, description: str = "") -> None:
    """Show a recorded value in its cell's output where a notebook runs in a kernel (JupyterLab, the executed runs),
    marked :data:`LAB_ONLY`: the prose cites it as ``{glue:text}`` role, which a notebook front end does not render,
    so the number is shown beside the code that computed it; the book drops these outputs (it has the prose)."""
    if get_ipython() is None:  # a plain Python process: no notebook to show it in
        return
    line = f"{key} = {text}" + (f"  ({description})" if description else "")
    display({"text/plain": line}, raw=True, metadata=LAB_ONLY)


def glue_figure(name: str, figure: Any) -> None:
    """Glue a matplotlib figure under ``name`` for a captioned ``{glue:figure}`` directive, show it in the cell's
    output (so that a notebook front end displays it; marked :data:`LAB_ONLY`, so the book shows it once), then
    close it."""

    glue(name, figure, display=False)
    display(figure, metadata=LAB_ONLY)
    plt.close(figure)


def is_lab_only(output: dict[str, Any]) -> bool:
    """Whether a notebook output (a dict of nbformat's) is one of :func:`glue_figure`'s displays for front ends."""
    return bool(output.get("metadata", {}).get("loglinear", {}).get("lab_only"))


#: a sign per verdict, so that the front page's verdicts differ at a glance and not by colour alone
VERDICT_SIGNS = {"reproduced": "✔", "partly reproduced": "◐", "inconclusive": "?", "not reproduced": "✘"}


def short_check(check: Check) -> str:
    """``0.774 [0.763, 0.783] ✘``: the check's number, interval and verdict sign, in its own format where that is a
    percentage or an integer, else to three significant digits."""
    fmt = check.fmt if check.fmt.endswith(("%", "d")) or check.fmt in (",", ",.0f", ".0f") else ".3g"
    value = "nan" if math.isnan(check.value) else f"{check.value:{fmt}}"
    interval = "exact" if check.interval.unit == "none" else check.interval.text(fmt)
    return f"{value} {interval} {VERDICT_SIGNS[check.verdict]}"


def setting_of(name: str) -> str | None:
    """What tells apart checks that share a short name: the end of ``name`` after its last " at ", up to a comma
    (``"r = 20"`` of "...: median error at r = 20, chosen mask"); None when the name has no " at "."""
    tail = name.rsplit(" at ", 1)
    return tail[1].split(",")[0].strip() if len(tail) == 2 else None


def short_checks(checks: list[Check]) -> str:
    """The front page's row of a claim: each check under its short name (its name up to the first colon, without a
    parenthesis), checks that share one told apart by the end of their names after " at ":
    ``accurate 0.774 [0.763, 0.783] ✘; sparse 0.949 [0.943, 0.955] ?`` or
    ``held-out text: r = 20 0.48 [0.30, 0.94] ?, r = 1/20 1.42 [0.97, 1.93] ✘``."""
    groups: dict[str, list[Check]] = {}
    for check in checks:
        label = re.sub(r"\s*\([^)]*\)", "", check.name.split(":")[0]).strip()
        groups.setdefault(label, []).append(check)
    parts = []
    for label, members in groups.items():
        if len(members) == 1:
            parts.append(f"{label} {short_check(members[0])}")
            continue
        items = []
        for number, check in enumerate(members, start=1):
            tag = setting_of(check.name) or f"({number})"
            items.append(f"{tag} {short_check(check)}")
        parts.append(f"{label}: " + ", ".join(items))
    return "; ".join(parts)
