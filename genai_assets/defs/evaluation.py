"""Stage "evaluation": compare every trained model on the test split, and the human A/B study.

Assets (group ``evaluation``):

* ``evaluation`` → ``<lake>/reports/evaluation.{md,json}``, ``evaluation_samples.parquet`` and
  two plots: perplexity, bits/char, BLEU/chrF, diversity, memorisation and form per model
  (``genai_assets.stages.evaluation``) for ``base_lm``, ``finetuned_lm``, ``scratch_transformer`` and
  the best of ``rnn_baselines``. A model whose folder is missing is skipped with a note.
* ``human_eval_sheet`` → ``<lake>/human_eval/sheet-<id>/sheet.{csv,html}`` + ``key.csv``: a blind
  A/B sheet, one folder per version (never overwritten); ``human_eval/current.json`` names the newest.
* ``human_eval_results`` → ``<lake>/reports/human_eval.{md,json}`` from the ratings database
  (``genai_assets.evaluation.ratings_db``: the playground's Rate tab; CSVs in
  ``<lake>/human_eval/ratings/`` are imported into it), each joined with the key of its own sheet
  version: preference rates per model pair with Wilson 95% intervals, raters, Fleiss' kappa.
  The sensor ``new_ratings_sensor`` requests a run when new ratings arrive.

Heavy libraries are imported inside the asset bodies (``genai_assets.definitions`` stays light).
"""

import json
import os

import dagster as dg
import pandas as pd

from genai_assets.defs._config import asset_presets, stage_config
from genai_assets.defs._metadata import dataframe_markdown, image_markdown, table_markdown
from genai_assets.defs._resources import DataLake
from genai_assets.escaping import md_code_span, md_inline
from genai_assets.evaluation.human_eval import FALLBACK_ORDER, HUMAN_EVAL_PRESETS
from genai_assets.evaluation.human_eval import HumanEvalSheetConfig as HumanEvalSheetSettings
from genai_assets.evaluation.runner import EVALUATED_MODELS, EVALUATION_PRESETS, EvaluationSettings
from genai_assets.lake import atomic_write_text

HUMAN_EVAL_FOLDER = "human_eval"
RATINGS_FOLDER = "ratings"


EvaluationConfig = stage_config(EvaluationSettings)
HumanEvalSheetConfig = stage_config(HumanEvalSheetSettings)


