"""Stage "scratch": language models trained from scratch on ``token_arrays``.

Assets (group ``scratch``; each writes a contract-6 folder read by ``load_scratch_model``):

* ``scratch_transformer`` → ``<lake>/models/scratch_transformer/``: the decoder-only GPT
  (``genai_assets.models.transformer``); metadata: loss curves, val loss / perplexity / bits per
  character, tokens/s, parameter count, samples.
* ``next_line_transformer`` → ``<lake>/models/next_line_transformer/``: the encoder–decoder
  Transformer trained to write the next line of a poem from the current one (line pairs cut
  from the token arrays at newline tokens; ``genai_assets.training.lm_data``).
* ``rnn_baselines`` → ``<lake>/models/rnn_{rnn,lstm,gru}/`` and ``<lake>/models/rnn_baselines.json``
  (which is best): RNN, LSTM and GRU LMs on the same data and the same token budget as the
  transformer's default (same steps × batch × block), compared with the transformer's
  ``metrics.json``.

Training runs on the shared loop (``genai_assets.training.loop``); resumable checkpoints live in
``<lake>/checkpoints/<asset>/run-<fingerprint>/`` (fingerprint = model + training settings + data
sizes, so a changed config starts fresh) and are deleted after success unless ``keep_checkpoint``.
The device is ``auto`` (cuda if available). Heavy libraries are imported inside the asset bodies.
"""

import contextlib
import json
import shutil
from dataclasses import asdict

import dagster as dg
from pydantic import Field

from genai_assets.defs._metadata import save_figure
from genai_assets.defs._resources import DataLake
from genai_assets.lake import atomic_write_text

GROUP = "scratch"
DEFAULT_PROMPTS = ["", "The moon", "Shall I compare thee", "O gentle love,"]
RNN_BASELINE_KINDS = ("rnn", "lstm", "gru")


class _TrainingRunConfig(dg.Config):
    """Settings shared by every scratch training run (defaults = the cpu demo profile)."""

    max_steps: int = Field(600, description="Optimizer steps.")
    batch_size: int = Field(16, description="Sequences per micro-batch.")
    learning_rate: float = Field(2e-3, description="AdamW peak learning rate.")
    weight_decay: float = Field(0.1, description="AdamW weight decay (weight matrices only).")
    warmup_steps: int = Field(30, description="Linear warm-up steps, then linear decay to 0.")
    grad_accum_steps: int = Field(1, description="Micro-batches per optimizer step.")
    grad_clip: float = Field(
        1.0, description="Max global gradient norm (the cure for exploding RNN gradients); 0 = off."
    )
    eval_every: int = Field(100, description="Steps between validation passes (one at the end too).")
    eval_batches: int = Field(
        20, description="Validation batches per periodic pass (the final one uses all)."
    )
    sample_every: int = Field(0, description="Steps between logged samples; 0 = never.")
    checkpoint_every: int = Field(100, description="Steps between resumable checkpoints; 0 = end only.")
    seed: int = Field(1337, description="Seed of initialisation, batch sampling and dropout.")
    device: str = Field("auto", description="'auto' (cuda if available, else cpu), 'cpu' or 'cuda[:n]'.")
    keep_checkpoint: bool = Field(False, description="Keep the final checkpoint after success.")
    num_threads: int = Field(
        0, description="torch CPU threads (0 = torch's default, one per core); 1 is faster on a busy machine."
    )

    @contextlib.contextmanager
    def threads(self):
        """Run the block with ``num_threads`` torch threads, then restore the previous setting."""
        import torch

        if self.num_threads < 0:
            raise ValueError(f"num_threads must be >= 0, got {self.num_threads}.")
        previous = torch.get_num_threads()
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def loop_config(self):
        from genai_assets.training.loop import TrainLoopConfig

        return TrainLoopConfig(
            max_steps=self.max_steps,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            warmup_steps=min(self.warmup_steps, self.max_steps),
            grad_accum_steps=self.grad_accum_steps,
            grad_clip=self.grad_clip,
            eval_every=self.eval_every,
            eval_batches=self.eval_batches,
            sample_every=self.sample_every,
            checkpoint_every=self.checkpoint_every,
            seed=self.seed,
        )


