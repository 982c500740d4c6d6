"""Stages of the ``evaluation`` group: ``evaluation`` (every trained model on the test split), and the
human A/B study (``human_eval_sheet``, ``human_eval_results``).

:func:`run_evaluation` resolves which model folders exist in the lake, evaluates each one
(:func:`evaluate_models`: perplexity and bits/char in and out of domain, sampled continuations
scored by BLEU/chrF, diversity, memorisation and form; the real continuations as a reference row)
and writes the report, its JSON, the samples table and two plots. The measures themselves live in
:mod:`genai_assets.evaluation`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol

import pandas as pd

from genai_assets.evaluation import metrics
from genai_assets.evaluation.human_eval import (
    FALLBACK_ORDER,
    REFERENCE_MODEL,
    HumanEvalSheet,
    HumanEvalSheetConfig,
    build_sheet,
    current_sheet_id,
    human_eval_report,
    judgements_with_winners,
    load_sheet_keys,
    mark_current_sheet,
    ratings_files,
    read_ratings,
    sheet_folder,
    write_sheet,
)
from genai_assets.evaluation.ood_poems import ood_texts
from genai_assets.evaluation.perplexity import evaluate_perplexity
from genai_assets.evaluation.ratings_db import RatingsStore, ratings_db_url
from genai_assets.evaluation.report import plot_report, write_report
from genai_assets.evaluation.runner import (
    EvaluationReport,
    EvaluationSettings,
    complete_lines,
    generate_continuations,
    json_max_new,
    perplexity_texts,
    select_prompts,
    text_metrics,
)
from genai_assets.finetune.base_model import base_model_dir
from genai_assets.generation import SamplingConfig, load_generator
from genai_assets.lake import atomic_write_text


class EvaluationLake(Protocol):
    path: Path

    def reports_dir(self) -> Path: ...


@dataclass(frozen=True)
class EvaluationResult:
    """The report, the files written (``markdown``, ``json``, ``samples``) and the plots (name → PNG)."""

    report: EvaluationReport
    paths: dict[str, Path]
    plot_paths: dict[str, Path]


def run_evaluation(
    config: EvaluationSettings, lake: EvaluationLake, log: Callable[[str], None], cleansed_poems: pd.DataFrame
) -> EvaluationResult:
    """Evaluate every model in ``config.models`` that the lake holds and write the report."""
    folders: dict[str, Path | None] = {}
    notes: dict[str, str] = {}
    for name in config.models:
        folders[name], note = resolve_model_folder(lake, name)
        if note:
            notes[name] = note
    report = evaluate_models(folders, cleansed_poems, config, log=log, model_notes=notes)
    paths = write_report(report, lake.reports_dir())
    return EvaluationResult(report=report, paths=paths, plot_paths=plot_report(report, lake.reports_dir()))


def resolve_model_folder(lake: EvaluationLake, name: str) -> tuple[Path | None, str]:
    """The Hugging Face / scratch folder to evaluate for model asset ``name``, and a note.

    ``base_lm`` may record a base that lives elsewhere (``base_info.json``); ``rnn_baselines``
    writes ``models/rnn_{rnn,lstm,gru}/`` and names the best (lowest validation loss) in
    ``models/rnn_baselines.json``: that one is evaluated. Missing → (None, why).
    """
    models = lake.path / "models"
    folder = models / name
    if name == "base_lm" and (folder / "base_info.json").is_file():
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


@dataclass(frozen=True)
class _TestSet:
    """What every model is evaluated on: the prompts, the texts scored for perplexity, the copy index."""

    prompts: pd.DataFrame
    scored_texts: list[str]
    copy_index: metrics.CopyIndex
    sampling: SamplingConfig


def _prepare_test_set(
    poems: pd.DataFrame, settings: EvaluationSettings, log: Callable[[str], None]
) -> _TestSet:
    missing = {"poem_id", "text", "split"} - set(poems.columns)
    if missing:
        raise ValueError(f"The poems table lacks columns {sorted(missing)}.")
    test = poems[poems["split"] == "test"]
    train = poems[poems["split"] == "train"]
    if test.empty:
        raise ValueError("The poems table has no test split: nothing to evaluate on.")
    prompts = select_prompts(test, settings)
    scored_texts = perplexity_texts(test, settings)
    started = time.perf_counter()
    copy_index = metrics.CopyIndex(train["text"])
    log(
        f"Indexed {copy_index.n_words} training words for the copy check in {time.perf_counter() - started:.1f}s."
    )
    sampling = SamplingConfig(
        do_sample=True,
        temperature=settings.temperature,
        top_k=settings.top_k,
        top_p=settings.top_p,
        repetition_penalty=1.0,  # not every model kind implements it: keep all models equal
        max_new_tokens=settings.max_new_tokens,
        seed=settings.seed,
    )
    return _TestSet(prompts=prompts, scored_texts=scored_texts, copy_index=copy_index, sampling=sampling)


def _sample_row(prompt_row, model: str, text: str, scored_text: str) -> dict:
    return {
        "prompt_id": prompt_row.prompt_id,
        "poem_id": prompt_row.poem_id,
        "prompt": prompt_row.prompt,
        "model": model,
        "text": text,
        "scored_text": scored_text,
        "reference": prompt_row.reference,
    }


def _evaluate_model(name: str, folder: Path, test_set: _TestSet, log: Callable[[str], None]):
    """(metrics row, sample rows) of one model folder."""
    generator = load_generator(folder)
    ppl = evaluate_perplexity(
        generator.model, generator.tokenizer, test_set.scored_texts, generator.context_length
    )
    # Out-of-domain verse (in no training source): a fine-tune that only memorised the corpus's
    # style shows up here as forgetting, which the in-domain number cannot show.
    ood = evaluate_perplexity(generator.model, generator.tokenizer, ood_texts(), generator.context_length)
    log(
        f"{name}: perplexity {ppl.perplexity:.2f}, {ppl.bits_per_char:.3f} bits/char on {ppl.n_texts} poems; "
        f"{ood.bits_per_char:.3f} bits/char on {ood.n_texts} out-of-domain poems."
    )
    prompts = test_set.prompts
    outputs = generate_continuations(generator, prompts["prompt"].tolist(), test_set.sampling)
    continuations, sample_rows = [], []
    for prompt_row, output in zip(prompts.itertuples(index=False), outputs, strict=True):
        continuation = output["text"][len(prompt_row.prompt) :]
        stopped_early = output["n_new_tokens"] < json_max_new(output)
        continuations.append(complete_lines(continuation, stopped_early))
        sample_rows.append(_sample_row(prompt_row, name, continuation, continuations[-1]))
    references = prompts["reference"].tolist()
    row = {
        "model": name,
        "kind": generator.kind,
        "perplexity": ppl.perplexity,
        "bits_per_char": ppl.bits_per_char,
        "ood_bits_per_char": ood.bits_per_char,
        "scored_tokens": ppl.n_tokens,
        "bleu": metrics.bleu_score(continuations, references),
        "chrf": metrics.chrf_score(continuations, references),
        **text_metrics(continuations, prompts["prompt"].tolist(), test_set.copy_index),
    }
    return row, sample_rows


def _reference_rows(test_set: _TestSet) -> tuple[dict, list[dict]]:
    """The real continuations measured like a model (diversity, form), with their sample rows."""
    prompts = test_set.prompts
    references = prompts["reference"].tolist()
    row = {
        "model": REFERENCE_MODEL,
        "kind": "real poems",
        "perplexity": math.nan,
        "bits_per_char": math.nan,
        "ood_bits_per_char": math.nan,
        "scored_tokens": 0,
        "bleu": math.nan,
        "chrf": math.nan,
        **text_metrics(references, prompts["prompt"].tolist(), test_set.copy_index),
    }
    samples = [
        _sample_row(prompt_row, REFERENCE_MODEL, prompt_row.reference, prompt_row.reference)
        for prompt_row in prompts.itertuples(index=False)
    ]
    return row, samples


def evaluate_models(
    model_folders: dict[str, Path | None],
    poems: pd.DataFrame,
    settings: EvaluationSettings,
    log: Callable[[str], None] = print,
    model_notes: dict[str, str] | None = None,
) -> EvaluationReport:
    """Evaluate each existing model folder; missing ones are skipped with the reason recorded.

    ``poems`` is the cleansed table (needs ``poem_id``, ``text``, ``split``); ``model_folders``
    maps a display name to its folder (None or a missing path = skip). ``model_notes`` says why a
    model is missing or which variant was chosen; it goes into the report.
    """
    test_set = _prepare_test_set(poems, settings, log)
    rows: list[dict] = []
    sample_rows: list[dict] = []
    skipped: dict[str, str] = {}
    timings: dict[str, float] = {}
    for name, folder in model_folders.items():
        if folder is None or not Path(folder).joinpath("config.json").is_file():
            reason = (model_notes or {}).get(name)
            skipped[name] = reason or (f"no model folder at {folder}" if folder else "not found in the lake")
            log(f"Skipping {name}: {skipped[name]}.")
            continue
        started = time.perf_counter()
        row, samples = _evaluate_model(name, folder, test_set, log)
        rows.append(row)
        sample_rows += samples
        timings[name] = time.perf_counter() - started
        log(f"{name}: evaluated in {timings[name]:.1f}s.")
    reference_row, reference_samples = _reference_rows(test_set)
    return EvaluationReport(
        table=pd.DataFrame([*rows, reference_row]),
        samples=pd.DataFrame(sample_rows + reference_samples),
        skipped=skipped,
        notes={name: note for name, note in (model_notes or {}).items() if name not in skipped},
        settings=asdict(settings),
        timings=timings,
    )


# --- human_eval_sheet and human_eval_results ----------------------------------------------------

HUMAN_EVAL_FOLDER = "human_eval"  # <lake>/human_eval/: sheet versions, current.json, ratings/
RATINGS_FOLDER = "ratings"  # filled-in CSVs dropped here are imported into the ratings database


class HumanEvalLake(Protocol):
    path: Path

    def folder(self, *parts: str) -> Path: ...

    def reports_dir(self) -> Path: ...


@dataclass(frozen=True)
class HumanEvalSheetResult:
    sheet: HumanEvalSheet
    model_a: str
    model_b: str
    paths: dict[str, Path]  # sheet_html, sheet_csv, key_csv
    ratings_folder: Path
    note: str  # why the configured pair was replaced; empty when it was not


def run_human_eval_sheet(
    config: HumanEvalSheetConfig, lake: HumanEvalLake, log: Callable[[str], None]
) -> HumanEvalSheetResult:
    """A blind A/B sheet of two models' evaluation samples, in a new version folder marked current."""
    samples_path = lake.reports_dir() / "evaluation_samples.parquet"
    if not samples_path.is_file():
        raise FileNotFoundError(f"{samples_path} is missing: materialize asset evaluation first.")
    samples = pd.read_parquet(samples_path)
    model_a, model_b, note = _pair_to_compare(config, set(samples["model"]))
    if note:
        log(note)
    sheet = build_sheet(samples, model_a, model_b, seed=config.seed, max_items=config.max_items)
    # A new version folder per distinct sheet: ratings of earlier sheets keep their key.
    root = lake.folder(HUMAN_EVAL_FOLDER)
    paths = write_sheet(sheet, sheet_folder(root, sheet.sheet_id))
    mark_current_sheet(root, sheet.sheet_id)
    lake.folder(HUMAN_EVAL_FOLDER, RATINGS_FOLDER)
    return HumanEvalSheetResult(
        sheet, model_a, model_b, paths, lake.path / HUMAN_EVAL_FOLDER / RATINGS_FOLDER, note
    )


