"""raw_poems against bad days: a rejected re-scrape, a corrupt last snapshot, a hostile site.

Run through Dagster with a real (ephemeral) instance, so what the catalog records is asserted:
materialization counts, check executions, observations.
"""

from __future__ import annotations

import json
import time
import tracemalloc

import dagster as dg
import pandas as pd
import pytest

from genai_assets.defs._io_manager import ParquetIOManager
from genai_assets.defs._resources import DataLake
from genai_assets.defs.raw import ScraperSettings, raw_poems
from genai_assets_tests.fixtures import (
    POETRYDB_POEMS,
    POETS_ORG_POEMS,
    poets_org_page,
    serve_poetrydb,
    serve_poets_org,
)
from genai_assets_tests.loopback_server import LoopbackServer, Reply
from genai_assets_tests.test_raw_asset import FAST_SCRAPER
from genai_assets_tests.test_sources_hostile import gzip_zeros, stacked_bomb

RAW = dg.AssetKey("raw_poems")
MIB = 1 << 20


@pytest.fixture
def server():
    with LoopbackServer() as running:
        yield running


def materialize(site, lake_root, server, instance=None, **scraper_overrides):
    return dg.materialize(
        [raw_poems],
        resources={
            "io_manager": ParquetIOManager(root=str(lake_root)),
            "lake": DataLake(root=str(lake_root)),
            "scraper": ScraperSettings(
                **{**FAST_SCRAPER, **scraper_overrides},
                poetrydb_base_url=server.url,
                poets_org_base_url=server.url,
            ),
        },
        partition_key=site,
        instance=instance,
        raise_on_error=False,
    )


def materializations(instance: dg.DagsterInstance) -> list:
    return list(instance.fetch_materializations(RAW, limit=100).records)


def check_history(instance: dg.DagsterInstance, name: str) -> list[str]:
    """Statuses of the check's executions, newest first."""
    records = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(RAW, name), limit=10
    )
    return [record.status.value for record in records]


def test_rejected_rescrape_records_no_materialization_and_a_failed_check(lake_root, server):
    serve_poetrydb(server)
    with dg.instance_for_test() as instance:
        assert materialize("poetrydb", lake_root, server, instance).success
        [first] = materializations(instance)
        assert first.asset_materialization.metadata["poems"].value == 3

        server.route("/author", Reply.json({"authors": ["Emily Dickinson"]}))  # collapses to 1 poem
        rejected = materialize("poetrydb", lake_root, server, instance)
        assert not rejected.success  # the blocking check fails the step

        # The catalog is unchanged: still one materialization, the good one with 3 poems ...
        [latest] = materializations(instance)
        assert latest.storage_id == first.storage_id
        assert (
            instance.get_latest_materialization_event(RAW).asset_materialization.metadata["poems"].value == 3
        )
        # ... the check shows failed (newest first) ...
        assert check_history(instance, "row_count_not_collapsed") == ["FAILED", "SUCCEEDED"]
        # ... and the rejected scrape's figures are an observation, not a snapshot.
        [observation] = instance.fetch_observations(RAW, limit=10).records
        metadata = observation.asset_observation.metadata
        assert metadata["poems"].value == 1 and metadata["snapshot_replaced"].value is False
        assert observation.asset_observation.partition == "poetrydb"
    assert len(pd.read_parquet(lake_root / "raw_poems" / "poetrydb.parquet")) == 3


@pytest.mark.parametrize("corrupt", [b"", b"PAR1 truncated by a full disk", b"not parquet at all" * 10])
def test_corrupt_previous_snapshot_is_moved_aside_not_fatal(lake_root, server, corrupt):
    serve_poetrydb(server)
    snapshot = lake_root / "raw_poems" / "poetrydb.parquet"
    snapshot.parent.mkdir(parents=True)
    snapshot.write_bytes(corrupt)
    with dg.instance_for_test() as instance:
        result = materialize("poetrydb", lake_root, server, instance)
        assert result.success
        warnings = [
            event.message
            for event in instance.all_logs(result.run_id)
            if event.level == 30 and "unreadable" in (event.message or "")  # logging.WARNING
        ]
    assert len(warnings) == 1 and "_corrupt" in warnings[0]
    [moved] = (lake_root / "raw_poems" / "_corrupt").glob("poetrydb-*.parquet")
    assert moved.read_bytes() == corrupt  # kept for inspection
    assert len(pd.read_parquet(snapshot)) == 3  # judged as a first scrape: no collapse check
    [materialization] = result.asset_materializations_for_node("raw_poems")
    assert str(moved) == materialization.metadata["corrupt_previous_moved_to"].value
    assert materialization.metadata["previous_rows"].value == "none"


