"""Hostile servers against the polite client: decompression bombs, slow drips, absurd
Crawl-delays, charsets that are not charsets, JSON nested too deep, pages that crash a parser.

Each test names the attack and asserts the bound (memory, time, requests) or the counted skip.
"""

from __future__ import annotations

import gzip
import time
import tracemalloc
import zlib

import pytest

from genai_assets.sources.http import (
    BoundedDecoder,
    DecodedTooLargeError,
    FetchError,
    HttpPolicy,
    PoliteClient,
    SiteUnavailableError,
)
from genai_assets_tests.loopback_server import LoopbackServer, Reply

FAST = dict(min_interval_s=0.0, timeout_s=5.0, backoff_base_s=0.01, backoff_max_s=0.02, max_wait_s=0.02)
MIB = 1 << 20


@pytest.fixture
def server():
    with LoopbackServer() as running:
        yield running


def client_for(server: LoopbackServer, sleeps: list[float] | None = None, **overrides) -> PoliteClient:
    policy = HttpPolicy(**{**FAST, "respect_robots": False, **overrides})
    if sleeps is None:
        return PoliteClient(server.url, policy)
    return PoliteClient(server.url, policy, sleep=sleeps.append)


def gzip_zeros(n_mib: int) -> bytes:
    """``n_mib`` MiB of zero bytes, gzipped (about 1000:1) without holding them in memory."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MIB)
    return b"".join([compressor.compress(block) for _ in range(n_mib)] + [compressor.flush()])


def stacked_bomb(n_mib: int = 256) -> bytes:
    """``gzip(gzip(zeros))``: a few hundred bytes on the wire, ``n_mib`` MiB once both are undone."""
    return gzip.compress(gzip_zeros(n_mib), 9)


def peak_bytes_while(action) -> int:
    """Peak Python heap (tracemalloc) allocated while ``action()`` runs, above the start."""
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        action()
        return tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


def fetch_error(client: PoliteClient, path: str) -> FetchError:
    with pytest.raises(FetchError) as raised:
        client.get(path)
    return raised.value


def bomb_error_and_peak(server, bomb: bytes, headers: dict) -> tuple[FetchError, int]:
    """Serve ``bomb`` at /bomb to a client capped at 1 MiB: the error it raises and the peak bytes allocated."""
    server.route("/bomb", Reply(body=bomb, headers=headers))
    errors: list[FetchError] = []
    with client_for(server, max_bytes=MIB) as client:
        peak = peak_bytes_while(lambda: errors.append(fetch_error(client, "/bomb")))
    return errors[0], peak


# -- decompression bombs --------------------------------------------------------------------


def test_stacked_gzip_bomb_is_refused_with_bounded_memory(server):
    bomb = stacked_bomb(256)
    assert len(bomb) < 4096  # a few KiB on the wire ...
    error, peak = bomb_error_and_peak(
        server, bomb, {"Content-Type": "text/html", "Content-Encoding": "gzip, gzip"}
    )
    assert error.reason == "unsupported_encoding" and "stacked" in error.detail
    assert peak < 8 * MIB, f"peak {peak / MIB:.1f} MiB"  # ... 256 MiB if it had been decoded


def test_single_gzip_bomb_stops_at_the_decoded_cap_not_after(server):
    bomb = gzip_zeros(64)  # 64 MiB decoded from ~64 KiB: one wire chunk inflates past any cap
    assert len(bomb) < 128 * 1024
    error, peak = bomb_error_and_peak(
        server, bomb, {"Content-Type": "text/plain", "Content-Encoding": "gzip"}
    )
    assert error.reason == "too_large" and "decoded body passed 1048576" in error.detail
    assert peak < 8 * MIB, f"peak {peak / MIB:.1f} MiB"


def test_gzip_and_both_deflate_flavours_still_decode(server):
    text = "Tyger Tyger, burning bright,\nIn the forests of the night;\n" * 50
    raw = text.encode()
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw_deflate = compressor.compress(raw) + compressor.flush()
    for path, body, coding in (
        ("/gzip", gzip.compress(raw), "gzip"),
        ("/zlib", zlib.compress(raw), "deflate"),
        ("/raw-deflate", raw_deflate, "deflate"),
        ("/identity", raw, "identity"),
    ):
        server.route(
            path,
            Reply(
                body=body, headers={"Content-Type": "text/plain; charset=utf-8", "Content-Encoding": coding}
            ),
        )
    with client_for(server) as client:
        for path in ("/gzip", "/zlib", "/raw-deflate", "/identity"):
            assert client.get(path).text == text, path


def test_unrequested_and_corrupt_encodings_are_counted_reasons(server):
    server.route("/br", Reply(body=b"\x1b\x00", headers={"Content-Encoding": "br"}))
    server.route(
        "/broken", Reply(body=b"\x1f\x8b\x08\x00garbage-not-gzip", headers={"Content-Encoding": "gzip"})
    )
    with client_for(server) as client:
        assert fetch_error(client, "/br").reason == "unsupported_encoding"
        assert fetch_error(client, "/broken").reason == "bad_encoding"


def test_bounded_decoder_unit():
    payload = gzip.compress(b"a" * 5000)
    decoder = BoundedDecoder("GZIP", limit=5000)
    assert decoder.feed(payload[:10]) + decoder.feed(payload[10:]) + decoder.flush() == b"a" * 5000
    with pytest.raises(DecodedTooLargeError):
        BoundedDecoder("gzip", limit=4999).feed(payload)
    for header in ("gzip, gzip", "deflate,gzip", "zstd", "compress"):
        with pytest.raises(ValueError):
            BoundedDecoder(header, limit=5000)


# -- slow drip and Crawl-delay ---------------------------------------------------------------


def test_slow_drip_is_cut_at_the_whole_request_deadline_and_not_retried(server):
    # Each byte arrives well within the 2 s read timeout, so only a whole-request deadline helps.
    server.route("/drip", Reply.text("x" * 400, drip_s=0.05))  # 20 s to finish
    with client_for(server, timeout_s=2.0, request_deadline_s=1.0, max_retries=3) as client:
        started = time.monotonic()
        error = fetch_error(client, "/drip")
        elapsed = time.monotonic() - started
    assert error.reason == "deadline_exceeded"
    assert elapsed < 5.0, f"{elapsed:.1f} s"  # measured under load: about 1 s
    assert server.hits("/drip") == 1  # a drip is not retried (it would drip again)


def test_an_honest_slow_page_within_the_deadline_is_kept(server):
    server.route("/slowish", Reply.text("ok", drip_s=0.05))
    with client_for(server, timeout_s=2.0, request_deadline_s=10.0) as client:
        assert client.get("/slowish").text == "ok"


def test_huge_crawl_delay_is_capped_and_recorded(server):
    server.route("/robots.txt", Reply.text("User-agent: *\nCrawl-delay: 86400\n"))
    server.route("/a", Reply.text("A"))
    sleeps: list[float] = []
    with client_for(server, sleeps, respect_robots=True, max_crawl_delay_s=5.0) as client:
        client.get("/a")
        client.get("/a")
    assert sleeps and 4.0 < max(sleeps) <= 5.0  # not a day
    metadata = client.stats.as_metadata()
    assert metadata["crawl_delay_requested_s"] == 86400.0
    assert metadata["crawl_delay_used_s"] == 5.0 and metadata["crawl_delay_capped"] is True


def test_a_modest_crawl_delay_is_honoured_uncapped(server):
    server.route("/robots.txt", Reply.text("User-agent: *\nCrawl-delay: 3\n"))
    server.route("/a", Reply.text("A"))
    with client_for(server, [], respect_robots=True) as client:
        client.get("/a")
    assert client.stats.as_metadata()["crawl_delay_capped"] is False
    assert client.stats.crawl_delay_used_s == 3.0


# -- charsets that are not charsets, deep JSON, crashing parsers -------------------------------

NOT_CHARSETS = ("base64", "zlib", "hex", "rot13", "idna", "bz2", "uu", "quopri", "undefined", "punycode")


@pytest.mark.parametrize("charset", NOT_CHARSETS)
def test_codec_names_that_are_not_charsets_decode_without_raising(server, charset):
    body = "<html><body><p>\u201cWild nights\u201d \u00e9</p></body></html>"
    server.route(
        "/header", Reply(body=body.encode(), headers={"Content-Type": f"text/html; charset={charset}"})
    )
    meta = f'<html><head><meta charset="{charset}"></head><body><p>\u00e9t\u00e9</p></body></html>'
    server.route("/meta", Reply(body=meta.encode(), headers={"Content-Type": "text/html"}))
    with client_for(server) as client:
        assert "\u201cWild nights\u201d" in client.get("/header").text  # fell back to UTF-8
        assert "\u00e9t\u00e9" in client.get("/meta").text


def test_json_nested_too_deep_is_malformed_json_not_a_crash(server):
    server.route(
        "/deep", Reply(body=b"[" * 200_000 + b"]" * 200_000, headers={"Content-Type": "application/json"})
    )
    with client_for(server) as client, pytest.raises(FetchError) as raised:
        client.get_json("/deep")
    assert raised.value.reason == "malformed_json" and "RecursionError" in raised.value.detail


def test_any_exception_from_one_page_is_skipped_and_counted(server):
    for name in ("a", "b", "c"):
        server.route(f"/{name}", Reply.text(name))

    def parse(client: PoliteClient, path: str) -> str:
        text = client.get(path).text
        if text == "b":
            raise KeyError("parser bug on page b")
        return text.upper()

    with client_for(server) as client:
        results = dict(client.fetch_many(["/a", "/b", "/c"], parse))
    assert results == {"/a": "A", "/b": None, "/c": "C"}
    assert client.stats.skip_reasons == {"page_error:KeyError": 1}
    assert "parser bug on page b" in client.stats.as_metadata()["skip_examples"]["page_error:KeyError"]


def test_malformed_urls_and_redirects_are_counted_not_raised(server):
    server.route("/bad-redirect", Reply(status=302, headers={"Location": "http://[oops/x"}))
    with client_for(server) as client:
        assert fetch_error(client, "http://[oops/poem").reason == "bad_url"
        assert fetch_error(client, "/bad-redirect").reason == "bad_redirect"


def test_slow_drip_of_the_headers_is_cut_at_the_deadline_too():
    """A server dripping its *status line and headers*: httpx waits for them before any body
    loop runs, so only a deadline applied to every socket read can end it."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def drip() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 10_000:
                if stop.is_set():
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return  # the client hung up: what we want
                time.sleep(0.05)

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    policy = HttpPolicy(**{**FAST, "respect_robots": False, "timeout_s": 2.0, "request_deadline_s": 1.0})
    try:
        with PoliteClient(url, policy) as client:
            started = time.monotonic()
            error = fetch_error(client, "/")
            elapsed = time.monotonic() - started
    finally:
        stop.set()
        listener.close()
    assert error.reason == "deadline_exceeded"
    assert elapsed < 5.0, f"{elapsed:.1f} s"  # measured under load: about 1 s


