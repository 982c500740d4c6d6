"""Stage "finetune": a pre-trained causal LM fine-tuned on the poems, and samples from it.

Assets (group ``finetune``):

* ``base_lm`` → ``<lake>/models/base_lm/``: the resolved base model (``base_info.json``; for the
  packaged SmolLM2 and the tiny test GPT-2 also the converted HF folder, built once and reused).
* ``finetune_dataset`` → ``<lake>/datasets/finetune_dataset/``: a Hugging Face ``DatasetDict``
  (``save_to_disk``; splits train/val/test of ``poem_id, input_ids``) of the cleansed poems in the
  base tokenizer, with ``<|startofpoem|>`` … eos markers (``genai_assets.finetune.data``);
  ``finetuned_lm`` reads it back with ``load_from_disk``.
* ``finetuned_lm`` → ``<lake>/models/finetuned_lm/`` (config, safetensors, tokenizer,
  ``generation_config.json``, ``metrics.json``, README stub); resumable checkpoints in
  ``<lake>/checkpoints/finetuned_lm/``; loss plot in ``<lake>/reports/finetuned_lm_loss.png``.
* ``generated_poems`` (table): ``model, prompt, sample_index, text, params`` for the fine-tuned
  model and, side by side, the base.

Heavy libraries are imported inside the asset bodies (``genai_assets.definitions`` stays light).
"""

import json
import time

import dagster as dg
import pandas as pd
from pydantic import Field

from genai_assets.defs._metadata import dataframe_markdown, save_figure
from genai_assets.defs._resources import DataLake
from genai_assets.lake import atomic_directory
from genai_assets.plotting import new_figure

GROUP = "finetune"
DEFAULT_PROMPTS = ["The rose", "Upon the sea at night", "O gentle love"]


class BaseLMConfig(dg.Config):
    """Which pre-trained causal LM to fine-tune."""

    base_model: str = Field(
        "smollm2-135m",
        description="'smollm2-135m' (packaged, offline default), 'tiny-gpt2-random' (tests), a local "
        "model folder, or a Hub id such as 'openai-community/gpt2' (needs the Hub or a local HF cache).",
    )


class FinetunedLMConfig(dg.Config):
    """Fine-tuning hyperparameters (defaults: the CPU demo, a few minutes on 2 cores)."""

    collation: str = Field("packing", description="'packing' (full blocks) or 'padding' (one poem per row).")
    block_size: int = Field(128, description="Tokens per training row.")
    batch_size: int = Field(4, description="Rows per micro-batch.")
    epochs: int = Field(1, description="Passes over the train split (capped by max_steps).")
    max_steps: int = Field(40, description="Cap on optimizer steps; 0 = no cap.")
    learning_rate: float = Field(5e-4, description="AdamW peak learning rate (seed: 5e-4).")
    adam_eps: float = Field(1e-8, description="AdamW epsilon (seed: 1e-8).")
    weight_decay: float = Field(0.01, description="AdamW weight decay on weight matrices.")
    warmup_steps: int = Field(5, description="Linear warm-up steps (seed: 100), capped at the run length.")
    grad_accum_steps: int = Field(1, description="Micro-batches per optimizer step.")
    grad_clip: float = Field(1.0, description="Max global gradient norm; 0 disables.")
    eval_every: int = Field(0, description="Steps between validation passes; 0 = once per epoch + end.")
    eval_batches: int = Field(8, description="Validation batches per pass; 0 = all.")
    sample_every: int = Field(20, description="Steps between logged sample poems; 0 = never.")
    sample_max_new_tokens: int = Field(40, description="Length of the logged samples in tokens.")
    checkpoint_every: int = Field(20, description="Steps between resumable checkpoints; 0 = end only.")
    resume: bool = Field(True, description="Resume from a compatible checkpoint if one exists.")
    lora: bool = Field(
        False, description="Train LoRA adapters (peft) instead of all weights; merged on save."
    )
    lora_r: int = Field(8, description="LoRA rank.")
    lora_alpha: int = Field(16, description="LoRA alpha (scale = alpha / r).")
    lora_dropout: float = Field(0.05, description="LoRA dropout.")
    lora_target_modules: list[str] = Field([], description="Modules to adapt; empty = peft's default.")
    perplexity_max_blocks: int = Field(16, description="Test blocks scored for perplexity; 0 = all.")
    seed: int = Field(42, description="Seed of data order, dropout and samples.")
    sampling_temperature: float = Field(0.9, description="Saved generation default: temperature.")
    sampling_top_k: int = Field(50, description="Saved generation default: top-k (0 = off).")
    sampling_top_p: float = Field(0.95, description="Saved generation default: nucleus mass.")
    sampling_repetition_penalty: float = Field(1.1, description="Saved generation default.")
    sampling_no_repeat_ngram_size: int = Field(0, description="Saved generation default (0 = off).")
    sampling_max_new_tokens: int = Field(80, description="Saved generation default: new tokens.")


