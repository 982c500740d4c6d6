"""One polite, robust HTTP client for every online source site (PoetryDB, poets.org).

What "polite" means here, and where each rule is enforced:

* a descriptive User-Agent with a contact URL (``HttpPolicy.user_agent``), sent on every request;
* robots.txt (RFC 9309) fetched once per client and obeyed via ``urllib.robotparser``; a
  larger ``Crawl-delay`` than our own interval is honoured too, up to ``max_crawl_delay_s`` (a
  site asking for hours between requests would otherwise stall the run; the requested and the
  used delay are both in the metadata);
* a rate limit: at least ``min_interval_s`` between the *starts* of any two requests, shared by
  all worker threads;
* bounded concurrency: ``fetch_many`` runs at most ``max_concurrency`` requests at once over one
  pooled ``httpx.Client``.

What "robust" means:

* retries with exponential backoff on 429, 5xx, timeouts and connection errors, honouring
  ``Retry-After`` (seconds or an HTTP date; capped by ``max_wait_s``);
* a size cap on the *decoded* body: the raw bytes are streamed and decompressed here, one
  ``gzip``/``deflate`` layer at most, by a bounded decompressor that stops as soon as the output
  passes ``max_bytes`` (a decompression bomb costs at most ``max_bytes`` of memory); stacked or
  unknown ``Content-Encoding`` is refused;
* a whole-request deadline (``request_deadline_s``) on top of the per-read timeout: every socket
  read/write gets at most the time left, so a server dripping one byte a second is cut off;
* redirects followed by hand, and only within the site's own scheme+host;
* text decoded with the declared charset, else an HTML ``<meta charset>``, else a BOM, else
  strict UTF-8, else ``charset_normalizer`` detection;
* every exception raised while fetching one URL becomes a :class:`FetchError` with a short
  ``reason`` that callers count and skip (an unparsable URL or ``Location`` is ``bad_url`` /
  ``bad_redirect``, anything unforeseen ``request_error:<type>``), and ``fetch_many`` counts any
  other exception from one page (a parser bug, ``RecursionError`` ...) as ``page_error:<type>``
  instead of failing the site; only a failure of the whole site raises
  :class:`SiteUnavailableError`;
* robots.txt read as RFC 9309 says: 4xx or a redirect we cannot follow (off site, too many,
  unparsable) = no rules (§2.3.1.2-3); 5xx, network errors and timeouts = unreachable, so
  nothing is fetched (§2.3.1.4: complete disallow) and the site keeps its last snapshot; only
  the first ``max(max_bytes, 512 KiB)`` are parsed (§2.5), and a line that cannot be parsed is
  skipped while every parseable rule is used (§2.5).

Every knob, including the sleeping function, is injectable so tests run in milliseconds.
"""

from __future__ import annotations

import codecs
import collections
import email.utils
import functools
import random
import re
import ssl
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpcore
import httpx

