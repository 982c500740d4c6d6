"""Stage "evaluation": compare every trained model on the test split, and the human A/B study.

Assets (group ``evaluation``):

* ``evaluation`` → ``<lake>/reports/evaluation.{md,json}``, ``evaluation_samples.parquet`` and
  two plots: perplexity, bits/char, BLEU/chrF, diversity, memorisation and form per model
  (``genai_assets.evaluation.runner``) for ``base_lm``, ``finetuned_lm``, ``scratch_transformer`` and
  the best of ``rnn_baselines``. A model whose folder is missing is skipped with a note.
* ``human_eval_sheet`` → ``<lake>/human_eval/sheet.{csv,html}`` + ``key.csv``: a blind A/B sheet.
* ``human_eval_results`` → ``<lake>/reports/human_eval.{md,json}`` from the filled-in ratings in
  ``<lake>/human_eval/ratings/*.csv`` (preference rates with Wilson 95% intervals).

Heavy libraries are imported inside the asset bodies (``genai_assets.definitions`` stays light).
"""

import json
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from genai_assets.defs._metadata import dataframe_markdown, image_markdown
from genai_assets.defs._resources import DataLake
from genai_assets.lake import atomic_write_text

# Model assets compared by ``evaluation``, in table order; each is optional at run time.
EVALUATED_MODELS = ("base_lm", "finetuned_lm", "scratch_transformer", "rnn_baselines")
HUMAN_EVAL_FOLDER = "human_eval"
RATINGS_FOLDER = "ratings"


class EvaluationConfig(dg.Config):
    """How much of the test split to use (defaults = the cpu demo profile, ~2 min on 2 cores)."""

    models: list[str] = Field(
        default_factory=lambda: list(EVALUATED_MODELS),
        description="Model assets to compare; a model whose folder is missing is skipped with a note.",
    )
    max_perplexity_poems: int = Field(
        64, description="Test poems scored for perplexity and bits/char (0 = all)."
    )
    max_chars_per_poem: int = Field(1200, description="Longer poems are cut at a line break before scoring.")
    n_prompts: int = Field(16, description="Test poems whose first lines prompt each model.")
    prompt_lines: int = Field(2, description="Lines of each test poem given as the prompt.")
    continuation_lines: int = Field(4, description="Real lines after the prompt that BLEU/chrF compare with.")
    max_new_tokens: int = Field(48, description="Tokens generated per prompt.")
    temperature: float = Field(0.8, description="Sampling temperature (same for every model).")
    top_k: int = Field(50, description="Top-k filter (0 = off).")
    top_p: float = Field(0.95, description="Nucleus sampling mass.")
    seed: int = Field(1234, description="Seed of the prompt choice and of every model's sampling.")


def resolve_model_folder(lake: DataLake, name: str) -> tuple[Path | None, str]:
    """The Hugging Face / scratch folder to evaluate for model asset ``name``, and a note.

    ``base_lm`` may record a base that lives elsewhere (``base_info.json``); ``rnn_baselines``
    writes ``models/rnn_{rnn,lstm,gru}/`` and names the best (lowest validation loss) in
    ``models/rnn_baselines.json``: that one is evaluated. Missing → (None, why).
    """
    models = lake.path / "models"
    folder = models / name
    if name == "base_lm" and (folder / "base_info.json").is_file():
        from genai_assets.finetune.base_model import base_model_dir

        folder = base_model_dir(folder)
    if name == "rnn_baselines":
        summary_path = models / "rnn_baselines.json"
        if not summary_path.is_file():
            return None, f"no {summary_path} (rnn_baselines not materialized)"
        summary = json.loads(summary_path.read_text())
        folder = models / f"rnn_{summary['best']}"
        if not (folder / "config.json").is_file():
            folder = Path(summary.get("best_dir", folder))
        note = f"best RNN by validation loss ({summary.get('selection', 'rnn_baselines.json')}): {summary['best']}"
        return (
            (folder, note) if (folder / "config.json").is_file() else (None, f"no model folder at {folder}")
        )
    if (folder / "config.json").is_file():
        return folder, ""
    return None, f"no model folder at {folder}"


@dg.asset(
    group_name="evaluation",
    deps=list(EVALUATED_MODELS),
    kinds={"pytorch"},
)
def evaluation(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    lake: DataLake,
    cleansed_poems: pd.DataFrame,
) -> dg.MaterializeResult:
    """Perplexity, bits/char, BLEU/chrF, diversity, memorisation and form of every trained model."""
    from genai_assets.evaluation.report import plot_report, summary_table, write_report
    from genai_assets.evaluation.runner import EvaluationSettings, evaluate_models

    settings = EvaluationSettings(
        max_perplexity_poems=config.max_perplexity_poems,
        max_chars_per_poem=config.max_chars_per_poem,
        n_prompts=config.n_prompts,
        prompt_lines=config.prompt_lines,
        continuation_lines=config.continuation_lines,
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        top_k=config.top_k,
        top_p=config.top_p,
        seed=config.seed,
    )
    unknown = sorted(set(config.models) - set(EVALUATED_MODELS))
    if unknown:
        raise ValueError(
            f"Unknown model(s) {unknown} in config.models; choose from {list(EVALUATED_MODELS)}."
        )

    folders: dict[str, Path | None] = {}
    notes: dict[str, str] = {}
    for name in config.models:
        folders[name], note = resolve_model_folder(lake, name)
        if note:
            notes[name] = note

    report = evaluate_models(folders, cleansed_poems, settings, log=context.log.info, model_notes=notes)
    paths = write_report(report, lake.reports_dir())
    plots = {name: image_markdown(path) for name, path in plot_report(report, lake.reports_dir()).items()}
    table = summary_table(report)
    metadata: dict = {
        "evaluation_table": dg.MetadataValue.md(table.to_markdown(index=False)),
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
            "\n".join(f"- `{name}`: {why}" for name, why in report.skipped.items())
        )
    if report.notes:
        metadata["model_choice"] = dg.MetadataValue.json(report.notes)
    for row in report.table.to_dict("records"):
        if row["model"] != "reference":
            metadata[f"{row['model']}/bits_per_char"] = dg.MetadataValue.float(float(row["bits_per_char"]))
            metadata[f"{row['model']}/bleu"] = dg.MetadataValue.float(float(row["bleu"]))
    return dg.MaterializeResult(metadata=metadata)


