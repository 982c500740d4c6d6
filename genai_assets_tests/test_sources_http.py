"""The polite HTTP client against a loopback server: retries, caps, redirects, charsets, robots."""

from __future__ import annotations

import pytest

from genai_assets.sources.http import (
    FetchError,
    HttpPolicy,
    PoliteClient,
    SiteUnavailableError,
    decode_body,
    parse_retry_after,
)
from genai_assets_tests.loopback_server import LoopbackServer, Reply


@pytest.fixture
def server():
    with LoopbackServer() as running:
        yield running


FAST = dict(min_interval_s=0.0, timeout_s=5.0, backoff_base_s=0.01, backoff_max_s=0.05, max_wait_s=0.05)


def client_for(server: LoopbackServer, sleeps: list[float] | None = None, **overrides) -> PoliteClient:
    policy = HttpPolicy(**{**FAST, **overrides})
    if sleeps is None:
        return PoliteClient(server.url, policy)
    return PoliteClient(server.url, policy, sleep=sleeps.append)


def test_sends_user_agent_with_contact_and_reads_robots_once(server):
    server.route("/robots.txt", Reply.text("User-agent: *\nDisallow: /private/\n"))
    server.route("/a", Reply.text("A"))
    server.route("/b", Reply.text("B"))
    with client_for(server) as client:
        assert client.get("/a").text == "A"
        assert client.get("b").text == "B"
    assert server.hits("/robots.txt") == 1
    agent = server.requests[-1].headers["User-Agent"]
    assert "genai-assets" in agent and "https://" in agent
    assert client.stats.pages_fetched == 2 and client.stats.requests == 3


def test_robots_disallow_is_honoured(server):
    server.route("/robots.txt", Reply.text("User-agent: *\nDisallow: /private/\n"))
    server.route("/private/poem", Reply.text("secret"))
    with client_for(server) as client, pytest.raises(FetchError) as raised:
        client.get("/private/poem")
    assert raised.value.reason == "robots_disallowed"
    assert server.hits("/private/poem") == 0


def test_missing_robots_allows_everything_and_crawl_delay_is_honoured(server):
    server.route("/robots.txt", Reply.text("User-agent: *\nCrawl-delay: 7\n"))
    server.route("/a", Reply.text("A"))
    sleeps: list[float] = []
    with client_for(server, sleeps) as client:
        client.get("/a")
        client.get("/a")
    # The second request must wait for the site's Crawl-delay (7 s), not our 0 s interval.
    assert sleeps and max(sleeps) > 6.0


def test_429_with_retry_after_then_success(server):
    server.route("/robots.txt", Reply.text("", status=404))
    server.route("/busy", Reply(status=429, headers={"Retry-After": "3"}), Reply.text("done"))
    sleeps: list[float] = []
    with client_for(server, sleeps, max_wait_s=10.0) as client:
        assert client.get("/busy").text == "done"
    assert client.stats.retries == 1
    assert client.stats.waits_s == [3.0]  # the server's Retry-After, not our tiny backoff
    assert server.hits("/busy") == 2


def test_500_then_success_uses_exponential_backoff(server):
    server.route("/flaky", Reply(status=500), Reply(status=503), Reply.text("ok"))
    sleeps: list[float] = []
    with client_for(server, sleeps, respect_robots=False, backoff_base_s=1.0, backoff_max_s=30.0,
                    max_wait_s=30.0) as client:  # fmt: skip
        assert client.get("/flaky").text == "ok"
    assert client.stats.retries == 2
    first, second = client.stats.waits_s
    assert 1.0 <= first < 2.0 and 2.0 <= second < 3.0  # base * 2**k plus < base of jitter


def test_persistent_500_gives_up_with_reason(server):
    server.route("/down", Reply(status=502))
    with (
        client_for(server, respect_robots=False, max_retries=2) as client,
        pytest.raises(FetchError) as raised,
    ):
        client.get("/down")
    assert raised.value.reason == "http_502"
    assert server.hits("/down") == 3


def test_timeout_then_success(server):
    server.route("/slow", Reply.text("late", delay_s=1.0), Reply.text("fast"))
    with client_for(server, respect_robots=False, timeout_s=0.3) as client:
        assert client.get("/slow").text == "fast"
    assert client.stats.retries >= 1  # one, unless a loaded machine also delays the fast reply


