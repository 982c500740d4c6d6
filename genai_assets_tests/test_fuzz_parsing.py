"""Property-based (hypothesis) tests of everything that reads untrusted text or bytes.

* cleaning rules: idempotent, no forbidden character survives, line and stanza breaks kept;
* page decoding: never raises, for any bytes and any declared charset (header or ``<meta>``);
* PoetryDB: any answer of an author page → rows or counted skips (driven end to end through the
  polite client over an in-memory transport);
* poets.org: any HTML → a parsed poem or a ``malformed_page`` skip; listing links stay on site.

Example counts are modest so the file runs in well under a minute on a loaded 2-core machine;
``HYPOTHESIS_PROFILE=deep`` (profiles in ``conftest.py``) runs 20x more.
"""

from __future__ import annotations

import codecs
import encodings.aliases
import json
import re
import string
import sys
import unicodedata

import ftfy
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genai_assets.cleaning.dedup import exact_duplicate_of, shingle_hashes, tokenize_texts
from genai_assets.cleaning.rules import (
    _DOUBLE_HYPHEN,
    _ODD_SPACE,
    _QUOTE_TABLE,
    TRANSFORMS,
    _fix_text_by_line,
    ascii_letter_ratio,
    clean_label,
    clean_text,
    contains_forbidden,
    dictionary_words,
    forbidden_characters,
    normalize_punctuation,
    stopword_ratio,
    stopword_shares,
)
from genai_assets.cleaning.tokens import _tokenize_dictionary_words
from genai_assets.schema import join_stanzas
from genai_assets.sources.http import FetchError, HttpPolicy, PoliteClient, SiteUnavailableError, decode_body
from genai_assets.sources.poetrydb import PoetryDBOptions, parse_poem, scrape_poetrydb
from genai_assets.sources.poets_org import PoetsOrgSelectors, html_poem_text, parse_listing, parse_poem_page
from genai_assets_tests.test_cleaning_rules import INVISIBLE

# -- cleaning rules ----------------------------------------------------------------------------

#: Any text at all, weighted toward what breaks cleaners: markup, entities, controls, invisible
#: format characters, odd line endings, mojibake-prone Latin-1/cp1252 characters.
NASTY_PIECES = st.sampled_from(
    [
        "<br>", "<p>", "</p>", "<i>", "&amp;", "&nbsp;", "&#8212;", "[3]", "{8}", "[Footnote 1: x]",
        "--", "---", "`", "\u2018", "\u201c", "\t", "\r\n", "\r", "\n", "\n\n", "\n\n\n", " ",
        "\xa0", "\u00ad", "\u200b", "\ufeff", "\ufffd", "\u2028", "\x00", "\x85", "\x92", "\u00e2\u20ac\u2122",
        "\ufb01", "\uff21", "_", "*", "#", "=", "|", "~", "@", "(12)", "(1839)",
    ]
)  # fmt: skip
ANY_TEXT = st.lists(st.one_of(st.text(max_size=12), NASTY_PIECES), max_size=30).map("".join)


@given(ANY_TEXT)
def test_clean_text_is_idempotent_and_leaves_no_forbidden_character(text):
    cleaned = clean_text(text)
    assert clean_text(cleaned) == cleaned
    assert not contains_forbidden(cleaned)
    assert "\n\n\n" not in cleaned and cleaned == cleaned.strip(" \n")


#: Any code point: lone surrogates, private use, unassigned, tags, bidi controls included.
EVERY_CHARACTER = st.characters(exclude_categories=())
REFUSED_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Cn"}
HOSTILE_TEXT = st.lists(
    st.one_of(st.text(EVERY_CHARACTER, max_size=12), NASTY_PIECES, st.sampled_from(list(INVISIBLE))),
    max_size=30,
).map("".join)


def refused(text: str) -> list[str]:
    """Characters the issue's rule refuses, read straight from ``unicodedata`` (not our code)."""
    return [char for char in text if char != "\n" and unicodedata.category(char) in REFUSED_CATEGORIES]


@given(HOSTILE_TEXT)
def test_no_control_format_private_surrogate_or_unassigned_character_survives(text):
    cleaned = clean_text(text)
    assert refused(cleaned) == [], ascii(cleaned)
    assert not contains_forbidden(cleaned) and clean_text(cleaned) == cleaned
    label = clean_label(text)
    assert label is None or refused(label) == [], ascii(label)
    # The asset check's test and the removal agree: refused characters are always reported.
    assert set(refused(text)) <= set(forbidden_characters(text))


