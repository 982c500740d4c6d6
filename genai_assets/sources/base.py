"""What every source adapter returns: poem records plus counters for the asset's metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genai_assets.sources.http import FetchStats

PUBLIC_DOMAIN_GUTENBERG = "Public domain (Project Gutenberg)"


@dataclass
class ScrapeResult:
    """Poems read from one site.

    ``records`` are dicts with ``source``, ``source_key``, ``text``, ``license`` and optionally
    ``url``, ``title``, ``author``, ``tags``, ``form``: exactly what
    :func:`genai_assets.schema.raw_poems_frame` turns into a contract table (it derives
    ``poem_id``, ``content_hash`` and ``fetched_at``). ``stats`` holds HTTP counters (all zero for
    bundled sites); ``details`` holds site-specific figures shown as metadata.
    """

    site: str
    records: list[dict[str, Any]]
    stats: FetchStats = field(default_factory=FetchStats)
    details: dict[str, Any] = field(default_factory=dict)
