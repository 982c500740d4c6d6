"""raw_poems materialized with dagster on a temp lake: partitions, snapshot safety, checks, schedule."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pandas as pd
import pytest

import genai_assets.defs.raw as raw_module
import genai_assets.stages.data as data_stage  # where raw_poems builds its table
from genai_assets.defs._io_manager import ParquetIOManager
from genai_assets.defs._partitions import site_partitions
from genai_assets.defs._resources import DataLake
from genai_assets.defs.raw import (
    ScraperSettings,
    raw_poems,
    rescrape_online_sites_job,
    weekly_online_rescrape,
)
from genai_assets.schema import RAW_POEM_COLUMNS, RawPoemsTable, raw_poems_frame
from genai_assets.sources.snapshot import evaluate_snapshot
from genai_assets_tests.fixtures import POETRYDB_POEMS, POETS_ORG_POEMS, serve_poetrydb, serve_poets_org
from genai_assets_tests.loopback_server import LoopbackServer, Reply

FAST_SCRAPER = dict(
    min_interval_s=0.0, timeout_s=5.0, backoff_base_s=0.01, backoff_max_s=0.02, max_wait_s=0.02
)


@pytest.fixture
def server():
    with LoopbackServer() as running:
        yield running


@dg.asset(partitions_def=site_partitions, deps=[raw_poems])
def downstream_probe() -> None:
    """Stands in for cleansed_poems: must not run when a blocking check of raw_poems fails."""


def resources(lake_root, server: LoopbackServer | None = None) -> dict:
    urls = {"poetrydb_base_url": server.url, "poets_org_base_url": server.url} if server else {}
    return {
        "io_manager": ParquetIOManager(root=str(lake_root)),
        "lake": DataLake(root=str(lake_root)),
        "scraper": ScraperSettings(**FAST_SCRAPER, **urls),
    }


def materialize(site: str, lake_root, server=None, config: dict | None = None, assets=(raw_poems,)):
    run_config = {"ops": {"raw_poems": {"config": config}}} if config else None
    return dg.materialize(
        list(assets),
        resources=resources(lake_root, server),
        partition_key=site,
        run_config=run_config,
        raise_on_error=False,
    )


def check_results(result) -> dict[str, bool]:
    return {evaluation.check_name: evaluation.passed for evaluation in result.get_asset_check_evaluations()}


def materialization_metadata(result) -> dict:
    [materialization] = result.asset_materializations_for_node("raw_poems")
    return materialization.metadata


def test_shakespeare_partition_writes_contract_table(lake_root):
    result = materialize("shakespeare", lake_root)
    assert result.success
    frame = pd.read_parquet(lake_root / "raw_poems" / "shakespeare.parquet")
    assert tuple(frame.columns) == RAW_POEM_COLUMNS and len(frame) == 481
    assert (frame["form"] == "sonnet").sum() == 154
    assert check_results(result) == {"schema": True, "non_empty": True, "row_count_not_collapsed": True}
    metadata = materialization_metadata(result)
    assert metadata["poems"].value == 481 and "Sonnet I" in metadata["preview"].value


def test_gutenberg_partition_with_tiny_preset(lake_root):
    from genai_assets.defs._presets import preset_run_config

    tiny = raw_module.PRESETS["tiny"]["raw_poems"]["config"]
    assert preset_run_config("tiny")["ops"]["raw_poems"]["config"] == tiny
    result = materialize("gutenberg", lake_root, config=tiny)
    assert result.success
    frame = pd.read_parquet(lake_root / "raw_poems" / "gutenberg.parquet")
    assert len(frame) == tiny["gutenberg_max_excerpts"] and frame["title"].isna().all()
    assert materialization_metadata(result)["gutenberg/lines_total"].value == 3_085_117


def test_poets_org_partition_against_loopback_site(lake_root, server):
    serve_poets_org(server)
    result = materialize("poets_org", lake_root, server)
    assert result.success
    frame = pd.read_parquet(lake_root / "raw_poems" / "poets_org.parquet")
    assert sorted(frame["title"]) == sorted(POETS_ORG_POEMS)
    metadata = materialization_metadata(result)
    assert metadata["pages_skipped"].value == 1  # the malformed page
    assert metadata["poets_org/copyrighted_skipped"].value == 1


def test_collapsed_rescrape_keeps_last_good_snapshot(lake_root, server):
    serve_poetrydb(server)
    first = materialize("poetrydb", lake_root, server)
    assert first.success
    snapshot = lake_root / "raw_poems" / "poetrydb.parquet"
    good_bytes = snapshot.read_bytes()
    assert len(pd.read_parquet(snapshot)) == len(POETRYDB_POEMS) == 3

    # The site now lists a single author with one poem: 1 row < 50% of 3.
    server.route("/author", Reply.json({"authors": ["Emily Dickinson"]}))
    second = materialize("poetrydb", lake_root, server, assets=(raw_poems, downstream_probe))
    assert not second.success  # the failed blocking check fails the step
    assert check_results(second) == {"schema": True, "non_empty": True, "row_count_not_collapsed": False}
    assert snapshot.read_bytes() == good_bytes  # last good snapshot untouched
    [rejected] = (lake_root / "raw_poems" / "_rejected").glob("poetrydb-*.parquet")
    assert len(pd.read_parquet(rejected)) == 1
    [collapse] = [
        evaluation
        for evaluation in second.get_asset_check_evaluations()
        if evaluation.check_name == "row_count_not_collapsed"
    ]
    assert collapse.metadata["new_rows"].value == 1 and collapse.metadata["previous_rows"].value == 3
    assert collapse.blocking
    assert not second.asset_materializations_for_node("downstream_probe")  # blocked in the same run

    # Raising the bar on purpose is possible: allow_shrink accepts the smaller scrape.
    third = materialize("poetrydb", lake_root, server, config={"allow_shrink": True})
    assert third.success and len(pd.read_parquet(snapshot)) == 1


def test_site_down_raises_clear_error_and_keeps_snapshot(lake_root, server):
    serve_poetrydb(server)
    assert materialize("poetrydb", lake_root, server).success
    snapshot = lake_root / "raw_poems" / "poetrydb.parquet"
    good_bytes = snapshot.read_bytes()
    server.route("/author", Reply(status=503))
    result = materialize("poetrydb", lake_root, server)
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "SiteUnavailableError: PoetryDB author list" in failure.event_specific_data.error.to_string()
    assert snapshot.read_bytes() == good_bytes
    assert not (lake_root / "raw_poems" / "_rejected").exists()


def test_schema_check_fails_on_a_bad_frame(lake_root, monkeypatch):
    def frame_without_license(records, fetched_at=None):
        return RawPoemsTable(raw_poems_frame(records, fetched_at).drop(columns=["license"]))

    monkeypatch.setattr(data_stage, "build_raw_poems", frame_without_license)
    result = materialize("shakespeare", lake_root)
    assert not result.success
    assert check_results(result)["schema"] is False
    assert not (lake_root / "raw_poems" / "shakespeare.parquet").exists()  # nothing written
    assert len(list((lake_root / "raw_poems" / "_rejected").glob("shakespeare-*.parquet"))) == 1


def test_evaluate_snapshot_unit():
    good = raw_poems_frame([{"source": "s", "source_key": "k", "text": "a\nb", "license": "PD"}])
    assert evaluate_snapshot(good, previous_rows=2).accepted  # 1/2 = 0.5 is not a collapse
    assert evaluate_snapshot(good, previous_rows=3).failed == ["row_count_not_collapsed"]
    bad = good.assign(tags=[["ok", 3]])
    assert evaluate_snapshot(bad, previous_rows=None).failed == ["schema"]
    assert evaluate_snapshot(good.iloc[:0], previous_rows=None).failed == ["non_empty"]


def test_weekly_schedule_requests_one_run_per_online_site():
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 30, 3, 0, tzinfo=UTC))
    requests = list(weekly_online_rescrape(context))
    assert [request.partition_key for request in requests] == ["poetrydb", "poets_org"]
    assert [request.run_key for request in requests] == [
        "rescrape-poetrydb-2026-11-30",
        "rescrape-poets_org-2026-11-30",
    ]
    assert weekly_online_rescrape.cron_schedule == "0 3 * * 1"
    assert weekly_online_rescrape.job_name == rescrape_online_sites_job.name


def test_base_urls_from_env_and_run_config(lake_root, server, monkeypatch):
    monkeypatch.setenv("GENAI_POETRYDB_URL", "http://127.0.0.1:9/poetrydb")
    assert ScraperSettings().poetrydb_base_url == "http://127.0.0.1:9/poetrydb"
    monkeypatch.delenv("GENAI_POETRYDB_URL")
    assert ScraperSettings().poetrydb_base_url == "https://poetrydb.org"

    # What `--config-json '{"resources": {"scraper": {"config": {...}}}}'` does: override per run.
    serve_poetrydb(server)
    run_config = {"resources": {"scraper": {"config": {**FAST_SCRAPER, "poetrydb_base_url": server.url}}}}
    result = dg.materialize(
        [raw_poems],
        resources={
            "io_manager": ParquetIOManager(root=str(lake_root)),
            "lake": DataLake(root=str(lake_root)),
            "scraper": ScraperSettings(),
        },
        partition_key="poetrydb",
        run_config=run_config,
    )
    assert result.success and server.hits("/author") == 1
