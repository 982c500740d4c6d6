"""Stages of the ``finetune`` group: ``base_lm`` (:func:`run_base_lm`), ``finetune_dataset``
(:func:`run_finetune_dataset`), ``finetuned_lm`` (:func:`run_finetuned_lm`) and ``generated_poems``
(:func:`run_generated_poems`).

Fine-tune the base model on ``finetune_dataset`` (in this process, or through a ``trainer`` the
Dagster layer passes to run it under torchrun), measure learning vs forgetting (bits per character
of the base and the fine-tuned model, in domain and out of domain), write ``metrics.json`` into the
model folder (swapped in whole) and the loss plot to ``<lake>/reports/finetuned_lm_loss.png``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from genai_assets.evaluation.forgetting import compare_bits_per_char, folder_bits_per_char, forgetting_texts
from genai_assets.finetune.base_model import BaseModelConfig, base_model_dir, prepare_base_lm, read_base_info
from genai_assets.finetune.data import build_finetune_dataset, prepare_tokenizer
from genai_assets.finetune.poem_samples import GeneratedPoemsConfig
from genai_assets.finetune.train import FinetuneConfig, finetune
from genai_assets.generation import generate_poems, load_generator
from genai_assets.lake import atomic_directory, atomic_write_text
from genai_assets.plotting import new_figure, write_figure


class FinetuneLake(Protocol):
    def model_dir(self, asset_name: str) -> Path: ...

    def checkpoint_dir(self, asset_name: str) -> Path: ...

    def folder(self, name: str) -> Path: ...

    def table_path(self, name: str) -> Path: ...

    def reports_dir(self) -> Path: ...


@dataclass(frozen=True)
class FinetunedLMResult:
    """The training result (``finetune.train.FinetuneResult``), where it went and what it measured."""

    result: Any
    folder: Path
    bits_per_char: dict  # base / finetuned / change, each in_domain and ood
    plot_path: Path
    seconds: float
    reported: dict = field(default_factory=dict)  # what a torchrun launch reported (world_size, backend)


#: ``trainer(base_dir=, dataset=, config=, out_dir=, checkpoint_root=, base_info=) -> (result, reported)``:
#: fine-tunes elsewhere (the Dagster layer's torchrun launcher), leaving the model in ``out_dir``.
Trainer = Callable[..., tuple[Any, dict]]


def finetune_dataset_dir(lake: FinetuneLake) -> Path:
    """Where ``finetune_dataset`` saves its DatasetDict (swapped in whole, like a model folder)."""
    return lake.folder("datasets") / "finetune_dataset"


def run_finetuned_lm(
    config: FinetuneConfig, lake: FinetuneLake, log: Callable[[str], None], trainer: Trainer | None = None
) -> FinetunedLMResult:
    """Fine-tune → measure learning vs forgetting → save ``models/finetuned_lm`` → plot the losses."""

    def log_row(row: dict) -> None:
        log(json.dumps(row, default=str))

    base_dir = base_model_dir(lake.model_dir("base_lm"))
    out_dir = lake.model_dir("finetuned_lm")
    started = time.perf_counter()
    base_info = {
        key: value for key, value in read_base_info(lake.model_dir("base_lm")).items() if key != "cached"
    }
    training = {
        "base_dir": base_dir,
        "dataset": finetune_dataset_dir(lake),  # load_from_disk (finetune_splits)
        "config": config,
        "checkpoint_root": lake.checkpoint_dir("finetuned_lm"),
        "base_info": base_info,
    }
    reported: dict = {}
    with atomic_directory(out_dir) as staging:
        if trainer is not None:
            result, reported = trainer(out_dir=staging, **training)
        else:
            result = finetune(
                training["base_dir"], training["dataset"], config, staging,
                checkpoint_root=training["checkpoint_root"], base_info=base_info, log_fn=log_row,
            )  # fmt: skip
        bits = _learning_vs_forgetting(lake, base_dir, staging, log_row)
        result.metrics["bits_per_char"] = bits
        atomic_write_text(
            staging / "metrics.json", json.dumps(result.metrics, indent=2, default=float) + "\n"
        )
    seconds = time.perf_counter() - started
    plot = write_figure(loss_figure(result.history), lake.reports_dir() / "finetuned_lm_loss.png")
    return FinetunedLMResult(result, out_dir, bits, plot, seconds, reported)


def _learning_vs_forgetting(
    lake: FinetuneLake, base_dir: Path, tuned_dir: Path, log_row: Callable[[dict], None]
) -> dict:
    """Bits per character of the base and the tuned model on the texts the evaluation asset scores
    plus out-of-domain verse."""
    texts = forgetting_texts(
        pd.read_parquet(lake.table_path("cleansed_poems"), columns=["poem_id", "text", "split"])
    )
    bits = compare_bits_per_char(
        folder_bits_per_char(base_dir, texts), folder_bits_per_char(tuned_dir, texts), texts
    )
    log_row({"event": "bits per char", **bits})
    return bits


def loss_figure(history: list[dict]):
    """Training loss per step and validation loss at each evaluation."""
    figure = new_figure()
    axes = figure.add_subplot(1, 1, 1)
    axes.plot([row["step"] for row in history], [row["train_loss"] for row in history], label="training loss")
    val_rows = [row for row in history if "val_loss" in row]
    axes.plot(
        [row["step"] for row in val_rows],
        [row["val_loss"] for row in val_rows],
        "o-",
        label="validation loss",
    )
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("cross-entropy (nats/token)")
    axes.set_title("finetuned_lm")
    axes.legend()
    return figure


# --- finetune_dataset ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FinetuneDatasetResult:
    """The DatasetDict written, its sizes, and the tokenizer it was encoded with."""

    folder: Path
    dataset: Any  # datasets.DatasetDict: train/val/test of poem_id, input_ids
    per_split: dict[str, dict[str, int]]  # split -> {"poems", "tokens"}
    lengths: dict[str, list[int]]  # split -> tokens per poem
    tokenizer: Any
    added_tokens: Any  # what prepare_tokenizer added (poem start, pad)
    seconds: float


def run_finetune_dataset(
    lake: FinetuneLake, log: Callable[[str], None], cleansed_poems: pd.DataFrame
) -> FinetuneDatasetResult:
    """The cleansed splits in the base model's tokenizer, with poem start/end markers, saved whole."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir(lake.model_dir("base_lm"))))
    added = prepare_tokenizer(tokenizer)
    started = time.perf_counter()
    # num_proc stays None: on 2 cores two tokenizer processes took 4.1 s against 3.1 s in-process
    # for the 20 k-poem demo corpus (the batched fast tokenizer is already efficient alone).
    dataset = build_finetune_dataset(cleansed_poems, tokenizer)
    lengths = {split: [len(ids) for ids in part["input_ids"]] for split, part in dataset.items()}
    per_split = {
        split: {"poems": len(counts), "tokens": int(sum(counts))} for split, counts in lengths.items()
    }
    if per_split["train"]["poems"] == 0:
        raise ValueError("cleansed_poems has no train poems: nothing to fine-tune on.")
    folder = finetune_dataset_dir(lake)
    with atomic_directory(folder) as staging:
        dataset.save_to_disk(str(staging))
    log(f"finetune_dataset: {per_split} in {time.perf_counter() - started:.1f}s -> {folder}")
    return FinetuneDatasetResult(
        folder, dataset, per_split, lengths, tokenizer, added, time.perf_counter() - started
    )