class _LanguageModelRunConfig(_TrainingRunConfig):
    block_size: int = Field(128, description="Training window in tokens (GPT: also its context length).")
    sample_prompts: list[str] = Field(
        DEFAULT_PROMPTS, description="Prompts for the samples ('' = from scratch)."
    )
    sample_max_new_tokens: int = Field(96, description="New tokens per sample.")
    temperature: float = Field(0.8, description="Sampling temperature (also the saved generation default).")
    top_k: int = Field(50, description="Top-k filter for sampling; 0 = off.")
    top_p: float = Field(0.95, description="Nucleus (top-p) filter for sampling; 1 = off.")


class ScratchTransformerConfig(_LanguageModelRunConfig):
    """The decoder-only GPT and its training run (defaults = the cpu demo profile)."""

    max_steps: int = Field(300, description="Optimizer steps.")
    learning_rate: float = Field(4e-3, description="AdamW peak learning rate.")
    eval_every: int = Field(100, description="Steps between validation passes (one at the end too).")
    eval_batches: int = Field(0, description="Validation batches per pass; 0 = the whole val split.")

    n_layer: int = Field(4, description="Decoder layers.")
    n_head: int = Field(4, description="Attention heads per layer.")
    n_embd: int = Field(128, description="Model width (d_model).")
    dropout: float = Field(
        0.0,
        description="Dropout on embeddings, attention and residual branches (0: the demo sees < 1 epoch).",
    )
    norm_first: bool = Field(True, description="Pre-norm (GPT-2) if true, post-norm (the paper) if false.")
    positional_encoding: str = Field("learned", description="'learned' (GPT-2) or 'sinusoidal' (the paper).")
    use_sdpa: bool = Field(True, description="Fused attention kernel; false = the explicit teaching version.")


class NextLineTransformerConfig(_TrainingRunConfig):
    """The encoder–decoder next-line model and its training run."""

    max_steps: int = Field(300, description="Optimizer steps.")
    batch_size: int = Field(32, description="Line pairs per micro-batch.")
    learning_rate: float = Field(3e-3, description="AdamW peak learning rate.")
    eval_every: int = Field(100, description="Steps between validation passes (one at the end too).")
    n_encoder_layers: int = Field(2, description="Encoder layers.")
    n_decoder_layers: int = Field(2, description="Decoder layers.")
    n_head: int = Field(4, description="Attention heads.")
    d_model: int = Field(128, description="Model width.")
    dropout: float = Field(0.0, description="Dropout (P_drop; 0: the demo sees a fraction of an epoch).")
    norm_first: bool = Field(True, description="Pre-norm if true, the paper's post-norm if false.")
    max_line_tokens: int = Field(
        32, description="Longest source/target line in tokens (longer ones are cut)."
    )
    n_examples: int = Field(8, description="Validation lines shown with their generated next line.")


class RNNBaselinesConfig(_LanguageModelRunConfig):
    """RNN/LSTM/GRU baselines on the same data; compared with the transformer at the same tokens seen.

    Each RNN trains for ``max_steps × batch_size × block_size`` tokens (a third of the
    transformer's demo budget, so the three fit the demo's time); the comparison table puts them
    next to the transformer's full-val evaluation at the same number of tokens (and at its end).
    """

    max_steps: int = Field(100, description="Optimizer steps per model.")
    eval_every: int = Field(50, description="Steps between validation passes (one at the end too).")
    eval_batches: int = Field(0, description="Validation batches per pass; 0 = the whole val split.")

    kinds: list[str] = Field(list(RNN_BASELINE_KINDS), description="Which recurrent cells to train.")
    n_embd: int = Field(128, description="Embedding width (tied with the output head).")
    hidden_size: int = Field(256, description="Recurrent state width.")
    n_layer: int = Field(1, description="Stacked recurrent layers.")
    dropout: float = Field(0.0, description="Dropout on embeddings, between layers and before the head.")
    learning_rate: float = Field(
        1e-2, description="AdamW peak learning rate (recurrent nets take a larger one)."
    )


def _token_dir(lake: DataLake):
    from genai_assets.text.datasets import read_token_meta

    token_dir = lake.path / "token_arrays"
    return token_dir, read_token_meta(token_dir)  # clear error if token_arrays is missing


