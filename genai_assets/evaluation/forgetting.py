"""Learning vs forgetting of a fine-tune: bits/char of base and fine-tuned model, in and out of domain.

In-domain: the test split's poems, chosen and cut as the ``evaluation`` asset does with its
default settings (``perplexity_texts``), so the figures match its table when it runs on defaults. Out-of-domain: the 20th-century poems of
``ood_poems`` (in no training source). A fine-tune that learns the corpus lowers the first; one
that forgets how to model verse in general raises the second.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def forgetting_texts(poems: pd.DataFrame, settings=None) -> dict[str, list[str]]:
    """``{"in_domain": test poems as the evaluation scores them, "ood": the out-of-domain poems}``."""
    from genai_assets.evaluation.ood_poems import ood_texts
    from genai_assets.evaluation.runner import EvaluationSettings, perplexity_texts

    test = poems[poems["split"] == "test"]
    if test.empty:
        raise ValueError("The poems table has no test split: no in-domain texts to score.")
    return {"in_domain": perplexity_texts(test, settings or EvaluationSettings()), "ood": ood_texts()}


def folder_bits_per_char(folder: str | Path, texts: dict[str, list[str]]) -> dict[str, float]:
    """Bits per character of the model saved in ``folder`` on each named list of texts."""
    from genai_assets.evaluation.perplexity import evaluate_perplexity
    from genai_assets.generation import load_generator

    generator = load_generator(folder)
    return {
        name: evaluate_perplexity(
            generator.model, generator.tokenizer, items, generator.context_length
        ).bits_per_char
        for name, items in texts.items()
    }


def compare_bits_per_char(base: dict[str, float], finetuned: dict[str, float], texts: dict) -> dict:
    """The record stored in ``metrics.json["bits_per_char"]``: both models, relative change, text counts."""
    return {
        "base": base,
        "finetuned": finetuned,
        "change": {name: finetuned[name] / base[name] - 1 for name in base},
        "n_texts": {name: len(items) for name, items in texts.items()},
    }
