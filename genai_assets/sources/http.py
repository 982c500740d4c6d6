"""One polite, robust HTTP client for every online source site (PoetryDB, poets.org).

What "polite" means here, and where each rule is enforced:

* a descriptive User-Agent with a contact URL (``HttpPolicy.user_agent``), sent on every request;
* robots.txt (RFC 9309) fetched once per client and obeyed via ``urllib.robotparser``; a
  larger ``Crawl-delay`` than our own interval is honoured too;
* a rate limit: at least ``min_interval_s`` between the *starts* of any two requests, shared by
  all worker threads;
* bounded concurrency: ``fetch_many`` runs at most ``max_concurrency`` requests at once over one
  pooled ``httpx.Client``.

What "robust" means:

* retries with exponential backoff on 429, 5xx, timeouts and connection errors, honouring
  ``Retry-After`` (seconds or an HTTP date; capped by ``max_wait_s``);
* a size cap: bodies are streamed and abandoned as soon as they pass ``max_bytes``;
* redirects followed by hand, and only within the site's own scheme+host;
* text decoded with the declared charset, else an HTML ``<meta charset>``, else a BOM, else
  strict UTF-8, else ``charset_normalizer`` detection;
* every per-page problem becomes a :class:`FetchError` with a short ``reason`` that callers
  count and skip; only a failure of the whole site raises :class:`SiteUnavailableError`.

Every knob, including the sleeping function, is injectable so tests run in milliseconds.
"""

from __future__ import annotations