def _log_fn(context: dg.AssetExecutionContext, total_steps: int, label: str):
    def log(row: dict) -> None:
        if "sample" in row:
            context.log.info(f"[{label}] sample at step {row['step']}:\n{row['sample']}")
        elif "event" in row:
            context.log.info(
                f"[{label}] {row['event']} at step {row['step']} ({row.get('checkpoint_dir', '')})"
            )
        else:
            text = f"[{label}] step {row['step']}/{total_steps} train_loss {row['train_loss']:.4f} lr {row['lr']:.2e}"
            if "val_loss" in row:
                text += f" val_loss {row['val_loss']:.4f} val_ppl {row['val_perplexity']:.2f}"
            context.log.info(text)

    return log


def _sampling(config: _LanguageModelRunConfig):
    from genai_assets.training.scratch_runs import Sampling

    return Sampling(
        prompts=list(config.sample_prompts),
        max_new_tokens=config.sample_max_new_tokens,
        temperature=config.temperature,
        top_k=config.top_k or None,
        top_p=config.top_p if config.top_p < 1 else None,
        seed=config.seed,
    )


def _generation_defaults(meta: dict, config: _LanguageModelRunConfig) -> dict:
    return {
        "bos_token_id": int(meta["bos_id"]),
        "eos_token_id": int(meta["eos_id"]),
        "pad_token_id": int(meta["pad_id"]),
        "do_sample": True,
        "temperature": config.temperature,
        "top_k": config.top_k,
        "top_p": config.top_p,
        "max_new_tokens": config.sample_max_new_tokens,
    }


def _samples_markdown(samples: list[dict]) -> str:
    blocks = [f"**prompt:** `{s['prompt'] or '(none)'}`\n\n```\n{s['text']}\n```" for s in samples]
    return "\n\n".join(blocks)


def _lm_metadata(run, folder, plot) -> dict:
    return {
        "path": dg.MetadataValue.path(str(folder)),
        "val_loss": round(run.val_loss, 4),
        "val_perplexity": round(run.val_perplexity, 2),
        "val_bits_per_char": round(run.val_bpc, 4),
        "tokens_per_second": round(run.train.tokens_per_second, 1),
        "tokens_seen": run.tokens_seen,
        "parameters": run.n_parameters,
        "steps": run.train.steps,
        "resumed_from_step": run.train.resumed_from_step,
        "train_seconds": round(run.train_seconds, 1),
        "loss_curves": plot,
        "samples": dg.MetadataValue.md(_samples_markdown(run.samples)),
        "notes": "; ".join(run.notes) or "none",
    }


@dg.asset(group_name=GROUP, deps=["token_arrays"], kinds={"pytorch", "safetensors"})
def scratch_transformer(
    context: dg.AssetExecutionContext, config: ScratchTransformerConfig, lake: DataLake
) -> dg.MaterializeResult:
    """A decoder-only Transformer LM (GPT) trained from scratch on the poems' token arrays."""
    import torch

    from genai_assets.models.loading import save_scratch_model
    from genai_assets.models.transformer import GPT, GPTConfig
    from genai_assets.training.scratch_runs import (
        checkpoint_folder,
        loss_curve_figure,
        model_card,
        resolve_device,
        run_fingerprint,
        run_language_model,
    )

    token_dir, meta = _token_dir(lake)
    device = resolve_device(config.device)
    gpt_config = GPTConfig(
        vocab_size=int(meta["vocab_size"]),
        block_size=config.block_size,
        n_layer=config.n_layer,
        n_head=config.n_head,
        n_embd=config.n_embd,
        dropout=config.dropout,
        norm_first=config.norm_first,
        positional_encoding=config.positional_encoding,
        use_sdpa=config.use_sdpa,
    )
    loop = config.loop_config()
    torch.manual_seed(config.seed)
    model = GPT(gpt_config).to(device)
    context.log.info(f"GPT with {model.num_parameters():,} parameters on {device}")
    fingerprint = run_fingerprint(gpt_config.to_dict(), asdict(loop), config.batch_size, meta["splits"])
    checkpoints = checkpoint_folder(lake.checkpoint_dir("scratch_transformer"), fingerprint)
    with config.threads():
        run = run_language_model(
            model, token_dir, loop, config.block_size, config.batch_size, _sampling(config), checkpoints,
            _log_fn(context, loop.max_steps, "scratch_transformer"),
        )  # fmt: skip
    folder = lake.model_dir("scratch_transformer")
    card = model_card(
        "scratch_transformer",
        "A decoder-only Transformer (GPT) trained from scratch on public-domain poems.",
        gpt_config.to_dict(),
        run.metrics(),
    )
    save_scratch_model(
        folder,
        model.cpu(),
        meta["tokenizer_dir"],
        _generation_defaults(meta, config),
        card,
        {"metrics.json": run.metrics()},
    )
    plot = save_figure(
        loss_curve_figure({"transformer": run.train.history}, "scratch_transformer loss"),
        lake.reports_dir() / "scratch_transformer_loss.png",
    )
    if not config.keep_checkpoint:
        shutil.rmtree(checkpoints, ignore_errors=True)
    return dg.MaterializeResult(metadata=_lm_metadata(run, folder, plot))


