"""poets.org (Academy of American Poets): listing pages → poem pages, parsed with selectolax.

Crawl: start at ``listing_path`` (``/poems``), collect links to ``/poem/<slug>`` pages, follow the
"next page" link up to ``max_listing_pages``, then fetch poem pages (bounded concurrency, in
small batches so ``max_poems`` stops the crawl early).

Licensing: most poems on poets.org are under copyright. Every poem page carries a credit
notice; a poem counts as public domain when that notice says "public domain" (poets.org prints
"This poem is in the public domain."). With ``public_domain_only`` (the default) other poems
are dropped after their page is read (counted as ``copyrighted_skipped``; their text is never
stored). Without it they are kept and the notice text goes into the ``license`` column as the
attribution. A page without a title, a poem body or any poem text is malformed: skipped and
counted, never fatal.

All CSS selectors live in :class:`PoetsOrgSelectors`: if the site's markup changes, that is the
one place to edit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser as HTMLParser
from selectolax.lexbor import LexborNode as Node

from genai_assets.sources.base import ScrapeResult
from genai_assets.sources.http import FetchError, PoliteClient, SiteUnavailableError

SITE = "poets_org"
POEM_PATH = re.compile(r"^/poem/[^/?#]+/?$")
PUBLIC_DOMAIN = re.compile(r"public\s+domain", re.IGNORECASE)
NO_NOTICE_LICENSE = "Unknown: no credit notice on the poets.org page (treated as copyrighted)"


@dataclass(frozen=True)
class PoetsOrgSelectors:
    """Every CSS selector of the poets.org adapter (selector lists: first match wins)."""

    listing_poem_link: str = "a[href*='/poem/']"  # links to poem pages on a listing page
    listing_next_page: str = "a[rel='next'], li.pager__item--next a"  # pagination
    title: str = "h1.poem__title, h1"  # the poem's title
    author: str = ".poem__author a, a[href*='/poet/']"  # the poet's name
    body: str = ".poem__body, .field--name-body"  # the poem text container
    credit: str = ".poem__credit, .field--name-field-credit"  # copyright / public-domain notice
    tags: str = ".poem__tags a, .field--name-field-tags a"  # themes/occasions


@dataclass
class PoetsOrgOptions:
    """What to fetch from poets.org."""

    listing_path: str = "/poems"  # first listing page
    max_listing_pages: int = 5  # follow "next" at most this many pages
    max_poems: int = 100  # stop once this many poems are kept; 0 = every linked poem
    public_domain_only: bool = True  # keep only poems whose credit notice says public domain
    selectors: PoetsOrgSelectors = field(default_factory=PoetsOrgSelectors)

    def __post_init__(self) -> None:
        if self.max_listing_pages < 1:
            raise ValueError(f"poets.org max_listing_pages must be >= 1, got {self.max_listing_pages}.")
        if self.max_poems < 0:
            raise ValueError(f"poets.org max_poems must be >= 0 (0 = no cap), got {self.max_poems}.")
        if not self.listing_path.startswith("/"):
            raise ValueError(f"poets.org listing_path must start with '/', got {self.listing_path!r}.")


# Elements whose boundaries separate stanzas, and those that only end a line.
STANZA_TAGS = frozenset({"p", "blockquote"})
LINE_TAGS = frozenset({"div", "li", "h2", "h3", "h4", "h5", "h6", "tr"})
SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "button", "form", "-comment"})
WHITESPACE = re.compile(r"[ \t\r\n\f]+")  # HTML's collapsible whitespace (not &nbsp;)
LINE_BREAK, STANZA_BREAK = 1, 2


def _tokens(node: Node) -> Iterator[str | int]:
    """Text pieces and break strengths of a container, in document order.

    Walked with an explicit stack, not recursion: a hostile page nesting thousands of elements
    must not raise RecursionError (or crawl through a deep chain of generators).
    """
    children = [node.iter(include_text=True)]
    closers: list[int | None] = [None]  # the break to emit when each open element ends
    while children:
        child = next(children[-1], None)
        if child is None:
            children.pop()
            closer = closers.pop()
            if closer is not None:
                yield closer
            continue
        tag = child.tag
        if tag == "-text":
            yield WHITESPACE.sub(" ", child.text_content or "")
        elif tag == "br":
            yield "<br>"
        elif tag in SKIP_TAGS:
            continue
        else:
            strength = STANZA_BREAK if tag in STANZA_TAGS else LINE_BREAK if tag in LINE_TAGS else None
            if strength is not None:
                yield strength
            children.append(child.iter(include_text=True))
            closers.append(strength)


def html_poem_text(node: Node) -> str:
    """A poem container's text in contract layout (lines ``\\n``, stanzas ``\\n\\n``).

    ``<br>`` ends a line and two or more in a row end a stanza; ``<p>``/``<blockquote>``
    boundaries end a stanza and ``<div>``/``<li>`` boundaries a line. Adjacent boundaries
    collapse to the strongest, so markup nesting never invents empty stanzas.
    """
    stanzas: list[list[str]] = [[]]
    line = ""
    pending = 0  # strongest break seen since the last text
    br_run = 0  # consecutive <br> (whitespace between them does not count)
    for token in _tokens(node):
        if token == "<br>":
            br_run += 1
            pending = max(pending, STANZA_BREAK if br_run >= 2 else LINE_BREAK)
        elif isinstance(token, int):
            pending = max(pending, token)
        elif token.strip():
            if pending and line.strip():
                stanzas[-1].append(line)
                line = ""
                if pending == STANZA_BREAK:
                    stanzas.append([])
            line += token
            pending = br_run = 0
        elif line:
            line += " "
    stanzas[-1].append(line)
    cleaned = [[text.replace("\xa0", " ").strip() for text in stanza] for stanza in stanzas]
    return "\n\n".join(
        "\n".join(text for text in stanza if text)
        for stanza in cleaned
        if any(cleaned_line for cleaned_line in stanza)
    )


def _text(tree: HTMLParser, selector: str) -> str | None:
    node = tree.css_first(selector)
    if node is None:
        return None
    text = WHITESPACE.sub(" ", node.text(separator=" ")).strip()
    return text or None


def parse_listing(
    html: str, page_url: str, client: PoliteClient, selectors: PoetsOrgSelectors
) -> tuple[list[str], str | None]:
    """``(poem page URLs in page order, next listing URL or None)`` from one listing page."""
    tree = HTMLParser(html)
    links: list[str] = []
    for anchor in tree.css(selectors.listing_poem_link):
        url = _absolute(client, anchor.attributes.get("href"))
        if url is None:
            continue
        url = url.split("#")[0]
        if client.is_same_site(url) and POEM_PATH.match(urlsplit(url).path) and url not in links:
            links.append(url)
    next_node = tree.css_first(selectors.listing_next_page)
    next_url = _absolute(client, next_node.attributes.get("href") if next_node is not None else None)
    if next_url is None or next_url == page_url or not client.is_same_site(next_url):
        next_url = None  # pagination never leads off the site
    return links, next_url


def _absolute(client: PoliteClient, href: str | None) -> str | None:
    """Absolute URL of a link, or None if there is none or it is malformed (``http://[oops``)."""
    if not href:
        return None
    try:
        return client.url_for(href)
    except ValueError:
        return None


@dataclass(frozen=True)
class ParsedPoem:
    url: str
    title: str
    author: str | None
    text: str
    license: str
    public_domain: bool
    tags: list[str]


def parse_poem_page(html: str, url: str, selectors: PoetsOrgSelectors) -> ParsedPoem:
    """One poem page; raises ``FetchError(reason="malformed_page")`` when essentials are missing."""
    tree = HTMLParser(html)
    title = _text(tree, selectors.title)
    body = tree.css_first(selectors.body)
    if title is None or body is None:
        missing = "title" if title is None else "poem body"
        raise FetchError(
            url, "malformed_page", f"no {missing} ({selectors.title if title is None else selectors.body})"
        )
    text = html_poem_text(body)
    if not text:
        raise FetchError(url, "malformed_page", "empty poem body")
    credit = _text(tree, selectors.credit)
    public_domain = bool(credit and PUBLIC_DOMAIN.search(credit))
    tags = []
    for node in tree.css(selectors.tags):
        tag = WHITESPACE.sub(" ", node.text()).strip()
        if tag and tag not in tags:
            tags.append(tag)
    return ParsedPoem(
        url=url,
        title=title,
        author=_text(tree, selectors.author),
        text=text,
        license=f"Public domain (poets.org: {credit})" if public_domain else (credit or NO_NOTICE_LICENSE),
        public_domain=public_domain,
        tags=tags,
    )


def collect_poem_links(client: PoliteClient, options: PoetsOrgOptions) -> tuple[list[str], int]:
    """Walk the listing pages; ``(unique poem URLs, listing pages read)``."""
    links: list[str] = []
    url: str | None = client.url_for(options.listing_path)
    pages = 0
    visited: set[str] = set()
    while url and pages < options.max_listing_pages and url not in visited:
        visited.add(url)
        try:
            page = client.get(url)
            page_links, next_url = parse_listing(page.text, page.url, client, options.selectors)
        except Exception as error:  # noqa: BLE001 (FetchError, or a parser failing on one page)
            reason = error.reason if isinstance(error, FetchError) else f"page_error:{type(error).__name__}"
            if pages == 0:
                raise SiteUnavailableError(f"poets.org listing {url} could not be read: {error}") from error
            client.stats.skip(reason, f"{url}: {error}")  # a later listing page failed: keep what we have
            break
        pages += 1
        links.extend(link for link in page_links if link not in links)
        url = next_url
    return links, pages


def scrape_poets_org(client: PoliteClient, options: PoetsOrgOptions | None = None) -> ScrapeResult:
    """Poems from poets.org as records (public-domain only by default), with counters in ``details``."""
    options = options or PoetsOrgOptions()
    links, listing_pages = collect_poem_links(client, options)

    def fetch_poem(active: PoliteClient, url: str) -> ParsedPoem:
        page = active.get(url)
        if "html" not in page.content_type.lower():
            raise FetchError(url, "not_html", page.content_type or "no content type")
        return parse_poem_page(page.text, page.url, options.selectors)

    records: list[dict[str, Any]] = []
    copyrighted_skipped = 0
    batch_size = client.policy.max_concurrency * 2
    for batch_start in range(0, len(links), batch_size):
        for _url, poem in client.fetch_many(links[batch_start : batch_start + batch_size], fetch_poem):
            if poem is None:
                continue
            if options.public_domain_only and not poem.public_domain:
                copyrighted_skipped += 1
                continue
            records.append(
                {
                    "source": SITE,
                    "source_key": urlsplit(poem.url).path.rstrip("/"),
                    "url": poem.url,
                    "title": poem.title,
                    "author": poem.author,
                    "text": poem.text,
                    "tags": poem.tags,
                    "form": None,
                    "license": poem.license,
                }
            )
        if options.max_poems and len(records) >= options.max_poems:
            records = records[: options.max_poems]
            break
    if links and not records and client.stats.pages_skipped >= len(links):
        raise SiteUnavailableError(
            f"poets.org at {client.base_url}: every one of {len(links)} poem pages failed "
            f"({dict(client.stats.skip_reasons)}); keeping the last snapshot."
        )
    details = {
        "listing_pages": listing_pages,
        "poem_links": len(links),
        "copyrighted_skipped": copyrighted_skipped,
        "public_domain_only": options.public_domain_only,
        "poems": len(records),
    }
    return ScrapeResult(site=SITE, records=records, stats=client.stats, details=details)