WORDY_TEXT = st.lists(st.one_of(st.sampled_from(["the", "and", "o'er", "'tis", "rose", "Rose", "''", "-", "\n"]), HOSTILE_TEXT), max_size=12).map(" ".join)  # fmt: skip


@given(st.lists(WORDY_TEXT, max_size=8), st.data())
def test_tokenized_texts_give_the_per_text_results(texts, data):
    # The pipeline splits each text once; every step must decide as the per-text functions do.
    tokens = tokenize_texts(texts)
    rows = data.draw(st.lists(st.integers(0, max(len(texts) - 1, 0)), max_size=10)) if texts else []
    chosen = tokens.select(rows)
    offsets = chosen.offsets.tolist()
    words = [
        [chosen.vocabulary[i] for i in chosen.ids[start:end]]
        for start, end in zip(offsets[:-1], offsets[1:], strict=True)
    ]
    assert words == [dictionary_words(texts[row]) for row in rows]
    picked = [texts[row] for row in rows]
    assert exact_duplicate_of(chosen).tolist() == exact_duplicate_of(picked).tolist()
    assert shingle_hashes(chosen, 3)[0].tolist() == shingle_hashes(picked, 3)[0].tolist()
    shares = stopword_shares(tokens.vocabulary, tokens.ids, tokens.lengths).tolist()
    assert shares == [stopword_ratio(text) for text in texts]  # exactly equal floats


@given(st.text(st.sampled_from([*string.printable.replace("\r", "").replace("\x0b", "").replace("\x0c", "").replace("\t", ""), "\u2014"]), max_size=80))  # fmt: skip
def test_ftfy_leaves_printable_ascii_with_em_dashes_alone(text):
    # repair_unicode skips ftfy for such text (the em dashes normalize_punctuation makes): exact.
    assert ftfy.fix_text(text, unescape_html=False, uncurl_quotes=False, normalization="NFKC") == text


@given(st.lists(st.one_of(WORDY_TEXT, ANY_TEXT, st.sampled_from(["a''b'c 'd' e'", "\u212a\u0130\u03a3x", "a\x00b"])), max_size=8))  # fmt: skip
def test_byte_level_word_split_equals_the_regex_per_text(texts):
    # tokenize_texts' fast path (bytes.split over batches, issue 19 speed) against one regex per text.
    expected = tokenize_texts(texts, lambda text: dictionary_words(text))
    for batch_texts in (1, 3, 4096):
        fast = _tokenize_dictionary_words(texts, batch_texts)
        assert fast.ids.tolist() == expected.ids.tolist()
        assert fast.lengths.tolist() == expected.lengths.tolist()
        assert fast.vocabulary == expected.vocabulary


@given(
    st.lists(
        st.one_of(HOSTILE_TEXT, ANY_TEXT, st.sampled_from(["\u00e9", "\u00c3\u00a9", "\x1b[31m"])), max_size=6
    )
)
def test_ftfy_line_by_line_equals_ftfy_on_the_whole_text(pieces):
    # repair_unicode hands ftfy only the lines that are not printable ASCII (issue 19 speed): exact.
    text = "\n".join(pieces).replace("\r", "")
    expected = ftfy.fix_text(text, unescape_html=False, uncurl_quotes=False, normalization="NFKC")
    assert _fix_text_by_line(text) == expected


@given(ANY_TEXT)
def test_fast_punctuation_and_letter_ratio_equal_their_definitions(text):
    translated = text.translate(_QUOTE_TABLE)
    expected = _DOUBLE_HYPHEN.sub("\u2014", translated)
    assert normalize_punctuation(text) == expected
    ascii_letters = sum(char.isascii() and char.isalpha() for char in text)
    other_letters = sum(not char.isascii() and char.isalpha() for char in text)
    total = ascii_letters + other_letters
    assert ascii_letter_ratio(text) == (ascii_letters / total if total else 1.0)


def test_odd_space_pattern_is_every_whitespace_but_space_and_newline():
    # repair_whitespace's cheap pre-test must see every character _INNER_SPACES can act on.
    whitespace = re.compile(r"\s")
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        expected = bool(whitespace.match(char)) and char not in " \n"
        assert bool(_ODD_SPACE.match(char)) == expected, hex(code)


