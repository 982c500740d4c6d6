"""Stage "scraping": ``raw_poems``, one partition per source site, and its weekly re-scrape.

* ``raw_poems`` (group ``data``, partitioned by site) → ``<lake>/raw_poems/<site>.parquet``
  (contract 1, :mod:`genai_assets.schema`). Bundled sites (``gutenberg``, ``shakespeare``) read
  package data offline; online sites (``poetrydb``, ``poets_org``) are fetched politely over HTTP
  from the base URLs of the ``scraper`` resource.
* Blocking checks ``schema``, ``non_empty`` and ``row_count_not_collapsed`` are evaluated inside
  the asset body before anything is written. If one fails, the new scrape goes to
  ``<lake>/raw_poems/_rejected/`` and the asset yields no output at all (``output_required=False``):
  no new materialization is recorded, the last good file stays, downstream does not turn stale;
  the scrape's figures go into an ``AssetObservation`` and the failed blocking check stops
  downstream assets in the same run. An unreadable last snapshot is moved to
  ``<lake>/raw_poems/_corrupt/`` with a warning and the scrape is judged as the first one.
* ``weekly_online_rescrape`` (Mondays 03:00 UTC, stopped until switched on) requests one run of
  ``rescrape_online_sites_job`` per online site partition.

The asset body only gathers config and resources and reports; the work happens in
:func:`genai_assets.stages.data.run_raw_poems` over :mod:`genai_assets.sources`.
"""

import dataclasses
import os

import dagster as dg
from pydantic import Field, create_model, model_validator

from genai_assets.defs._config import asset_presets, library_fields, stage_config
from genai_assets.defs._metadata import dataframe_markdown
from genai_assets.defs._partitions import BUNDLED_SITES, ONLINE_SITES, site_partitions
from genai_assets.defs._resources import DataLake
from genai_assets.sources.http import HttpPolicy, PoliteClient
from genai_assets.sources.scrape_config import RAW_PRESETS, RawScrapeConfig
from genai_assets.sources.snapshot import (
    CHECK_NON_EMPTY,
    CHECK_NOT_COLLAPSED,
    CHECK_SCHEMA,
)

POETRYDB_URL_ENV = "GENAI_POETRYDB_URL"
POETS_ORG_URL_ENV = "GENAI_POETS_ORG_URL"
PREVIEW_COLUMNS = ("title", "author", "text", "license")
PUBLIC_BASE_URLS = {"poetrydb": "https://poetrydb.org", "poets_org": "https://poets.org"}


# The HTTP settings are HttpPolicy's fields (defaults and comments included), derived, not copied.
_HttpPolicyFields = create_model(
    "HttpPolicyFields", __base__=dg.ConfigurableResource, **library_fields(HttpPolicy)
)


class ScraperSettings(_HttpPolicyFields):
    """Where the online sites live and how politely we fetch them (resource key ``scraper``).

    Base URLs default to ``$GENAI_POETRYDB_URL`` / ``$GENAI_POETS_ORG_URL``, else the public
    sites; any run can override them with run config (``resources.scraper.config``).
    """

    poetrydb_base_url: str = Field(
        default_factory=lambda: os.environ.get(POETRYDB_URL_ENV) or PUBLIC_BASE_URLS["poetrydb"],
        description=f"PoetryDB-compatible API root (${POETRYDB_URL_ENV}, else https://poetrydb.org).",
    )
    poets_org_base_url: str = Field(
        default_factory=lambda: os.environ.get(POETS_ORG_URL_ENV) or PUBLIC_BASE_URLS["poets_org"],
        description=f"poets.org-compatible site root (${POETS_ORG_URL_ENV}, else https://poets.org).",
    )

    def base_url(self, site: str) -> str:
        urls = {"poetrydb": self.poetrydb_base_url, "poets_org": self.poets_org_base_url}
        if site not in urls:
            raise ValueError(f"{site!r} is not an online site; online sites are {', '.join(urls)}.")
        return urls[site]

    @model_validator(mode="after")
    def _check_policy(self):
        self.policy()  # HttpPolicy's checks, when the resource is configured
        return self

    def policy(self) -> HttpPolicy:
        return HttpPolicy(**{item.name: getattr(self, item.name) for item in dataclasses.fields(HttpPolicy)})

    def client(self, site: str) -> PoliteClient:
        return PoliteClient(self.base_url(site), self.policy())


RawPoemsConfig = stage_config(RawScrapeConfig)


def _metadata_value(value: object) -> dg.MetadataValue:
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(value)
    if isinstance(value, dict | list):
        return dg.MetadataValue.json(value)
    return dg.MetadataValue.text(str(value))


RAW_POEMS_CHECKS = [
    dg.AssetCheckSpec(
        CHECK_SCHEMA, asset="raw_poems", blocking=True, description="Columns and types match contract 1."
    ),
    dg.AssetCheckSpec(
        CHECK_NON_EMPTY, asset="raw_poems", blocking=True, description="The scrape found poems."
    ),
    dg.AssetCheckSpec(
        CHECK_NOT_COLLAPSED,
        asset="raw_poems",
        blocking=True,
        description="Online sites: rows >= collapse_min_ratio x the last good snapshot; else it is kept.",
    ),
]


