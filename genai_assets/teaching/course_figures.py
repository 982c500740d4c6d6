"""Figures of the walkthrough's part two (issue 22), computed from the lake's models and data.

:func:`write_course_figures` writes, under ``<reports>/theory/``:

* ``cross_attention.png`` — the encoder–decoder's (``next_line_transformer``) cross-attention of a
  target line over its source line, one panel per decoder layer (mean over heads), with a colorbar;
* ``head_profiles.png`` — what each head of ``scratch_transformer`` reads, measured (distance back,
  weight on the previous and on the first token);
* ``tokenizer_comparison.png`` — BPE vs word-level: tokens per poem, and the pieces of a real and a
  made-up word;
* ``sampling_penalties.png`` — the same prompt sampled with and without the repetition controls:
  distinct-n, repeated 3-grams and the continuations;
* ``finetune_lora.png`` — the fine-tuning run's losses and its trainable parameters vs all weights.

Library layer: no Dagster; matplotlib and torch are imported inside the functions. Every value drawn
comes from a model or file in the lake; a run the lake does not hold (full fine-tuning) is never drawn.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from genai_assets.plotting import new_figure, write_figure

# The settings of the penalties figure: each with and without the repetition controls.
PENALTIES = {"repetition_penalty": 1.3, "no_repeat_ngram_size": 3}
PENALTY_SETTINGS = (
    ("greedy", {"temperature": 0.0}),
    ("greedy + penalties", {"temperature": 0.0, **PENALTIES}),
    ("top-p 0.9", {"temperature": 1.0, "top_p": 0.9}),
    ("top-p 0.9 + penalties", {"temperature": 1.0, "top_p": 0.9, **PENALTIES}),
)
MAX_POEMS = 400  # poems whose token counts the tokenizer figure draws (a sample keeps it fast)


@dataclass
class CourseFigures:
    figures: dict[str, Path] = field(default_factory=dict)
    numbers: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # one Markdown sentence per figure


# --- (a) cross-attention of the encoder–decoder ---------------------------------------------------


def cross_attention_maps(model, source, target):
    """Per decoder layer, the cross-attention weights (nh, T, S) of ``model`` (an
    :class:`~genai_assets.models.encoder_decoder.EncoderDecoderTransformer`), teacher-forced on
    ``target`` (1, T) over ``source`` (1, S): row i is the query that predicts ``target[0, i]``."""
    import torch
    import torch.nn.functional as F

    captured = []

    def hook(module, args, kwargs):
        h, memory = args[0], args[1]  # (1, T, C) decoder states, (1, S, C) encoder output
        weight, bias = module.in_proj.weight, module.in_proj.bias
        channels = module.d_model
        query = F.linear(h, weight[:channels], None if bias is None else bias[:channels])
        key = F.linear(
            memory, weight[channels : 2 * channels], None if bias is None else bias[channels : 2 * channels]
        )
        query, key = module._split_heads(query), module._split_heads(key)  # (1, nh, T|S, hs)
        scores = query @ key.transpose(-2, -1) / math.sqrt(module.head_size)  # (1, nh, T, S)
        padding = kwargs.get("key_padding_mask")
        if padding is not None:
            scores = scores.masked_fill(padding[:, None, None, :], float("-inf"))
        captured.append(torch.softmax(scores, dim=-1)[0])

    layers = model.decoder_layers
    handles = [layer.cross_attention.register_forward_pre_hook(hook, with_kwargs=True) for layer in layers]
    try:
        with torch.no_grad():
            model(source, targets=target)
    finally:
        for handle in handles:
            handle.remove()
    return captured


def cross_attention_figure(maps, source_tokens: list[str], target_tokens: list[str]):
    """One heatmap per decoder layer: target token (row) × source token (column), mean over heads."""
    figure = new_figure(4.2 * len(maps) + 1.4, 0.28 * len(target_tokens) + 2.6)
    axes = []
    for layer, weights in enumerate(maps):
        axis = figure.add_subplot(1, len(maps), layer + 1)
        image = axis.imshow(weights.mean(0).numpy(), cmap="magma", vmin=0, vmax=1, aspect="auto")
        axis.set_xticks(range(len(source_tokens)), source_tokens, rotation=90, fontsize=8)
        axis.set_yticks(range(len(target_tokens)), target_tokens, fontsize=8)
        axis.set_xlabel("source line token (key, from the encoder)", fontsize=8)
        axis.set_ylabel("target token being written (query)", fontsize=8)
        axis.set_title(f"decoder layer {layer} (mean of {weights.size(0)} heads)", fontsize=10)
        axes.append(axis)
    figure.suptitle("next_line_transformer cross-attention: each row sums to 1")
    figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02, label="cross-attention weight (0–1)")
    return figure


def cross_attention_result(
    next_line_dir: Path, line: str, next_line: str, figures_dir: Path
) -> CourseFigures:
    """Load ``next_line_transformer``, run it on (line, next line) and draw its cross-attention."""
    import torch

    from genai_assets.models.loading import load_scratch_model

    model, tokenizer = load_scratch_model(next_line_dir)
    config = model.config
    source = tokenizer(line, add_special_tokens=False)["input_ids"][: config.max_source_len]
    target = tokenizer(next_line, add_special_tokens=False)["input_ids"][: config.max_target_len - 2]
    target = [*target, config.eos_id]  # as in training (line_pairs): the next line, then end of line
    maps = cross_attention_maps(model, torch.tensor([source]), torch.tensor([target]))
    pieces = [printable(tokenizer.decode([token])) for token in target]  # tick labels, one per token
    figure = cross_attention_figure(maps, [printable(tokenizer.decode([t])) for t in source], pieces)
    path = write_figure(figure, figures_dir / "cross_attention.png")
    peak = maps[-1].mean(0).max(dim=-1).values.mean()  # how sharply the last layer reads the source
    return CourseFigures(
        {"cross_attention": path},
        {"cross_attention_layers": float(len(maps)), "cross_attention_mean_peak": float(peak)},
        {
            "cross_attention": "![cross-attention](theory/cross_attention.png)\n\nCross-attention of "
            f"`next_line_transformer` writing the next line over the given one: in its last decoder layer a "
            f"target token puts on average {float(peak):.0%} of its weight on its most-read source token."
        },
    )


# --- heads, measured ------------------------------------------------------------------------------


def head_profile_figure(rows: list[dict]):
    """Grouped bars per head (from :func:`genai_assets.teaching.theory.head_profiles`)."""
    import numpy as np

    labels = [f"L{row['layer']}H{row['head']}" for row in rows]
    positions = np.arange(len(rows))
    figure = new_figure(max(6.0, 0.7 * len(rows) + 3), 4.0)
    share, distance = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    share.bar(positions - 0.2, [r["previous"] for r in rows], 0.4, label="on the previous token")
    share.bar(positions + 0.2, [r["first"] for r in rows], 0.4, label="on the first token")
    share.set_ylabel("attention weight (mean over queries)")
    share.set_ylim(0, 1)
    share.legend(fontsize=8)
    distance.bar(positions, [r["distance"] for r in rows], color="tab:green")
    distance.set_ylabel("mean distance back (tokens)")
    for axis in (share, distance):
        axis.set_xticks(positions, labels, rotation=90, fontsize=8)
        axis.set_xlabel("layer L, head H of scratch_transformer")
    figure.suptitle("What each head reads on the poem line, measured")
    return figure


# --- (b) tokenizers -------------------------------------------------------------------------------


def poem_texts(lake_root: Path, fallback: list[str], limit: int = MAX_POEMS) -> tuple[list[str], str]:
    """Up to ``limit`` cleaned poems (test split first) and where they come from; ``fallback`` if none."""
    path = Path(lake_root) / "cleansed_poems.parquet"
    if not path.is_file():
        return fallback, "the notes' probe lines (cleansed_poems is not in the lake)"
    import pandas as pd

    table = pd.read_parquet(path, columns=["text", "split"])
    table = table.sort_values("split", key=lambda s: s != "test", kind="stable").head(limit)
    return table["text"].tolist(), f"{len(table)} cleaned poems"


def tokenizer_figure(lengths: dict[str, list[int]], pieces: list[tuple], source: str):
    """Left: histogram of tokens per poem per tokenizer; right: how each word is split (a table)."""
    figure = new_figure(12.0, 4.2)
    histogram = figure.add_subplot(1, 2, 1)
    top = max(max(counts) for counts in lengths.values())
    bins = [top * step / 30 for step in range(31)]
    for name, counts in lengths.items():
        mean = sum(counts) / len(counts)
        histogram.hist(counts, bins=bins, alpha=0.55, label=f"{name} (mean {mean:.0f})")
    histogram.set_xlabel("tokens per poem")
    histogram.set_ylabel("poems")
    histogram.set_title(f"Tokens per poem ({source})", fontsize=9)
    histogram.legend(fontsize=8)
    table_axis = figure.add_subplot(1, 2, 2)
    table_axis.axis("off")
    table = table_axis.table(
        cellText=[list(row) for row in pieces],
        colLabels=["word", *lengths],
        loc="center",
        cellLoc="left",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1.0, 1.6)
    table_axis.set_title("How each word is split (pieces joined by ·)", fontsize=9)
    return figure


def tokenizer_result(
    tokenizers: dict, texts: list[str], source: str, pieces, figures_dir: Path
) -> CourseFigures:
    lengths = {
        name: [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts]
        for name, tokenizer in tokenizers.items()
    }
    path = write_figure(tokenizer_figure(lengths, pieces, source), figures_dir / "tokenizer_comparison.png")
    means = {name: sum(counts) / len(counts) for name, counts in lengths.items()}
    sentence = "; ".join(f"{name}: {mean:.1f} tokens per poem on average" for name, mean in means.items())
    return CourseFigures(
        {"tokenizer_comparison": path},
        {f"tokens_per_poem_{name.replace(' ', '_').replace('-', '_')}": v for name, v in means.items()},
        {
            "tokenizer_comparison": f"![tokenizers](theory/tokenizer_comparison.png)\n\nOn {source}: {sentence}."
        },
    )


# --- (c) sampling with and without the repetition controls ---------------------------------------


def printable(text: str) -> str:
    """``text`` with control characters (an undertrained model emits raw bytes) shown as ``·``."""
    return "".join(char if char.isprintable() else "·" for char in text)


def repeated_ngrams(items: list, n: int = 3) -> int:
    """n-grams of ``items`` (token ids, words) that repeat an earlier one (occurrences beyond the first)."""
    grams = [tuple(items[i : i + n]) for i in range(len(items) - n + 1)]
    return len(grams) - len(set(grams))


def penalty_rows(model, tokenizer, prompt: str, samples: int, new_tokens: int, seed: int) -> list[dict]:
    """Per setting of :data:`PENALTY_SETTINGS`: distinct-1/2 (words), repeated token 3-grams (what the
    n-gram ban forbids), the first continuation."""
    import torch

    from genai_assets.evaluation.metrics import distinct_n

    ids = tokenizer(prompt)["input_ids"][-(model.config.block_size - new_tokens) :]
    prompt_ids = torch.tensor([ids] * samples)  # (samples, T): one row per sample, same seed per setting
    rows = []
    for label, options in PENALTY_SETTINGS:
        out = model.generate(prompt_ids, new_tokens, generator=torch.Generator().manual_seed(seed), **options)
        continuations = [row[len(ids) :].tolist() for row in out]
        texts = [tokenizer.decode(row, skip_special_tokens=True) for row in continuations]
        rows.append(
            {
                "setting": label,
                "distinct_1": distinct_n(texts, 1),
                "distinct_2": distinct_n(texts, 2),
                "repeated_3grams": sum(repeated_ngrams(row) for row in continuations),
                "first": printable(" ".join(texts[0].split())),
            }
        )
    return rows


def penalty_figure(rows: list[dict], prompt: str, samples: int):
    """Bars of distinct-2 and repeated 3-grams per setting, above a table of the first continuations."""
    figure = new_figure(12.0, 6.4)
    grid = figure.add_gridspec(2, 2, height_ratios=[1, 1.3])
    labels = [row["setting"] for row in rows]
    colours = ["tab:blue" if "penalties" not in label else "tab:orange" for label in labels]
    variety = figure.add_subplot(grid[0, 0])
    variety.bar(labels, [row["distinct_2"] for row in rows], color=colours)
    variety.set_ylabel("distinct-2 (higher = more varied)")
    variety.set_ylim(0, 1)
    repeats = figure.add_subplot(grid[0, 1])
    repeats.bar(labels, [row["repeated_3grams"] for row in rows], color=colours)
    repeats.set_ylabel(f"repeated token 3-grams ({samples} samples)")
    for axis in (variety, repeats):
        axis.set_xlabel("setting (orange: repetition penalty 1.3 + no repeated 3-grams)", fontsize=8)
        axis.tick_params(axis="x", labelsize=8, rotation=12)
    table_axis = figure.add_subplot(grid[1, :])
    table_axis.axis("off")
    cells = [
        [row["setting"], f"{row['distinct_1']:.2f}", f"{row['distinct_2']:.2f}", str(row["repeated_3grams"]),
         textwrap.shorten(row["first"], 110, placeholder=" …") or "(empty)"]
        for row in rows
    ]  # fmt: skip
    table = table_axis.table(
        cellText=cells,
        colLabels=["setting", "distinct-1", "distinct-2", "repeated token 3-grams", "first continuation"],
        colWidths=[0.15, 0.07, 0.07, 0.1, 0.61],
        loc="center",
        cellLoc="left",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1.0, 1.8)
    figure.suptitle(f"The same prompt, same seed: {textwrap.shorten(prompt, 70, placeholder=' …')}")
    return figure


def penalty_result(model, tokenizer, config, figures_dir: Path) -> CourseFigures:
    """``config``: a :class:`~genai_assets.teaching.theory.TheoryConfig` (prompt, samples, tokens, seed)."""
    rows = penalty_rows(
        model, tokenizer, config.poem_line, config.sampling_samples, config.sampling_tokens, config.seed
    )
    figure = penalty_figure(rows, config.poem_line, config.sampling_samples)
    path = write_figure(figure, figures_dir / "sampling_penalties.png")
    numbers = {f"penalties_{i}_repeated_3grams": float(row["repeated_3grams"]) for i, row in enumerate(rows)}
    numbers |= {f"penalties_{i}_distinct2": row["distinct_2"] for i, row in enumerate(rows)}
    (greedy, greedy_controlled, nucleus, nucleus_controlled) = rows
    note = (
        "![penalties](theory/sampling_penalties.png)\n\nWith and without the repetition controls (repetition "
        f"penalty {PENALTIES['repetition_penalty']}, no repeated {PENALTIES['no_repeat_ngram_size']}-grams), "
        f"measured: greedy {greedy['repeated_3grams']} → {greedy_controlled['repeated_3grams']} repeated "
        f"token 3-grams, top-p {nucleus['repeated_3grams']} → {nucleus_controlled['repeated_3grams']}."
    )
    return CourseFigures({"sampling_penalties": path}, numbers, {"sampling_penalties": note})


# --- (d) fine-tuning: the LoRA run, and what full fine-tuning would train -----------------------


def finetune_loss_panel(axis, metrics: dict, run: str) -> None:
    """Losses of the run in metrics.json, against optimizer steps: each epoch's mean training loss and
    end-of-epoch validation loss at the epoch's last step; held-out test loss before (step 0) and after."""
    stats = metrics.get("training_stats") or []
    ends, total = [], 0
    for row in stats:
        total += int(row.get("steps", 0))
        ends.append(total)
    axis.plot(
        ends, [row["training_loss"] for row in stats], "o-", label=f"{run}: training (mean of the epoch)"
    )
    validated = [(end, row["validation_loss"]) for end, row in zip(ends, stats, strict=True)
                 if row.get("validation_loss") is not None]  # fmt: skip
    axis.plot([e for e, _ in validated], [v for _, v in validated], "s--", label=f"{run}: validation")
    before, after = metrics.get("base_test_loss"), metrics.get("finetuned_test_loss")
    if before is not None and after is not None:
        last = int(metrics.get("steps") or total)
        axis.plot([0, last], [before, after], "D-.", color="grey", label="test: base (step 0) → fine-tuned")
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("cross-entropy (nats/token)")
    axis.legend(fontsize=7)