# -- a site that serves every attack at once, next to its good pages -------------------------

#: Declared charsets that are no text encoding; each page is real UTF-8 JSON with one good poem.
NOT_CHARSETS = ("base64", "zlib", "hex", "rot13", "idna")


def serve_hostile_poetrydb(server: LoopbackServer) -> dict[str, str]:
    """The fixture PoetryDB plus one hostile author per attack; returns author → expected reason."""
    serve_poetrydb(server)
    listed = json.loads(_fixture("poetrydb/authors.json"))["authors"]
    expected: dict[str, str] = {}

    def add(author: str, reply: Reply, reason: str | None) -> None:
        listed.append(author)
        server.route("/author/" + author.replace(" ", "%20"), reply)
        if reason:
            expected[author] = reason

    json_type = {"Content-Type": "application/json"}
    add("Stacked Bomb", Reply(body=stacked_bomb(256), headers={**json_type, "Content-Encoding": "gzip, gzip"}),
        "unsupported_encoding")  # fmt: skip
    add(
        "Gzip Bomb",
        Reply(body=gzip_zeros(64), headers={**json_type, "Content-Encoding": "gzip"}),
        "too_large",
    )
    add(
        "Slow Drip", Reply(body=b"[" + b" " * 400 + b"]", headers=json_type, drip_s=0.05), "deadline_exceeded"
    )
    add("Deep Json", Reply(body=b"[" * 100_000 + b"]" * 100_000, headers=json_type), "malformed_json")
    for charset in NOT_CHARSETS:
        poem = [
            {"title": f"Ode in {charset}", "author": f"Poet {charset}", "lines": ["One line,", "", "two."]}
        ]
        add(f"Poet {charset}", Reply(body=json.dumps(poem).encode(), headers={"Content-Type": f"application/json; charset={charset}"}), None)  # fmt: skip
    server.route("/author", Reply.json({"authors": listed}))
    return expected


def _fixture(relative: str) -> bytes:
    from genai_assets_tests.fixtures import FIXTURES

    return (FIXTURES / relative).read_bytes()