@dg.asset(group_name=GROUP, deps=["token_arrays"], kinds={"pytorch", "safetensors"})
def next_line_transformer(
    context: dg.AssetExecutionContext, config: NextLineTransformerConfig, lake: DataLake
) -> dg.MaterializeResult:
    """The encoder–decoder Transformer (§3 of the paper) trained to write a poem's next line."""
    import pandas as pd
    import torch

    from genai_assets.defs._metadata import dataframe_markdown
    from genai_assets.models.encoder_decoder import EncoderDecoderConfig, EncoderDecoderTransformer
    from genai_assets.models.loading import save_scratch_model
    from genai_assets.training.scratch_runs import (
        checkpoint_folder,
        loss_curve_figure,
        model_card,
        resolve_device,
        run_fingerprint,
        run_next_line,
    )

    token_dir, meta = _token_dir(lake)
    device = resolve_device(config.device)
    model_config = EncoderDecoderConfig(
        vocab_size=int(meta["vocab_size"]),
        pad_id=int(meta["pad_id"]),
        bos_id=int(meta["bos_id"]),
        eos_id=int(meta["eos_id"]),
        max_source_len=config.max_line_tokens,
        max_target_len=config.max_line_tokens + 1,  # + the start token
        n_encoder_layers=config.n_encoder_layers,
        n_decoder_layers=config.n_decoder_layers,
        n_head=config.n_head,
        d_model=config.d_model,
        dropout=config.dropout,
        norm_first=config.norm_first,
    )
    loop = config.loop_config()
    torch.manual_seed(config.seed)
    model = EncoderDecoderTransformer(model_config).to(device)
    fingerprint = run_fingerprint(model_config.to_dict(), asdict(loop), config.batch_size, meta["splits"])
    checkpoints = checkpoint_folder(lake.checkpoint_dir("next_line_transformer"), fingerprint)
    with config.threads():
        run = run_next_line(
            model, token_dir, loop, config.batch_size, config.n_examples, checkpoints,
            _log_fn(context, loop.max_steps, "next_line_transformer"),
        )  # fmt: skip
    folder = lake.model_dir("next_line_transformer")
    card = model_card(
        "next_line_transformer",
        "An encoder–decoder Transformer that writes the next line of a poem given the current line "
        "(generate() returns only the new line's tokens).",
        model_config.to_dict(),
        run.metrics(),
    )
    generation_defaults = {
        "bos_token_id": model_config.bos_id,
        "eos_token_id": model_config.eos_id,
        "pad_token_id": model_config.pad_id,
        "do_sample": False,
        "max_new_tokens": config.max_line_tokens,
    }
    save_scratch_model(
        folder, model.cpu(), meta["tokenizer_dir"], generation_defaults, card, {"metrics.json": run.metrics()}
    )
    plot = save_figure(
        loss_curve_figure({"encoder-decoder": run.train.history}, "next_line_transformer loss"),
        lake.reports_dir() / "next_line_transformer_loss.png",
    )
    if not config.keep_checkpoint:
        shutil.rmtree(checkpoints, ignore_errors=True)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(folder)),
            "val_loss": round(run.val_loss, 4),
            "val_perplexity": round(run.val_perplexity, 2),
            "train_pairs": run.n_train_pairs,
            "val_pairs": run.n_val_pairs,
            "parameters": run.n_parameters,
            "tokens_per_second": round(run.train.tokens_per_second, 1),
            "train_seconds": round(run.train_seconds, 1),
            "loss_curves": plot,
            "examples": dataframe_markdown(pd.DataFrame(run.examples), max_rows=config.n_examples),
            "notes": "; ".join(run.notes) or "none",
        }
    )


