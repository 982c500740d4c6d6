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

import dagster as dg
import pandas as pd

from genai_assets.defs._config import asset_presets, stage_config
from genai_assets.defs._distributed import TRAINING_OP_TAGS, TRAINING_POOL, DistributedRunConfig
from genai_assets.defs._metadata import dataframe_markdown, image_markdown
from genai_assets.defs._resources import DataLake
from genai_assets.defs._stage_call import run_stage
from genai_assets.finetune.base_model import BASE_MODEL_PRESETS, BaseModelConfig, read_base_info
from genai_assets.finetune.data import poem_start_id
from genai_assets.finetune.poem_samples import GENERATED_POEMS_PRESETS
from genai_assets.finetune.poem_samples import GeneratedPoemsConfig as GeneratedPoemsSettings
from genai_assets.finetune.train import FINETUNE_PRESETS, FinetuneConfig

GROUP = "finetune"


BaseLMConfig = stage_config(BaseModelConfig)
# Its saved sampling defaults are the nested `sampling`; `distributed` launches the run with torchrun.
FinetunedLMConfig = stage_config(
    FinetuneConfig,
    distributed=(
        DistributedRunConfig | None,
        None,
        "Fine-tune with torchrun (DistributedDataParallel) through Dagster Pipes, e.g. {nproc_per_node: 2}; "
        "batch_size stays the global micro-batch. Unset = train in this process.",
    ),
)


GeneratedPoemsConfig = stage_config(GeneratedPoemsSettings)


@dg.asset(group_name=GROUP, kinds={"huggingface"}, config_schema=BaseLMConfig.config_schema())
def base_lm(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """The pre-trained base model, resolved offline-first and (for the packaged GGUF) converted once."""
    from genai_assets.stages.finetune import run_base_lm

    run = run_stage(run_base_lm, BaseLMConfig, context, lake)
    info, seconds = run.info, run.seconds
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


@dg.asset(group_name=GROUP, deps=[base_lm], kinds={"huggingface"})
def finetune_dataset(
    context: dg.AssetExecutionContext, lake: DataLake, cleansed_poems: pd.DataFrame
) -> dg.MaterializeResult:
    """The cleansed splits tokenized with the base model's tokenizer, with poem start/end markers."""
    from genai_assets.stages.finetune import run_finetune_dataset

    result = run_finetune_dataset(lake, context.log.info, cleansed_poems)
    dataset, tokenizer, lengths, folder = result.dataset, result.tokenizer, result.lengths, result.folder
    preview = dataset["train"].select(range(min(5, len(dataset["train"])))).to_pandas()
    preview["input_ids"] = preview["input_ids"].map(lambda ids: str(list(ids[:12])))
    all_lengths = [count for counts in lengths.values() for count in counts]
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(folder)),
            "features": dg.MetadataValue.json(
                {name: str(kind) for name, kind in dataset["train"].features.items()}
            ),
            "seconds": dg.MetadataValue.float(round(result.seconds, 2)),
            "rows": dg.MetadataValue.int(len(all_lengths)),
            "splits": dg.MetadataValue.json(result.per_split),
            "tokenizer": dg.MetadataValue.json(
                {
                    "base_model": read_base_info(lake.model_dir("base_lm"))["name"],
                    "class": type(tokenizer).__name__,
                    "vocab_size": len(tokenizer),
                    "added_tokens": result.added_tokens,
                    "poem_start_id": poem_start_id(tokenizer),
                    "eos_id": tokenizer.eos_token_id,
                    "pad_id": tokenizer.pad_token_id,
                }
            ),
            "mean_tokens_per_poem": dg.MetadataValue.float(round(sum(all_lengths) / len(all_lengths), 1)),
            "preview": dataframe_markdown(preview),
        },
    )