def test_hostile_poetrydb_partition_keeps_every_good_poem_in_bounded_time_and_memory(lake_root, server):
    expected_reasons = serve_hostile_poetrydb(server)
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = materialize("poetrydb", lake_root, server, request_deadline_s=1.0, max_bytes=MIB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - started
    assert result.success
    frame = pd.read_parquet(lake_root / "raw_poems" / "poetrydb.parquet")
    assert sorted(frame["title"]) == sorted([*POETRYDB_POEMS, *(f"Ode in {name}" for name in NOT_CHARSETS)])
    [materialization] = result.asset_materializations_for_node("raw_poems")
    http = materialization.metadata["http"].value
    counted = dict(http["skip_reasons"])
    assert counted.pop("author_not_found") == 1  # the fixture's unknown author
    assert counted == {reason: 1 for reason in expected_reasons.values()}
    assert materialization.metadata["pages_skipped"].value == len(expected_reasons) + 1
    # Bounds (measured under load: ~5 s and ~20 MiB of Python heap, Dagster included). Without
    # the fixes the stacked bomb alone allocates > 500 MiB and the drip holds ~20 s.
    assert elapsed < 60, f"{elapsed:.0f} s"
    assert peak < 96 * MIB, f"peak {peak / MIB:.0f} MiB"


def test_hostile_poets_org_pages_are_skipped_or_decoded_never_fatal(lake_root, server):
    serve_poets_org(server)
    listing = _fixture("poets_org/listing_page_0.html").decode()
    extra_links = "".join(f'<a href="/poem/hostile-{index}">x</a>' for index in range(4))
    server.route("/poems", Reply.html(listing.replace("</body>", extra_links + "</body>")))
    gzip_html = {"Content-Type": "text/html", "Content-Encoding": "gzip, gzip"}
    server.route("/poem/hostile-0", Reply(body=stacked_bomb(64), headers=gzip_html))
    server.route("/poem/hostile-1", Reply.html("<html><body>" + "<div>" * 50_000 + "deep"))
    page = (
        '<html><head><meta charset="rot13"></head><body><h1>Hostile Charset Ode</h1>'
        '<div class="poem__body"><p>Caf\u00e9 line one<br>line two</p></div>'
        '<div class="poem__credit">This poem is in the public domain.</div></body></html>'
    )
    server.route("/poem/hostile-2", Reply(body=page.encode(), headers={"Content-Type": "text/html"}))
    server.route(
        "/poem/hostile-3",
        Reply(body=b"<html>" + b"x" * 200, headers={"Content-Type": "text/html"}, drip_s=0.05),
    )
    result = materialize("poets_org", lake_root, server, request_deadline_s=1.0, max_bytes=MIB)
    assert result.success
    frame = pd.read_parquet(lake_root / "raw_poems" / "poets_org.parquet")
    titles = set(frame["title"])
    assert "Hostile Charset Ode" in titles  # the rot13 <meta> is ignored, the page read as UTF-8
    assert "Caf\u00e9 line one\nline two" in set(frame["text"])
    assert set(POETS_ORG_POEMS) & titles  # the good fixture poems linked from page 0 are kept
    http = result.asset_materializations_for_node("raw_poems")[0].metadata["http"].value
    assert http["skip_reasons"]["unsupported_encoding"] == 1
    assert http["skip_reasons"]["deadline_exceeded"] == 1


# -- one bad record or page never fails the site ---------------------------------------------


def test_poems_whose_fields_cannot_be_encoded_are_dropped_and_counted_the_rest_written(lake_root, server):
    serve_poetrydb(server)
    good = json.loads(_fixture("poetrydb/author_emily_dickinson.json"))
    bad = [  # json.dumps writes the lone surrogates as \ud800 escapes; json.loads gives them back
        {"title": "Lone \ud800 title", "author": "Emily Dickinson", "lines": ["a line", "another"]},
        {"title": "Lone author", "author": "Emily \udfff Dickinson", "lines": ["a line", "another"]},
        {"title": "Lone text", "author": "Emily Dickinson", "lines": ["a \udc80 line", "another"]},
    ]
    server.route("/author/Emily%20Dickinson", Reply.json(bad[:2] + good + bad[2:]))
    result = materialize("poetrydb", lake_root, server)
    assert result.success
    frame = pd.read_parquet(lake_root / "raw_poems" / "poetrydb.parquet")
    assert sorted(frame["title"]) == sorted(POETRYDB_POEMS)  # every well-formed poem, same page too
    [materialization] = result.asset_materializations_for_node("raw_poems")
    assert materialization.metadata["records_dropped"].value == 3
    assert materialization.metadata["records_dropped_by_reason"].value["counts"] == {
        "unencodable_author": 1,
        "unencodable_text": 1,
        "unencodable_title": 1,
    }


def test_a_listing_page_whose_next_link_httpx_refuses_keeps_the_poems_found(lake_root, server):
    serve_poets_org(server)
    listing = _fixture("poets_org/listing_page_1.html").decode()
    too_long = '<a rel="next" href="/poems?page=' + "2" * 70_000 + '">next</a>'  # httpx: InvalidURL
    server.route("/poems?page=1", Reply.html(listing.replace("</main>", too_long + "</main>")))
    # Two links to one poem (same poem_id) and a poem page redirected to the site root (no key).
    page_0 = _fixture("poets_org/listing_page_0.html").decode()
    extra = '<a href="/poem/mask-again">again</a><a href="/poem/moved-home">home</a>'
    server.route("/poems", Reply.html(page_0.replace("</body>", extra + "</body>")))
    server.route("/poem/mask-again", Reply.redirect("/poem/we-wear-mask"))
    server.route("/poem/moved-home", Reply.redirect("/"))
    server.route("/", Reply(body=poets_org_page("we-wear-mask"), headers={"Content-Type": "text/html"}))
    result = materialize("poets_org", lake_root, server)
    assert result.success
    frame = pd.read_parquet(lake_root / "raw_poems" / "poets_org.parquet")
    assert sorted(frame["title"]) == sorted(POETS_ORG_POEMS)
    [materialization] = result.asset_materializations_for_node("raw_poems")
    assert materialization.metadata["http"].value["skip_reasons"]["bad_url"] == 1  # the page-2 link
    assert materialization.metadata["records_dropped_by_reason"].value["counts"] == {
        "duplicate_poem_id": 1,
        "empty_source_key": 1,
    }