class GeneratedPoemsConfig(dg.Config):
    """Sample poems from the fine-tuned model (and the base, for comparison)."""

    prompts: list[str] = Field(DEFAULT_PROMPTS, description="First words of each poem.")
    num_samples: int = Field(1, description="Samples per prompt and model.")
    max_new_tokens: int = Field(60, description="Tokens generated per sample.")
    temperature: float = Field(0.9, description="Sampling temperature (> 0).")
    top_k: int = Field(50, description="Top-k filter (0 = off).")
    top_p: float = Field(0.95, description="Nucleus filter mass in (0, 1].")
    repetition_penalty: float = Field(1.1, description="Penalty on repeated tokens (1 = none).")
    no_repeat_ngram_size: int = Field(0, description="Never repeat an n-gram of this size (0 = off).")
    do_sample: bool = Field(True, description="Sample (True) or greedy decoding (False).")
    preset: str = Field(
        "",
        description="Named decoding preset ('course': temperature 1.0, top-k 50, top-p 0.95, repetition "
        "penalty 1.2, no repeated 2-grams, 3 samples per prompt); its values replace the fields above. "
        "Empty = use the fields.",
    )
    include_base: bool = Field(True, description="Also generate from base_lm, side by side.")
    seed: int = Field(1234, description="Seed of the sampling (reproducible table).")


@dg.asset(group_name=GROUP, kinds={"huggingface"})
def base_lm(context: dg.AssetExecutionContext, config: BaseLMConfig, lake: DataLake) -> dg.MaterializeResult:
    """The pre-trained base model, resolved offline-first and (for the packaged GGUF) converted once."""
    from genai_assets.finetune.base_model import prepare_base_lm

    started = time.perf_counter()
    info = prepare_base_lm(config.base_model, lake.model_dir("base_lm"))
    seconds = time.perf_counter() - started
    context.log.info(f"base_lm: {info['name']} ({info['kind']}) in {seconds:.1f}s, cached={info['cached']}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(info["model_dir"]),
            "base_model": info["name"],
            "kind": info["kind"],
            "revision": info["revision"],
            "license": info["license"],
            "architecture": info["architecture"],
            "n_parameters": dg.MetadataValue.int(int(info["n_parameters"] or 0)),
            "vocab_size": dg.MetadataValue.int(int(info["vocab_size"] or 0)),
            "cached": info["cached"],
            "seconds": dg.MetadataValue.float(round(seconds, 2)),
        }
    )


def finetune_dataset_dir(lake: DataLake):
    """Where ``finetune_dataset`` saves its DatasetDict (swapped in whole, like a model folder)."""
    return lake.folder("datasets") / "finetune_dataset"


