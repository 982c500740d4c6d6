"""Stages of the ``data`` group: ``raw_poems`` (:func:`run_raw_poems`), ``cleansed_poems`` (:func:`run_cleansed_poems`) and the corpus
report ``corpus_eda`` (:func:`run_corpus_eda`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from genai_assets.cleaning.exports import write_cleansed_text, write_raw_poems_json
from genai_assets.cleaning.pipeline import CleaningConfig, CleanseResult, cleanse_poems, combine_partitions
from genai_assets.lake import atomic_write_text
from genai_assets.plotting import new_figure, write_figure
from genai_assets.reporting.eda import PLOTS, CorpusStats, EdaConfig, compute_corpus_stats, render_report
from genai_assets.schema import RawPoemsTable, build_raw_poems
from genai_assets.sources.base import ScrapeResult
from genai_assets.sources.gutenberg import gutenberg_poems
from genai_assets.sources.poetrydb import scrape_poetrydb
from genai_assets.sources.poets_org import scrape_poets_org
from genai_assets.sources.scrape_config import RawScrapeConfig
from genai_assets.sources.shakespeare import shakespeare_poems
from genai_assets.sources.sites import BUNDLED_SITES
from genai_assets.sources.snapshot import (
    PreviousSnapshot,
    SnapshotVerdict,
    evaluate_snapshot,
    inspect_previous_snapshot,
    write_rejected,
)


class ReportsFolder(Protocol):
    def reports_dir(self) -> Path: ...


@dataclass(frozen=True)
class CorpusEdaResult:
    """What ``corpus_eda`` wrote: the statistics, the report and one PNG per plot (name → path)."""

    stats: CorpusStats
    report_path: Path
    plot_paths: dict[str, Path]


def run_corpus_eda(
    config: EdaConfig, lake: ReportsFolder, log: Callable[[str], None], cleansed_poems: pd.DataFrame
) -> CorpusEdaResult:
    """Statistics of ``cleansed_poems``, its plots as ``corpus_eda_<name>.png`` and ``corpus_eda.md``."""
    stats = compute_corpus_stats(cleansed_poems, **asdict(config))
    reports = lake.reports_dir()
    plot_paths = {
        name: write_figure(plot(stats), reports / f"corpus_eda_{name}.png") for name, plot in PLOTS.items()
    }
    image_files = {name: path.name for name, path in plot_paths.items()}
    report_path = atomic_write_text(reports / "corpus_eda.md", render_report(stats, image_files))
    log(f"Wrote {report_path} and {len(image_files)} plots.")
    return CorpusEdaResult(stats=stats, report_path=Path(report_path), plot_paths=plot_paths)


# --- cleansed_poems -----------------------------------------------------------------------------


class CleansingLake(Protocol):
    def reports_dir(self) -> Path: ...

    def exports_dir(self) -> Path: ...


@dataclass(frozen=True)
class CleansedPoemsResult:
    """The combined raw table, the cleaning result (table, steps, removed rows) and the files written."""

    raw: pd.DataFrame
    cleaning: CleanseResult
    seconds: float
    plot_path: Path  # where it was written (staged until the IO manager publishes it)
    export_paths: dict[str, Path]  # file name -> final path; empty when exports are off


def run_cleansed_poems(
    config: CleaningConfig,
    lake: CleansingLake,
    log: Callable[[str], None],
    raw_partitions: dict[str, pd.DataFrame],
    write_exports: bool = True,
    stage_file: Callable[[Path], Path] = lambda path: path,
) -> CleansedPoemsResult:
    """Combine the partitions → clean → plot what each step removed → write the exports.

    ``stage_file(final_path)`` gives the path to write a file at (the Dagster IO manager stages every
    file of the asset and publishes them with the table: all files of one run, or none).
    """
    raw = combine_partitions(raw_partitions)
    log(f"Cleansing {len(raw)} raw poems from {sorted(raw_partitions)}.")
    started = time.perf_counter()
    result = cleanse_poems(raw, config)
    seconds = time.perf_counter() - started
    table = result.table
    log(f"Kept {len(table)} of {len(raw)} poems in {seconds:.1f}s.")
    figure = _removed_per_step_figure(result.steps_frame(), len(raw), len(table))
    plot = write_figure(figure, stage_file(lake.reports_dir() / "cleansing_steps.png"))
    export_paths: dict[str, Path] = {}
    if write_exports:
        exports = lake.exports_dir()
        for name, write in (
            ("raw_poems.json", lambda path: write_raw_poems_json(raw, path)),
            ("cleansed.txt", lambda path: write_cleansed_text(table["text"], path)),
        ):
            write(stage_file(exports / name))
            export_paths[name] = exports / name
    return CleansedPoemsResult(raw, result, seconds, plot, export_paths)


def _removed_per_step_figure(steps: pd.DataFrame, rows_in: int, rows_out: int):
    figure = new_figure(7, 3.5)
    axis = figure.subplots()
    removing = steps[steps["kind"] != "transform"]
    axis.barh(removing["rule"], removing["rows_removed"], color="tab:red")
    axis.invert_yaxis()
    axis.set(title=f"Rows removed per step ({rows_in} in, {rows_out} out)", xlabel="rows")
    return figure


# --- raw_poems ----------------------------------------------------------------------------------


class Scraper(Protocol):
    """What scraping needs of the ``scraper`` resource: a polite HTTP client per online site."""

    def client(self, site: str) -> Any: ...


class RawLake(Protocol):
    path: Path

    def table_path(self, name: str, partition: str | None = None) -> Path: ...

    def folder(self, *parts: str) -> Path: ...


@dataclass(frozen=True)
class RawPoemsResult:
    """One site's scrape, the table built from it, the last snapshot and the verdict of the checks."""

    frame: pd.DataFrame
    table: RawPoemsTable  # frame + records dropped (by reason, first source keys)
    scrape: ScrapeResult  # per-site details and HTTP statistics
    previous: PreviousSnapshot
    verdict: SnapshotVerdict
    seconds: float
    snapshot_path: Path
    rejected_path: Path | None  # where a rejected scrape went (the last good snapshot is kept)