import codecs
import collections
import email.utils
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_USER_AGENT = (
    "genai-assets-poetry-scraper/0.1 (public-domain poetry corpus for research; "
    "+https://github.com/genai-assets/genai_assets/blob/main/docs/scraping.md)"
)

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class HttpPolicy:
    """Politeness and robustness settings of one client (see module docstring)."""

    user_agent: str = DEFAULT_USER_AGENT  # must name us and give a contact URL
    min_interval_s: float = 1.0  # minimum seconds between request starts (rate limit)
    timeout_s: float = 20.0  # connect/read timeout per request
    max_retries: int = 4  # extra attempts after the first one, on retryable failures
    backoff_base_s: float = 1.0  # wait before retry k is backoff_base_s * 2**k (plus jitter)
    backoff_max_s: float = 60.0  # ceiling for the exponential backoff
    max_wait_s: float = 120.0  # ceiling for any single wait, including a server's Retry-After
    max_bytes: int = 2_000_000  # abandon a response body larger than this
    max_concurrency: int = 4  # parallel requests in fetch_many
    max_redirects: int = 5  # same-host redirects followed per request
    respect_robots: bool = True  # obey robots.txt (turn off only for your own servers)

    def __post_init__(self) -> None:
        if not self.user_agent.strip() or "http" not in self.user_agent:
            raise ValueError(
                "HttpPolicy.user_agent must describe the scraper and include a contact URL "
                f"(http...), got {self.user_agent!r}."
            )
        for name in ("min_interval_s", "backoff_base_s", "backoff_max_s", "max_wait_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"HttpPolicy.{name} must be >= 0, got {getattr(self, name)}.")
        if self.timeout_s <= 0:
            raise ValueError(f"HttpPolicy.timeout_s must be > 0, got {self.timeout_s}.")
        if self.max_retries < 0 or self.max_redirects < 0:
            raise ValueError("HttpPolicy.max_retries and max_redirects must be >= 0.")
        if self.max_bytes < 1024:
            raise ValueError(f"HttpPolicy.max_bytes must be at least 1024, got {self.max_bytes}.")
        if self.max_concurrency < 1:
            raise ValueError(f"HttpPolicy.max_concurrency must be >= 1, got {self.max_concurrency}.")


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
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(self, name, getattr(self, name) + value)

    def skip(self, reason: str) -> None:
        """Count one skipped page under ``reason``."""
        with self._lock:
            self.pages_skipped += 1
            self.skip_reasons[reason] += 1

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
            headers={"User-Agent": self.policy.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(self.policy.timeout_s),
            follow_redirects=False,  # redirects are checked against the site's host by hand
            limits=httpx.Limits(
                max_connections=self.policy.max_concurrency,
                max_keepalive_connections=self.policy.max_concurrency,
            ),
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
        parser = RobotFileParser(robots_url)
        try:
            page = self._request_with_retries(robots_url)
            for _ in range(self.policy.max_redirects):  # e.g. http → https, or a trailing-slash fix
                if page.status not in REDIRECT_STATUSES:
                    break
                target = urljoin(page.url, page.headers.get("location", ""))
                if not self.is_same_site(target):
                    break  # we never fetch from another host: read as "no robots.txt" below
                page = self._request_with_retries(target)
        except FetchError as error:
            if error.reason.startswith("http_4"):
                # RFC 9309 §2.3.1.3: an unavailable (4xx) robots.txt means no restrictions.
                parser.parse([])
                return parser
            raise SiteUnavailableError(
                f"robots.txt at {robots_url} could not be fetched ({error.reason}); "
                "the site looks unreachable, so nothing was scraped."
            ) from error
        # A redirect left unfollowed (off-site, or too many) counts as unavailable: no rules.
        parser.parse([] if page.status in REDIRECT_STATUSES else page.text.splitlines())
        delay = parser.crawl_delay(self.policy.user_agent)
        if delay is not None and float(delay) > self._interval_s:
            self._interval_s = float(delay)  # the site asks for more spacing than we planned
        return parser

    # -- fetching ---------------------------------------------------------------------------

    def get(self, path_or_url: str) -> Page:
        """GET one URL on this site: robots, rate limit, retries, same-host redirects, size cap."""
        url = self.url_for(path_or_url)
        for _ in range(self.policy.max_redirects + 1):
            if not self.is_same_site(url):
                raise FetchError(url, "off_site_url", f"not on {self.origin[0]}://{self.origin[1]}")
            if not self.allowed_by_robots(url):
                raise FetchError(url, "robots_disallowed")
            page = self._request_with_retries(url)
            if page.status not in REDIRECT_STATUSES:
                self.stats.add(pages_fetched=1)
                return page
            target = urljoin(url, page.headers.get("location", ""))
            if not self.is_same_site(target):
                raise FetchError(url, "off_host_redirect", f"redirect to {target} refused")
            url = target
        raise FetchError(url, "too_many_redirects", f"more than {self.policy.max_redirects}")

    def get_json(self, path_or_url: str) -> Any:
        page = self.get(path_or_url)
        try:
            return page.json()
        except ValueError as error:
            raise FetchError(page.url, "malformed_json", str(error)[:200]) from error

    def fetch_many(
        self, items: Iterable[T], fetch: Callable[[PoliteClient, T], R | None]
    ) -> Iterator[tuple[T, R | None]]:
        """Run ``fetch(self, item)`` for every item with at most ``max_concurrency`` in flight.

        Yields ``(item, result)`` in input order. A :class:`FetchError` from ``fetch`` is counted
        as a skipped page (by its reason) and yields ``(item, None)``; anything else propagates.
        """

        def guarded(item: T) -> R | None:
            try:
                return fetch(self, item)
            except FetchError as error:
                self.stats.skip(error.reason)
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

    def _request_with_retries(self, url: str) -> Page:
        last_reason = "unknown"
        for attempt in range(self.policy.max_retries + 1):
            if attempt:
                self.stats.add(retries=1)
            retry_after: float | None = None
            try:
                page = self._request_once(url)
            except httpx.TimeoutException:
                last_reason = "timeout"
            except httpx.TransportError as error:
                last_reason = f"connection_error:{type(error).__name__}"
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

    def _request_once(self, url: str) -> Page:
        self._wait_for_slot()
        self.stats.add(requests=1)
        with self._http.stream("GET", url) as response:
            status = response.status_code
            headers = {name.lower(): value for name, value in response.headers.items()}
            if status in REDIRECT_STATUSES or status in RETRYABLE_STATUSES or status >= 400:
                return Page(url, status, headers, "", b"", "")  # error and redirect bodies are never used
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.policy.max_bytes:
                raise FetchError(url, "too_large", f"Content-Length {declared} > {self.policy.max_bytes}")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.policy.max_bytes:
                    raise FetchError(url, "too_large", f"body passed {self.policy.max_bytes} bytes")
                chunks.append(chunk)
            self.stats.add(bytes_received=size)
            content = b"".join(chunks)
            text, encoding = decode_body(content, headers.get("content-type", ""))
            return Page(url, status, headers, encoding, content, text)


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


def _known_codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_body(content: bytes, content_type: str = "") -> tuple[str, str]:
    """Decode a body: header charset, then ``<meta charset>`` (HTML), BOM, UTF-8, detection.

    Returns ``(text, encoding used)``. A declared ``iso-8859-1``/``latin-1`` is read as
    windows-1252, as browsers do (WHATWG Encoding Standard), so curly quotes survive.
    """
    candidates = [declared_charset(content_type)]
    if "html" in content_type.lower() or content[:512].lstrip().lower().startswith((b"<!doctype", b"<html")):
        match = _META_CHARSET.search(content[:4096])
        candidates.append(match.group(1).decode("ascii") if match else None)
    for name in candidates:
        codec = _known_codec(name)
        if codec in ("latin-1", "iso8859-1", "ascii"):
            codec = "cp1252"
        if codec:
            return content.decode(codec, errors="replace"), codec
    for bom, codec in _BOMS:
        if content.startswith(bom):
            return content.decode(codec, errors="replace"), codec
    try:
        return content.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(content))
    if not matches:
        return content.decode("utf-8", errors="replace"), "utf-8"
    # Short Western texts are ambiguous between single-byte code pages (cp1250/cp1252/...
    # decode them all without "chaos"); like browsers, prefer windows-1252 among equally good ones.
    least_chaos = min(match.chaos for match in matches)
    for match in matches:
        if match.encoding == "cp1252" and match.chaos <= least_chaos:
            return str(match), "cp1252"
    return str(matches[0]), matches[0].encoding