def _scrape_metadata(run, site: str, config: RawScrapeConfig, scraper: ScraperSettings) -> dict[str, object]:
    """What one scrape reports (``run``: a ``stages.data.RawPoemsResult``), accepted or not."""
    frame, table, result, previous = run.frame, run.table, run.scrape, run.previous
    previous_rows = previous.rows
    metadata: dict[str, object] = {
        "site": site,
        "source_kind": "bundled" if site in BUNDLED_SITES else "online",
        "poems": dg.MetadataValue.int(len(frame)),
        "previous_rows": dg.MetadataValue.int(previous_rows) if previous_rows is not None else "none",
        "elapsed_s": round(run.seconds, 2),
        "pages_fetched": result.stats.pages_fetched,
        "pages_skipped": result.stats.pages_skipped,
        "pages_retried": result.stats.retries,
        "records_dropped": dg.MetadataValue.int(sum(table.dropped.values())),
        "records_dropped_by_reason": dg.MetadataValue.json(
            {"counts": table.dropped, "first_source_keys": table.dropped_examples}
        ),
        "http": dg.MetadataValue.json(result.stats.as_metadata()),
        "preview": dataframe_markdown(
            frame[[column for column in PREVIEW_COLUMNS if column in frame.columns]],
            max_rows=config.preview_rows,
        ),
    }
    if previous.quarantined_to is not None:
        metadata["corrupt_previous_moved_to"] = dg.MetadataValue.path(str(previous.quarantined_to))
    if site in ONLINE_SITES:
        metadata["base_url"] = dg.MetadataValue.url(scraper.base_url(site))
    metadata.update({f"{site}/{name}": _metadata_value(value) for name, value in result.details.items()})
    return metadata


@dg.asset(
    partitions_def=site_partitions,
    group_name="data",
    check_specs=RAW_POEMS_CHECKS,
    kinds={"pandas", "parquet"},
    output_required=False,  # a rejected scrape yields no output: no new materialization at all
    config_schema=RawPoemsConfig.config_schema(),
)
def raw_poems(context: dg.AssetExecutionContext, scraper: ScraperSettings, lake: DataLake):
    """Poems of one source site, one row per poem (contract 1); a bad scrape never replaces a good one."""
    from genai_assets.stages.data import run_raw_poems

    config = RawPoemsConfig.from_context(context).to_library()
    site = context.partition_key
    run = run_raw_poems(config, lake, context.log.warning, site, scraper)
    frame, verdict, snapshot_path = run.frame, run.verdict, run.snapshot_path
    metadata = _scrape_metadata(run, site, config, scraper)
    if verdict.accepted:
        metadata["snapshot_replaced"] = True
        context.log.info(f"raw_poems[{site}]: {len(frame)} poems pass every check; writing {snapshot_path}.")
        yield dg.Output(frame, metadata=metadata)
    else:
        rejected = run.rejected_path
        metadata["snapshot_replaced"] = False
        metadata["rejected_path"] = dg.MetadataValue.path(str(rejected))
        context.log.error(
            f"raw_poems[{site}]: checks {verdict.failed} failed; the new scrape went to {rejected} and "
            f"the last good snapshot {snapshot_path} is kept."
        )
        # No Output at all (output_required=False): Output(None) would be recorded as a fresh
        # materialization with the rejected row count and make everything downstream stale. The
        # scrape's figures go into an observation instead, next to the failed checks below.
        context.log_event(dg.AssetObservation(asset_key=context.asset_key, partition=site, metadata=metadata))
    for outcome in verdict.checks:
        yield dg.AssetCheckResult(
            check_name=outcome.name,
            passed=outcome.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=outcome.description,
            metadata={
                name: _metadata_value(value) for name, value in outcome.metadata.items() if value is not None
            },
        )


rescrape_online_sites_job = dg.define_asset_job(
    "rescrape_online_sites_job",
    selection=dg.AssetSelection.assets(raw_poems),
    partitions_def=site_partitions,
    description="Re-scrape one online site partition of raw_poems (checks included).",
)


@dg.schedule(
    cron_schedule="0 3 * * 1",
    job=rescrape_online_sites_job,
    execution_timezone="UTC",
    description="Weekly re-scrape of every online site (one run per partition); downstream goes stale.",
)
def weekly_online_rescrape(context: dg.ScheduleEvaluationContext):
    stamp = (
        context.scheduled_execution_time.strftime("%Y-%m-%d")
        if context.scheduled_execution_time
        else "manual"
    )
    for site in ONLINE_SITES:
        yield dg.RunRequest(
            partition_key=site, run_key=f"rescrape-{site}-{stamp}", tags={"genai/rescrape": "weekly"}
        )


PRESETS = asset_presets({"raw_poems": RAW_PRESETS})

defs = dg.Definitions(
    assets=[raw_poems],
    jobs=[rescrape_online_sites_job],
    schedules=[weekly_online_rescrape],
    resources={"scraper": ScraperSettings()},
)
