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

import os

import dagster as dg
import pandas as pd

from genai_assets.defs._config import asset_presets, stage_config
from genai_assets.defs._metadata import dataframe_markdown, image_markdown, table_markdown
from genai_assets.defs._resources import DataLake
from genai_assets.defs._stage_call import run_stage
from genai_assets.escaping import md_code_span, md_inline
from genai_assets.evaluation.human_eval import HUMAN_EVAL_PRESETS
from genai_assets.evaluation.human_eval import HumanEvalSheetConfig as HumanEvalSheetSettings
from genai_assets.evaluation.runner import EVALUATED_MODELS, EVALUATION_PRESETS, EvaluationSettings
from genai_assets.stages.evaluation import HUMAN_EVAL_FOLDER

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

    # The configured model list is validated with the config, before any model is loaded.
    result = run_stage(run_evaluation, EvaluationConfig, context, lake, cleansed_poems)
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
    from genai_assets.stages.evaluation import run_human_eval_sheet

    # It logs only a replaced pair: a warning.
    result = run_stage(run_human_eval_sheet, HumanEvalSheetConfig, context, lake, log=context.log.warning)
    sheet, paths, model_a, model_b, note = (
        result.sheet,
        result.paths,
        result.model_a,
        result.model_b,
        result.note,
    )
    metadata = {
        "sheet_id": sheet.sheet_id,
        "items": dg.MetadataValue.int(len(sheet.sheet)),
        "compared": f"{model_a} vs {model_b}",
        "sheet_html": dg.MetadataValue.path(str(paths["sheet_html"])),
        "sheet_csv": dg.MetadataValue.path(str(paths["sheet_csv"])),
        "key_csv": dg.MetadataValue.path(str(paths["key_csv"])),
        "ratings_folder": dg.MetadataValue.path(str(result.ratings_folder)),
        "preview": dataframe_markdown(sheet.sheet, max_rows=4),
    }
    if note:
        metadata["note"] = note
    return dg.MaterializeResult(metadata=metadata)


def _ratings_metadata(result) -> dict:
    """What ``human_eval_results`` reports once there are judgements (``result``: ``HumanEvalResults``)."""
    text, summary = result.report_text, result.summary
    metadata = {
        "status": "rated",
        "judgements": dg.MetadataValue.int(summary["judgements"]),
        "raters": dg.MetadataValue.int(summary["raters"]),
        "agreement": dg.MetadataValue.json(summary["agreement"]),
        "pairs": dg.MetadataValue.json(summary["pairs"]),
        "interval": summary["interval"],
        "summary": dg.MetadataValue.md(text),
        "report": dg.MetadataValue.path(str(result.report_path)),
        "ratings_unmatched": dg.MetadataValue.int(result.n_stored - result.n_judgements),
    }
    for row in summary["pairs"]:
        metadata[f"win_rate/{row['model_a']} vs {row['model_b']}"] = dg.MetadataValue.float(row["win_rate_a"])
    headline = summary.get("current_pair")
    if headline:  # the pair raters are handed now: its first model's win rate under a short name
        metadata[f"win_rate/{headline['model_a']}"] = dg.MetadataValue.float(headline["win_rate_a"])
        metadata["win_rate_ci95"] = dg.MetadataValue.json(headline["win_rate_a_ci95"])
        metadata["sheet_versions"] = dg.MetadataValue.json(headline["sheet_versions"])
    return metadata


@dg.asset(group_name="evaluation", deps=["human_eval_sheet"])
def human_eval_results(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """Preferences per model pair (Wilson 95%), raters and Fleiss' kappa from the ratings database.

    The playground's Rate tab writes the database; filled-in CSVs dropped into
    ``human_eval/ratings/`` are imported into it first (a judgement already stored is kept).
    """
    from genai_assets.stages.evaluation import run_human_eval_results

    result = run_human_eval_results(lake, context.log.info)
    base = {
        "database": result.database,
        "csv_imported": dg.MetadataValue.int(result.imported),
        # files in the ratings folder that are hidden or not .csv
        "ignored_files": dg.MetadataValue.json(result.ignored_files),
        "current_sheet": result.current_sheet,
    }
    if result.summary is None:
        message = (
            "No ratings yet: rate pairs in the playground's Rate tab (genai-assets playground), or put "
            f"ratings CSVs downloaded from the sheet page into {result.ratings_dir}/, then materialize again."
        )
        context.log.info(message)
        return dg.MaterializeResult(
            metadata={**base, "status": "no ratings yet", "note": message, "judgements": 0}
        )
    return dg.MaterializeResult(metadata={**base, **_ratings_metadata(result)})


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