def finetune_figure(metrics: dict, total_parameters: int):
    """Left: the run's losses (:func:`finetune_loss_panel`); right: its trainable parameters vs all
    weights. Only the run in the lake is drawn: the other kind of fine-tuning is named, never plotted."""
    from matplotlib.ticker import MaxNLocator

    lora = bool(metrics.get("config", {}).get("lora", False))
    run, other = ("LoRA", "full fine-tuning") if lora else ("full fine-tuning", "LoRA")
    figure = new_figure(11.0, 4.2)
    losses = figure.add_subplot(1, 2, 1)
    finetune_loss_panel(losses, metrics, run)
    losses.xaxis.set_major_locator(MaxNLocator(integer=True))
    losses.set_title(f"The demo's {run} run (no {other} run was made in the demo)", fontsize=9)
    counts = figure.add_subplot(1, 2, 2)
    trained = int(metrics.get("n_trainable_parameters", total_parameters))
    bars = counts.bar(
        [f"{run} (this run)", "all weights (what full\nfine-tuning trains)"], [trained, total_parameters]
    )
    counts.bar_label(bars, labels=[f"{trained:,}", f"{total_parameters:,}"], fontsize=8)
    counts.set_yscale("log")
    counts.set_ylim(bottom=1)  # log bars need a fixed base: 1 parameter
    counts.set_ylabel("trainable parameters (log scale)")
    counts.set_xlabel(f"{trained / total_parameters:.2%} of the weights trained by this run")
    return figure


