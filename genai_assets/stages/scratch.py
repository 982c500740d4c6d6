"""Stages of the ``scratch`` group: build → fingerprint → train → card → save → plot.

:func:`run_scratch_transformer`, :func:`run_next_line_transformer` and
:func:`run_rnn_baselines` do everything the Dagster assets of ``genai_assets.defs.scratch`` do
except turning the results into asset metadata. Each reads ``<lake>/token_arrays``, trains with
the shared loop (:mod:`genai_assets.training.scratch_runs`), writes a contract-6 model folder under ``<lake>/models/``
(read back by ``load_scratch_model``) and a loss plot under ``<lake>/reports/``; resumable
checkpoints live in ``<lake>/checkpoints/<asset>/run-<fingerprint>/`` (fingerprint = model +
training settings + data sizes) and are deleted after success unless ``keep_checkpoint``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pandas as pd
import torch

from genai_assets.lake import atomic_write_text
from genai_assets.models.encoder_decoder import EncoderDecoderTransformer
from genai_assets.models.loading import save_scratch_model
from genai_assets.models.rnn import RNNLanguageModel
from genai_assets.models.size_guard import check_memory, estimate_gpt_training_memory
from genai_assets.models.transformer import GPT
from genai_assets.plotting import new_figure, write_figure
from genai_assets.publish.model_card import ModelCardInputs, build_model_card
from genai_assets.text.datasets import read_token_meta
from genai_assets.training.checkpoint import discard_run_checkpoint, run_fingerprint
from genai_assets.training.scratch_config import (
    LanguageModelRunConfig,
    NextLineTransformerConfig,
    RNNBaselinesConfig,
    ScratchRunConfig,
    ScratchTransformerConfig,
)
from genai_assets.training.scratch_runs import (
    LanguageModelRun,
    NextLineRun,
    Sampling,
    checkpoint_folder,
    resolve_device,
    run_language_model,
    run_next_line,
)

if TYPE_CHECKING:
    from genai_assets.training.loop import TrainLoopConfig


class LakeFolders(Protocol):
    """The lake folders a stage uses (``genai_assets.defs._resources.DataLake`` is one)."""

    @property
    def path(self) -> Path: ...

    def model_dir(self, asset_name: str) -> Path: ...

    def checkpoint_dir(self, asset_name: str) -> Path: ...

    def reports_dir(self) -> Path: ...


@dataclass
class TrainedModel:
    """One trained and saved scratch model."""

    run: LanguageModelRun | NextLineRun
    folder: Path  # the saved model folder
    plot_path: Path  # its loss-curve PNG


@dataclass
class RNNBaselines:
    """The RNN baselines, their comparison with the transformer and the best of them."""

    record: dict  # what ``<lake>/models/rnn_baselines.json`` holds
    table: pd.DataFrame  # the comparison rows (RNNs, then the transformer if it was found)
    curves_path: Path
    bars_path: Path


@contextlib.contextmanager
def torch_threads(num_threads: int) -> Iterator[None]:
    """Run the block with ``num_threads`` torch CPU threads (0 = leave as is), then restore."""
    previous = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def progress_logger(log: Callable[[str], None], total_steps: int, label: str) -> Callable[[dict], None]:
    """The loop's ``log_fn``: one readable line per progress row, sample or checkpoint event."""

    def log_row(row: dict) -> None:
        if "sample" in row:
            log(f"[{label}] sample at step {row['step']}:\n{row['sample']}")
        elif "event" in row:
            log(f"[{label}] {row['event']} at step {row['step']} ({row.get('checkpoint_dir', '')})")
        else:
            text = f"[{label}] step {row['step']}/{total_steps} train_loss {row['train_loss']:.4f} lr {row['lr']:.2e}"
            if "val_loss" in row:
                text += f" val_loss {row['val_loss']:.4f} val_ppl {row['val_perplexity']:.2f}"
            log(text)

    return log_row


def token_arrays_meta(lake: LakeFolders) -> tuple[Path, dict]:
    """``<lake>/token_arrays`` and its ``meta.json`` (a clear error if token_arrays is missing)."""

    token_dir = lake.path / "token_arrays"
    return token_dir, read_token_meta(token_dir)


