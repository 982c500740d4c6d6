"""The evaluation report: ``reports/evaluation.md`` + ``evaluation.json`` + samples + plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from genai_assets.escaping import md_code_span, md_fence, md_inline, md_table_from_frame
from genai_assets.evaluation.runner import EvaluationReport
from genai_assets.lake import atomic_path, atomic_write_text

# Table columns in reading order (the JSON keeps everything).
SUMMARY_COLUMNS = [
    "model",
    "perplexity",
    "bits_per_char",
    "ood_bits_per_char",
    "bleu",
    "chrf",
    "distinct_1",
    "distinct_2",
    "distinct_3",
    "self_bleu",
    "copied_8gram_share",
    "longest_copied_span",
    "lines_per_poem",
    "words_per_line",
    "stanzas_per_poem",
    "rhyme_rate",
]


def summary_table(report: EvaluationReport) -> pd.DataFrame:
    columns = [column for column in SUMMARY_COLUMNS if column in report.table.columns]
    return report.table[columns].round(3)


def _json_safe(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _json_safe(value.item())
    return value


def report_markdown(report: EvaluationReport) -> str:
    settings = report.settings
    lines = [
        "# Evaluation of the poem models",
        "",
        f"Test split; perplexity and bits/char on up to {settings['max_perplexity_poems']} poems "
        f"(cut at {settings['max_chars_per_poem']} characters). Generation: {settings['n_prompts']} prompts of "
        f"{settings['prompt_lines']} lines, {settings['max_new_tokens']} new tokens, temperature "
        f"{settings['temperature']}, top-k {settings['top_k']}, top-p {settings['top_p']}, seed {settings['seed']}; "
        f"BLEU/chrF against the next {settings['continuation_lines']} real lines. "
        "Perplexity is per token of each model's own tokenizer; bits/char compares across tokenizers. "
        "`ood_bits_per_char`: bits/char on 20th-century poems in no training source "
        "(`genai_assets/data/ood_poems.toml`). "
        f"`{'reference'}` = the real continuations (baseline for diversity, copying and form).",
        "",
        md_table_from_frame(summary_table(report)),
        "",
    ]
    if report.skipped:
        lines += (
            ["Not evaluated:", ""] + [f"- `{name}`: {why}" for name, why in report.skipped.items()] + [""]
        )
    if report.notes:
        lines += ["Notes:", ""] + [f"- `{name}`: {note}" for name, note in report.notes.items()] + [""]
    if report.timings:
        lines += [
            "Time per model: "
            + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in report.timings.items())
        ]
        lines.append("")
    lines += ["## Longest copied spans", ""]
    for row in report.table.itertuples(index=False):
        lines.append(
            f"- {md_code_span(row.model)}: {row.longest_copied_span} words — “{md_inline(row.longest_copied_text)}”"
        )
    lines += ["", "## Samples (first prompt)", ""]
    first = report.samples[report.samples["prompt_id"] == report.samples["prompt_id"].min()]
    if not first.empty:
        # Prompts are scraped lines and samples generated text: each in a fence it cannot close.
        lines += ["Prompt:", "", md_fence(first.iloc[0]["prompt"].rstrip(), "text")]
        for row in first.itertuples(index=False):
            lines += [f"{md_code_span(row.model)}:", "", md_fence(row.text.strip() or "(empty)", "text")]
    return "\n".join(lines)


def plot_report(report: EvaluationReport, reports_dir: Path) -> dict[str, Path]:
    """Two PNGs: model quality (bits/char, BLEU, chrF) and diversity/form vs the real poems."""
    from genai_assets.plotting import new_figure, write_figure

    table = report.table
    models = table[table["model"] != "reference"]
    plots = {}
    if not models.empty:
        figure = new_figure(10, 3.5)
        for axis, (column, title) in zip(
            figure.subplots(1, 3),
            [("bits_per_char", "bits per character (lower is better)"), ("bleu", "BLEU"), ("chrf", "chrF")],
            strict=True,
        ):
            axis.bar(models["model"], models[column], color="#4c72b0")
            axis.set_title(title, fontsize=10)
            axis.tick_params(axis="x", labelrotation=30, labelsize=8)
        plots["plot_quality"] = write_figure(figure, reports_dir / "evaluation_quality.png")
    figure = new_figure(10, 3.5)
    for axis, (column, title) in zip(
        figure.subplots(1, 3),
        [
            ("distinct_2", "distinct-2"),
            ("copied_8gram_share", "copied 8-gram share"),
            ("rhyme_rate", "rhyme rate"),
        ],
        strict=True,
    ):
        colors = ["#dd8452" if model == "reference" else "#4c72b0" for model in table["model"]]
        axis.bar(table["model"], table[column].fillna(0.0), color=colors)
        axis.set_title(title, fontsize=10)
        axis.tick_params(axis="x", labelrotation=30, labelsize=8)
    plots["plot_diversity_form"] = write_figure(figure, reports_dir / "evaluation_diversity_form.png")
    return plots


def write_report(report: EvaluationReport, reports_dir: Path) -> dict[str, Path]:
    """Write the Markdown report, the JSON results and the samples table (atomically each)."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": reports_dir / "evaluation.md",
        "json": reports_dir / "evaluation.json",
        "samples": reports_dir / "evaluation_samples.parquet",
    }
    atomic_write_text(paths["markdown"], report_markdown(report))
    payload = {
        "models": [
            {key: _json_safe(value) for key, value in row.items()} for row in report.table.to_dict("records")
        ],
        "skipped": report.skipped,
        "notes": report.notes,
        "settings": report.settings,
        "timings_s": report.timings,
    }
    atomic_write_text(paths["json"], json.dumps(payload, indent=2) + "\n")
    with atomic_path(paths["samples"]) as tmp:
        report.samples.to_parquet(tmp, index=False)
    return paths
