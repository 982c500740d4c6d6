"""The pieces of the evaluation of every trained model on the test split (the settings, prompts,
continuations and text measures); :func:`genai_assets.stages.evaluation.evaluate_models` runs them.

For each model folder that exists: perplexity and bits/char on up to ``max_perplexity_poems``
test poems; then, for ``n_prompts`` test poems, the first ``prompt_lines`` lines are the prompt,
the model writes a continuation (fixed sampling settings and seed, same for every model), and
the continuation is compared with the poem's real next ``continuation_lines`` lines (BLEU,
chrF), with the other samples (distinct-n, self-BLEU), with the training poems (copied 8-grams,
longest copied span) and by form (lines, words per line, stanzas, rhyme rate). The real
continuations get the same diversity and form measures as a reference row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
import pandas as pd

from genai_assets.config_checks import Ge, range_problems
from genai_assets.evaluation import metrics
from genai_assets.models.sampling_settings import Temperature, TopK, TopP

COPY_NGRAM = 8  # memorisation: share of generated word 8-grams found in the training poems


# Model assets compared by the evaluation stage, in table order (lake folders under models/).
EVALUATED_MODELS = ("base_lm", "finetuned_lm", "scratch_transformer", "rnn_baselines")


@dataclass
class EvaluationSettings:
    """What to measure and how much of it; defaults are the cpu demo profile."""

    models: Annotated[
        list[str], "model assets to compare; a model whose folder is missing is skipped with a note"
    ] = field(default_factory=lambda: list(EVALUATED_MODELS))
    max_perplexity_poems: Annotated[
        int, Ge(0), "test poems scored for perplexity / bits per char (0 = all)"
    ] = 64
    max_chars_per_poem: Annotated[
        int, Ge(0), "longer poems are cut at a line break (CPU time; 0 = no cap)"
    ] = 1200
    n_prompts: Annotated[
        int, Ge(2), "test poems used as prompts for generation (self-BLEU compares samples with each other)"
    ] = 16
    prompt_lines: Annotated[int, Ge(1), "first lines of a poem given as the prompt"] = 2
    continuation_lines: Annotated[int, Ge(1), "real lines after the prompt that BLEU/chrF compare with"] = 4
    max_new_tokens: Annotated[int, Ge(1), "generated tokens per prompt"] = 48
    temperature: Annotated[Temperature, "sampling settings, identical for every model"] = 0.8
    top_k: Annotated[TopK, "top-k filter (0 = off)"] = 50
    top_p: Annotated[TopP, "nucleus sampling mass"] = 0.95
    seed: Annotated[int, "seeds the prompt choice and every model's sampling"] = 1234

    def __post_init__(self) -> None:
        problems = range_problems(self)
        unknown = sorted(set(self.models) - set(EVALUATED_MODELS))
        if unknown or not self.models:
            problems.append(
                f"models must be a non-empty subset of {list(EVALUATED_MODELS)}, got {self.models}"
            )
        if problems:
            raise ValueError("Invalid evaluation settings: " + "; ".join(problems) + ".")


# Named presets (overrides of the defaults above; cpu = the defaults).
EVALUATION_PRESETS: dict[str, dict] = {
    "tiny": {"max_perplexity_poems": 8, "n_prompts": 4, "max_new_tokens": 12, "max_chars_per_poem": 400},
    "cpu": {},
    "gpu": {"max_perplexity_poems": 0, "n_prompts": 128, "max_new_tokens": 96},
}


@dataclass
class EvaluationReport:
    table: pd.DataFrame  # one row per evaluated model (+ the real poems), metric columns
    samples: pd.DataFrame  # prompt_id, prompt, model, text (continuation), reference, poem_id
    skipped: dict[str, str]  # model name -> why it was not evaluated
    settings: dict
    timings: dict[str, float] = field(default_factory=dict)  # seconds per model
    notes: dict[str, str] = field(default_factory=dict)  # model name -> which variant / where from


def _poem_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def select_prompts(test_poems: pd.DataFrame, settings: EvaluationSettings) -> pd.DataFrame:
    """Seeded choice of test poems long enough to split into prompt + continuation."""
    needed = settings.prompt_lines + 1
    eligible = test_poems[test_poems["text"].map(lambda text: len(_poem_lines(text)) >= needed)]
    eligible = eligible.sort_values("poem_id")
    if len(eligible) < 2:
        raise ValueError(
            f"Only {len(eligible)} test poems have at least {needed} lines; need 2 or more to prompt with."
        )
    rng = np.random.default_rng(settings.seed)
    count = min(settings.n_prompts, len(eligible))
    chosen = eligible.iloc[np.sort(rng.choice(len(eligible), size=count, replace=False))]
    rows = []
    for prompt_id, poem in enumerate(chosen.itertuples(index=False)):
        lines = _poem_lines(poem.text)
        rows.append(
            {
                "prompt_id": prompt_id,
                "poem_id": poem.poem_id,
                "prompt": "\n".join(lines[: settings.prompt_lines]) + "\n",
                "reference": "\n".join(
                    lines[settings.prompt_lines : settings.prompt_lines + settings.continuation_lines]
                ),
            }
        )
    return pd.DataFrame(rows)


def perplexity_texts(test_poems: pd.DataFrame, settings: EvaluationSettings) -> list[str]:
    from genai_assets.evaluation.perplexity import truncate_at_line

    ordered = test_poems.sort_values("poem_id")
    if settings.max_perplexity_poems and len(ordered) > settings.max_perplexity_poems:
        rng = np.random.default_rng(settings.seed + 1)
        ordered = ordered.iloc[
            np.sort(rng.choice(len(ordered), settings.max_perplexity_poems, replace=False))
        ]
    return [truncate_at_line(text, settings.max_chars_per_poem) for text in ordered["text"]]


def complete_lines(continuation: str, stopped_early: bool) -> str:
    """Drop a last line cut off by the token budget (form metrics should not see half lines)."""
    if stopped_early or "\n" not in continuation.strip():
        return continuation.strip()
    return continuation.strip().rsplit("\n", 1)[0]


def text_metrics(
    continuations: list[str], prompts: list[str], copy_index: metrics.CopyIndex
) -> dict[str, float]:
    """Generation metrics of one set of continuations (also used for the real continuations)."""
    copied = metrics.memorisation(continuations, copy_index, n=COPY_NGRAM)
    form = metrics.form_summary([prompt + text for prompt, text in zip(prompts, continuations, strict=True)])
    return {
        "distinct_1": metrics.distinct_n(continuations, 1),
        "distinct_2": metrics.distinct_n(continuations, 2),
        "distinct_3": metrics.distinct_n(continuations, 3),
        "self_bleu": metrics.self_bleu(continuations),
        "copied_8gram_share": copied.copied_ngram_share,
        "longest_copied_span": copied.longest_copied_span,
        "longest_copied_text": copied.longest_copied_text,
        **form,
    }


def generate_continuations(generator, prompts: list[str], sampling, batch_size: int = 16) -> list[dict]:
    """``{"text": prompt + continuation, "n_new_tokens", "params"}`` per prompt.

    transformers models generate a whole batch at once (left padding, one ``generate`` call per
    batch: several times faster on CPU than one prompt at a time). Scratch models have no
    padding support, so they go one prompt at a time through their own ``generate`` (contract 6),
    which crops the context to ``block_size`` itself: prompts longer than a small scratch model's
    context are conditioned on their last tokens instead of being refused. Both use the
    training prompt format (``encode_prompt``) and stop at end-of-poem (``stop_token_ids``).
    """
    import json

    import torch

    from genai_assets.generation import encode_prompt, stop_token_ids
    from genai_assets.generation.poems import generate_scratch_ids

    tokenizer, model = generator.tokenizer, generator.model
    stops = stop_token_ids(tokenizer)
    torch.manual_seed(sampling.seed)
    params = json.dumps(sampling.applied(), sort_keys=True)
    results = []

    def finish(prompt: str, new_ids: list[int]) -> None:
        cut = next((index for index, token in enumerate(new_ids) if token in stops), len(new_ids))
        text = prompt + tokenizer.decode(new_ids[:cut], skip_special_tokens=True)
        results.append({"text": text, "n_new_tokens": cut, "params": params})

    if generator.kind != "transformers":
        # The same path as the CLI: the model's own cache, every setting applied (none only recorded).
        for prompt in prompts:
            ids = torch.tensor([encode_prompt(tokenizer, prompt)])  # (1, T)
            with torch.no_grad():
                new_ids = generate_scratch_ids(model, tokenizer, ids, sampling, sampling.max_new_tokens)
            finish(prompt, new_ids)
        return results

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    for start in range(0, len(prompts), batch_size):
        batch_prompts = prompts[start : start + batch_size]
        input_ids, attention_mask = _left_padded(generator, batch_prompts, pad_id, sampling.max_new_tokens)
        width = input_ids.shape[1]
        with torch.no_grad():
            output = model.generate(
                input_ids,
                attention_mask=attention_mask,
                eos_token_id=stops or None,
                pad_token_id=pad_id,
                **sampling.generate_kwargs(),
            )  # (B, width + new)
        for prompt, row in zip(batch_prompts, output[:, width:].tolist(), strict=True):
            finish(prompt, row)
    return results


def _left_padded(generator, prompts: list[str], pad_id: int, max_new_tokens: int):
    """(input_ids, attention_mask), both (B, width): every prompt ends at the same column, so the new
    tokens line up; refused when prompt + new tokens exceed the model's context."""
    import torch

    from genai_assets.generation import encode_prompt

    encoded = [encode_prompt(generator.tokenizer, prompt) for prompt in prompts]
    width = max(len(ids) for ids in encoded)
    if generator.context_length and width + max_new_tokens > generator.context_length:
        raise ValueError(
            f"Prompts of {width} tokens + {max_new_tokens} new tokens exceed the context of "
            f"{generator.name} ({generator.context_length} tokens); lower max_new_tokens or prompt_lines."
        )
    input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in encoded])
    attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in encoded])
    return input_ids, attention_mask


def json_max_new(output: dict) -> int:
    """The token budget a sample actually had (``params`` records it after context capping)."""
    import json

    return int(json.loads(output["params"])["max_new_tokens"])