# --- base_lm and generated_poems ----------------------------------------------------------------


@dataclass(frozen=True)
class BaseLMResult:
    info: dict  # base_info.json: name, kind, revision, license, architecture, sizes, model_dir, cached
    seconds: float


def run_base_lm(config: BaseModelConfig, lake: FinetuneLake, log: Callable[[str], None]) -> BaseLMResult:
    """Resolve the base model offline-first; the packaged GGUF is converted once and reused."""
    started = time.perf_counter()
    info = prepare_base_lm(config.base_model, lake.model_dir("base_lm"))
    seconds = time.perf_counter() - started
    log(f"base_lm: {info['name']} ({info['kind']}) in {seconds:.1f}s, cached={info['cached']}")
    return BaseLMResult(info, seconds)


GENERATED_POEMS_COLUMNS = ["model", "prompt", "sample_index", "text", "params", "n_new_tokens"]


@dataclass(frozen=True)
class GeneratedPoemsResult:
    table: pd.DataFrame  # GENERATED_POEMS_COLUMNS, one row per sample
    sampling: Any  # the SamplingConfig applied (fields, then the named preset over them)
    seconds: float


def run_generated_poems(
    config: GeneratedPoemsConfig, lake: FinetuneLake, log: Callable[[str], None]
) -> GeneratedPoemsResult:
    """Samples for the configured prompts from the fine-tuned model and (optionally) the base."""
    sampling = config.applied_sampling()  # the nested settings, then the named preset's over them
    models = {"finetuned_lm": lake.model_dir("finetuned_lm")}
    if config.include_base:
        models["base_lm"] = base_model_dir(lake.model_dir("base_lm"))
    rows, started = [], time.perf_counter()
    for model_name, folder in models.items():
        generator = load_generator(folder)
        for sample in generate_poems(generator.model, generator.tokenizer, config.prompts, sampling):
            rows.append({"model": model_name, **sample})
        log(f"generated_poems: {model_name} done after {time.perf_counter() - started:.1f}s")
    table = pd.DataFrame(rows, columns=GENERATED_POEMS_COLUMNS)
    return GeneratedPoemsResult(table, sampling, time.perf_counter() - started)
