"""Every chapter executes under papermill on tiny parameters, the book builds from those runs, and every page of the
built book renders offline in headless Chromium (title, images, captions, typeset math, links, no outside host).

The chapters are executed once and the book is built once per session (``tiny_book``), for both the build test and
the browser test. The screenshots of the browser test are saved in the built book's ``_screenshots/`` folder; the test
prints where.
"""
from __future__ import annotations

import ast
import base64
import html
import json
import os
import shutil
from pathlib import Path

import browser
import jupytext
import nbformat
import pytest
import torch

from bookbuild.chapters import chapters, load_parameters
from bookbuild.execute import KERNEL_THREADS, ChapterRun, execute_chapter
from bookbuild.stage import build_html, stage
from utils.paths import BOOK_DIR, REPO_ROOT
from utils.results import is_lab_only, load_results

PARAMS_DIR = Path(__file__).parent / "params"
_runs: dict[str, ChapterRun | BaseException] = {}


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


def run_tiny(chapter: str, runs_dir: Path, tiny_model_dir: Path) -> ChapterRun:
    """Execute ``chapter`` on its tiny parameters, once per session (a failure is remembered and raised again)."""
    if chapter not in _runs:
        parameters = load_parameters(PARAMS_DIR, chapter, {"tiny_model": str(tiny_model_dir)})
        try:
            _runs[chapter] = execute_chapter(chapter, parameters, runs_dir, force=True)
        except Exception as error:  # noqa: BLE001 - re-raised below and on every later use
            _runs[chapter] = error
    result = _runs[chapter]
    if isinstance(result, BaseException):
        raise result
    return result


@pytest.fixture(scope="session")
def tiny_book(runs_dir, tiny_model_dir, tmp_path_factory) -> Path:
    """The whole book built from the tiny runs of every chapter; returns its HTML folder."""
    for chapter in chapters():
        run_tiny(chapter, runs_dir, tiny_model_dir)
    root = tmp_path_factory.mktemp("book")
    source = stage(runs_dir, root / "source")
    return build_html(source, root / "html")


def toc_pages() -> list[str]:
    """Pages of the table of contents as built HTML paths, e.g. ``book/01_encoding.html``."""
    import yaml

    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    return [f"{name}.html" for name in [toc["root"]] + [entry["file"] for entry in toc["chapters"]]]


def chapter_title(chapter: str) -> str | None:
    """The chapter's title: the first ``# `` heading of its first markdown cell (None if it has none)."""
    notebook = jupytext.read(BOOK_DIR / f"{chapter}.py")
    markdown = next((cell.source for cell in notebook.cells if cell.cell_type == "markdown"), "")
    return next((line[2:].strip() for line in markdown.splitlines() if line.startswith("# ")), None)