def sampling_for(config: LanguageModelRunConfig) -> Sampling:
    """The run's samples: its prompts decoded with its ``sampling`` settings (seed None = the run's)."""
    settings = config.sampling
    if settings.seed is None:
        settings = replace(settings, seed=config.seed)
    return Sampling(prompts=list(config.sample_prompts), settings=settings)


def generation_defaults(meta: dict, config: LanguageModelRunConfig) -> dict:
    """``generation_config.json`` of a GPT or RNN folder: the tokenizer's ids + the sampling settings."""
    return {
        "bos_token_id": int(meta["bos_id"]),
        "eos_token_id": int(meta["eos_id"]),
        "pad_token_id": int(meta["pad_id"]),
        "do_sample": config.sampling.do_sample,
        "temperature": config.sampling.temperature,
        "top_k": config.sampling.top_k,
        "top_p": config.sampling.top_p,
        "max_new_tokens": config.sampling.max_new_tokens,
    }


def _finish(config: ScratchRunConfig, checkpoints: Path) -> None:
    if not config.keep_checkpoint:
        discard_run_checkpoint(checkpoints)  # left alone if another run of the asset holds the lock


def _seeded_model(
    model_class: Callable[[object], torch.nn.Module],
    model_config: object,
    seed: int,
    device: str | torch.device,
) -> torch.nn.Module:
    """``model_class(model_config)`` built right after seeding torch: its initial weights depend only on ``seed``."""
    torch.manual_seed(seed)
    return model_class(model_config).to(device)


def _train_language_model(
    model: torch.nn.Module,
    token_dir: Path,
    loop: TrainLoopConfig,
    config: LanguageModelRunConfig,
    checkpoints: Path,
    log: Callable[[str], None],
    name: str,
) -> LanguageModelRun:
    """Next-token training in this process (GPT or RNN) with the config's torch thread count."""
    with torch_threads(config.num_threads):
        return run_language_model(
            model, token_dir, loop, config.block_size, config.batch_size, sampling_for(config), checkpoints,
            progress_logger(log, loop.max_steps, name),
        )  # fmt: skip


def _save_with_card(
    lake: LakeFolders,
    name: str,
    model: torch.nn.Module,
    meta: dict,
    generation: dict,
    description: str,
    model_config: dict,
    run: LanguageModelRun | NextLineRun,
) -> Path:
    """Save ``models/<name>`` (weights on CPU, tokenizer, generation defaults, card, metrics.json)."""
    folder = lake.model_dir(name)
    card = model_card(name, description, model_config, run.metrics())
    save_scratch_model(
        folder, model.cpu(), meta["tokenizer_dir"], generation, card, {"metrics.json": run.metrics()}
    )
    return folder


def _run_checkpoints(root: Path, model_config: dict, loop: TrainLoopConfig, *sizes) -> Path:
    """The run's checkpoint folder under ``root``, named by the fingerprint of model, loop and ``sizes``."""
    return checkpoint_folder(root, run_fingerprint(model_config, asdict(loop), *sizes))


def _save_plot_finish(
    config: ScratchRunConfig,
    lake: LakeFolders,
    name: str,
    label: str,
    model: torch.nn.Module,
    model_config: dict,
    run: LanguageModelRun | NextLineRun,
    checkpoints: Path,
    *,
    meta: dict,
    generation: dict,
    description: str,
) -> TrainedModel:
    """Save ``models/<name>``, plot ``reports/<name>_loss.png``, then discard the checkpoint.

    The checkpoint goes last, so a failure before it still leaves the run resumable.
    """
    folder = _save_with_card(lake, name, model, meta, generation, description, model_config, run)
    plot = write_figure(
        loss_curve_figure({label: run.train.history}, f"{name} loss"), lake.reports_dir() / f"{name}_loss.png"
    )
    _finish(config, checkpoints)
    return TrainedModel(run=run, folder=folder, plot_path=plot)


