"""The card saved in the fine-tuned folder: the one writer (``publish.model_card``) fed from ``metrics``.

``hub_upload`` later writes the full card (evaluation table, data sources) for the Hub copy.
"""

from __future__ import annotations

import math

from genai_assets.publish.model_card import ModelCardInputs, build_model_card

USAGE = """```python
from transformers import pipeline

generator = pipeline("text-generation", model="data_lake/models/finetuned_lm")
print(generator("<|startofpoem|>The moon above the silent sea", max_new_tokens=48)[0]["generated_text"])
```

Prompt format: `<|startofpoem|>` + the first words; generation stops at the end-of-poem token.
Sampling defaults are in `generation_config.json`; `genai-assets generate --model <folder>` streams poems."""


def model_card_stub(metrics: dict) -> str:
    """README.md text: base model, license, training settings and the held-out perplexities."""
    base = metrics.get("base_model", {})
    base_name = base.get("name", "unknown")
    config = metrics.get("config", {})
    hyperparameters = {
        key: config[key]
        for key in ("collation", "block_size", "batch_size", "learning_rate", "lora")
        if key in config
    }
    results = {
        "steps": metrics.get("steps"),
        "base test perplexity": metrics.get("base_test_perplexity", math.nan),
        "fine-tuned test perplexity": metrics.get("finetuned_test_perplexity", math.nan),
        "test tokens": metrics.get("test_tokens"),
    }
    inputs = ModelCardInputs(
        repo_id=None,
        model_name=f"Poems fine-tune of {base_name}",
        base_model=base_name if base.get("kind") == "hub" else None,
        base_model_label=base_name,
        license=base.get("license", "unknown").split()[0].strip(";("),
        tags=["text-generation", "poetry", "genai_assets"],
        training_data=(
            "Public-domain poems (Project Gutenberg excerpts, Shakespeare's poems) from the `cleansed_poems` "
            f"asset. Base model: `{base_name}` ({base.get('kind', '?')}, revision `{base.get('revision', '?')}`, "
            f"{base.get('n_parameters', '?')} parameters, license {base.get('license', 'unknown')})."
        ),
        hyperparameters=hyperparameters,
        training_results=results,
        evaluation_notes="The `evaluation` asset compares this model with the others on the same held-out poems.",
        usage=USAGE,
    )
    return str(build_model_card(inputs))