def finetune_result(finetuned_dir: Path, total_parameters: int, figures_dir: Path) -> CourseFigures:
    import json

    path = Path(finetuned_dir) / "metrics.json"
    if not path.is_file():
        return CourseFigures(notes={"finetune_lora": f"(`{path}` is missing: no fine-tuning figure.)"})
    metrics = json.loads(path.read_text(encoding="utf-8"))
    figure_path = write_figure(finetune_figure(metrics, total_parameters), figures_dir / "finetune_lora.png")
    lora = bool(metrics.get("config", {}).get("lora", False))
    note = (
        "![fine-tuning](theory/finetune_lora.png)\n\nThe demo made one fine-tuning run, "
        + ("with LoRA; no full fine-tuning run was made, so no full-run curve is drawn (its trainable "
           "parameter count is the model's size, a count, not a run)." if lora else "training all weights.")
    )  # fmt: skip
    return CourseFigures({"finetune_lora": figure_path}, notes={"finetune_lora": note})


# --- all of them, placed in the theory notes -----------------------------------------------------

# The theory-notes section each figure's note ends (its number in theory.md).
NOTE_SECTIONS = {
    "head_profiles": 7,
    "cross_attention": 8,
    "tokenizer_comparison": 9,
    "sampling_penalties": 10,
    "finetune_lora": 11,
}