class HumanEvalSheetConfig(dg.Config):
    """Which two systems the blind A/B sheet compares."""

    model_a: str = Field("finetuned_lm", description="First system ('reference' = the real poem's lines).")
    model_b: str = Field(
        "base_lm", description="Second system; if either is missing, the first two available are used."
    )
    max_items: int = Field(16, description="Prompts on the sheet.")
    seed: int = Field(2024, description="Seed of the item choice, item order and left/right sides.")


# Preference order used when a configured model has no samples (e.g. not trained in this run).
FALLBACK_ORDER = ("finetuned_lm", "base_lm", "scratch_transformer", "rnn_baselines", "reference")


@dg.asset(group_name="evaluation", deps=["evaluation"])
def human_eval_sheet(
    context: dg.AssetExecutionContext, config: HumanEvalSheetConfig, lake: DataLake
) -> dg.MaterializeResult:
    """A blind A/B rating sheet (CSV + self-contained HTML page) and its separate key file."""
    from genai_assets.evaluation.human_eval import build_sheet, write_sheet

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
    paths = write_sheet(sheet, lake.folder(HUMAN_EVAL_FOLDER))
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
    """Preference rates (Wilson 95% intervals) from the filled-in ratings; a clear note if none yet."""
    from genai_assets.evaluation.human_eval import preference_summary, read_ratings

    folder = lake.path / HUMAN_EVAL_FOLDER
    key_path = folder / "key.csv"
    if not key_path.is_file():
        raise FileNotFoundError(f"{key_path} is missing: materialize asset human_eval_sheet first.")
    key = pd.read_csv(key_path, dtype=str)
    ratings_dir = folder / RATINGS_FOLDER
    files = sorted(ratings_dir.glob("*.csv")) if ratings_dir.is_dir() else []
    if not files:
        message = (
            f"No ratings yet: put the filled-in ratings CSV files downloaded from {folder / 'sheet.html'} "
            f"into {ratings_dir}/ and materialize human_eval_results again."
        )
        context.log.info(message)
        return dg.MaterializeResult(metadata={"status": "no ratings yet", "note": message, "judgements": 0})
    ratings = read_ratings(files, key)
    if ratings.empty:
        message = f"{len(files)} ratings file(s) in {ratings_dir}, but no item has been rated yet."
        return dg.MaterializeResult(metadata={"status": "no ratings yet", "note": message, "judgements": 0})
    summary = preference_summary(ratings, key)
    low, high = summary["win_rate_a_ci95"]
    text = (
        f"# Human evaluation\n\n{summary['judgements']} judgements by {summary['raters']} rater(s) "
        f"from {len(files)} file(s).\n\n"
        f"| system | wins |\n|---|---|\n| {summary['model_a']} | {summary['wins_a']} |\n"
        f"| {summary['model_b']} | {summary['wins_b']} |\n| tie | {summary['ties']} |\n\n"
        f"{summary['model_a']} preferred in {summary['win_rate_a']:.1%} of decisive judgements "
        f"(95% Wilson score interval {low:.1%} – {high:.1%}; ties excluded).\n"
    )
    reports = lake.reports_dir()
    atomic_write_text(reports / "human_eval.md", text)
    atomic_write_text(reports / "human_eval.json", json.dumps(summary, indent=2) + "\n")
    return dg.MaterializeResult(
        metadata={
            "status": "rated",
            "judgements": dg.MetadataValue.int(summary["judgements"]),
            "raters": dg.MetadataValue.int(summary["raters"]),
            f"win_rate/{summary['model_a']}": dg.MetadataValue.float(summary["win_rate_a"]),
            "win_rate_ci95": dg.MetadataValue.json(summary["win_rate_a_ci95"]),
            "interval": summary["interval"],
            "summary": dg.MetadataValue.md(text),
            "report": dg.MetadataValue.path(str(reports / "human_eval.md")),
        }
    )


PRESETS = {
    "tiny": {
        "evaluation": {
            "config": {
                "max_perplexity_poems": 8,
                "n_prompts": 4,
                "max_new_tokens": 12,
                "max_chars_per_poem": 400,
            }
        },
        "human_eval_sheet": {"config": {"max_items": 4}},
    },
    "gpu": {
        "evaluation": {"config": {"max_perplexity_poems": 0, "n_prompts": 128, "max_new_tokens": 96}},
        "human_eval_sheet": {"config": {"max_items": 40}},
    },
}

defs = dg.Definitions(assets=[evaluation, human_eval_sheet, human_eval_results])
