"""Property tests (hypothesis) through the real scrapers and a loopback server: arbitrary Unicode
(lone surrogates included) and garbage in any JSON/HTML field or response header of one page
never fails the partition and never drops a well-formed poem.

Each example serves a small site on one :class:`LoopbackServer` (started once per test), scrapes
it with the real adapter and :class:`PoliteClient`, builds the raw_poems table with
:func:`build_raw_poems` and checks what the ``raw_poems`` asset would write: the snapshot checks
pass, Parquet can hold every row, and the well-formed poem is there, unchanged.
"""

from __future__ import annotations

import html
import io
import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from genai_assets.schema import build_raw_poems
from genai_assets.sources.http import HttpPolicy, PoliteClient
from genai_assets.sources.poetrydb import PoetryDBOptions, scrape_poetrydb
from genai_assets.sources.poets_org import PoetsOrgOptions, scrape_poets_org
from genai_assets.sources.snapshot import evaluate_snapshot
from genai_assets_tests.loopback_server import LoopbackServer, Reply

#: Any code point at all, lone surrogates, controls, private use and unassigned ones included.
ANY_CHAR = st.characters(exclude_categories=())
ANY_TEXT = st.text(ANY_CHAR, max_size=30)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(ANY_TEXT, children, max_size=3),
    max_leaves=10,
)
GARBAGE_ENTRY = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"title": st.one_of(ANY_TEXT, JSON), "author": st.one_of(ANY_TEXT, JSON),
         "lines": st.one_of(st.lists(ANY_TEXT, max_size=5), JSON)},
    ),
)  # fmt: skip
#: Header values as a server may send them (one byte per character; CR/LF included).
HEADER_VALUE = st.text(st.characters(max_codepoint=0xFF), max_size=40)
HEADER_NAME = st.sampled_from(
    ["Content-Type", "Content-Encoding", "Content-Length", "Location", "Retry-After", "Transfer-Encoding",
     "Connection", "X-Garbage"]
)  # fmt: skip
GARBAGE_HEADERS = st.dictionaries(HEADER_NAME, HEADER_VALUE, max_size=3)
#: Statuses whose replies carry a body (204/304 with a body would desynchronise the connection).
STATUS = st.sampled_from([200, 200, 301, 302, 404, 500])

GOOD_TITLE, GOOD_AUTHOR = "A Well-Formed Poem", "Good Poet"
GOOD_LINES = ["Because I could not stop for Death -", "He kindly stopped for me -", "", "The Carriage held"]
GOOD_TEXT = "Because I could not stop for Death -\nHe kindly stopped for me -\n\nThe Carriage held"
FAST = dict(
    min_interval_s=0.0, timeout_s=1.0, request_deadline_s=1.0, max_retries=0, respect_robots=False,
    max_concurrency=1,
)  # fmt: skip


@pytest.fixture(scope="module")
def server():
    with LoopbackServer() as running:
        yield running


def assert_the_good_poem_survives(records: list[dict]) -> None:
    """What the raw_poems asset does with the records: table, snapshot checks, Parquet."""
    table = build_raw_poems(records)
    frame = table.frame
    assert evaluate_snapshot(frame, previous_rows=None).accepted, evaluate_snapshot(frame, None).checks
    frame.to_parquet(io.BytesIO(), index=False)  # every kept field is valid UTF-8
    good = frame[frame["title"] == GOOD_TITLE]
    assert len(good) == 1 and good["text"].iloc[0] == GOOD_TEXT and good["author"].iloc[0] == GOOD_AUTHOR
    assert len(frame) + sum(table.dropped.values()) == len(records)


@settings(max_examples=40)
@given(
    entries_before=st.lists(GARBAGE_ENTRY, max_size=3),
    entries_after=st.lists(GARBAGE_ENTRY, max_size=3),
    other_page=st.one_of(st.lists(GARBAGE_ENTRY, max_size=3).map(json.dumps).map(str.encode), st.binary()),
    headers=GARBAGE_HEADERS,
    status=STATUS,
    garbage_first=st.booleans(),
)
def test_poetrydb_garbage_never_fails_the_site_nor_drops_a_good_poem(
    server, entries_before, entries_after, other_page, headers, status, garbage_first
):
    good = {"title": GOOD_TITLE, "author": GOOD_AUTHOR, "lines": GOOD_LINES, "linecount": 4}
    for entry in entries_before + entries_after:
        assume(not (isinstance(entry, dict) and entry.get("title") == GOOD_TITLE))
    authors = ["Garbage Poet", GOOD_AUTHOR] if garbage_first else [GOOD_AUTHOR, "Garbage Poet"]
    server.route("/author", Reply.json({"authors": authors}))
    # The good poem's own page carries garbage entries around it (json.dumps escapes surrogates).
    server.route("/author/Good%20Poet", Reply.json([*entries_before, good, *entries_after]))
    server.route("/author/Garbage%20Poet", Reply(status=status, body=other_page, headers=headers))
    with PoliteClient(server.url, HttpPolicy(**FAST)) as client:
        result = scrape_poetrydb(client, PoetryDBOptions())
    assert_the_good_poem_survives(result.records)


GOOD_PAGE = (
    f"<html><body><h1 class='poem__title'>{GOOD_TITLE}</h1><div class='poem__author'><a>{GOOD_AUTHOR}</a></div>"
    "<div class='poem__body'><p>" + "<br>".join(GOOD_LINES[:2]) + "</p><p>" + GOOD_LINES[3] + "</p></div>"
    "<div class='poem__credit'>This poem is in the public domain.</div></body></html>"
)
GARBAGE_PAGE = (
    "<html><body><h1 class='poem__title'>{title}</h1><div class='poem__author'><a>{author}</a></div>"
    "<div class='poem__body'>{body}</div><div class='poem__credit'>{credit}</div>"
    "<div class='poem__tags'><a>{tag}</a></div></body></html>"
)


@settings(max_examples=40)
@given(
    fields=st.fixed_dictionaries({name: ANY_TEXT for name in ("title", "author", "body", "credit", "tag")}),
    escape=st.booleans(),
    hrefs=st.lists(ANY_TEXT, max_size=3),
    next_href=ANY_TEXT,
    headers=GARBAGE_HEADERS,
    status=STATUS,
)
def test_poets_org_garbage_never_fails_the_site_nor_drops_a_good_poem(
    server, fields, escape, hrefs, next_href, headers, status
):
    if escape:  # as text (lone surrogates and all), or pasted raw into the markup
        fields = {name: html.escape(value) for name, value in fields.items()}
    garbage = GARBAGE_PAGE.format(**fields).encode("utf-8", errors="surrogatepass")  # invalid UTF-8 too
    anchors = "".join(f'<a href="{html.escape(href)}">x</a>' for href in hrefs)
    listing = (
        f'<html><body><a href="/poem/garbage">g</a>{anchors}<a href="/poem/good">good</a>'
        f'<a rel="next" href="{html.escape(next_href)}">next</a></body></html>'
    )
    server.route(
        "/poems", Reply(body=listing.encode("utf-8", "surrogatepass"), headers={"Content-Type": "text/html"})
    )
    server.route("/poem/good", Reply.html(GOOD_PAGE))
    server.route("/poem/garbage", Reply(status=status, body=garbage, headers=headers))
    with PoliteClient(server.url, HttpPolicy(**FAST)) as client:
        result = scrape_poets_org(client, PoetsOrgOptions(max_listing_pages=2, max_poems=0))
    assert_the_good_poem_survives(result.records)