def test_timeout_every_time_is_skipped_in_fetch_many(server):
    server.route("/slow", Reply.text("late", delay_s=1.0))
    server.route("/fine", Reply.text("fine"))
    with client_for(server, respect_robots=False, timeout_s=0.3, max_retries=1) as client:
        results = dict(client.fetch_many(["/slow", "/fine"], lambda c, path: c.get(path).text))
    assert results == {"/slow": None, "/fine": "fine"}
    assert client.stats.skip_reasons == {"timeout": 1}
    assert client.stats.pages_skipped == 1 and client.stats.pages_fetched == 1


def test_off_host_redirect_refused_and_same_host_followed(server):
    server.route("/moved", Reply.redirect("/poem/new"))
    server.route("/poem/new", Reply.text("here"))
    server.route("/away", Reply.redirect("http://example.com/poem"))
    with client_for(server, respect_robots=False) as client:
        page = client.get("/moved")
        assert page.text == "here" and page.url.endswith("/poem/new")
        with pytest.raises(FetchError) as raised:
            client.get("/away")
    assert raised.value.reason == "off_host_redirect"


def test_oversized_body_refused_with_and_without_content_length(server):
    big = "x" * 5000
    server.route("/declared", Reply.text(big))
    server.route("/streamed", Reply.text(big, send_length=False))
    with client_for(server, respect_robots=False, max_bytes=1024) as client:
        for path in ("/declared", "/streamed"):
            with pytest.raises(FetchError) as raised:
                client.get(path)
            assert raised.value.reason == "too_large"


def test_windows_1252_page_decoded_with_declared_charset(server):
    text = "\u201cCo\u00fbt\u00e9\u201d \u2014 na\u00efve"  # curly quotes, accents, em dash
    server.route("/header", Reply.html(f"<p>{text}</p>", charset="windows-1252"))
    meta_page = f'<html><head><meta charset="windows-1252"></head><body><p>{text}</p></body></html>'
    server.route("/meta", Reply(body=meta_page.encode("cp1252"), headers={"Content-Type": "text/html"}))
    with client_for(server, respect_robots=False) as client:
        assert text in client.get("/header").text
        meta = client.get("/meta")
    assert text in meta.text and meta.encoding == "cp1252"


def test_decode_body_fallbacks():
    assert decode_body("caf\u00e9".encode(), "text/plain") == ("caf\u00e9", "utf-8")
    # latin-1 declared → read as windows-1252 (WHATWG), so 0x93/0x94 become curly quotes
    assert decode_body(b"\x93hi\x94", "text/html; charset=ISO-8859-1")[0] == "\u201chi\u201d"
    # unknown declared charset → detection instead of a crash
    text, _ = decode_body(
        "Ce po\u00e8me est tr\u00e8s tr\u00e8s long".encode("cp1252") * 5, "text/plain; charset=bogus"
    )
    assert "po\u00e8me" in text


def test_parse_retry_after():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("") is None and parse_retry_after("soon") is None
    from datetime import UTC, datetime

    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Mon, 01 Jan 2024 12:00:30 GMT", now=now) == 30.0


def test_unreachable_site_is_a_site_error():
    stopped = LoopbackServer()
    stopped.stop()  # never started: the port is closed now, so connections are refused
    policy = HttpPolicy(**{**FAST, "max_retries": 1})
    with PoliteClient(stopped.url, policy) as client, pytest.raises(SiteUnavailableError, match="robots.txt"):
        client.get("/author")


def test_policy_validation():
    with pytest.raises(ValueError, match="contact URL"):
        HttpPolicy(user_agent="bot")
    with pytest.raises(ValueError, match="max_bytes"):
        HttpPolicy(max_bytes=10)


def test_robots_redirect_within_site_is_followed(server):
    server.route("/robots.txt", Reply.redirect("/robots-real.txt", status=301))
    server.route("/robots-real.txt", Reply.text("User-agent: *\nDisallow: /private/\n"))
    server.route("/private/x", Reply.text("no"))
    with client_for(server) as client, pytest.raises(FetchError) as raised:
        client.get("/private/x")
    assert raised.value.reason == "robots_disallowed" and server.hits("/robots-real.txt") == 1
