"""What each ``raw_poems`` site partition collects: one flat config for the four adapters.

The Launchpad shows one form for the partitioned asset, so the per-site options are flat fields
with a site prefix; :meth:`RawScrapeConfig.excerpt_rule`, :meth:`poetrydb_options` and
:meth:`poets_org_options` hand each adapter its own options dataclass (whose checks then run
too). Defaults come from those dataclasses, so a default is written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from genai_assets.config_checks import Ge, Interval, raise_problems, range_problems
from genai_assets.sources.gutenberg import ExcerptRule
from genai_assets.sources.poetrydb import PoetryDBOptions
from genai_assets.sources.poets_org import PoetsOrgOptions


@dataclass
class RawScrapeConfig:
    """What each site partition collects (defaults = the cpu demo profile)."""

    gutenberg_max_excerpts: Annotated[
        int, Ge(0), "Gutenberg excerpts kept (seeded uniform sample, file order); 0 = all ~512k"
    ] = 20_000
    gutenberg_seed: Annotated[int, "seed of the Gutenberg excerpt sample"] = 1337
    excerpt_min_lines: Annotated[int, "Gutenberg excerpt: fewest lines (cut at a sentence end)"] = (
        ExcerptRule.min_lines
    )
    excerpt_max_lines: Annotated[int, "Gutenberg excerpt: most lines (cut here regardless)"] = (
        ExcerptRule.max_lines
    )
    poetrydb_authors: Annotated[list[str], "PoetryDB authors to fetch; empty = every author"] = field(
        default_factory=list
    )
    poetrydb_max_authors: Annotated[int, "PoetryDB: at most this many authors; 0 = no cap"] = (
        PoetryDBOptions.max_authors
    )
    poetrydb_max_poems: Annotated[int, "PoetryDB: stop after this many poems; 0 = no cap"] = (
        PoetryDBOptions.max_poems
    )
    poets_org_listing_path: Annotated[str, "poets.org: first listing page"] = PoetsOrgOptions.listing_path
    poets_org_max_listing_pages: Annotated[int, "poets.org: listing pages followed"] = (
        PoetsOrgOptions.max_listing_pages
    )
    poets_org_max_poems: Annotated[int, "poets.org: stop after this many poems; 0 = no cap"] = (
        PoetsOrgOptions.max_poems
    )
    public_domain_only: Annotated[
        bool, "poets.org: keep only poems whose credit notice says public domain"
    ] = PoetsOrgOptions.public_domain_only
    collapse_min_ratio: Annotated[
        float,
        Interval(ge=0, le=1),
        "online sites: reject a scrape with fewer rows than this x the last good snapshot",
    ] = 0.5
    allow_shrink: Annotated[
        bool, "accept a collapsed online scrape on purpose (e.g. after lowering a cap)"
    ] = False
    preview_rows: Annotated[int, Ge(0), "rows in the metadata preview table"] = 8

    def __post_init__(self) -> None:
        problems = range_problems(self)
        for build in (self.excerpt_rule, self.poetrydb_options, self.poets_org_options):
            try:
                build()
            except ValueError as error:
                problems.append(str(error).rstrip("."))
        raise_problems(self, problems)

    def excerpt_rule(self) -> ExcerptRule:
        return ExcerptRule(min_lines=self.excerpt_min_lines, max_lines=self.excerpt_max_lines)

    def poetrydb_options(self) -> PoetryDBOptions:
        return PoetryDBOptions(
            authors=list(self.poetrydb_authors),
            max_authors=self.poetrydb_max_authors,
            max_poems=self.poetrydb_max_poems,
        )

    def poets_org_options(self) -> PoetsOrgOptions:
        return PoetsOrgOptions(
            listing_path=self.poets_org_listing_path,
            max_listing_pages=self.poets_org_max_listing_pages,
            max_poems=self.poets_org_max_poems,
            public_domain_only=self.public_domain_only,
        )


RAW_PRESETS: dict[str, dict] = {
    "tiny": {
        "gutenberg_max_excerpts": 300,
        "poetrydb_max_authors": 3,
        "poetrydb_max_poems": 50,
        "poets_org_max_listing_pages": 1,
        "poets_org_max_poems": 10,
    },
    "cpu": {},
    "gpu": {"gutenberg_max_excerpts": 0, "poets_org_max_poems": 0},
}
