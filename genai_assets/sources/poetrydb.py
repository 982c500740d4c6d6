"""PoetryDB (https://poetrydb.org): a JSON API of public-domain poems.

Endpoints used:

* ``GET /author`` → ``{"authors": ["Adam Lindsay Gordon", ...]}``
* ``GET /author/<name>`` → ``[{"title", "author", "lines": [...], "linecount"}, ...]``; an
  unknown name answers HTTP 200 with ``{"status": 404, "reason": "Not found"}``.

In ``lines`` an empty string is a stanza break. The whole site fails (``SiteUnavailableError``)
only when the author list cannot be read or every author request failed; a single bad author
answer is counted and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

from genai_assets.config_checks import Ge, raise_problems, range_problems
from genai_assets.schema import join_stanzas
from genai_assets.sources.base import ScrapeResult
from genai_assets.sources.http import FetchError, PoliteClient, SiteUnavailableError

SITE = "poetrydb"
LICENSE = "Public domain (PoetryDB)"


@dataclass
class PoetryDBOptions:
    """What to fetch from PoetryDB."""

    authors: list[str] = field(default_factory=list)  # empty = every author listed by GET /author
    max_authors: Annotated[int, Ge(0), "fetch at most this many authors (in list order); 0 = no cap"] = 0
    max_poems: Annotated[int, Ge(0), "stop once this many poems are collected; 0 = no cap"] = 0

    def __post_init__(self) -> None:
        problems = range_problems(self)
        if any(not isinstance(name, str) or not name.strip() for name in self.authors):
            problems.append(f"authors must be non-empty names, got {self.authors!r}")
        raise_problems(self, problems)


def lines_to_text(lines: list[str]) -> str:
    """PoetryDB ``lines`` → contract text: empty entries separate stanzas."""
    stanzas: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            stanzas[-1].append(line.rstrip())
        elif stanzas[-1]:
            stanzas.append([])
    return join_stanzas(stanzas)


def parse_poem(entry: Any) -> tuple[str, str, str] | None:
    """``(title, author, text)`` from one API entry, or None if it is not a usable poem."""
    if not isinstance(entry, dict):
        return None
    title, author, lines = entry.get("title"), entry.get("author"), entry.get("lines")
    if not isinstance(title, str) or not isinstance(author, str) or not isinstance(lines, list):
        return None
    if not all(isinstance(line, str) for line in lines):
        return None
    text = lines_to_text(lines)
    if not title.strip() or not author.strip() or not text:
        return None
    return title.strip(), author.strip(), text


def list_authors(client: PoliteClient) -> list[str]:
    """``GET /author``; any failure here means the site is unusable."""
    try:
        payload = client.get_json("author")
    except FetchError as error:
        raise SiteUnavailableError(
            f"PoetryDB author list {client.url_for('author')} could not be fetched: {error}"
        ) from error
    authors = payload.get("authors") if isinstance(payload, dict) else None
    if not isinstance(authors, list) or not all(isinstance(name, str) for name in authors):
        raise SiteUnavailableError(
            f"PoetryDB author list {client.url_for('author')} is not {{'authors': [...]}}: {str(payload)[:200]}"
        )
    return authors


def fetch_author(client: PoliteClient, author: str) -> tuple[str, list[Any]]:
    """``(url, entries)`` of one author; a 404-in-JSON answer is a ``not_found`` FetchError."""
    url = client.url_for(f"author/{quote(author, safe='')}")
    payload = client.get_json(url)
    if isinstance(payload, dict) and payload.get("status") == 404:
        raise FetchError(url, "author_not_found", author)
    if not isinstance(payload, list):
        raise FetchError(url, "malformed_json", f"expected a list of poems, got {type(payload).__name__}")
    return url, payload


def scrape_poetrydb(client: PoliteClient, options: PoetryDBOptions | None = None) -> ScrapeResult:
    """Poems of the configured (or all) authors as records, with counters in ``details``."""
    options = options or PoetryDBOptions()
    authors = list(options.authors) or list_authors(client)
    if options.max_authors:
        authors = authors[: options.max_authors]
    records: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    malformed_entries = duplicates = authors_failed = authors_attempted = 0
    # Authors are fetched in small batches so a max_poems cap stops the crawl early.
    batch_size = client.policy.max_concurrency * 2
    for batch_start in range(0, len(authors), batch_size):
        batch = authors[batch_start : batch_start + batch_size]
        for _author, result in client.fetch_many(batch, fetch_author):
            authors_attempted += 1
            if result is None:
                authors_failed += 1
                continue
            url, entries = result
            for entry in entries:
                poem = parse_poem(entry)
                if poem is None:
                    malformed_entries += 1
                    continue
                title, author, text = poem
                if (author, title) in seen:  # /author/<name> matches substrings: poems can repeat
                    duplicates += 1
                    continue
                seen.add((author, title))
                records.append(
                    {
                        "source": SITE,
                        "source_key": f"{author}/{title}",
                        "url": url,
                        "title": title,
                        "author": author,
                        "text": text,
                        "tags": [],
                        "form": None,
                        "license": LICENSE,
                    }
                )
        if options.max_poems and len(records) >= options.max_poems:
            records = records[: options.max_poems]
            break
    if authors_attempted and authors_failed == authors_attempted:
        raise SiteUnavailableError(
            f"PoetryDB at {client.base_url}: all {authors_attempted} author requests failed "
            f"({dict(client.stats.skip_reasons)}); keeping the last snapshot."
        )
    details = {
        "authors_listed": len(authors),
        "authors_fetched": authors_attempted,
        "authors_failed": authors_failed,
        "malformed_entries": malformed_entries,
        "duplicate_poems": duplicates,
        "poems": len(records),
    }
    return ScrapeResult(site=SITE, records=records, stats=client.stats, details=details)