@dg.asset(group_name=GROUP, deps=["token_arrays", "scratch_transformer"], kinds={"pytorch", "safetensors"})
def rnn_baselines(
    context: dg.AssetExecutionContext, config: RNNBaselinesConfig, lake: DataLake
) -> dg.MaterializeResult:
    """RNN, LSTM and GRU language models on the same data and token budget, compared with the transformer."""
    import pandas as pd
    import torch

    from genai_assets.defs._metadata import dataframe_markdown
    from genai_assets.models.loading import save_scratch_model
    from genai_assets.models.rnn import RNNConfig, RNNLanguageModel
    from genai_assets.training.scratch_runs import (
        checkpoint_folder,
        comparison_figure,
        loss_curve_figure,
        model_card,
        resolve_device,
        run_fingerprint,
        run_language_model,
    )

    unknown = sorted(set(config.kinds) - set(RNN_BASELINE_KINDS))
    if unknown or not config.kinds:
        raise ValueError(
            f"kinds must be a non-empty subset of {list(RNN_BASELINE_KINDS)}, got {config.kinds}."
        )
    token_dir, meta = _token_dir(lake)
    device = resolve_device(config.device)
    loop = config.loop_config()
    rows, histories, summary = [], {}, {}
    for kind in config.kinds:
        rnn_config = RNNConfig(
            kind=kind,
            vocab_size=int(meta["vocab_size"]),
            n_embd=config.n_embd,
            hidden_size=config.hidden_size,
            n_layer=config.n_layer,
            dropout=config.dropout,
        )
        torch.manual_seed(config.seed)
        model = RNNLanguageModel(rnn_config).to(device)
        name = f"rnn_{kind}"
        fingerprint = run_fingerprint(
            rnn_config.to_dict(), asdict(loop), config.batch_size, config.block_size, meta["splits"]
        )
        checkpoints = checkpoint_folder(lake.checkpoint_dir("rnn_baselines") / kind, fingerprint)
        with config.threads():
            run = run_language_model(
                model, token_dir, loop, config.block_size, config.batch_size, _sampling(config), checkpoints,
                _log_fn(context, loop.max_steps, name),
            )  # fmt: skip
        folder = lake.model_dir(name)
        card = model_card(
            name,
            f"A {kind.upper()} language model, baseline for the scratch transformer.",
            rnn_config.to_dict(),
            run.metrics(),
        )
        save_scratch_model(
            folder,
            model.cpu(),
            meta["tokenizer_dir"],
            _generation_defaults(meta, config),
            card,
            {"metrics.json": run.metrics()},
        )
        if not config.keep_checkpoint:
            shutil.rmtree(checkpoints, ignore_errors=True)
        histories[kind.upper()] = run.train.history
        summary[kind] = {key: value for key, value in run.metrics().items() if key not in ("history",)}
        summary[kind]["path"] = str(folder)
        rows.append({"model": kind.upper(), **_comparison_row(run.metrics())})

    transformer_metrics_path = lake.model_dir("scratch_transformer") / "metrics.json"
    transformer = None
    if transformer_metrics_path.is_file():
        transformer = json.loads(transformer_metrics_path.read_text(encoding="utf-8"))
        budget = max(summary[kind]["tokens_seen"] for kind in config.kinds)
        rows.extend(_transformer_rows(transformer, budget))
        histories["Transformer"] = transformer["history"]
    else:
        context.log.warning(
            f"{transformer_metrics_path} not found: comparing the RNNs among themselves only."
        )
    best = min(config.kinds, key=lambda kind: summary[kind]["val_loss"])
    record = {
        "best": best,
        "best_dir": summary[best]["path"],
        "selection": "lowest validation loss over the whole val split",
        "budget": f"{loop.max_steps} steps x {config.batch_size} x {config.block_size} tokens per model",
        "models": summary,
        "transformer": None if transformer is None else _comparison_row(transformer),
        "comparison": rows,
    }
    atomic_write_text(
        lake.model_dir("rnn_baselines").with_suffix(".json"), json.dumps(record, indent=2, default=float)
    )
    table = pd.DataFrame(rows)
    curves = save_figure(
        loss_curve_figure(histories, "RNN baselines vs transformer"),
        lake.reports_dir() / "rnn_baselines_loss.png",
    )
    bars = save_figure(comparison_figure(table), lake.reports_dir() / "rnn_baselines_comparison.png")
    return dg.MaterializeResult(
        metadata={
            "best": best,
            "best_path": dg.MetadataValue.path(summary[best]["path"]),
            "comparison": dataframe_markdown(table, max_rows=10),
            "loss_curves": curves,
            "comparison_plot": bars,
            **{f"{kind}_val_loss": round(summary[kind]["val_loss"], 4) for kind in config.kinds},
            "samples_best": dg.MetadataValue.md(_samples_markdown(summary[best]["samples"])),
        }
    )