def run_scratch_transformer(
    config: ScratchTransformerConfig,
    lake: LakeFolders,
    log: Callable[[str], None] = print,
    trainer: Callable[..., LanguageModelRun] | None = None,
) -> TrainedModel:
    """Train the decoder-only GPT on the token arrays; save ``models/scratch_transformer``.

    ``trainer``: run the training elsewhere instead of in this process — called as
    ``trainer(model, token_dir=, loop_config=, block_size=, batch_size=, sampling=, checkpoint_dir=,
    seed=, device=)``, it must leave the trained weights in ``model`` and return the run (the
    Dagster asset passes a torchrun launcher, ``genai_assets.defs._distributed.torchrun_trainer``).
    """

    name = "scratch_transformer"
    token_dir, meta = token_arrays_meta(lake)
    device = resolve_device(config.device)
    gpt_config = config.gpt_config(vocab_size=int(meta["vocab_size"]))
    # Refuse (naming the fields) before allocating, if the run cannot fit in memory.
    memory = check_memory(estimate_gpt_training_memory(gpt_config, config.batch_size), name, str(device))
    log(f"estimated training memory: {memory.describe()}")
    loop = config.loop_config()
    model = _seeded_model(GPT, gpt_config, config.seed, device)
    log(f"GPT with {model.num_parameters():,} parameters on {device}")
    checkpoints = _run_checkpoints(
        lake.checkpoint_dir(name), gpt_config.to_dict(), loop, config.batch_size, meta["splits"]
    )
    if trainer is not None:
        run = trainer(
            model, token_dir=token_dir, loop_config=loop, block_size=config.block_size,
            batch_size=config.batch_size, sampling=sampling_for(config), checkpoint_dir=checkpoints,
            seed=config.seed, device=config.device,
        )  # fmt: skip
    else:
        run = _train_language_model(model, token_dir, loop, config, checkpoints, log, name)
    return _save_plot_finish(
        config, lake, name, "transformer", model, gpt_config.to_dict(), run, checkpoints,
        meta=meta, generation=generation_defaults(meta, config),
        description="A decoder-only Transformer (GPT) trained from scratch on public-domain poems.",
    )  # fmt: skip


def run_next_line_transformer(
    config: NextLineTransformerConfig, lake: LakeFolders, log: Callable[[str], None] = print
) -> TrainedModel:
    """Train the encoder–decoder on (line, next line) pairs; save ``models/next_line_transformer``."""

    name = "next_line_transformer"
    token_dir, meta = token_arrays_meta(lake)
    device = resolve_device(config.device)
    model_config = config.model_config(meta)
    loop = config.loop_config()
    model = _seeded_model(EncoderDecoderTransformer, model_config, config.seed, device)
    checkpoints = _run_checkpoints(
        lake.checkpoint_dir(name), model_config.to_dict(), loop, config.batch_size, meta["splits"]
    )
    with torch_threads(config.num_threads):
        run = run_next_line(
            model, token_dir, loop, config.batch_size, config.n_examples, checkpoints,
            progress_logger(log, loop.max_steps, name),
        )  # fmt: skip
    defaults = {
        "bos_token_id": model_config.bos_id,
        "eos_token_id": model_config.eos_id,
        "pad_token_id": model_config.pad_id,
        "do_sample": False,
        "max_new_tokens": config.max_line_tokens,
    }
    return _save_plot_finish(
        config, lake, name, "encoder-decoder", model, model_config.to_dict(), run, checkpoints,
        meta=meta, generation=defaults,
        description="An encoder–decoder Transformer that writes the next line of a poem given the current "
        "line (generate() returns only the new line's tokens).",
    )  # fmt: skip