from genai_assets.config_checks import Ge, Gt, raise_problems, range_problems

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: robots.txt bytes parsed at least (RFC 9309 §2.5: a parsing limit of at least 500 KiB).
ROBOTS_PARSE_LIMIT = 512 * 1024
#: Where :func:`_hide_location` moves a response's ``Location`` header.
_HIDDEN_LOCATION = "x-genai-assets-location"
DEFAULT_USER_AGENT = (
    "genai-assets-poetry-scraper/0.1 (public-domain poetry corpus for research; "
    "+https://github.com/genai-assets/genai_assets/blob/main/docs/scraping.md)"
)

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class HttpPolicy:
    """Politeness and robustness settings of one client (see module docstring)."""

    user_agent: Annotated[str, "must name us and give a contact URL"] = DEFAULT_USER_AGENT
    min_interval_s: Annotated[float, Ge(0), "minimum seconds between request starts (rate limit)"] = 1.0
    timeout_s: Annotated[float, Gt(0), "connect/read timeout per socket operation"] = 20.0
    request_deadline_s: Annotated[float, Gt(0), "whole request (headers + body), however slowly it drips"] = (
        60.0
    )
    max_retries: Annotated[int, Ge(0), "extra attempts after the first one, on retryable failures"] = 4
    backoff_base_s: Annotated[float, Ge(0), "wait before retry k is backoff_base_s * 2**k (plus jitter)"] = (
        1.0
    )
    backoff_max_s: Annotated[float, Ge(0), "ceiling for the exponential backoff"] = 60.0
    max_wait_s: Annotated[float, Ge(0), "ceiling for any single wait, including a server's Retry-After"] = (
        120.0
    )
    max_bytes: Annotated[int, Ge(1024), "abandon a response body larger than this"] = 2_000_000
    max_concurrency: Annotated[int, Ge(1), "parallel requests in fetch_many"] = 4
    max_redirects: Annotated[int, Ge(0), "same-host redirects followed per request"] = 5
    respect_robots: Annotated[bool, "obey robots.txt (turn off only for your own servers)"] = True
    max_crawl_delay_s: Annotated[
        float, Ge(0), "ceiling on a robots.txt Crawl-delay (recorded when applied)"
    ] = 30.0

    def __post_init__(self) -> None:
        problems = range_problems(self)
        if not self.user_agent.strip() or "http" not in self.user_agent:
            problems.append(
                f"user_agent must describe the scraper and include a contact URL (http...), got {self.user_agent!r}"
            )
        raise_problems(self, problems)


class FetchError(Exception):
    """One URL could not be fetched; ``reason`` is a short counter key (e.g. ``"too_large"``)."""

    def __init__(self, url: str, reason: str, detail: str = "") -> None:
        self.url = url
        self.reason = reason
        self.detail = detail
        super().__init__(f"{url}: {reason}" + (f" ({detail})" if detail else ""))


class SiteUnavailableError(RuntimeError):
    """The whole site failed (its entry point could not be fetched): nothing to snapshot."""


@dataclass
class FetchStats:
    """Counters of one scrape, safe to update from worker threads."""

    requests: int = 0  # HTTP requests sent, including retries, redirects and robots.txt
    pages_fetched: int = 0  # URLs that produced a usable response
    pages_skipped: int = 0  # URLs or pages given up on (fetch errors, malformed, robots...)
    retries: int = 0  # retry attempts after 429/5xx/timeouts/connection errors
    bytes_received: int = 0
    waits_s: list[float] = field(default_factory=list)  # every backoff/Retry-After wait, in order
    skip_reasons: collections.Counter = field(default_factory=collections.Counter)
    skip_examples: dict[str, str] = field(default_factory=dict)  # first "url: detail" per reason
    crawl_delay_requested_s: float | None = None  # robots.txt Crawl-delay, as the site asked
    crawl_delay_used_s: float | None = None  # what we applied (capped by max_crawl_delay_s)
    robots_lines_skipped: int = 0  # robots.txt lines that could not be parsed (the rest are used)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(self, name, getattr(self, name) + value)

    def skip(self, reason: str, example: str = "") -> None:
        """Count one skipped page under ``reason`` (``example``: the first one is kept for metadata)."""
        with self._lock:
            self.pages_skipped += 1
            self.skip_reasons[reason] += 1
            if example and reason not in self.skip_examples:
                self.skip_examples[reason] = example[:300]

    def record_wait(self, seconds: float) -> None:
        with self._lock:
            self.waits_s.append(seconds)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "pages_fetched": self.pages_fetched,
            "pages_skipped": self.pages_skipped,
            "pages_retried": self.retries,
            "bytes_received": self.bytes_received,
            "skip_reasons": dict(sorted(self.skip_reasons.items())),
            "skip_examples": dict(sorted(self.skip_examples.items())),
            "crawl_delay_requested_s": self.crawl_delay_requested_s,
            "crawl_delay_used_s": self.crawl_delay_used_s,
            "robots_lines_skipped": self.robots_lines_skipped,
            "crawl_delay_capped": (
                self.crawl_delay_requested_s is not None
                and self.crawl_delay_used_s is not None
                and self.crawl_delay_used_s < self.crawl_delay_requested_s
            ),
        }