def _transformer_rows(metrics: dict, tokens_budget: int) -> list[dict]:
    """The transformer at the RNNs' token budget (its last full-val evaluation within it) and at the end.

    The intermediate row is only exact when the transformer evaluated on the whole val split at that
    step (``eval_batches=0``, ``eval_every`` dividing the RNNs' step count — the cpu defaults).
    """
    rows = []
    within = [row for row in metrics["history"] if "val_loss" in row and row["tokens"] <= tokens_budget]
    final = _comparison_row(metrics)
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


def _comparison_row(metrics: dict) -> dict:
    return {
        "val_loss": round(metrics["val_loss"], 4),
        "val_perplexity": round(metrics["val_perplexity"], 2),
        "val_bpc": round(metrics["val_bpc"], 4),
        "parameters": metrics["n_parameters"],
        "tokens_seen": metrics["tokens_seen"],
        "train_seconds": round(metrics["train_seconds"], 1),
        "tokens_per_second": round(metrics["tokens_per_second"], 1),
    }


defs = dg.Definitions(assets=[scratch_transformer, next_line_transformer, rnn_baselines])

PRESETS = {
    "tiny": {
        "scratch_transformer": {
            "config": {
                "max_steps": 6, "batch_size": 4, "block_size": 32, "n_layer": 2, "n_head": 2, "n_embd": 64,
                "dropout": 0.0, "warmup_steps": 2, "eval_every": 3, "eval_batches": 2, "checkpoint_every": 3,
                "sample_max_new_tokens": 12, "sample_prompts": ["", "The moon"],
            }
        },
        "next_line_transformer": {
            "config": {
                "max_steps": 6, "batch_size": 8, "n_encoder_layers": 1, "n_decoder_layers": 1, "n_head": 2,
                "d_model": 32, "dropout": 0.0, "warmup_steps": 2, "eval_every": 3, "eval_batches": 2,
                "checkpoint_every": 3, "max_line_tokens": 16, "n_examples": 2,
            }
        },
        "rnn_baselines": {
            "config": {
                "max_steps": 6, "batch_size": 4, "block_size": 32, "n_embd": 32, "hidden_size": 48, "dropout": 0.0,
                "warmup_steps": 2, "eval_every": 3, "eval_batches": 2, "checkpoint_every": 3,
                "sample_max_new_tokens": 12, "sample_prompts": ["", "The moon"], "num_threads": 1,
            }
        },
    },
    "gpu": {
        "scratch_transformer": {
            "config": {
                "max_steps": 5000, "batch_size": 64, "block_size": 256, "n_layer": 6, "n_head": 6, "n_embd": 384,
                "dropout": 0.2, "learning_rate": 1e-3, "warmup_steps": 200, "eval_every": 250, "eval_batches": 50,
                "checkpoint_every": 500,
            }
        },
        "next_line_transformer": {
            "config": {
                "max_steps": 4000, "batch_size": 128, "n_encoder_layers": 4, "n_decoder_layers": 4, "n_head": 8,
                "d_model": 256, "dropout": 0.2, "warmup_steps": 200, "eval_every": 250, "checkpoint_every": 500,
            }
        },
        "rnn_baselines": {
            "config": {
                "max_steps": 5000, "batch_size": 64, "block_size": 256, "n_embd": 384, "hidden_size": 768,
                "n_layer": 2, "dropout": 0.2, "learning_rate": 2e-3, "warmup_steps": 200, "eval_every": 250,
                "eval_batches": 50, "checkpoint_every": 500,
            }
        },
    },
}  # fmt: skip
