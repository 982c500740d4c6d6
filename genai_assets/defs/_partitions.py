"""Source-site partitions of ``raw_poems``: one partition per site we collect poems from."""

from __future__ import annotations

import dagster as dg

from genai_assets.sources.sites import ALL_SITES, BUNDLED_SITES, ONLINE_SITES

__all__ = ["ALL_SITES", "BUNDLED_SITES", "ONLINE_SITES", "site_partitions"]

site_partitions = dg.StaticPartitionsDefinition(list(ALL_SITES))
