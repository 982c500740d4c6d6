"""PoetryDB and poets.org adapters against fixture sites on a loopback server: exact parses and faults."""

from __future__ import annotations

import pytest

from genai_assets.schema import raw_poems_frame, schema_problems
from genai_assets.sources.http import HttpPolicy, PoliteClient, SiteUnavailableError
from genai_assets.sources.poetrydb import PoetryDBOptions, lines_to_text, scrape_poetrydb
from genai_assets.sources.poets_org import PoetsOrgOptions, html_poem_text, scrape_poets_org
from genai_assets_tests.fixtures import (
    POETRYDB_POEMS,
    POETS_ORG_LINKS,
    POETS_ORG_POEMS,
    fixture_bytes,
    serve_poetrydb,
    serve_poets_org,
)
from genai_assets_tests.loopback_server import LoopbackServer, Reply

FAST = HttpPolicy(min_interval_s=0.0, timeout_s=5.0, backoff_base_s=0.01, backoff_max_s=0.02, max_wait_s=0.02)


@pytest.fixture
def server():
    with LoopbackServer() as running:
        yield running


def shape(text: str) -> tuple[int, int]:
    """(lines, stanzas) of a contract-layout text."""
    stanzas = text.split("\n\n")
    return sum(len(stanza.split("\n")) for stanza in stanzas), len(stanzas)


def scrape_every_poem(server, serve, scrape, expected: dict):
    """Serve a site's fixtures, scrape it; every poem must come back with its author, lines and stanzas."""
    serve(server)
    with PoliteClient(server.url, FAST) as client:
        result = scrape(client)
    got = {record["title"]: (record["author"], *shape(record["text"])) for record in result.records}
    assert got == {title: (author, lines, stanzas) for title, (author, lines, stanzas) in expected.items()}
    return result


# -- PoetryDB -----------------------------------------------------------------------------------


def test_poetrydb_parses_every_poem_exactly(server):
    result = scrape_every_poem(server, serve_poetrydb, scrape_poetrydb, POETRYDB_POEMS)
    assert result.details["authors_listed"] == 3 and result.details["authors_failed"] == 1
    assert result.details["malformed_entries"] == 1
    assert result.stats.skip_reasons == {"author_not_found": 1}
    tyger = next(record for record in result.records if record["title"] == "The Tyger")
    assert tyger["text"].startswith("Tyger Tyger, burning bright,\nIn the forests of the night;")
    assert tyger["url"] == f"{server.url}/author/William%20Blake"
    assert schema_problems(raw_poems_frame(result.records)) == []


def test_poetrydb_author_list_and_caps(server):
    serve_poetrydb(server)
    with PoliteClient(server.url, FAST) as client:
        result = scrape_poetrydb(client, PoetryDBOptions(authors=["Emily Dickinson"]))
    assert [record["author"] for record in result.records] == ["Emily Dickinson"]
    assert server.hits("/author") == 0  # an explicit list skips GET /author
    with PoliteClient(server.url, FAST) as client:
        capped = scrape_poetrydb(client, PoetryDBOptions(max_authors=1, max_poems=1))
    assert [record["title"] for record in capped.records] == ["The Tyger"]


def test_poetrydb_down_is_a_clear_site_error(server):
    server.route("/robots.txt", Reply.text(""))
    server.route("/author", Reply(status=503))
    with PoliteClient(server.url, FAST) as client, pytest.raises(SiteUnavailableError, match="author list"):
        scrape_poetrydb(client)


def test_poetrydb_retries_429_then_succeeds(server):
    serve_poetrydb(server)
    blake = Reply(
        body=fixture_bytes("poetrydb", "author_william_blake.json"),
        headers={"Content-Type": "application/json"},
    )
    server.route("/author/William%20Blake", Reply(status=429, headers={"Retry-After": "0"}), blake)
    with PoliteClient(server.url, FAST) as client:
        result = scrape_poetrydb(client)
    assert len(result.records) == 3 and result.stats.retries == 1


def test_lines_to_text_stanza_breaks():
    assert lines_to_text(["a", "b", "", "", "c", ""]) == "a\nb\n\nc"


# -- poets.org ------------------------------------------------------------------------------------


def test_poets_org_public_domain_only(server):
    result = scrape_every_poem(server, serve_poets_org, scrape_poets_org, POETS_ORG_POEMS)
    assert result.details["listing_pages"] == 2 and result.details["poem_links"] == POETS_ORG_LINKS
    assert result.details["copyrighted_skipped"] == 1
    assert result.stats.skip_reasons == {"malformed_page": 1}  # the broken page: skipped and counted
    assert all(record["license"].startswith("Public domain") for record in result.records)
    colossus = next(record for record in result.records if record["title"] == "The New Colossus")
    # Served as windows-1252: curly quotes must survive decoding.
    assert "\u201cKeep, ancient lands, your storied pomp!\u201d cries she" in colossus["text"]
    assert colossus["tags"] == ["Liberty", "Immigration"]
    assert colossus["url"] == f"{server.url}/poem/new-colossus"
    mask = next(record for record in result.records if record["title"] == "We Wear the Mask")
    assert mask["text"].split("\n\n")[1] == (
        "Why should the world be over-wise,\nIn counting all our tears and sighs?\n"
        "Nay, let them only see us, while\nWe wear the mask."
    )
    assert schema_problems(raw_poems_frame(result.records)) == []


def test_poets_org_keeps_copyrighted_with_attribution_when_asked(server):
    serve_poets_org(server)
    with PoliteClient(server.url, FAST) as client:
        result = scrape_poets_org(client, PoetsOrgOptions(public_domain_only=False))
    licenses = {record["title"]: record["license"] for record in result.records}
    assert len(licenses) == 4
    assert licenses["A Copyrighted Poem"].startswith("Copyright \u00a9 2020 by A. Living Poet")


def test_poets_org_robots_disallow_skips_pages(server):
    serve_poets_org(server, robots="User-agent: *\nDisallow: /poem/o-captain\n")
    with PoliteClient(server.url, FAST) as client:
        result = scrape_poets_org(client)
    assert "O Captain! My Captain!" not in {record["title"] for record in result.records}
    assert result.stats.skip_reasons["robots_disallowed"] == 1
    assert server.hits("/poem/o-captain-my-captain") == 0


def test_poets_org_max_poems_stops_early(server):
    serve_poets_org(server)
    policy = HttpPolicy(**{**FAST.__dict__, "max_concurrency": 1})
    with PoliteClient(server.url, policy) as client:
        result = scrape_poets_org(client, PoetsOrgOptions(max_poems=1, max_listing_pages=1))
    assert len(result.records) == 1 and result.details["listing_pages"] == 1
    assert server.hits("/poem/o-captain-my-captain") == 0  # on page 2, never reached


def test_poets_org_listing_down_is_a_site_error(server):
    server.route("/robots.txt", Reply.text(""))
    server.route("/poems", Reply(status=500))
    with PoliteClient(server.url, FAST) as client, pytest.raises(SiteUnavailableError, match="listing"):
        scrape_poets_org(client)


def test_html_poem_text_layouts():
    from selectolax.lexbor import LexborHTMLParser

    html = (
        "<div id=b><p>one<br>two <em>x</em></p><p>three</p>"
        "<div>four</div><div>five</div><div>six<br>\n<br>seven</div><script>no()</script></div>"
    )
    node = LexborHTMLParser(html).css_first("#b")
    assert html_poem_text(node) == "one\ntwo x\n\nthree\n\nfour\nfive\nsix\n\nseven"
