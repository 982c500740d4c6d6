"""The one model-card writer: YAML metadata (``ModelCardData``) plus the sections a reader needs.

Built with ``huggingface_hub.ModelCard``/``ModelCardData`` so the Hub parses the metadata
(license, base_model, datasets, language, tags, metrics, model-index results) exactly as it
parses any other card; ``ModelCard.load`` on the written README.md round-trips it (tested).
Every card this project writes comes from :func:`build_model_card`: the published card
(``hub_upload``), the card saved in the fine-tuned folder (``finetune.model_card``) and the
scratch models' cards (``stages.scratch.model_card``) differ only in their inputs.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from genai_assets.escaping import md_code_span, md_fence, md_inline, md_table

if TYPE_CHECKING:
    from huggingface_hub import ModelCard

FINETUNE_LIMITATIONS = """Intended for creative play, teaching and research on small language models. The model is
small and was trained briefly on a narrow corpus of mostly 19th-century and older English
verse: expect archaic diction, frequent nonsense, weak long-range structure and occasional
verbatim lines from its training poems (the evaluation reports the share of copied 8-grams).
It inherits the biases of its base model and of the historical texts. Do not use it for
factual questions or for anything where its output could be mistaken for a real author's
work without saying so."""

# Columns of the evaluation table, in order, with their headers in the card.
EVALUATION_COLUMNS = {
    "model": "model",
    "perplexity": "perplexity (own tokens)",
    "bits_per_char": "bits/char",
    "bleu": "BLEU",
    "chrf": "chrF",
    "distinct_2": "distinct-2",
    "self_bleu": "self-BLEU",
    "copied_8gram_share": "copied 8-grams",
    "rhyme_rate": "rhyme rate",
}


@dataclass
class ModelCardInputs:
    """Everything the card says; plain data gathered by the asset from upstream metadata."""

    repo_id: str | None  # "<user or org>/<name>" the card describes; None for a card kept in the lake
    model_name: str  # human-readable title
    base_model: str | None  # Hub id of the pre-trained base (YAML base_model), None if not on the Hub
    base_model_label: str = ""  # how to name a base that is not on the Hub (e.g. "tiny-gpt2-random")
    license: str = "apache-2.0"  # SPDX-style id as the Hub expects it
    language: str = "en"
    datasets: list[str] = field(default_factory=list)  # Hub dataset ids, if the data is published
    tags: list[str] = field(default_factory=lambda: ["text-generation", "poetry", "dagster"])
    training_data: str = ""  # Markdown: sources, licenses, cleaning steps, split sizes
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    training_results: dict[str, Any] = field(default_factory=dict)  # e.g. final val loss, steps
    evaluation_rows: list[dict[str, Any]] = field(
        default_factory=list
    )  # one per model, EVALUATION_COLUMNS keys
    evaluated_model: str = "finetuned_lm"  # which evaluation row is this model (for model-index)
    sample_poems: list[dict[str, str]] = field(default_factory=list)  # {"prompt", "text"}
    evaluation_notes: str = ""  # how the figures were measured
    description: str = ""  # Markdown for "What it is"; default: the fine-tuned base model paragraph
    configuration: dict[str, Any] | None = None  # model config shown as JSON (the scratch models)
    library_name: str | None = "transformers"  # None: not loadable by a library the Hub knows
    limitations: str = ""  # Markdown; default: the fine-tuned model's limitations
    usage: str = ""  # Markdown for "How to use"; default: pipeline() on repo_id

    def __post_init__(self) -> None:
        if self.repo_id is None:
            if not self.usage:
                raise ValueError("A card without a repo_id needs `usage` (there is no Hub id to load from).")
        elif self.repo_id.count("/") != 1 or not all(self.repo_id.split("/")):
            raise ValueError(f"repo_id must look like 'owner/name', got {self.repo_id!r}.")
        # The Hub wants a license id ("apache-2.0", "mit"); free text becomes "other".
        self.license = self.license.strip().lower()
        if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", self.license):
            self.license = "other"


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return "–" if value is None else str(value)


def evaluation_table_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_No evaluation has been run yet._"
    cells = ([_format_value(row.get(key)) for key in EVALUATION_COLUMNS] for row in rows)
    return md_table(list(EVALUATION_COLUMNS.values()), cells).rstrip("\n")


def _card_data(inputs: ModelCardInputs):
    from huggingface_hub import EvalResult, ModelCardData

    results = []
    own = next((row for row in inputs.evaluation_rows if row.get("model") == inputs.evaluated_model), None)
    for metric in ("perplexity", "bits_per_char", "bleu", "chrf"):
        value = (own or {}).get(metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        results.append(
            EvalResult(
                task_type="text-generation",
                dataset_type=inputs.datasets[0] if inputs.datasets else "local/cleansed_poems",
                dataset_name="cleansed poems (test split)",
                dataset_split="test",
                metric_type=metric,
                metric_value=round(float(value), 4),
            )
        )
    return ModelCardData(
        model_name=inputs.repo_id.split("/")[1] if inputs.repo_id else inputs.model_name,
        base_model=inputs.base_model,
        license=inputs.license,
        language=inputs.language,
        datasets=inputs.datasets or None,
        tags=inputs.tags,
        metrics=["perplexity", "bleu", "chrf"],
        library_name=inputs.library_name,
        pipeline_tag="text-generation",
        eval_results=results or None,
    )


def _training_markdown(inputs: ModelCardInputs) -> tuple[str, str]:
    """``(hyperparameter table, results list)`` of the Training procedure section, every value escaped."""
    hyperparameters = md_table(
        ["hyperparameter", "value"],
        [(name, _format_value(value)) for name, value in inputs.hyperparameters.items()] or [("–", "–")],
    ).rstrip("\n")
    results = "\n".join(
        f"- **{md_inline(name)}**: {md_inline(_format_value(value))}"
        for name, value in inputs.training_results.items()
    )
    return hyperparameters, results


def _samples_markdown(inputs: ModelCardInputs) -> str:
    """Each sample poem as a fenced prompt and continuation (generated text, never read as Markdown)."""
    return "\n\n".join(
        f"**Prompt:**\n\n{md_fence(sample['prompt'], 'text')}\n**Continuation:**\n\n{md_fence(sample['text'], 'text')}"
        for sample in inputs.sample_poems
    )


def _description(inputs: ModelCardInputs) -> str:
    """The What-it-is paragraph: the caller's, or the fine-tuned model's naming its base (linked if on the Hub)."""
    if inputs.base_model:
        base = f"[{md_code_span(inputs.base_model)}](https://huggingface.co/{quote(inputs.base_model, safe='/')})"
    else:
        base = f"{md_code_span(inputs.base_model_label or 'unknown')} (not on the Hub)"
    return inputs.description or (
        "A small causal language model that writes short poems in English. It is the base model\n"
        f"{base} fine-tuned on public-domain poetry by the `genai_assets` Dagster pipeline, which also\n"
        "scrapes and cleans the corpus, trains from-scratch baselines and evaluates every model on the\n"
        "same held-out poems."
    )


def _usage(inputs: ModelCardInputs) -> str:
    """The How-to-use section: the caller's, or a ``pipeline("text-generation")`` snippet for the repo."""
    return inputs.usage or md_fence(
        "from transformers import pipeline\n\n"
        f'generator = pipeline("text-generation", model={json.dumps(inputs.repo_id)})\n'
        'print(generator("The moon above the silent sea\\n", max_new_tokens=48, do_sample=True)[0]["generated_text"])\n',
        "python",
    ).rstrip("\n")


def build_model_card(inputs: ModelCardInputs) -> ModelCard:
    """The card for ``inputs.repo_id``: YAML header + What / Data / Training / Evaluation / Samples / Limits / Use."""
    from huggingface_hub import ModelCard

    card_data = _card_data(inputs)
    # Every value below can come from run config, scraped data or generated text: escaped for Markdown.
    hyperparameters, results = _training_markdown(inputs)
    samples = _samples_markdown(inputs)
    configuration = (
        f"\n## Configuration\n\n{md_fence(json.dumps(inputs.configuration, indent=2), 'json')}"
        if inputs.configuration
        else ""
    )
    body = f"""
# {md_inline(inputs.model_name)}

## What it is

{_description(inputs)}
{configuration}
## Training data and cleaning

{inputs.training_data or "_Not recorded._"}

## Training procedure

{hyperparameters}

{results}

## Evaluation

{evaluation_table_markdown(inputs.evaluation_rows)}

{inputs.evaluation_notes}

## Sample poems

{samples or "_No samples recorded._"}

## Limitations and intended use

{inputs.limitations or FINETUNE_LIMITATIONS}

## How to use

{_usage(inputs)}
"""
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}")