def _finetune_metadata(run) -> dict:
    """What ``finetuned_lm`` reports (``run``: a ``stages.finetune.FinetunedLMResult``)."""
    result, bits, reported = run.result, run.bits_per_char, run.reported
    stats = pd.DataFrame(result.training_stats)
    return {
        "path": dg.MetadataValue.path(str(run.folder)),
        "base_model": result.metrics["base_model"].get("name", "?"),
        "steps": dg.MetadataValue.int(result.steps),
        "resumed_from_step": dg.MetadataValue.int(result.resumed_from_step),
        "final_val_loss": dg.MetadataValue.float(float(result.final_val_loss)),
        "base_test_perplexity": dg.MetadataValue.float(float(result.base_test["perplexity"])),
        "finetuned_test_perplexity": dg.MetadataValue.float(float(result.finetuned_test["perplexity"])),
        "test_tokens": dg.MetadataValue.int(int(result.finetuned_test["n_tokens"])),
        "train_tokens_per_second": dg.MetadataValue.float(round(result.tokens_per_second, 1)),
        "mfu": dg.MetadataValue.float(round(float(result.throughput.get("mfu") or 0.0), 4)),
        "precision": str(result.throughput.get("precision", "")),
        "n_trainable_parameters": dg.MetadataValue.int(result.n_trainable_parameters),
        "bits_per_char_in_domain": dg.MetadataValue.json(
            {name: bits[name]["in_domain"] for name in ("base", "finetuned", "change")}
        ),
        "bits_per_char_out_of_domain": dg.MetadataValue.json(
            {name: bits[name]["ood"] for name in ("base", "finetuned", "change")}
        ),
        "training_stats": dg.MetadataValue.md(stats.to_markdown(index=False)),
        "samples": dg.MetadataValue.json(result.samples),
        "loss_plot": image_markdown(run.plot_path),
        "seconds": dg.MetadataValue.float(round(run.seconds, 1)),
        **{key: reported[key] for key in ("world_size", "backend") if key in reported},
    }


@dg.asset(
    group_name=GROUP,
    deps=[base_lm, finetune_dataset],
    kinds={"pytorch", "huggingface"},
    config_schema=FinetunedLMConfig.config_schema(),
    pool=TRAINING_POOL,
    op_tags=TRAINING_OP_TAGS,
)
def finetuned_lm(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """The base model fine-tuned on the poems (full or LoRA), saved with tokenizer, sampling defaults, metrics."""
    from genai_assets.stages.finetune import run_finetuned_lm

    run_config = FinetunedLMConfig.from_context(context)
    trainer = None
    if run_config.distributed is not None:
        from genai_assets.defs._distributed import finetune_distributed

        launch, work_dir = run_config.distributed.to_library(), lake.checkpoint_dir("finetuned_lm_torchrun")

        def trainer(**spec_fields):
            return finetune_distributed(context, launch, work_dir, **spec_fields)

    run = run_finetuned_lm(run_config.to_library(), lake, context.log.info, trainer=trainer)
    return dg.MaterializeResult(metadata=_finetune_metadata(run))


@dg.asset_check(asset=finetuned_lm, blocking=False)
def finetuned_lm_beats_base(lake: DataLake) -> dg.AssetCheckResult:
    """Fine-tuning must lower held-out (test split) perplexity below the base model's."""
    metrics = json.loads((lake.model_dir("finetuned_lm") / "metrics.json").read_text())
    base, tuned = metrics["base_test_perplexity"], metrics["finetuned_test_perplexity"]
    return dg.AssetCheckResult(
        passed=bool(tuned < base),
        metadata={"base_test_perplexity": float(base), "finetuned_test_perplexity": float(tuned)},
    )


@dg.asset(
    group_name=GROUP,
    deps=[finetuned_lm, base_lm],
    kinds={"pandas"},
    config_schema=GeneratedPoemsConfig.config_schema(),
)
def generated_poems(context: dg.AssetExecutionContext, lake: DataLake) -> dg.Output[pd.DataFrame]:
    """Sample poems for the configured prompts from the fine-tuned model and the base, side by side."""
    from genai_assets.stages.finetune import run_generated_poems

    config = GeneratedPoemsConfig.from_context(context).to_library()
    run = run_generated_poems(config, lake, context.log.info)
    table, sampling = run.table, run.sampling
    side_by_side = table.pivot_table(
        index=["prompt", "sample_index"], columns="model", values="text", aggfunc="first"
    )
    return dg.Output(
        table,
        metadata={
            "rows": dg.MetadataValue.int(len(table)),
            "sampling": dg.MetadataValue.json({"preset": config.preset or None, **sampling.to_dict()}),
            "seconds": dg.MetadataValue.float(round(run.seconds, 1)),
            "side_by_side": dataframe_markdown(side_by_side.reset_index(), max_rows=20, max_chars=300),
        },
    )


PRESETS = asset_presets(
    {
        "base_lm": BASE_MODEL_PRESETS,
        "finetuned_lm": FINETUNE_PRESETS,
        "generated_poems": GENERATED_POEMS_PRESETS,
    }
)

defs = dg.Definitions(
    assets=[base_lm, finetune_dataset, finetuned_lm, generated_poems],
    asset_checks=[finetuned_lm_beats_base],
)