@dg.asset(group_name=GROUP, deps=[base_lm], kinds={"huggingface"})
def finetune_dataset(
    context: dg.AssetExecutionContext, lake: DataLake, cleansed_poems: pd.DataFrame
) -> dg.MaterializeResult:
    """The cleansed splits tokenized with the base model's tokenizer, with poem start/end markers."""
    from transformers import AutoTokenizer

    from genai_assets.finetune.base_model import base_model_dir, read_base_info
    from genai_assets.finetune.data import build_finetune_dataset, poem_start_id, prepare_tokenizer

    base_lm_dir = lake.model_dir("base_lm")
    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir(base_lm_dir)))
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
    context.log.info(f"finetune_dataset: {per_split} in {time.perf_counter() - started:.1f}s -> {folder}")
    preview = dataset["train"].select(range(min(5, len(dataset["train"])))).to_pandas()
    preview["input_ids"] = preview["input_ids"].map(lambda ids: str(list(ids[:12])))
    all_lengths = [count for counts in lengths.values() for count in counts]
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(folder)),
            "features": dg.MetadataValue.json(
                {name: str(kind) for name, kind in dataset["train"].features.items()}
            ),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 2)),
            "rows": dg.MetadataValue.int(len(all_lengths)),
            "splits": dg.MetadataValue.json(per_split),
            "tokenizer": dg.MetadataValue.json(
                {
                    "base_model": read_base_info(base_lm_dir)["name"],
                    "class": type(tokenizer).__name__,
                    "vocab_size": len(tokenizer),
                    "added_tokens": added,
                    "poem_start_id": poem_start_id(tokenizer),
                    "eos_id": tokenizer.eos_token_id,
                    "pad_id": tokenizer.pad_token_id,
                }
            ),
            "mean_tokens_per_poem": dg.MetadataValue.float(round(sum(all_lengths) / len(all_lengths), 1)),
            "preview": dataframe_markdown(preview),
        },
    )


@dg.asset(group_name=GROUP, deps=[base_lm, finetune_dataset], kinds={"pytorch", "huggingface"})
def finetuned_lm(
    context: dg.AssetExecutionContext,
    config: FinetunedLMConfig,
    lake: DataLake,
) -> dg.MaterializeResult:
    """The base model fine-tuned on the poems (full or LoRA), saved with tokenizer, sampling defaults, metrics."""
    from genai_assets.finetune.base_model import base_model_dir, read_base_info
    from genai_assets.finetune.train import FinetuneConfig, finetune
    from genai_assets.generation import SamplingConfig

    library_fields = set(FinetuneConfig.__dataclass_fields__)
    values = config.model_dump()
    finetune_config = FinetuneConfig(**{key: value for key, value in values.items() if key in library_fields})
    sampling = SamplingConfig(
        **{key[9:]: value for key, value in values.items() if key.startswith("sampling_")}
    )
    base_lm_dir = lake.model_dir("base_lm")
    out_dir = lake.model_dir("finetuned_lm")

    def log(row: dict) -> None:
        context.log.info(json.dumps(row, default=str))

    started = time.perf_counter()
    with atomic_directory(out_dir) as staging:
        result = finetune(
            base_model_dir(base_lm_dir),
            finetune_dataset_dir(lake),  # load_from_disk (finetune_splits)
            finetune_config,
            staging,
            checkpoint_root=lake.checkpoint_dir("finetuned_lm"),
            base_info={key: value for key, value in read_base_info(base_lm_dir).items() if key != "cached"},
            sampling=sampling,
            log_fn=log,
        )
    seconds = time.perf_counter() - started
    stats = pd.DataFrame(result.training_stats)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(out_dir)),
            "base_model": result.metrics["base_model"].get("name", "?"),
            "steps": dg.MetadataValue.int(result.steps),
            "resumed_from_step": dg.MetadataValue.int(result.resumed_from_step),
            "final_val_loss": dg.MetadataValue.float(float(result.final_val_loss)),
            "base_test_perplexity": dg.MetadataValue.float(float(result.base_test["perplexity"])),
            "finetuned_test_perplexity": dg.MetadataValue.float(float(result.finetuned_test["perplexity"])),
            "test_tokens": dg.MetadataValue.int(int(result.finetuned_test["n_tokens"])),
            "train_tokens_per_second": dg.MetadataValue.float(round(result.tokens_per_second, 1)),
            "n_trainable_parameters": dg.MetadataValue.int(result.n_trainable_parameters),
            "training_stats": dg.MetadataValue.md(stats.to_markdown(index=False)),
            "samples": dg.MetadataValue.json(result.samples),
            "loss_plot": save_figure(
                loss_figure(result.history), lake.reports_dir() / "finetuned_lm_loss.png"
            ),
            "seconds": dg.MetadataValue.float(round(seconds, 1)),
        }
    )


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