def run_raw_poems(
    config: RawScrapeConfig,
    lake: RawLake,
    warn: Callable[[str], None],
    site: str,
    scraper: Scraper,
) -> RawPoemsResult:
    """Scrape → build the table → judge it against the last snapshot → set a rejected scrape aside.

    Writing an accepted table is the IO manager's job; a whole-site failure raises (the old file stays).
    """
    started = time.perf_counter()
    result = scrape_site(site, config, scraper)
    table = build_raw_poems(result.records)  # a record that cannot be a row is dropped and counted
    if table.dropped:
        warn(f"raw_poems[{site}]: records left out, by reason: {table.dropped}")
    snapshot_path = lake.table_path("raw_poems", site)
    previous = inspect_previous_snapshot(snapshot_path, lake.path / "raw_poems" / "_corrupt")  # made on use
    if previous.quarantined_to is not None:
        warn(
            f"raw_poems[{site}]: the last snapshot {snapshot_path} is unreadable ({previous.problem}); "
            f"moved to {previous.quarantined_to} and judging this scrape as the first one."
        )
    verdict = evaluate_snapshot(
        table.frame,
        previous.rows,
        min_ratio=config.collapse_min_ratio,
        check_collapse=site not in BUNDLED_SITES and not config.allow_shrink,
    )
    seconds = time.perf_counter() - started
    rejected = None
    if not verdict.accepted:
        rejected = write_rejected(table.frame, lake.folder("raw_poems", "_rejected"), site)
    return RawPoemsResult(table.frame, table, result, previous, verdict, seconds, snapshot_path, rejected)


def scrape_site(site: str, config: RawScrapeConfig, scraper: Scraper) -> ScrapeResult:
    """Run the adapter of one site partition (bundled: package data; online: HTTP)."""
    if site == "gutenberg":
        return gutenberg_poems(
            max_excerpts=config.gutenberg_max_excerpts, seed=config.gutenberg_seed, rule=config.excerpt_rule()
        )
    if site == "shakespeare":
        return shakespeare_poems()
    if site == "poetrydb":
        with scraper.client(site) as client:
            return scrape_poetrydb(client, config.poetrydb_options())
    if site == "poets_org":
        with scraper.client(site) as client:
            return scrape_poets_org(client, config.poets_org_options())
    raise ValueError(f"Unknown site partition {site!r}.")