@pytest.mark.parametrize("name", [name for name, _ in TRANSFORMS])
@given(text=ANY_TEXT)
def test_each_transform_is_idempotent(name, text):
    transform = dict(TRANSFORMS)[name]
    once = transform(text)
    assert transform(once) == once


LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\u00e9\u00e6"
WORD = st.text(alphabet=LETTERS, min_size=1, max_size=8)
LINE = st.lists(WORD, min_size=1, max_size=6).flatmap(
    lambda words: st.sampled_from(["", ",", ".", ";", "!", "?", "'", '"']).map(
        lambda end: " ".join(words) + end
    )
)
POEM = st.lists(st.lists(LINE, min_size=1, max_size=5), min_size=1, max_size=4)
#: Debris the cleaner must delete without touching the layout (no newlines among them; no
#: brackets, which with letters inside are editorial notes/tags whose content goes too).
DEBRIS = st.sampled_from(list("@~\\|^_#=+$%") + ["\x00", "\x07", "\x1b", "\x7f", "\x9f", "\u00ad", "\u200b", "\u200e", "\u2060", "\ufeff", "\ufffd", "\t", "\xa0", "  "])  # fmt: skip


@given(POEM, st.data())
def test_line_and_stanza_breaks_survive_cleaning(stanzas, data):
    poem = join_stanzas(stanzas)
    assert clean_text(poem) == poem  # already clean: untouched
    dirty_stanzas = []
    for stanza in stanzas:
        dirty_lines = []
        for line in stanza:
            position = data.draw(st.integers(0, len(line)))
            dirty_lines.append(line[:position] + data.draw(DEBRIS) + line[position:])
        dirty_stanzas.append(dirty_lines)
    cleaned = clean_text("\n\n".join("\n".join(lines) for lines in dirty_stanzas))
    assert [len(stanza.split("\n")) for stanza in cleaned.split("\n\n")] == [
        len(stanza) for stanza in stanzas
    ]
    assert not contains_forbidden(cleaned)


# -- page decoding -------------------------------------------------------------------------------

ALL_CODEC_NAMES = sorted(set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values()))
CHARSET = st.one_of(
    st.sampled_from(
        ALL_CODEC_NAMES
        + [
            "base64",
            "zlib",
            "hex",
            "rot13",
            "rot_13",
            "idna",
            "punycode",
            "undefined",
            "utf-7",
            "x-user-defined",
            "mbcs",
            "unicode_escape",
            "latin-1",
        ]
    ),  # fmt: skip
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.:", max_size=20),
)


@given(st.binary(max_size=600), CHARSET, st.booleans())
def test_decode_body_never_raises(body, charset, as_meta):
    if as_meta:
        body = b'<html><head><meta charset="' + charset.encode() + b'"></head>' + body
        content_type = "text/html"
    else:
        content_type = f"text/html; charset={charset}"
    text, encoding = decode_body(body, content_type)
    assert isinstance(text, str) and isinstance(encoding, str)
    codecs.lookup(encoding)  # the reported encoding is a real codec


@given(st.binary(max_size=600), st.text(max_size=60))
def test_decode_body_never_raises_for_any_content_type(body, content_type):
    text, _ = decode_body(body, content_type)
    assert isinstance(text, str)


# -- PoetryDB -------------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
ENTRY = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"title": st.one_of(st.text(max_size=20), JSON), "author": st.one_of(st.text(max_size=20), JSON),
         "lines": st.one_of(st.lists(st.text(max_size=30), max_size=8), JSON)},
        optional={"linecount": JSON},
    ),
)  # fmt: skip


@given(ENTRY)
def test_parse_poem_gives_a_contract_poem_or_none(entry):
    poem = parse_poem(entry)
    if poem is not None:
        title, author, text = poem
        assert title and author and text and title == title.strip() and author == author.strip()
        assert "\n\n\n" not in text and text == text.strip("\n")


AUTHOR_BODY = st.one_of(
    st.lists(ENTRY, max_size=5).map(lambda entries: json.dumps(entries).encode()),
    JSON.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=200),
)