@pytest.mark.slow
@pytest.mark.parametrize("chapter", chapters())
def test_chapter_runs_on_tiny_parameters(chapter, runs_dir, tiny_model_dir):
    run = run_tiny(chapter, runs_dir, tiny_model_dir)
    executed = nbformat.read(run.output, as_version=4)
    errors = [output for cell in executed.cells for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not errors
    tags = [cell.metadata.get("tags", []) for cell in executed.cells]
    parameters = next(index for index, cell_tags in enumerate(tags) if "parameters" in cell_tags)
    assert "injected-parameters" in tags[parameters + 1], "papermill did not inject the tiny parameters"
    results = load_results(chapter)
    assert results, f"{chapter} recorded no results"
    json.dumps(results)
    assert results["_run"]["threads"] == KERNEL_THREADS == 1  # the kernel computed on one thread, on any machine
    assert results["_run"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    stray = [cell.source.splitlines()[0] for cell in executed.cells
             if ends_in_recording_call(cell) and any(o.output_type == "execute_result" for o in cell.outputs)]
    assert not stray, f"cells ending in a recording call print a stray value on the page: {stray}"
    # every figure a cell glues is also shown in that cell, as a notebook front end (JupyterLab) displays it
    blind = [cell.source.splitlines()[0] for cell in executed.cells if cell.cell_type == "code"
             and "glue_figure(" in cell.source and not any(
                 "image/png" in output.get("data", {}) and is_lab_only(output) for output in cell.outputs)]
    assert not blind, f"cells that glue a figure without showing it in the notebook: {blind}"
    # and every number the prose cites is shown beside the code that computed it (the prose's glue roles are not
    # rendered by a notebook front end)
    shown = "\n".join(output.get("data", {}).get("text/plain", "") for cell in executed.cells
                      for output in cell.get("outputs", []) if is_lab_only(output))
    unseen = [name for name in results if name != "_run" and f"{chapter}.{name} = " not in shown]
    assert not unseen, f"recorded values not shown in the executed notebook: {unseen}"


RECORDING_CALLS = {"rec", "rec.scorecard", "glue_figure"}  # the chapter's recorder (utils.results.Recorder)


def ends_in_recording_call(cell) -> bool:
    """Whether a code cell's last statement is a bare call of the recorder or of ``glue_figure``."""
    if cell.cell_type != "code":
        return False
    try:
        body = ast.parse(cell.source).body
    except SyntaxError:  # cell magics
        return False
    last = body[-1] if body else None
    return (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
            and ast.unparse(last.value.func) in RECORDING_CALLS)


@pytest.mark.slow
def test_book_builds_from_the_tiny_runs(tiny_book):
    for page in toc_pages():
        assert (tiny_book / page).is_file(), f"{page} of the table of contents was not built"
    for chapter in chapters():
        page = (tiny_book / "book" / f"{chapter}.html").read_text()
        assert "{glue" not in page, f"{chapter}: a glue role was left unrendered"
    assert (tiny_book / "index.html").exists()
    assert (tiny_book / "_static" / "mathjax" / "tex-chtml-full.js").is_file(), "the vendored MathJax is missing"
    # the book shows each figure once, where its {glue:figure} sits: the front ends' copies are not staged
    for chapter in chapters():
        staged = nbformat.read(tiny_book.parent / "source" / "book" / f"{chapter}.ipynb", as_version=4)
        outputs = [output for cell in staged.cells for output in cell.get("outputs", [])]
        assert not any(is_lab_only(output) for output in outputs), f"{chapter}: a front end's figure was staged"
        images = sum("image/png" in output.get("data", {}) for output in outputs)
        directives = (BOOK_DIR / f"{chapter}.py").read_text().count("{glue:figure}")
        page = (tiny_book / "book" / f"{chapter}.html").read_text()
        assert page.count("<img ") == directives + images, f"{chapter}: a figure is shown twice or not at all"
    assert browser.outside_references(tiny_book) == []
    # the front page reads each chapter's own verdict (and the chapter's own short row of its checks)
    front = (tiny_book / "book" / "intro.html").read_text()
    for chapter in chapters():
        results = load_results(chapter)
        if "verdict_mark" in results:
            assert results["verdict_mark"]["value"] in front, f"{chapter}'s verdict is not the front page's"
            assert html.escape(results["scorecard_short"]["value"], quote=False) in front, chapter


@pytest.mark.slow
def test_every_page_of_the_book_in_a_browser(tiny_book, capsys):
    report = browser.check_book(tiny_book, log=lambda line: None)
    with capsys.disabled():
        print(f"\n{report.summary()}\n[browser] screenshots: {tiny_book / browser.SCREENSHOT_DIR}")
    assert not report.all_problems, "\n".join(report.all_problems)
    checked = {page.page: page for page in report.pages}
    assert set(toc_pages()) <= set(checked), "pages of the table of contents were not checked"
    for chapter in chapters():
        page, title = checked[f"book/{chapter}.html"], chapter_title(chapter)
        assert title, f"book/{chapter}.py: its first markdown cell has no '# ' title"
        assert page.headings[0] == title or page.headings[0].endswith(f" {title}"), (page.headings, title)
        assert page.n_images > 0, f"{chapter} shows no figure"
    assert sum(page.n_math for page in report.pages) > 0, "no page has math: the math check checked nothing"
    scorecard = checked["book/intro.html"].table_row_lines
    assert scorecard and scorecard[0] <= 4, f"the front page's scorecard has a row of {scorecard} lines at 1280 px"
    for page in report.pages:
        assert page.screenshots and all(shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for shot in page.screenshots)


# --------------------------------------------------------------------------------------------------------------------
# The browser check itself, on a small hand-written site with one good page and one page with every planted fault.

PIXEL_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
MATHJAX_HEAD = """<script>window.MathJax =
{"options": {"processHtmlClass": "math", "ignoreHtmlClass": "tex2jax_ignore"}}</script>
<script defer src="_static/mathjax/tex-chtml-full.js"></script>"""
GOOD_PAGE = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Good page — Site</title>{MATHJAX_HEAD}
</head>
<body><article class="tex2jax_ignore"><h1 id="good">Good page</h1>
<p>Inline <span class="math">\\(x^2 + \\alpha_w\\)</span> and display</p><div class="math">\\[E_w A + B\\]</div>
<figure><img src="pixel.png" loading="lazy"><figcaption>A captioned pixel.</figcaption></figure>
<p><a href="bad.html#here">a link</a>, <a href="#good">an anchor</a>, <a href="https://example.org/">elsewhere</a></p>
<div style="overflow-x: auto"><table style="width: 3000px"><tr><td>a wide table in its own scroll box</td></tr></table>
</div></article></body></html>"""
BAD_PAGE = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Bad page — Site</title>{MATHJAX_HEAD}
<link rel="stylesheet" href="https://fonts.example.org/css?family=Serif"><link rel="stylesheet" href="site.css">
</head><body><article class="tex2jax_ignore"><h1 id="here">Another heading</h1>
<p>An error <span class="math">\\(x_1_2\\)</span>, math MathJax cannot find <span class="math">\\(x^{{\\)</span>
and raw $$y = 1$$ left in the text.</p>
<figure><img src="missing.png"><figcaption>Missing.</figcaption></figure>
<img src="pixel.png">
<p><a href="missing.html">gone</a> <a href="index.html#nowhere">no such anchor</a></p>
<table style="width: 3000px"><tr><td>a wide table with no scroll box</td></tr></table>
</article></body></html>"""
SITE_CSS = """@font-face { font-family: Far; src: url("https://fonts.example.org/far.woff2"); }"""


def test_browser_check_finds_each_planted_fault(tmp_path):
    site = tmp_path / "site"
    shutil.copytree(REPO_ROOT / "_vendor", site)
    (site / "pixel.png").write_bytes(PIXEL_PNG)
    (site / "site.css").write_text(SITE_CSS)
    (site / "index.html").write_text(GOOD_PAGE)
    (site / "bad.html").write_text(BAD_PAGE)
    (site / "old.html").write_text('<html><head><meta http-equiv="Refresh" content="0; url=gone.html"></head></html>')

    report = browser.check_book(site, log=lambda line: None)

    pages = {page.page: page for page in report.pages}
    assert sorted(pages) == ["bad.html", "index.html"] and report.redirects == {"old.html": "gone.html"}
    good, bad = pages["index.html"], pages["bad.html"]
    assert good.problems == [], good.problems
    assert (good.title, good.headings, good.n_images, good.n_math) == ("Good page — Site", ["Good page"], 1, 2)
    assert good.screenshots == [site / "_screenshots" / "index.png"] and good.screenshots[0].stat().st_size > 1000
    planted = {
        "heading 'Another heading' is not in the title": 1,
        "asks an outside host for a stylesheet: https://fonts.example.org/css?family=Serif": 1,
        "image does not load: http": 1,
        "figure without a caption: pixel.png": 1,
        "MathJax error": 1,
        "math not typeset: '\\\\(x^{\\\\)'": 1,
        "raw math delimiters left in the text": 1,
        "HTTP 404 for http://127.0.0.1": 1,
        "overflows its column at 1280 px: table": 1,
        "overflows its column at 400 px: table": 1,
        "scrolls sideways at 1280 px": 1,
        "scrolls sideways at 400 px": 1,
    }
    found = {fault: sum(problem.startswith(fault) for problem in bad.problems) for fault in planted}
    assert found == planted, bad.problems
    site_wide = "\n".join(report.problems)
    assert "bad.html: https://fonts.example.org/css?family=Serif" in site_wide  # static reading of the HTML
    assert "site.css: https://fonts.example.org/far.woff2" in site_wide  # ... and of the CSS (font never fetched)
    assert "bad.html: link to a missing file:" in site_wide and "missing.html" in site_wide
    assert "bad.html: link to a missing anchor:" in site_wide and "index.html#nowhere" in site_wide
    assert "old.html: redirects to a missing page: gone.html" in site_wide
    assert "index.html: link" not in site_wide  # the good page's links (to bad.html#here, #good) resolve


def test_navigation_check_names_the_page_left_stale():
    pages = [browser.PageCheck(f"p{i}.html", navigation=["http://h/a.html", "http://h/b.html"]) for i in range(3)]
    pages.append(browser.PageCheck("stale.html", navigation=["http://h/a.html"]))
    pages.append(browser.PageCheck("no-nav.html"))
    problems = browser.navigation_problems(pages)
    assert problems == ["stale.html: its navigation differs from that of 3 other pages (missing ['/b.html'], extra [])"]
    assert browser.navigation_problems(pages[:3]) == []


@pytest.mark.slow
def test_a_papermill_rerun_leaves_the_published_results_unchanged(runs_dir, tiny_model_dir, tmp_path, monkeypatch):
    """The README's rerun (papermill with other parameters, no results folder set) writes its own results file."""
    import papermill

    run_tiny("01_encoding", runs_dir, tiny_model_dir)
    published = load_results("01_encoding")
    published_path = Path(os.environ["LOGLINEAR_RESULTS"]) / "01_encoding.json"
    before = published_path.read_bytes()
    parameters = load_parameters(PARAMS_DIR, "01_encoding", {"tiny_model": str(tiny_model_dir)})
    parameters |= {"window_length": 32, "sample_seed": 1}
    monkeypatch.delenv("LOGLINEAR_RESULTS")
    monkeypatch.setenv("LOGLINEAR_RERUNS", str(tmp_path / "reruns"))
    papermill.execute_notebook(str(BOOK_DIR / "01_encoding.ipynb"), str(tmp_path / "01_encoding-w32.ipynb"),
                               parameters=parameters, cwd=str(BOOK_DIR), kernel_name="python3",
                               progress_bar=False, log_output=False)
    assert published_path.read_bytes() == before
    rerun_files = list((tmp_path / "reruns").glob("01_encoding-*.json"))
    assert len(rerun_files) == 1
    rerun = json.loads(rerun_files[0].read_text())
    assert rerun["_run"]["parameters"]["window_length"] == 32 and rerun["_run"]["parameters"]["sample_seed"] == 1
    assert published["_run"]["parameters"]["window_length"] == 16
    assert rerun["r2"]["value"] != published["r2"]["value"]  # another sample of text, another number
