"""Stages of the ``teaching`` group: ``theory_notes`` (:func:`run_theory_notes`).

Load the lake's models in a fixed order (the random state each load consumes is part of what the
notes show), run the sections of :mod:`genai_assets.teaching.theory` and the part-two figures of
:mod:`genai_assets.teaching.course_figures`, then write ``reports/theory.md`` and ``theory.html``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from genai_assets.lake import atomic_write_text
from genai_assets.models.loading import load_scratch_model
from genai_assets.teaching.course_figures import with_figure_notes, write_course_figures
from genai_assets.teaching.theory import (
    TheoryConfig,
    TheoryInputs,
    TheoryResult,
    attention_section,
    bptt_section,
    cells_section,
    course_sections,
    embeddings_section,
    evaluation_section,
    finetune_section,
    markdown_to_html,
    positional_section,
    worked_example_section,
)


class TeachingLake(Protocol):
    path: Path

    def reports_dir(self) -> Path: ...


def run_theory_notes(config: TheoryConfig, lake: TeachingLake, log: Callable[[str], None]) -> TheoryResult:
    """The theory notes from the lake's models, written to ``<lake>/reports/theory.{md,html}``."""
    result = write_theory_notes(TheoryInputs.from_lake(lake.path), config, lake.reports_dir())
    log(f"Theory notes: {len(result.figures)} figures, {len(result.numbers)} measured numbers.")
    return result


def write_theory_notes(inputs: TheoryInputs, config: TheoryConfig, reports_dir: str | Path) -> TheoryResult:
    """Compute every figure and number, write ``theory.md`` and ``theory.html`` under ``reports_dir``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    inputs.check()
    torch.manual_seed(config.seed)
    reports_dir = Path(reports_dir)
    figures_dir = reports_dir / "theory"
    # Sections 1-6 in order; each model is loaded right before the first section that reads it.
    gpt, gpt_tokenizer = load_scratch_model(inputs.scratch_dir)
    attention, maps = attention_section(gpt, gpt_tokenizer, config, figures_dir)
    sections = [attention, worked_example_section(), positional_section(gpt, config, figures_dir)]
    sections.append(cells_section(config, figures_dir))
    rnn_models = {kind: load_scratch_model(folder)[0] for kind, folder in inputs.rnn_dirs.items()}
    sections.append(bptt_section(rnn_models, gpt_tokenizer, config, figures_dir))
    finetuned_tokenizer = AutoTokenizer.from_pretrained(inputs.finetuned_dir)
    finetuned = AutoModelForCausalLM.from_pretrained(inputs.finetuned_dir, dtype=torch.float32).eval()
    sections.append(embeddings_section(inputs, finetuned, finetuned_tokenizer, config))
    parts = ["# Theory notes, answered with our own models", ""]
    figures: dict[str, Path] = {}
    numbers: dict[str, float] = {}
    for section in sections:
        parts += section.parts
        figures |= section.figures
        numbers |= section.numbers
    # Sections 7-12; part two's figures (issue 22), each placed at the end of the section it answers.
    more, more_numbers = course_sections(gpt, gpt_tokenizer, maps, inputs, config)
    total = sum(p.numel() for p in finetuned.parameters())
    course = write_course_figures(inputs, config, (gpt, gpt_tokenizer, maps), total, figures_dir)
    more = with_figure_notes(more + finetune_section(finetuned, inputs.finetuned_dir), course.notes)
    parts += more + evaluation_section(reports_dir)
    numbers |= more_numbers | course.numbers
    figures |= course.figures
    markdown = "\n".join(parts)
    atomic_write_text(reports_dir / "theory.md", markdown)
    atomic_write_text(reports_dir / "theory.html", markdown_to_html(markdown, reports_dir))
    return TheoryResult(markdown, figures, numbers)
