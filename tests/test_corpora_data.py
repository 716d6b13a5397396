"""Checks of the committed corpora in data/ (no downloads) and of the cleaners that built them.

The corpus files are read as committed; the cleaners are imported from data/build_corpora.py (standard
library only) and run on small planted snippets.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
CORPORA = ("wikipedia", "shakespeare", "bible")
SPLITS = ("train", "test")

# Bounds stated in data/README.md: total bytes of train + test, and minimum words per split.
TOTAL_BYTES = {"wikipedia": (1_500_000, 2_500_000), "shakespeare": (400_000, 600_000), "bible": (400_000, 600_000)}
MIN_TRAIN_WORDS = 32_768  # the book's default activation pass reads 32k tokens; a word is at least one token
MIN_TEST_WORDS = 20_000
MIN_TOKENS = 32_768  # every split, train or test, holds one default activation pass
# Lines that serve as a content signature of a document: long enough to be unique to it.
SIGNATURE_MIN_CHARS = {"wikipedia": 80, "shakespeare": 40, "bible": 80}


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_corpora", DATA_DIR / "build_corpora.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build_corpora = _load_builder()


def _path(corpus: str, split: str) -> Path:
    return DATA_DIR / f"{corpus}_{split}.txt"


def _text(corpus: str, split: str) -> str:
    return _path(corpus, split).read_bytes().decode("utf-8", errors="strict")


def _documents(corpus: str, split: str) -> list[str]:
    """Blank-line separated blocks (articles for Wikipedia, speeches or chapters otherwise)."""
    return _text(corpus, split).strip("\n").split("\n\n")


def signature_lines(text: str, min_chars: int) -> set[str]:
    """The lines of ``text`` longer than ``min_chars`` characters."""
    return {line for line in text.split("\n") if len(line) > min_chars}


def shared_signatures(train: str, test: str, min_chars: int) -> set[str]:
    """Signature lines of ``test`` that also occur verbatim in ``train``."""
    return signature_lines(test, min_chars) & signature_lines(train, min_chars)


@pytest.mark.parametrize("corpus", CORPORA)
@pytest.mark.parametrize("split", SPLITS)
def test_file_is_clean_utf8_text(corpus: str, split: str) -> None:
    raw = _path(corpus, split).read_bytes()
    assert len(raw) > 10_000
    text = raw.decode("utf-8", errors="strict")
    assert "\r" not in text and "\t" not in text and "\x00" not in text
    assert text.endswith("\n") and not text.endswith("\n\n"), "one trailing newline"
    assert not text.startswith("\n")
    assert "\n\n\n" not in text, "documents are separated by exactly one blank line"
    assert not any(line != line.strip() for line in text.split("\n")), "no leading or trailing spaces"
    assert "\u00a0" not in text and "\ufeff" not in text


@pytest.mark.parametrize("split", SPLITS)
def test_wikipedia_has_no_markup(split: str) -> None:
    text = _text("wikipedia", split)
    for marker in ("{{", "}}", "[[", "]]", "<ref", "</ref", "{|", "|}", "'''", "''", "<!--", "&nbsp;", "&amp;",
                   "http://", "https://", "<br", "<math", "__NOTOC__", "thumb|", "Category:", "File:"):
        assert marker not in text, f"{marker!r} left in wikipedia_{split}.txt"
    assert not re.search(r"^=+.*=+$", text, re.MULTILINE), "a '== heading ==' left"
    assert not re.search(r"^[*#:;|!]", text, re.MULTILINE), "a list marker or table row left at a line start"
    assert not re.search(r"</?(ref|div|span|small|sup|sub|blockquote|center|gallery)\b", text, re.IGNORECASE)


@pytest.mark.parametrize("split", SPLITS)
def test_shakespeare_has_no_markdown_or_stage_directions(split: str) -> None:
    text = _text("shakespeare", split)
    for marker in ("#", "**", "_", "*", "\\", "[", "]"):
        assert marker not in text, f"{marker!r} left in shakespeare_{split}.txt"
    lines = text.split("\n")
    assert not any(re.fullmatch(r"(Exit|Exeunt)\.?|(Enter|Re-enter|Exit|Exeunt) [A-Z]{2,}\b.*", line)
                   for line in lines), "a stage direction"
    assert not any(re.fullmatch(r"(ACT|SCENE) [IVX]+\b.*", line) for line in lines), "an act or scene heading"
    capitals = [line for line in lines if re.search(r"[A-Z]{2,}", line) and not re.search(r"[a-z]", line)]
    assert not capitals, f"a speaker tag or heading in capitals: {capitals[:3]}"


@pytest.mark.parametrize("split", SPLITS)
def test_bible_has_no_verse_numbers(split: str) -> None:
    text = _text("bible", split)
    lines = text.split("\n")
    assert not any(re.match(r"\s*\d", line) for line in lines), "a verse-number prefix"
    assert not re.search(r"\d+:\d+", text), "a chapter:verse reference"
    assert not re.search(r"[\[\]{}<>]", text), "bracket markup"


@pytest.mark.parametrize("corpus", CORPORA)
def test_train_and_test_share_no_document(corpus: str) -> None:
    train, test = _text(corpus, "train"), _text(corpus, "test")
    min_chars = SIGNATURE_MIN_CHARS[corpus]
    assert len(signature_lines(test, min_chars)) >= 300, "the signature must cover the test split"
    shared = shared_signatures(train, test, min_chars)
    assert not shared, f"{len(shared)} test lines also in train, e.g. {sorted(shared)[0][:100]!r}"


def test_signature_check_detects_a_leaked_document() -> None:
    train, test = _text("shakespeare", "train"), _text("shakespeare", "test")
    leaked_speech = max(_documents("shakespeare", "test"), key=len)
    leaky_train = train + "\n" + leaked_speech + "\n"
    assert shared_signatures(leaky_train, test, SIGNATURE_MIN_CHARS["shakespeare"])


def test_wikipedia_split_follows_the_title_hash_rule() -> None:
    titles = {split: [article.split("\n", 1)[0] for article in _documents("wikipedia", split)] for split in SPLITS}
    assert not set(titles["train"]) & set(titles["test"])
    assert len(set(titles["train"])) == len(titles["train"]) and len(set(titles["test"])) == len(titles["test"])
    assert all(not build_corpora.is_wiki_test_article(title) for title in titles["train"])
    assert all(build_corpora.is_wiki_test_article(title) for title in titles["test"])
    assert len(titles["test"]) >= 5 and len(titles["train"]) >= 40
    for split in SPLITS:
        for article in _documents("wikipedia", split):
            assert build_corpora.count_words(article) >= build_corpora.WIKI_MIN_WORDS


@pytest.mark.parametrize("corpus", CORPORA)
def test_sizes_are_within_the_stated_bounds(corpus: str) -> None:
    n_bytes = {split: _path(corpus, split).stat().st_size for split in SPLITS}
    low, high = TOTAL_BYTES[corpus]
    assert low <= n_bytes["train"] + n_bytes["test"] <= high
    assert n_bytes["test"] < n_bytes["train"]
    assert len(_text(corpus, "train").split()) >= MIN_TRAIN_WORDS
    assert len(_text(corpus, "test").split()) >= MIN_TEST_WORDS
    if corpus == "wikipedia":
        test_share = n_bytes["test"] / (n_bytes["train"] + n_bytes["test"])
        assert 0.08 <= test_share <= 0.16


def test_every_split_holds_the_default_number_of_tokens() -> None:
    from utils.tokenizers import gpt2_tokenizer

    tokenizer = gpt2_tokenizer()
    for corpus in CORPORA:
        for split in SPLITS:
            n_tokens = len(tokenizer(_text(corpus, split), add_special_tokens=False, verbose=False)["input_ids"])
            assert n_tokens >= MIN_TOKENS, f"{corpus}_{split}.txt has {n_tokens} GPT-2 tokens < {MIN_TOKENS}"


def test_wiki_cleaner_on_planted_markup() -> None:
    wikitext = (
        "{{Infobox thing|name={{nowrap|X}}|image=[[File:X.png|thumb|A [[caption]] here]]}}\n"
        "'''Alpha''' ({{IPAc-en|ˈ|æ|l}}; born {{birth date|1809|2|12}}) is a [[Greek alphabet|letter]] of "
        "the [[alphabet]]s, {{convert|5|km|mi}} long.<ref name=\"a\">{{cite web|url=http://x.org|title=T}}</ref> "
        "See [http://example.org the site] and [http://bare.example.org].<ref name=\"b\" />\n"
        "{| class=\"wikitable\"\n|-\n! Head\n|-\n| cell {{flag|Y}}\n|}\n"
        "<!-- hidden comment -->\n"
        "== History ==\n"
        "* First&nbsp;item with ''italic'' text.\n"
        "[[Category:Letters]]\n"
        "== References ==\n"
        "{{reflist}}\n"
        "* A citation that must go.\n"
    )
    cleaned = build_corpora.clean_wikitext(wikitext)
    assert cleaned.split("\n") == [
        "Alpha (born February 12, 1809) is a letter of the alphabets, 5 km long. See the site and.",
        "History",
        "First item with italic text.",
    ]


def test_play_cleaner_on_planted_markdown() -> None:
    markdown = (
        "# A Play\n\n## ACT I\n\n### SCENE I. A place.\n\n_Enter ALPHA and BETA, with\nothers_\n\n"
        "**ALPHA**  \nFirst line of verse,  \n_\\[Aside]_  \nsecond line, master 's line.\n\n"
        "_Exit_\n\n"
        "**BETA**  \nAnd _\\[Censorinus,]_ nobly named so, & c.\n"
    )
    assert build_corpora.clean_play(markdown) == [
        "First line of verse,\nsecond line, master's line.",
        "And Censorinus, nobly named so, &c.",
    ]
