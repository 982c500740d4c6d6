"""What the playground does, as plain functions (the Gradio app in ``app.py`` only wires them up).

Generate: :func:`sampling_from_form` turns the knobs into a validated
:class:`~genai_assets.generation.SamplingConfig` (a clear message for an out-of-range value) and
:func:`stream_text` yields ``(text, status)`` pairs as tokens arrive, with tokens/s.
Compare: the same prompt and seed through two models, one after the other (each with its own
fresh seeding, so each column is what that model alone would give). Attention: every head of
the scratch transformer over the generated text (:func:`attention_figure`). Rate: blind pairs
from the current ``human_eval_sheet`` version (:class:`RatingSession`), stored through
:class:`~genai_assets.evaluation.ratings_db.RatingsStore`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from genai_assets.evaluation.human_eval import current_sheet_id, sheet_folder
from genai_assets.evaluation.ratings_db import RatingsStore
from genai_assets.generation.presets import SAMPLING_PRESETS
from genai_assets.generation.settings import SamplingConfig
from genai_assets.generation.streaming import StreamEvent, stream_generation
from genai_assets.playground.models import ModelCache, model_folders, model_kind

KNOBS = (
    "temperature",
    "top_k",
    "top_p",
    "repetition_penalty",
    "no_repeat_ngram_size",
    "max_new_tokens",
    "seed",
)
CUSTOM = "custom"
MAX_PROMPT_CHARACTERS = 2000
MAX_NEW_TOKENS = 512
HEATMAP_TOKENS = 32  # the attention of the last this many tokens (a readable picture)


def preset_names() -> list[str]:
    return [*SAMPLING_PRESETS, CUSTOM]


def preset_knobs(name: str) -> dict:
    """The knob values preset ``name`` sets on top of the defaults (``custom``: the defaults)."""
    defaults = SamplingConfig()
    values = {knob: getattr(defaults, knob) for knob in KNOBS if knob != "seed"}
    values["do_sample"] = True
    values.update(
        {
            key: value
            for key, value in SAMPLING_PRESETS.get(name, {}).items()
            if key in values or key == "do_sample"
        }
    )
    return values


def sampling_from_form(preset: str, do_sample: bool, **knobs) -> SamplingConfig:
    """A validated config from the form; ``ValueError`` naming each bad value (no traceback shown)."""
    if preset not in preset_names():
        raise ValueError(f"Unknown preset {preset!r}; choose one of {', '.join(preset_names())}.")
    values = {}
    for name in KNOBS:
        value = knobs.get(name)
        if value is None or value == "":
            if name == "seed":
                continue
            raise ValueError(f"{name} is empty; enter a number.")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {value!r}.") from None
        integral = name in ("top_k", "no_repeat_ngram_size", "max_new_tokens", "seed")
        if integral and number != int(number):
            raise ValueError(f"{name} must be a whole number, got {value!r}.")
        values[name] = int(number) if integral else number
    if not 1 <= values["max_new_tokens"] <= MAX_NEW_TOKENS:
        raise ValueError(
            f"max_new_tokens must be between 1 and {MAX_NEW_TOKENS}, got {values['max_new_tokens']}."
        )
    return SamplingConfig(do_sample=bool(do_sample), **values)


@dataclass
class Playground:
    """The lake's models and ratings, shared by every browser session of one app."""

    lake_root: Path
    ratings_url: str
    models: ModelCache

    @classmethod
    def open(cls, lake_root: str | Path, ratings_url: str) -> Playground:
        return cls(Path(lake_root), ratings_url, ModelCache())

    def model_names(self) -> list[str]:
        return list(model_folders(self.lake_root))

    def generator(self, name: str):
        folders = model_folders(self.lake_root)
        if name not in folders:
            known = ", ".join(folders) or "none yet (run make demo)"
            raise ValueError(f"No model folder {name!r} in {self.lake_root / 'models'}; available: {known}.")
        return self.models.get(folders[name])


def check_prompt(prompt: str | None) -> str:
    prompt = prompt or ""
    if len(prompt) > MAX_PROMPT_CHARACTERS:
        raise ValueError(
            f"The prompt is {len(prompt):,} characters long; the limit is {MAX_PROMPT_CHARACTERS:,}."
        )
    return prompt


def status_line(event: StreamEvent) -> str:
    state = "done" if event.done else "generating"
    return (
        f"{state}: {event.n_tokens} tokens in {event.seconds:.2f} s ({event.tokens_per_second:.1f} tokens/s)"
    )


def stream_text(
    playground: Playground, model: str, prompt: str, sampling: SamplingConfig
) -> Iterator[StreamEvent]:
    """The model's continuation of ``prompt`` as it grows (``ValueError`` for anything the user can fix)."""
    generator = playground.generator(model)
    yield from stream_generation(generator.model, generator.tokenizer, check_prompt(prompt), sampling)