def write_course_figures(
    inputs, config, scratch, finetuned_parameters: int, figures_dir: Path
) -> CourseFigures:
    """Every part-two figure. ``inputs``/``config``: the theory notes' TheoryInputs/TheoryConfig;
    ``scratch``: (scratch GPT, its tokenizer, its attention maps on the poem line)."""
    from genai_assets.teaching.theory import MissingUpstreamError, head_profiles, tokenizer_rows

    gpt, gpt_tokenizer, maps = scratch
    models = Path(inputs.scratch_dir).parent
    next_line_dir = models / "next_line_transformer"
    if not (next_line_dir / "config.json").is_file():
        raise MissingUpstreamError(f"{next_line_dir} is missing (materialize 'next_line_transformer').")
    result = CourseFigures()
    profile_path = write_figure(head_profile_figure(head_profiles(maps)), figures_dir / "head_profiles.png")
    result.figures["head_profiles"] = profile_path
    result.notes["head_profiles"] = "![heads](theory/head_profiles.png)"
    parts = [cross_attention_result(next_line_dir, config.poem_line, config.poem_next_line, figures_dir)]
    tokenizers = {"poem BPE": gpt_tokenizer}
    if (models / "poem_tokenizer_wordlevel" / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        tokenizers["word-level"] = AutoTokenizer.from_pretrained(models / "poem_tokenizer_wordlevel")
    texts, source = poem_texts(models.parent, [config.poem_line, *config.sense_sentences])
    _, pieces = tokenizer_rows(tokenizers, texts[:1], list(config.tokenizer_words))
    parts.append(tokenizer_result(tokenizers, texts, source, pieces, figures_dir))
    parts.append(penalty_result(gpt, gpt_tokenizer, config, figures_dir))
    parts.append(finetune_result(inputs.finetuned_dir, finetuned_parameters, figures_dir))
    for part in parts:
        result.figures |= part.figures
        result.numbers |= part.numbers
        result.notes |= part.notes
    return result


def with_figure_notes(parts: list[str], notes: dict[str, str]) -> list[str]:
    """``parts`` (Markdown blocks, headings ``## N. ...`` as their own blocks) with each note placed at
    the end of its section (:data:`NOTE_SECTIONS`), i.e. before the first later heading (or last)."""
    import re

    pending = {number: [notes[name] for name in notes if NOTE_SECTIONS.get(name) == number]
               for number in set(NOTE_SECTIONS.values())}  # fmt: skip
    out: list[str] = []
    for part in parts:
        heading = re.match(r"## (\d+)\.", part)
        if heading:  # the notes of every earlier section come before this heading
            for number in sorted(n for n in pending if n < int(heading.group(1))):
                out += [block for note in pending.pop(number) for block in (note, "")]
        out.append(part)
    out += [block for number in sorted(pending) for note in pending[number] for block in (note, "")]
    return out