# -- Location headers httpx cannot parse, robots.txt nobody can read (RFC 9309) ---------------


def test_a_location_httpx_cannot_parse_is_a_bad_redirect_not_an_exception(server):
    port = server.url.rsplit(":", 1)[1]
    server.route("/too-long", Reply.redirect("/" + "a" * 65_530))  # httpx: InvalidURL "URL too long"
    server.route("/bad-port", Reply.redirect(f"http://127.0.0.1:{port}:9/x"))  # httpx: "Invalid port"
    with client_for(server, max_retries=2) as client:
        for path in ("/too-long", "/bad-port"):
            error = fetch_error(client, path)
            assert error.reason == "bad_redirect", (path, error)
            assert server.hits(path) == 1  # the server's answer was read once, not retried


def test_any_exception_while_fetching_one_url_becomes_a_fetch_error(server, monkeypatch):
    server.route("/a", Reply.text("A"))
    with client_for(server) as client:
        monkeypatch.setattr(client._http, "stream", lambda *args, **kwargs: 1 / 0)
        error = fetch_error(client, "/a")
    assert error.reason == "request_error:ZeroDivisionError"


def robots_client(server, **overrides) -> PoliteClient:
    return client_for(server, respect_robots=True, **overrides)


def test_robots_redirect_to_an_unparsable_location_means_no_rules(server):
    # RFC 9309 §2.3.1.2-3: a robots.txt redirect that cannot be followed reads as "unavailable".
    server.route("/robots.txt", Reply.redirect("/" + "r" * 65_530))
    server.route("/poem/a", Reply.text("A"))
    with robots_client(server) as client:
        assert client.get("/poem/a").text == "A"