def attention_figure(playground: Playground, model: str, ids: tuple[int, ...]):
    """A matplotlib figure: one heatmap per (layer, head) of the scratch transformer over ``ids``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from genai_assets.models.gpt_decoding import attention_weights

    generator = playground.generator(model)
    if model_kind(generator) != "gpt":
        raise ValueError(f"{model} is not the scratch transformer: attention maps are drawn for it only.")
    ids = tuple(ids)[-min(HEATMAP_TOKENS, generator.model.config.block_size) :]
    if len(ids) < 2:
        raise ValueError("Generate some text first: the heatmap shows the attention over it.")
    weights = attention_weights(generator.model, torch.tensor([ids])).numpy()  # (L, nh, T, T)
    labels = [generator.tokenizer.decode([token]).replace("\n", "⏎") for token in ids]
    layers, heads = weights.shape[:2]
    figure, axes = plt.subplots(layers, heads, figsize=(2.6 * heads, 2.6 * layers), squeeze=False)
    for layer in range(layers):
        for head in range(heads):
            axis = axes[layer][head]
            axis.imshow(weights[layer, head], cmap="viridis", vmin=0, vmax=1)
            axis.set_title(f"layer {layer + 1}, head {head + 1}", fontsize=8)
            axis.set_xticks([])
            axis.set_yticks([])
    if layers * heads:
        axes[-1][0].set_xticks(range(len(labels)), labels, rotation=90, fontsize=5)
        axes[-1][0].set_yticks(range(len(labels)), labels, fontsize=5)
    figure.suptitle("Self-attention per head (rows: query token, columns: key token)", fontsize=10)
    figure.tight_layout()
    return figure


# --- Rating -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlindPair:
    """One item as this rater sees it: ``left``/``right`` are the sheet's poems, maybe swapped."""

    sheet_id: str
    item_id: str
    prompt: str
    left: str
    right: str
    swapped: bool  # True: left is the sheet's poem 2


def load_current_sheet(lake_root: Path) -> tuple[str, pd.DataFrame]:
    """``(sheet_id, items)``: the current sheet version joined with its key (models never shown early)."""
    from genai_assets.escaping import csv_frame_original

    root = Path(lake_root) / "human_eval"
    sheet_id = current_sheet_id(root)
    if sheet_id is None:
        raise ValueError("No rating sheet yet: materialize the human_eval_sheet asset first (make demo).")
    folder = sheet_folder(root, sheet_id)
    try:
        sheet = csv_frame_original(pd.read_csv(folder / "sheet.csv", dtype=str, keep_default_na=False))
        key = pd.read_csv(folder / "key.csv", dtype=str, keep_default_na=False)
    except FileNotFoundError as error:
        raise ValueError(f"Sheet {sheet_id} is incomplete: {error.filename} is missing.") from None
    items = sheet[["item_id", "prompt", "poem_1", "poem_2"]].merge(
        key[["item_id", "poem_1_model", "poem_2_model"]], on="item_id"
    )
    return sheet_id, items


class RatingSession:
    """Blind A/B rating of the current sheet: the next unrated pair for a rater, and the vote."""

    def __init__(self, lake_root: Path, store: RatingsStore):
        self.lake_root, self.store = Path(lake_root), store

    def next_pair(self, rater: str) -> BlindPair | None:
        """A pair ``rater`` has not rated yet (order and sides shuffled per rater); None when done."""
        rater = _clean_rater(rater)
        sheet_id, items = load_current_sheet(self.lake_root)
        done = self.store.rated_items(rater, sheet_id)
        remaining = [row for row in items.itertuples(index=False) if row.item_id not in done]
        if not remaining:
            return None
        order = random.Random(_seed(rater, sheet_id))
        order.shuffle(remaining)
        row = remaining[0]
        swapped = random.Random(_seed(rater, sheet_id, row.item_id)).random() < 0.5
        left, right = (row.poem_2, row.poem_1) if swapped else (row.poem_1, row.poem_2)
        return BlindPair(sheet_id, row.item_id, row.prompt, left, right, swapped)

    def progress(self, rater: str) -> tuple[int, int]:
        """``(rated, items)`` of the current sheet for ``rater``."""
        sheet_id, items = load_current_sheet(self.lake_root)
        return len(self.store.rated_items(_clean_rater(rater), sheet_id) & set(items["item_id"])), len(items)

    def submit(self, rater: str, pair: BlindPair, picked: str) -> tuple[bool, str]:
        """Store the vote (``picked``: left, right or tie) → (stored?, the reveal: which model was which)."""
        sides = {"left": "2" if pair.swapped else "1", "right": "1" if pair.swapped else "2", "tie": "tie"}
        if picked not in sides:
            raise ValueError(f"picked must be left, right or tie, got {picked!r}.")
        stored = self.store.add_rating(
            _clean_rater(rater), pair.sheet_id, pair.item_id, sides[picked], pair.swapped
        )
        _, items = load_current_sheet(self.lake_root)
        row = items[items["item_id"] == pair.item_id].iloc[0]
        left_model, right_model = (
            (row.poem_2_model, row.poem_1_model) if pair.swapped else (row.poem_1_model, row.poem_2_model)
        )
        reveal = f"Left was **{left_model}**, right was **{right_model}**."
        if not stored:
            reveal = "You had already rated this pair; your first vote stands. " + reveal
        return stored, reveal


def _clean_rater(rater: str | None) -> str:
    rater = " ".join(str(rater or "").split())
    if not rater:
        raise ValueError("Enter your name or initials first.")
    return rater


def _seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")