@settings(max_examples=60)
@given(st.lists(AUTHOR_BODY, min_size=1, max_size=4), st.sampled_from(["application/json", "application/json; charset=rot13", "text/html"]))  # fmt: skip
def test_poetrydb_scrape_of_any_answers_gives_rows_or_counted_skips(bodies, content_type):
    authors = [f"Author {index}" for index in range(len(bodies))]
    by_path = {f"/author/Author%20{index}": body for index, body in enumerate(bodies)}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=by_path[request.url.raw_path.decode()], headers={"Content-Type": content_type}
        )

    policy = HttpPolicy(min_interval_s=0.0, max_retries=0, respect_robots=False, max_concurrency=2)
    with PoliteClient("http://poetrydb.test", policy) as client:
        client._http = httpx.Client(transport=httpx.MockTransport(answer))  # in-memory site
        try:
            result = scrape_poetrydb(client, PoetryDBOptions(authors=authors))
        except SiteUnavailableError:
            assert client.stats.pages_skipped == len(authors)  # only when every author failed
            return
    details = result.details
    assert details["authors_fetched"] == len(authors)
    assert details["authors_failed"] == client.stats.pages_skipped == sum(client.stats.skip_reasons.values())
    assert details["poems"] == len(result.records)
    for record in result.records:
        assert record["text"] and record["title"] and record["author"]


# -- poets.org ----------------------------------------------------------------------------------

TAGS = [
    "p",
    "div",
    "br",
    "h1",
    "span",
    "a",
    "i",
    "b",
    "blockquote",
    "li",
    "ul",
    "script",
    "style",
    "table",
    "tr",
]
CLASSES = ["poem__title", "poem__body", "poem__author", "poem__credit", "poem__tags", "field--name-body", ""]


def _element(children: list[str], tag: str, css_class: str, href: str, rel_next: bool) -> str:
    attributes = (f' class="{css_class}"' if css_class else "") + (f' href="{href}"' if tag == "a" else "")
    attributes += ' rel="next"' if rel_next and tag == "a" else ""
    return f"<{tag}{attributes}>{''.join(children)}</{tag}>"


HREF = st.sampled_from(["/poem/a-poem", "/poem/x#frag", "https://elsewhere.test/poem/x", "/poet/someone", "javascript:x", "", "?page=2", "/poem/", "http://[oops/poem/x", "//[::1/poem/y", "http://a:99999/poem/z"])  # fmt: skip
HTML_TREE = st.recursive(
    st.one_of(
        st.text(max_size=15),
        st.sampled_from(["&nbsp;", "&amp;", "<br>", "<br/>", "\u00a0", "public domain", "<!-- c -->"]),
    ),  # fmt: skip
    lambda children: st.builds(
        _element,
        st.lists(children, max_size=4),
        st.sampled_from(TAGS),
        st.sampled_from(CLASSES),
        HREF,
        st.booleans(),
    ),
    max_leaves=25,
)
HTML = st.one_of(HTML_TREE.map(lambda body: f"<html><body>{body}</body></html>"), st.text(max_size=200))


@given(HTML)
def test_poets_org_poem_page_parses_or_is_a_malformed_page(html):
    try:
        poem = parse_poem_page(html, "https://poets.test/poem/x", PoetsOrgSelectors())
    except FetchError as error:
        assert error.reason == "malformed_page"
        return
    assert poem.title and poem.text
    assert "\n\n\n" not in poem.text and poem.text == poem.text.strip()
    assert all(line.strip() for line in poem.text.replace("\n\n", "\n").split("\n"))  # no blank lines inside


def test_poets_org_listing_links_stay_on_site_and_unique():
    # One client for all examples (only its URL helpers are used; building one per example is slow).
    with PoliteClient("https://poets.test", HttpPolicy(respect_robots=False)) as client:

        @given(HTML)
        def check(html):
            links, next_url = parse_listing(html, "https://poets.test/poems", client, PoetsOrgSelectors())
            assert len(links) == len(set(links))
            assert all(link.startswith("https://poets.test/poem/") and "#" not in link for link in links)
            assert next_url is None or next_url.startswith("https://poets.test/")

        check()


def test_deeply_nested_poem_body_is_read_not_a_recursion_error():
    from selectolax.lexbor import LexborHTMLParser

    depth = 5000
    html = (
        '<div class="poem__body">' + "<span>" * depth + "line one<br>line two" + "</span>" * depth + "</div>"
    )
    body = LexborHTMLParser(html).css_first(".poem__body")
    assert html_poem_text(body) == "line one\nline two"