@dg.asset_check(asset=finetuned_lm, blocking=False)
def finetuned_lm_beats_base(lake: DataLake) -> dg.AssetCheckResult:
    """Fine-tuning must lower held-out (test split) perplexity below the base model's."""
    metrics = json.loads((lake.model_dir("finetuned_lm") / "metrics.json").read_text())
    base, tuned = metrics["base_test_perplexity"], metrics["finetuned_test_perplexity"]
    return dg.AssetCheckResult(
        passed=bool(tuned < base),
        metadata={"base_test_perplexity": float(base), "finetuned_test_perplexity": float(tuned)},
    )


@dg.asset(group_name=GROUP, deps=[finetuned_lm, base_lm], kinds={"pandas"})
def generated_poems(
    context: dg.AssetExecutionContext, config: GeneratedPoemsConfig, lake: DataLake
) -> dg.Output[pd.DataFrame]:
    """Sample poems for the configured prompts from the fine-tuned model and the base, side by side."""
    from genai_assets.finetune.base_model import base_model_dir
    from genai_assets.generation import SamplingConfig, generate_poems, load_generator
    from genai_assets.generation.presets import sampling_preset

    fields = dict(
        do_sample=config.do_sample,
        top_k=config.top_k,
        top_p=config.top_p,
        temperature=config.temperature,
        repetition_penalty=config.repetition_penalty,
        no_repeat_ngram_size=config.no_repeat_ngram_size,
        num_return_sequences=config.num_samples,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
    )
    # Dagster config cannot tell a default from a typed value, so a preset replaces what it names.
    sampling = SamplingConfig(**{**fields, **(sampling_preset(config.preset) if config.preset else {})})
    models = {"finetuned_lm": lake.model_dir("finetuned_lm")}
    if config.include_base:
        models["base_lm"] = base_model_dir(lake.model_dir("base_lm"))
    rows, started = [], time.perf_counter()
    for model_name, folder in models.items():
        generator = load_generator(folder)
        for sample in generate_poems(generator.model, generator.tokenizer, config.prompts, sampling):
            rows.append({"model": model_name, **sample})
        context.log.info(f"generated_poems: {model_name} done after {time.perf_counter() - started:.1f}s")
    table = pd.DataFrame(rows, columns=["model", "prompt", "sample_index", "text", "params", "n_new_tokens"])
    side_by_side = table.pivot_table(
        index=["prompt", "sample_index"], columns="model", values="text", aggfunc="first"
    )
    return dg.Output(
        table,
        metadata={
            "rows": dg.MetadataValue.int(len(table)),
            "sampling": dg.MetadataValue.json({"preset": config.preset or None, **sampling.to_dict()}),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 1)),
            "side_by_side": dataframe_markdown(side_by_side.reset_index(), max_rows=20, max_chars=300),
        },
    )


PRESETS = {
    "tiny": {
        "base_lm": {"config": {"base_model": "tiny-gpt2-random"}},
        "finetuned_lm": {
            "config": {
                "block_size": 64,
                "batch_size": 4,
                "max_steps": 8,
                "learning_rate": 3e-3,
                "warmup_steps": 1,
                "eval_batches": 2,
                "sample_every": 0,
                "checkpoint_every": 0,
                "perplexity_max_blocks": 4,
                "sampling_max_new_tokens": 20,
            }
        },
        "generated_poems": {"config": {"prompts": ["The rose"], "max_new_tokens": 12}},
    },
    "gpu": {
        "finetuned_lm": {
            "config": {
                "block_size": 512,
                "batch_size": 16,
                "epochs": 3,
                "max_steps": 0,
                "learning_rate": 5e-4,
                "warmup_steps": 100,
                "eval_batches": 0,
                "sample_every": 100,
                "sample_max_new_tokens": 100,
                "checkpoint_every": 200,
                "perplexity_max_blocks": 0,
            }
        },
        "generated_poems": {"config": {"num_samples": 3, "max_new_tokens": 120}},
    },
}

defs = dg.Definitions(
    assets=[base_lm, finetune_dataset, finetuned_lm, generated_poems],
    asset_checks=[finetuned_lm_beats_base],
)