def _pair_to_compare(config: HumanEvalSheetConfig, available: set[str]) -> tuple[str, str, str]:
    """The configured pair, or the first two available systems in ``FALLBACK_ORDER`` (with a note why)."""
    model_a, model_b = config.model_a, config.model_b
    if model_a in available and model_b in available:
        return model_a, model_b, ""
    ordered = [name for name in FALLBACK_ORDER if name in available]
    chosen = [name for name in (model_a, model_b) if name in available]
    chosen += [name for name in ordered if name not in chosen]
    if len(chosen) < 2:
        raise ValueError(
            f"The evaluation samples hold only {sorted(available)}: need two systems to compare."
        )
    note = (
        f"configured pair ({config.model_a}, {config.model_b}) not both in the samples "
        f"({sorted(available)}); comparing {chosen[0]} vs {chosen[1]} instead"
    )
    return chosen[0], chosen[1], note


@dataclass(frozen=True)
class HumanEvalResults:
    """Ratings imported and stored, and the report (``summary`` None = no judgements yet)."""

    database: str  # display URL, password masked
    imported: int
    ignored_files: list[str]
    current_sheet: str
    ratings_dir: Path
    n_stored: int
    n_judgements: int
    report_text: str | None = None
    summary: dict | None = None
    report_path: Path | None = None


def run_human_eval_results(lake: HumanEvalLake, log: Callable[[str], None]) -> HumanEvalResults:
    """Import dropped ratings CSVs into the database, join every rating with its sheet's key, report."""
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
    log(f"Imported {imported} new rating(s) from {len(files)} CSV file(s) in {ratings_dir}.")
    judgements = judgements_with_winners(stored, keys)
    counts = {"n_stored": len(stored), "n_judgements": len(judgements)}
    result = HumanEvalResults(store.display_url, imported, ignored, current, ratings_dir, **counts)
    if judgements.empty:
        return result
    text, summary = human_eval_report(judgements, current_sheet=current)
    reports = lake.reports_dir()
    atomic_write_text(reports / "human_eval.md", text)
    atomic_write_text(reports / "human_eval.json", json.dumps(summary, indent=2) + "\n")
    return replace(result, report_text=text, summary=summary, report_path=reports / "human_eval.md")
