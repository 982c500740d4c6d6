"""A model card stub for the fine-tuned folder (evaluation/publish later write the full card)."""

from __future__ import annotations


def model_card_stub(metrics: dict) -> str:
    """Markdown with YAML front matter: base model, license, data, the held-out perplexities."""
    base = metrics.get("base_model", {})
    base_name = base.get("name", "unknown")
    license_id = base.get("license", "unknown").split()[0].strip(";(")
    config = metrics.get("config", {})
    lines = [
        "---",
        f"license: {license_id}",
        f"base_model: {base_name}",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags: [poetry, genai_assets]",
        "---",
        "",
        f"# Poems fine-tune of {base_name}",
        "",
        "Fine-tuned by the `finetuned_lm` asset of genai_assets on public-domain poems "
        "(Project Gutenberg excerpts, Shakespeare's poems). This card is a stub; the evaluation "
        "stage replaces it with the full card.",
        "",
        f"- Base model: `{base_name}` ({base.get('kind', '?')}, revision `{base.get('revision', '?')}`, "
        f"{base.get('n_parameters', '?')} parameters, license {base.get('license', 'unknown')})",
        f"- Training: {metrics.get('steps')} steps, collation `{config.get('collation')}`, block "
        f"{config.get('block_size')}, batch {config.get('batch_size')}, lr {config.get('learning_rate')}, "
        f"LoRA {'on' if config.get('lora') else 'off'}",
        f"- Held-out (test split) perplexity: base {metrics.get('base_test_perplexity', float('nan')):.2f} → "
        f"fine-tuned {metrics.get('finetuned_test_perplexity', float('nan')):.2f} "
        f"({metrics.get('test_tokens')} tokens)",
        "",
        "Prompt format: `<|startofpoem|>` + the first words; generation stops at the end-of-poem token.",
        "Sampling defaults are in `generation_config.json`.",
        "",
    ]
    return "\n".join(lines)