def test_robots_lines_that_cannot_be_parsed_are_skipped_and_the_rest_obeyed(server):
    robots = "User-agent: *\nCrawl-delay: \u00b2\nDisallow: //[x\nRequest-rate: \u00b2/\u00b2\nDisallow: /private/\n"
    server.route("/robots.txt", Reply.text(robots))
    server.route("/public", Reply.text("ok"))
    server.route("/private/x", Reply.text("no"))
    with robots_client(server) as client:
        assert client.get("/public").text == "ok"
        assert fetch_error(client, "/private/x").reason == "robots_disallowed"
    assert client.stats.as_metadata()["robots_lines_skipped"] == 3
    assert server.hits("/private/x") == 0


def test_a_crawl_delay_too_large_for_a_float_is_capped(server):
    server.route("/robots.txt", Reply.text("User-agent: *\nCrawl-delay: " + "9" * 400 + "\n"))
    server.route("/a", Reply.text("A"))
    with robots_client(server, max_crawl_delay_s=2.0) as client:
        client.get("/a")
    assert client.stats.crawl_delay_used_s == 2.0


def test_an_oversized_robots_txt_is_parsed_up_to_the_limit(server):
    # RFC 9309 §2.5: parse at least the first 500 KiB; the rules there apply.
    robots = "User-agent: *\nDisallow: /private/\n" + "# padding line\n" * 200_000  # ~3 MB
    server.route("/robots.txt", Reply.text(robots))
    server.route("/public", Reply.text("ok"))
    with robots_client(server, max_bytes=MIB) as client:
        assert client.get("/public").text == "ok"
        assert fetch_error(client, "/private/x").reason == "robots_disallowed"


@pytest.mark.parametrize(
    "reply",
    [
        Reply(status=503),
        Reply(body=b"\x1f\x8b\x08\x00garbage-not-gzip", headers={"Content-Encoding": "gzip"}),
    ],
    ids=["5xx", "corrupt-gzip"],
)
def test_an_unreachable_robots_txt_means_nothing_is_fetched(server, reply):
    # RFC 9309 §2.3.1.4: server errors (and a body we cannot read) mean complete disallow.
    server.route("/robots.txt", reply)
    server.route("/a", Reply.text("A"))
    with robots_client(server, max_retries=0) as client, pytest.raises(SiteUnavailableError, match="robots"):
        client.get("/a")
    assert server.hits("/a") == 0