def run_rnn_baselines(
    config: RNNBaselinesConfig,
    lake: LakeFolders,
    log: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
) -> RNNBaselines:
    """Train each RNN kind on the same data and budget, save each, and compare with the transformer."""
    token_dir, meta = token_arrays_meta(lake)
    device = resolve_device(config.device)
    loop = config.loop_config()
    rows, histories, summary = [], {}, {}
    for kind in config.kinds:
        run, folder = _train_and_save_rnn(kind, config, lake, loop, device, token_dir, meta, log)
        histories[kind.upper()] = run.train.history
        summary[kind] = {key: value for key, value in run.metrics().items() if key not in ("history",)}
        summary[kind]["path"] = str(folder)
        rows.append({"model": kind.upper(), **comparison_row(run.metrics())})
    transformer = _add_transformer(lake, config, summary, rows, histories, warn)
    best = min(config.kinds, key=lambda kind: summary[kind]["val_loss"])
    record = {
        "best": best,
        "best_dir": summary[best]["path"],
        "selection": "lowest validation loss over the whole val split",
        "budget": f"{loop.max_steps} steps x {config.batch_size} x {config.block_size} tokens per model",
        "models": summary,
        "transformer": None if transformer is None else comparison_row(transformer),
        "comparison": rows,
    }
    atomic_write_text(
        lake.model_dir("rnn_baselines").with_suffix(".json"), json.dumps(record, indent=2, default=float)
    )
    table = pd.DataFrame(rows)
    reports = lake.reports_dir()
    curves = write_figure(
        loss_curve_figure(histories, "RNN baselines vs transformer"), reports / "rnn_baselines_loss.png"
    )
    bars = write_figure(comparison_figure(table), reports / "rnn_baselines_comparison.png")
    return RNNBaselines(record=record, table=table, curves_path=curves, bars_path=bars)


def _train_and_save_rnn(
    kind: str,
    config: RNNBaselinesConfig,
    lake: LakeFolders,
    loop: TrainLoopConfig,
    device: torch.device,
    token_dir: Path,
    meta: dict,
    log: Callable[[str], None],
) -> tuple[LanguageModelRun, Path]:
    """Build (seeded), train and save ``models/rnn_<kind>``; discard its checkpoint after the save."""

    rnn_config = config.model_config(kind, int(meta["vocab_size"]))
    model = _seeded_model(RNNLanguageModel, rnn_config, config.seed, device)
    name = f"rnn_{kind}"
    checkpoints = _run_checkpoints(
        lake.checkpoint_dir("rnn_baselines") / kind,
        rnn_config.to_dict(), loop, config.batch_size, config.block_size, meta["splits"],
    )  # fmt: skip
    run = _train_language_model(model, token_dir, loop, config, checkpoints, log, name)
    folder = _save_with_card(
        lake, name, model, meta, generation_defaults(meta, config),
        f"A {kind.upper()} language model, baseline for the scratch transformer.",
        rnn_config.to_dict(), run,
    )  # fmt: skip
    _finish(config, checkpoints)
    return run, folder


def _add_transformer(
    lake: LakeFolders,
    config: RNNBaselinesConfig,
    summary: dict,
    rows: list[dict],
    histories: dict,
    warn: Callable[[str], None],
) -> dict | None:
    """Append the scratch transformer's rows and curve (at the RNNs' budget and at its end), if trained."""
    transformer_metrics_path = lake.model_dir("scratch_transformer") / "metrics.json"
    if not transformer_metrics_path.is_file():
        warn(f"{transformer_metrics_path} not found: comparing the RNNs among themselves only.")
        return None
    transformer = json.loads(transformer_metrics_path.read_text(encoding="utf-8"))
    budget = max(summary[kind]["tokens_seen"] for kind in config.kinds)
    rows.extend(transformer_rows(transformer, budget))
    histories["Transformer"] = transformer["history"]
    return transformer


def transformer_rows(metrics: dict, tokens_budget: int) -> list[dict]:
    """The transformer at the RNNs' token budget (its last full-val evaluation within it) and at the end.

    The intermediate row is only exact when the transformer evaluated on the whole val split at that
    step (``eval_batches=0``, ``eval_every`` dividing the RNNs' step count — the cpu defaults).
    """
    rows = []
    within = [row for row in metrics["history"] if "val_loss" in row and row["tokens"] <= tokens_budget]
    final = comparison_row(metrics)
    if within and within[-1]["tokens"] < metrics["tokens_seen"]:
        point = within[-1]
        bpc_per_nat = metrics["val_bpc"] / metrics["val_loss"]  # bpc is proportional to the loss
        rows.append(
            {
                "model": f"Transformer @ step {point['step']}",
                "val_loss": round(point["val_loss"], 4),
                "val_perplexity": round(point["val_perplexity"], 2),
                "val_bpc": round(point["val_loss"] * bpc_per_nat, 4),
                "parameters": metrics["n_parameters"],
                "tokens_seen": point["tokens"],
                "train_seconds": round(point["elapsed_s"], 1),
                "tokens_per_second": round(metrics["tokens_per_second"], 1),
            }
        )
    rows.append({"model": "Transformer", **final})
    return rows