@dataclass(frozen=True)
class Page:
    """A fetched response: final URL (after same-host redirects), status, decoded text."""

    url: str
    status: int
    headers: dict[str, str]  # lower-cased names
    encoding: str
    content: bytes
    text: str
    truncated: bool = False  # cut at the size cap (robots.txt only; other pages are refused)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        import json

        return json.loads(self.text)


class PoliteClient:
    """HTTP GETs against one site (``base_url``) under an :class:`HttpPolicy`.

    Use as a context manager. ``get`` raises :class:`FetchError` for per-URL failures and counts
    nothing as skipped (the caller decides whether a failure skips a page or kills the site);
    ``fetch_many`` maps a parser over many URLs, counting and skipping failures.
    """

    def __init__(
        self,
        base_url: str,
        policy: HttpPolicy | None = None,
        stats: FetchStats | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"Base URL must be an absolute http(s) URL, got {base_url!r}.")
        self.base_url = base_url.rstrip("/") + "/"
        self.origin = (parts.scheme, parts.netloc.lower())
        self.policy = policy or HttpPolicy()
        self.stats = stats or FetchStats()
        self._sleep = sleep
        self._clock = clock
        self._rate_lock = threading.Lock()
        self._next_start = 0.0
        self._robots: RobotFileParser | None = None
        self._robots_lock = threading.Lock()
        self._interval_s = self.policy.min_interval_s
        self._http = httpx.Client(
            transport=_deadline_transport(self.policy.max_concurrency),
            headers={"User-Agent": self.policy.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(self.policy.timeout_s),
            follow_redirects=False,  # redirects are checked against the site's host by hand
            event_hooks={"response": [_hide_location]},
        )

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- URLs -------------------------------------------------------------------------------

    def url_for(self, path_or_url: str) -> str:
        """Absolute URL for a site path (``"author/Keats"``) or an absolute URL on the same site."""
        return urljoin(self.base_url, path_or_url)

    def is_same_site(self, url: str) -> bool:
        parts = urlsplit(url)
        return (parts.scheme, parts.netloc.lower()) == self.origin

    # -- robots.txt -------------------------------------------------------------------------

    def allowed_by_robots(self, url: str) -> bool:
        if not self.policy.respect_robots:
            return True
        with self._robots_lock:
            if self._robots is None:
                self._robots = self._load_robots()
        return self._robots.can_fetch(self.policy.user_agent, url)

    def _load_robots(self) -> RobotFileParser:
        robots_url = self.url_for("/robots.txt")
        try:
            page = self._fetch_robots(robots_url)
        except FetchError as error:
            if not error.reason.startswith(("http_4", "bad_url", "bad_redirect")):
                # RFC 9309 §2.3.1.4: unreachable (5xx, network, timeout, a body we cannot read)
                # means complete disallow: nothing is fetched and the last snapshot stays.
                raise SiteUnavailableError(
                    f"robots.txt at {robots_url} could not be fetched ({error.reason}); "
                    "the site looks unreachable, so nothing was scraped."
                ) from error
            page = None  # §2.3.1.3: unavailable (4xx, an unusable redirect) means no restrictions
        parser, skipped = parse_robots(
            robots_url, page.text if page else "", page is not None and page.truncated
        )
        self.stats.robots_lines_skipped = skipped
        delay = parser.crawl_delay(self.policy.user_agent)
        if delay is not None:
            try:
                requested = float(delay)
            except OverflowError:  # an integer of hundreds of digits
                requested = sys.float_info.max
            # A site asking for more spacing than we planned gets it, up to the ceiling: a
            # Crawl-delay of a day would otherwise hold the run for weeks (the cap is in metadata).
            used = min(requested, self.policy.max_crawl_delay_s)
            self.stats.crawl_delay_requested_s = requested
            self.stats.crawl_delay_used_s = used
            self._interval_s = max(self._interval_s, used)
        return parser

    def _fetch_robots(self, robots_url: str) -> Page | None:
        """robots.txt after same-site redirects (e.g. http → https); None when none is usable."""
        limit = max(self.policy.max_bytes, ROBOTS_PARSE_LIMIT)
        page = self._request_with_retries(robots_url, truncate_at=limit)
        for _ in range(self.policy.max_redirects):
            if page.status not in REDIRECT_STATUSES:
                return page
            target = self._redirect_target(page)
            if not self.is_same_site(target):
                return None  # we never fetch from another host: read as "no robots.txt"
            page = self._request_with_retries(target, truncate_at=limit)
        # Still a redirect after max_redirects (§2.3.1.2 allows treating that as unavailable).
        return None if page.status in REDIRECT_STATUSES else page

    def _redirect_target(self, page: Page) -> str:
        """Absolute URL of a redirect's ``Location``; ``FetchError("bad_redirect")`` if unusable."""
        try:
            target = urljoin(page.url, page.headers.get("location", ""))
            httpx.URL(target)  # refuses what httpx could not request (too long, control characters)
        except (ValueError, httpx.InvalidURL) as error:
            raise FetchError(page.url, "bad_redirect", str(error)[:200]) from error
        return target

    # -- fetching ---------------------------------------------------------------------------

    def get(self, path_or_url: str) -> Page:
        """GET one URL on this site: robots, rate limit, retries, same-host redirects, size cap.

        Every problem with this URL raises :class:`FetchError`, whatever raised it underneath
        (only an unreachable site's robots.txt raises :class:`SiteUnavailableError`).
        """
        try:
            return self._get(path_or_url)
        except (FetchError, SiteUnavailableError):
            raise
        except Exception as error:  # noqa: BLE001 (one URL's problem: the caller counts and skips it)
            raise FetchError(
                str(path_or_url)[:200], f"request_error:{type(error).__name__}", str(error)[:200]
            ) from error

    def _get(self, path_or_url: str) -> Page:
        try:
            url = self.url_for(path_or_url)
        except ValueError as error:  # e.g. "http://[oops": urljoin refuses it
            raise FetchError(str(path_or_url)[:200], "bad_url", str(error)) from error
        for _ in range(self.policy.max_redirects + 1):
            if not self.is_same_site(url):
                raise FetchError(url, "off_site_url", f"not on {self.origin[0]}://{self.origin[1]}")
            if not self.allowed_by_robots(url):
                raise FetchError(url, "robots_disallowed")
            page = self._request_with_retries(url)
            if page.status not in REDIRECT_STATUSES:
                self.stats.add(pages_fetched=1)
                return page
            target = self._redirect_target(page)
            if not self.is_same_site(target):
                raise FetchError(url, "off_host_redirect", f"redirect to {target} refused")
            url = target
        raise FetchError(url, "too_many_redirects", f"more than {self.policy.max_redirects}")

    def get_json(self, path_or_url: str) -> Any:
        page = self.get(path_or_url)
        try:
            return page.json()
        except (ValueError, RecursionError) as error:  # RecursionError: JSON nested thousands deep
            raise FetchError(page.url, "malformed_json", f"{type(error).__name__}: {error}"[:200]) from error

    def fetch_many(
        self, items: Iterable[T], fetch: Callable[[PoliteClient, T], R | None]
    ) -> Iterator[tuple[T, R | None]]:
        """Run ``fetch(self, item)`` for every item with at most ``max_concurrency`` in flight.

        Yields ``(item, result)`` in input order. A :class:`FetchError` from ``fetch`` is counted
        as a skipped page (by its reason) and yields ``(item, None)``; so is any other exception
        (reason ``page_error:<type>``): one bad page must never fail the site. Only
        :class:`SiteUnavailableError` (and non-``Exception`` signals) propagate.
        """

        def guarded(item: T) -> R | None:
            try:
                return fetch(self, item)
            except FetchError as error:
                self.stats.skip(error.reason, str(error))
                return None
            except SiteUnavailableError:
                raise
            except Exception as error:  # noqa: BLE001 (counted and shown in metadata, never silent)
                self.stats.skip(f"page_error:{type(error).__name__}", f"{item}: {error}")
                return None

        item_list = list(items)
        with ThreadPoolExecutor(max_workers=self.policy.max_concurrency) as pool:
            yield from zip(item_list, pool.map(guarded, item_list), strict=True)

    def _wait_for_slot(self) -> None:
        """Block until this thread may start a request (shared rate limit across threads)."""
        with self._rate_lock:
            now = self._clock()
            start = max(now, self._next_start)
            self._next_start = start + self._interval_s
        if start > now:
            self._sleep(start - now)

    def _backoff_s(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            wait = retry_after
        else:
            wait = min(self.policy.backoff_max_s, self.policy.backoff_base_s * 2**attempt)
            wait += random.uniform(0, self.policy.backoff_base_s)  # jitter spreads retries out
        return min(wait, self.policy.max_wait_s)

    def _request_with_retries(self, url: str, truncate_at: int | None = None) -> Page:
        last_reason = "unknown"
        for attempt in range(self.policy.max_retries + 1):
            if attempt:
                self.stats.add(retries=1)
            retry_after: float | None = None
            try:
                page = self._request_once(url, truncate_at)
            except _DeadlineExceededError as error:
                # A server that drips once will drip again: retrying would multiply the wait.
                raise FetchError(url, "deadline_exceeded", str(error)) from error
            except httpx.TimeoutException:
                last_reason = "timeout"
            except httpx.TransportError as error:
                last_reason = f"connection_error:{type(error).__name__}"
            except FetchError:
                raise
            except httpx.InvalidURL as error:  # too long, control characters: httpx will not send it
                raise FetchError(url[:200], "bad_url", str(error)[:200]) from error
            except Exception as error:  # noqa: BLE001 (never retried: the same URL fails the same way)
                raise FetchError(
                    url[:200], f"request_error:{type(error).__name__}", str(error)[:200]
                ) from error
            else:
                if page.status not in RETRYABLE_STATUSES:
                    if 200 <= page.status < 300 or page.status in REDIRECT_STATUSES:
                        return page
                    raise FetchError(url, f"http_{page.status}")
                last_reason = f"http_{page.status}"
                retry_after = parse_retry_after(page.headers.get("retry-after", ""))
            if attempt < self.policy.max_retries:
                wait = self._backoff_s(attempt, retry_after)
                self.stats.record_wait(wait)
                self._sleep(wait)
        raise FetchError(url, last_reason, f"gave up after {self.policy.max_retries + 1} attempts")

    def _request_once(self, url: str, truncate_at: int | None = None) -> Page:
        self._wait_for_slot()
        self.stats.add(requests=1)
        deadline = time.monotonic() + self.policy.request_deadline_s
        _REQUEST_DEADLINE.value = deadline
        try:
            return self._stream_page(url, truncate_at)
        except httpx.TimeoutException as error:
            if time.monotonic() >= deadline:
                raise _DeadlineExceededError(
                    f"no complete response within {self.policy.request_deadline_s} s"
                ) from error
            raise
        finally:
            _REQUEST_DEADLINE.value = None

    def _stream_page(self, url: str, truncate_at: int | None = None) -> Page:
        """One GET. The body is decoded under the size cap; with ``truncate_at`` an oversized
        body is cut there instead of refused (robots.txt: RFC 9309 §2.5 parses a prefix)."""
        limit = truncate_at or self.policy.max_bytes
        with self._http.stream("GET", url) as response:
            status = response.status_code
            headers = {name.lower(): value for name, value in response.headers.items()}
            if _HIDDEN_LOCATION in headers:
                headers["location"] = headers.pop(_HIDDEN_LOCATION)
            if status in REDIRECT_STATUSES or status in RETRYABLE_STATUSES or status >= 400:
                return Page(url, status, headers, "", b"", "")  # error and redirect bodies are never used
            declared = response.headers.get("content-length")
            if not truncate_at and declared and declared.isdigit() and int(declared) > limit:
                raise FetchError(url, "too_large", f"Content-Length {declared} > {limit}")
            try:
                decoder = BoundedDecoder(headers.get("content-encoding", ""), limit)
            except ValueError as error:
                raise FetchError(url, "unsupported_encoding", str(error)) from error
            content, truncated = self._read_body(response, decoder, url, truncate=bool(truncate_at))
            text, encoding = decode_body(content, headers.get("content-type", ""))
            return Page(url, status, headers, encoding, content, text, truncated)

    def _read_body(
        self, response: httpx.Response, decoder: BoundedDecoder, url: str, truncate: bool
    ) -> tuple[bytes, bool]:
        """``(decoded body, cut at the limit?)``: raw wire bytes decoded here under the cap
        (httpx would decode unbounded); past the cap: ``too_large``, or a cut when ``truncate``."""
        limit = decoder.limit
        chunks: list[bytes] = []
        wire = 0
        truncated = False
        try:
            for raw in response.iter_raw():
                wire += len(raw)
                if wire > limit:
                    if not truncate:
                        raise FetchError(url, "too_large", f"body passed {limit} bytes on the wire")
                    chunks.append(decoder.feed(raw[: len(raw) - (wire - limit)]))
                    truncated = True
                    break
                chunks.append(decoder.feed(raw))
            if not truncated:
                chunks.append(decoder.flush())
        except DecodedTooLargeError as error:
            if not truncate:
                raise FetchError(url, "too_large", str(error)) from error
            truncated = True
        except zlib.error as error:
            raise FetchError(url, "bad_encoding", f"{decoder.coding}: {error}") from error
        finally:
            self.stats.add(bytes_received=wire)
        return b"".join(chunks), truncated


def _hide_location(response: httpx.Response) -> None:
    """httpx response hook: move ``Location`` out of httpx's sight.

    Even with ``follow_redirects=False`` httpx builds the next request from ``Location`` and
    raises (``RemoteProtocolError``, or ``InvalidURL`` from a join that grows too long) on one it
    cannot parse, before we see the response. Redirects are judged by :meth:`PoliteClient.get`,
    which reads the header back and refuses a bad one as ``bad_redirect``.
    """
    location = response.headers.get("location")
    if location is not None:
        del response.headers["location"]
        response.headers[_HIDDEN_LOCATION] = location


class DecodedTooLargeError(Exception):
    """The decoded body passed the size cap (raised before the excess is held in memory)."""


#: Content-Encodings we accept (and advertise in Accept-Encoding), with their zlib window bits.
_ZLIB_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class BoundedDecoder:
    """Streaming ``Content-Encoding`` decoder whose total output never passes ``limit`` bytes.

    One ``gzip``/``deflate`` layer (or none) is accepted; stacked codings (``gzip, gzip``: a
    million-to-one bomb) and codings we never asked for (``br``, ``zstd``, ``compress``) raise
    ``ValueError`` up front. Each ``decompress`` call is given ``max_length`` = the room left + 1,
    so the decompressor itself stops; memory stays at most ``limit`` plus one wire chunk.
    """

    def __init__(self, content_encoding: str, limit: int) -> None:
        codings = [
            part.strip().lower()
            for part in content_encoding.split(",")
            if part.strip() and part.strip().lower() != "identity"
        ]
        if len(codings) > 1:
            raise ValueError(f"stacked Content-Encoding {content_encoding!r} refused")
        if codings and codings[0] not in _ZLIB_WBITS:
            raise ValueError(f"Content-Encoding {codings[0]!r} was not requested")
        self.coding = codings[0] if codings else "identity"
        self.limit = limit
        self.size = 0
        self._zlib = zlib.decompressobj(_ZLIB_WBITS[self.coding]) if codings else None
        self._started = False

    def _count(self, piece: bytes) -> bytes:
        self.size += len(piece)
        if self.size > self.limit:
            raise DecodedTooLargeError(f"decoded body passed {self.limit} bytes ({self.coding})")
        return piece

    def feed(self, data: bytes) -> bytes:
        if self._zlib is None:
            return self._count(data)
        if not self._started and self.coding == "deflate" and data:
            self._started = True
            try:  # "deflate" is zlib-wrapped by the RFC, but many servers send raw deflate
                probe = zlib.decompressobj(zlib.MAX_WBITS)
                probe.decompress(data[:64], 1)
            except zlib.error:
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
        pieces = []
        while data:
            pieces.append(self._count(self._zlib.decompress(data, self.limit - self.size + 1)))
            data = self._zlib.unconsumed_tail
        return b"".join(pieces)

    def flush(self) -> bytes:
        return self._count(self._zlib.flush()) if self._zlib is not None else b""


class _DeadlineExceededError(Exception):
    """The whole-request deadline passed (internal; becomes ``FetchError("deadline_exceeded")``)."""


#: Deadline (``time.monotonic()``) of the request running on this thread, or None. httpx's sync
#: client does all socket I/O of a request on the calling thread, so a thread-local reaches it.
_REQUEST_DEADLINE = threading.local()


def _time_left(timeout: float | None) -> float | None:
    """The socket timeout to use now: the per-operation timeout, shortened to the deadline."""
    deadline = getattr(_REQUEST_DEADLINE, "value", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("whole-request deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read/write is bounded by the request deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _time_left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _time_left(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:  # noqa: ANN001
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, _time_left(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend with :class:`_DeadlineStream` connections."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # noqa: ANN001
        return _DeadlineStream(
            self._backend.connect_tcp(host, port, _time_left(timeout), local_address, socket_options)
        )

    def connect_unix_socket(self, path, timeout=None, socket_options=None):  # noqa: ANN001
        return _DeadlineStream(self._backend.connect_unix_socket(path, _time_left(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


@functools.cache
def _verified_ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once: loading the CA bundle takes ~0.1 s per client."""
    return httpx.create_ssl_context()


def _deadline_transport(max_connections: int) -> httpx.HTTPTransport:
    """An httpx transport whose connections honour the per-thread request deadline.

    httpx exposes no network-backend option, so the transport's connection pool is replaced by
    an equivalent public ``httpcore.ConnectionPool`` built with :class:`_DeadlineBackend`.
    """
    transport = httpx.HTTPTransport(verify=_verified_ssl_context())
    transport._pool = httpcore.ConnectionPool(  # noqa: SLF001 (see docstring)
        ssl_context=_verified_ssl_context(),
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=5.0,
        network_backend=_DeadlineBackend(),
    )
    return transport


def parse_robots(url: str, text: str, truncated: bool = False) -> tuple[RobotFileParser, int]:
    """``(parser, lines skipped)`` for a robots.txt body, using every line that parses.

    ``urllib.robotparser`` raises on some lines (``Crawl-delay: ²`` or one of 5,000 digits:
    ``int()`` refuses them; ``Disallow: //[x``: an invalid IPv6 netloc) and then the whole file
    would be lost; RFC 9309 §2.5 says to use the parseable rules, so only such lines are dropped.
    A body cut at the parsing limit loses its last, partial line.
    """
    lines = text.splitlines()
    if truncated and lines:
        lines.pop()
    parser = RobotFileParser(url)
    try:
        parser.parse(lines)
        return parser, 0
    except Exception:  # noqa: BLE001 (some line is unparseable: find it below)
        pass
    usable = [line for line in lines if _robots_line_parses(line)]
    parser = RobotFileParser(url)  # the failed parse left half an entry behind
    parser.parse(usable)
    return parser, len(lines) - len(usable)


def _robots_line_parses(line: str) -> bool:
    try:
        RobotFileParser().parse(["User-agent: *", line])
    except Exception:  # noqa: BLE001
        return False
    return True


def parse_retry_after(value: str, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date); None if absent/bad."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def declared_charset(content_type: str) -> str | None:
    """The ``charset=`` parameter of a Content-Type header, if any."""
    match = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", content_type or "", re.IGNORECASE)
    return match.group(1) if match else None


#: Codecs Python knows that are not page charsets: ``idna``/``punycode`` raise on ordinary text,
#: ``undefined`` always raises, the ``*_escape`` codecs interpret backslashes, and the
#: bytes-to-bytes/str-to-str codecs (``base64``, ``zlib``, ``hex``, ``rot13`` ...) are not text
#: encodings at all. A page declaring one of them is decoded as if it declared nothing.
_NOT_CHARSETS = frozenset(
    {"idna", "punycode", "undefined", "unicode_escape", "raw_unicode_escape", "escape_codec"}
)


def _known_codec(name: str | None) -> str | None:
    """Python's codec name for a declared charset, or None when it is no usable text charset."""
    if not name:
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: e.g. an embedded NUL in the name
        return None
    # _is_text_encoding is False for base64/zlib/hex/rot13/...: decoding with them raises.
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return info.name


def _try_decode(content: bytes, codec: str) -> str | None:
    try:
        return content.decode(codec, errors="replace")
    except (LookupError, UnicodeError, ValueError, TypeError):  # a codec that still misbehaves
        return None


def decode_body(content: bytes, content_type: str = "") -> tuple[str, str]:
    """Decode a body: header charset, then ``<meta charset>`` (HTML), BOM, UTF-8, detection.

    Returns ``(text, encoding used)`` and never raises: a declared charset that is unknown or is
    no text encoding (``base64``, ``rot13``, ``idna`` ...) is ignored. A declared
    ``iso-8859-1``/``latin-1`` is read as windows-1252, as browsers do (WHATWG Encoding
    Standard), so curly quotes survive.
    """
    candidates = [declared_charset(content_type)]
    if "html" in content_type.lower() or content[:512].lstrip().lower().startswith((b"<!doctype", b"<html")):
        match = _META_CHARSET.search(content[:4096])
        candidates.append(match.group(1).decode("ascii") if match else None)
    for name in candidates:
        codec = _known_codec(name)
        if codec in ("latin-1", "iso8859-1", "ascii"):
            codec = "cp1252"
        text = _try_decode(content, codec) if codec else None
        if text is not None:
            return text, codec
    for bom, codec in _BOMS:
        if content.startswith(bom):
            return content.decode(codec, errors="replace"), codec
    try:
        return content.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    try:
        matches = list(from_bytes(content))
    except Exception:  # noqa: BLE001 (detection is a best effort; a page never fails on it)
        matches = []
    if not matches:
        return content.decode("utf-8", errors="replace"), "utf-8"
    # Short Western texts are ambiguous between single-byte code pages (cp1250/cp1252/...
    # decode them all without "chaos"); like browsers, prefer windows-1252 among equally good ones.
    least_chaos = min(match.chaos for match in matches)
    for match in matches:
        if match.encoding == "cp1252" and match.chaos <= least_chaos:
            return str(match), "cp1252"
    return str(matches[0]), matches[0].encoding
