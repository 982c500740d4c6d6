"""Stages of the ``data`` group after cleaning: the corpus report (``corpus_eda``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd

from genai_assets.lake import atomic_write_text
from genai_assets.plotting import write_figure
from genai_assets.reporting.eda import PLOTS, CorpusStats, EdaConfig, compute_corpus_stats, render_report


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