def comparison_row(metrics: dict) -> dict:
    """One row of the RNN/transformer comparison table, from a ``metrics.json``."""
    return {
        "val_loss": round(metrics["val_loss"], 4),
        "val_perplexity": round(metrics["val_perplexity"], 2),
        "val_bpc": round(metrics["val_bpc"], 4),
        "parameters": metrics["n_parameters"],
        "tokens_seen": metrics["tokens_seen"],
        "train_seconds": round(metrics["train_seconds"], 1),
        "tokens_per_second": round(metrics["tokens_per_second"], 1),
    }


def loss_curve_figure(histories: dict[str, list[dict]], title: str):
    """Train loss per step (thin) and validation loss at eval steps (markers) for each named run."""
    figure = new_figure(7, 4)
    axes = figure.add_subplot()
    for index, (name, history) in enumerate(histories.items()):
        color = f"C{index}"
        axes.plot(
            [r["step"] for r in history], [r["train_loss"] for r in history], color=color, alpha=0.4, lw=1
        )
        evals = [r for r in history if "val_loss" in r]
        axes.plot(
            [r["step"] for r in evals], [r["val_loss"] for r in evals], "o-", color=color, label=f"{name} val"
        )
    axes.set(xlabel="optimizer step", ylabel="loss (nats/token)", title=title)
    axes.legend()
    return figure


def comparison_figure(table):
    """Bar chart of validation loss per model (lower is better), from the comparison table."""
    figure = new_figure(6, 3.5)
    axes = figure.add_subplot()
    colors = ["C3" if name.startswith("Transformer") else "C0" for name in table["model"]]
    bars = axes.bar(table["model"], table["val_loss"], color=colors)
    axes.bar_label(bars, labels=[f"{v:.3f}" for v in table["val_loss"]])
    axes.set(ylabel="val loss (nats/token)", title="Validation loss at the same token budget")
    return figure


SCRATCH_LIMITATIONS = (
    "A small model trained for minutes: it imitates the surface of verse (line breaks, archaic words, "
    "rhythm at best) without sense or reliable rhyme. English only; the corpus is old and its biases remain."
)


def model_card(name: str, description: str, config: dict, metrics: dict) -> str:
    """The scratch model's card (``publish.model_card.build_model_card``): config, figures and samples."""
    figures = {key: metrics[key] for key in ("val_loss", "val_perplexity", "val_bpc", "n_parameters",
                                             "tokens_seen", "steps", "tokens_per_second") if key in metrics}  # fmt: skip
    examples = (metrics.get("samples") or metrics.get("examples") or [])[:4]
    samples = [
        {"prompt": example.get("prompt", ""), "text": example["text"]}
        if "text" in example
        else {"prompt": "", "text": json.dumps(example, ensure_ascii=False)}
        for example in examples
    ]
    inputs = ModelCardInputs(
        repo_id=None,
        model_name=name,
        base_model=None,
        base_model_label="none: trained from scratch",
        license="other",
        tags=["text-generation", "poetry", "dagster", "from-scratch"],
        description=(
            f"{description}\n\nTrained from scratch by the `genai_assets` Dagster project on public-domain poems "
            "(Gutenberg Poetry Corpus excerpts, Shakespeare's poems). Not a `transformers` model: load it with "
            "`genai_assets.models.loading.load_scratch_model(folder)`; the tokenizer loads with `AutoTokenizer`."
        ),
        configuration=config,
        training_results={
            f"{key} (validation split)" if key.startswith("val_") else key: value
            for key, value in figures.items()
        },  # fmt: skip
        sample_poems=samples,
        library_name=None,
        limitations=SCRATCH_LIMITATIONS,
        usage='`genai-assets generate --model <this folder> --prompt "The rose"`, or in Python '
        "`genai_assets.generation.load_generator(folder)` then `generate_poems(...)`.",
    )
    return str(build_model_card(inputs))