@dg.asset(
    group_name="evaluation",
    deps=list(EVALUATED_MODELS),
    kinds={"pytorch"},
    config_schema=EvaluationConfig.config_schema(),
)
def evaluation(
    context: dg.AssetExecutionContext,
    lake: DataLake,
    cleansed_poems: pd.DataFrame,
) -> dg.MaterializeResult:
    """Perplexity, bits/char, BLEU/chrF, diversity, memorisation and form of every trained model."""
    from genai_assets.evaluation.report import summary_table
    from genai_assets.stages.evaluation import run_evaluation

    settings = EvaluationConfig.from_context(context).to_library()  # models validated there
    result = run_evaluation(settings, lake, context.log.info, cleansed_poems)
    report, paths = result.report, result.paths
    plots = {name: image_markdown(path) for name, path in result.plot_paths.items()}
    table = summary_table(report)
    metadata: dict = {
        "evaluation_table": table_markdown(table),
        "models_evaluated": dg.MetadataValue.int(len(report.table) - 1),
        "report": dg.MetadataValue.path(str(paths["markdown"])),
        "results_json": dg.MetadataValue.path(str(paths["json"])),
        "samples": dg.MetadataValue.path(str(paths["samples"])),
        "sample_preview": dataframe_markdown(report.samples[["model", "prompt", "text"]], max_rows=8),
        "seconds_per_model": dg.MetadataValue.json({k: round(v, 1) for k, v in report.timings.items()}),
        **plots,
    }
    if report.skipped:
        metadata["skipped_models"] = dg.MetadataValue.md(
            "\n".join(f"- {md_code_span(name)}: {md_inline(why)}" for name, why in report.skipped.items())
        )
    if report.notes:
        metadata["model_choice"] = dg.MetadataValue.json(report.notes)
    for row in report.table.to_dict("records"):
        if row["model"] != "reference":
            metadata[f"{row['model']}/bits_per_char"] = dg.MetadataValue.float(float(row["bits_per_char"]))
            metadata[f"{row['model']}/bleu"] = dg.MetadataValue.float(float(row["bleu"]))
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(group_name="evaluation", deps=["evaluation"], config_schema=HumanEvalSheetConfig.config_schema())
def human_eval_sheet(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """A blind A/B rating sheet (CSV + self-contained HTML page) and its separate key file."""
    from genai_assets.evaluation.human_eval import build_sheet, mark_current_sheet, sheet_folder, write_sheet

    config = HumanEvalSheetConfig.from_context(context).to_library()

    samples_path = lake.reports_dir() / "evaluation_samples.parquet"
    if not samples_path.is_file():
        raise FileNotFoundError(f"{samples_path} is missing: materialize asset evaluation first.")
    samples = pd.read_parquet(samples_path)
    available = set(samples["model"])
    model_a, model_b = config.model_a, config.model_b
    note = ""
    if model_a not in available or model_b not in available:
        ordered = [name for name in FALLBACK_ORDER if name in available]
        chosen = [name for name in (model_a, model_b) if name in available]
        chosen += [name for name in ordered if name not in chosen]
        if len(chosen) < 2:
            raise ValueError(
                f"The evaluation samples hold only {sorted(available)}: need two systems to compare."
            )
        model_a, model_b = chosen[:2]
        note = (
            f"configured pair ({config.model_a}, {config.model_b}) not both in the samples "
            f"({sorted(available)}); comparing {model_a} vs {model_b} instead"
        )
        context.log.warning(note)
    sheet = build_sheet(samples, model_a, model_b, seed=config.seed, max_items=config.max_items)
    # A new version folder per distinct sheet: ratings of earlier sheets keep their key.
    root = lake.folder(HUMAN_EVAL_FOLDER)
    paths = write_sheet(sheet, sheet_folder(root, sheet.sheet_id))
    mark_current_sheet(root, sheet.sheet_id)
    lake.folder(HUMAN_EVAL_FOLDER, RATINGS_FOLDER)
    metadata = {
        "sheet_id": sheet.sheet_id,
        "items": dg.MetadataValue.int(len(sheet.sheet)),
        "compared": f"{model_a} vs {model_b}",
        "sheet_html": dg.MetadataValue.path(str(paths["sheet_html"])),
        "sheet_csv": dg.MetadataValue.path(str(paths["sheet_csv"])),
        "key_csv": dg.MetadataValue.path(str(paths["key_csv"])),
        "ratings_folder": dg.MetadataValue.path(str(lake.path / HUMAN_EVAL_FOLDER / RATINGS_FOLDER)),
        "preview": dataframe_markdown(sheet.sheet, max_rows=4),
    }
    if note:
        metadata["note"] = note
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(group_name="evaluation", deps=["human_eval_sheet"])
def human_eval_results(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """Preferences per model pair (Wilson 95%), raters and Fleiss' kappa from the ratings database.

    The playground's Rate tab writes the database; filled-in CSVs dropped into
    ``human_eval/ratings/`` are imported into it first (a judgement already stored is kept).
    """
    from genai_assets.evaluation.human_eval import (
        current_sheet_id,
        human_eval_report,
        judgements_with_winners,
        load_sheet_keys,
        ratings_files,
        read_ratings,
    )
    from genai_assets.evaluation.ratings_db import RatingsStore, ratings_db_url

    folder = lake.path / HUMAN_EVAL_FOLDER
    keys = load_sheet_keys(folder)
    if keys.empty:
        raise FileNotFoundError(f"No sheet key under {folder}: materialize asset human_eval_sheet first.")
    current = current_sheet_id(folder) or str(keys["sheet_id"].iloc[-1])
    store = RatingsStore(ratings_db_url(lake.path))
    try:
        ratings_dir = folder / RATINGS_FOLDER
        files, ignored = ratings_files(ratings_dir)
        imported = store.import_ratings(read_ratings(files, keys)) if files else 0
        stored = store.ratings()
    finally:
        store.close()
    context.log.info(f"Imported {imported} new rating(s) from {len(files)} CSV file(s) in {ratings_dir}.")
    judgements = judgements_with_winners(stored, keys)
    base = {
        "database": store.display_url,
        "csv_imported": dg.MetadataValue.int(imported),
        "ignored_files": dg.MetadataValue.json(ignored),  # hidden or not .csv in the ratings folder
        "current_sheet": current,
    }
    if judgements.empty:
        message = (
            "No ratings yet: rate pairs in the playground's Rate tab (genai-assets playground), or put "
            f"ratings CSVs downloaded from the sheet page into {folder / RATINGS_FOLDER}/, then materialize again."
        )
        context.log.info(message)
        return dg.MaterializeResult(
            metadata={**base, "status": "no ratings yet", "note": message, "judgements": 0}
        )
    text, summary = human_eval_report(judgements, current_sheet=current)
    reports = lake.reports_dir()
    atomic_write_text(reports / "human_eval.md", text)
    atomic_write_text(reports / "human_eval.json", json.dumps(summary, indent=2) + "\n")
    metadata = {
        **base,
        "status": "rated",
        "judgements": dg.MetadataValue.int(summary["judgements"]),
        "raters": dg.MetadataValue.int(summary["raters"]),
        "agreement": dg.MetadataValue.json(summary["agreement"]),
        "pairs": dg.MetadataValue.json(summary["pairs"]),
        "interval": summary["interval"],
        "summary": dg.MetadataValue.md(text),
        "report": dg.MetadataValue.path(str(reports / "human_eval.md")),
        "ratings_unmatched": dg.MetadataValue.int(len(stored) - len(judgements)),
    }
    for row in summary["pairs"]:
        metadata[f"win_rate/{row['model_a']} vs {row['model_b']}"] = dg.MetadataValue.float(row["win_rate_a"])
    headline = summary.get("current_pair")
    if headline:  # the pair raters are handed now: its first model's win rate under a short name
        metadata[f"win_rate/{headline['model_a']}"] = dg.MetadataValue.float(headline["win_rate_a"])
        metadata["win_rate_ci95"] = dg.MetadataValue.json(headline["win_rate_a_ci95"])
        metadata["sheet_versions"] = dg.MetadataValue.json(headline["sheet_versions"])
    return dg.MaterializeResult(metadata=metadata)


@dg.sensor(
    target=[human_eval_results],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def new_ratings_sensor(context: dg.SensorEvaluationContext, lake: DataLake):
    """Requests a ``human_eval_results`` run when the ratings database holds more ratings than the
    cursor (the count at the last request; rows are never deleted, so a larger count = new votes)."""
    from genai_assets.evaluation.ratings_db import RATINGS_DB_ENV, RatingsStore, ratings_db_url

    database = lake.path / HUMAN_EVAL_FOLDER / "ratings.db"
    if not os.environ.get(RATINGS_DB_ENV) and not database.is_file():
        return dg.SkipReason(f"No ratings database yet ({database}).")
    store = RatingsStore(ratings_db_url(lake.path))
    try:
        count = store.count()
    finally:
        store.close()
    seen = int(context.cursor or 0)
    if count <= seen:
        return dg.SkipReason(f"No new ratings ({count} stored, {seen} at the last run request).")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"ratings-{count}")],
        cursor=str(count),
    )


PRESETS = asset_presets({"evaluation": EVALUATION_PRESETS, "human_eval_sheet": HUMAN_EVAL_PRESETS})

defs = dg.Definitions(assets=[evaluation, human_eval_sheet, human_eval_results], sensors=[new_ratings_sensor])
