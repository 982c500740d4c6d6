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

The work (build → fingerprint → train → card → save → plot → clean up) is in
:mod:`genai_assets.stages.scratch`; the settings are the dataclasses of
:mod:`genai_assets.training.scratch_config`. These bodies only gather config and the lake, call
one function and turn its result into metadata. torch is imported inside the bodies.
"""

import dagster as dg

from genai_assets.defs._config import StageConfig, asset_presets, stage_config
from genai_assets.defs._distributed import TRAINING_OP_TAGS, TRAINING_POOL, DistributedRunConfig
from genai_assets.defs._metadata import dataframe_markdown, image_markdown
from genai_assets.defs._resources import DataLake
from genai_assets.escaping import md_code_span, md_fence
from genai_assets.training.scratch_config import (
    SCRATCH_PRESETS,
    NextLineTransformerConfig,
    RNNBaselinesConfig,
    ScratchTransformerConfig,
)

GROUP = "scratch"

ScratchTransformerRunConfig = stage_config(
    ScratchTransformerConfig,
    distributed=(
        DistributedRunConfig | None,
        None,
        "Train with torchrun (DistributedDataParallel) through Dagster Pipes, e.g. {nproc_per_node: 2}; "
        "batch_size stays the global micro-batch. Unset = train in this process.",
    ),
)
NextLineTransformerRunConfig = stage_config(NextLineTransformerConfig)
RNNBaselinesRunConfig = stage_config(RNNBaselinesConfig)


def _samples_markdown(samples: list[dict]) -> str:
    """Generated text in fences it cannot close, prompts (run config) as escaped code spans."""
    blocks = [
        f"**prompt:** {md_code_span(s['prompt'] or '(none)')}\n\n{md_fence(s['text'])}" for s in samples
    ]
    return "\n".join(blocks)


def _training_asset(deps: list[str], run_config: type[StageConfig]):
    """The decorator of a scratch training asset: in the ``training`` pool with the GPU tags."""
    return dg.asset(
        group_name=GROUP,
        deps=deps,
        kinds={"pytorch", "safetensors"},
        pool=TRAINING_POOL,
        op_tags=TRAINING_OP_TAGS,
        config_schema=run_config.config_schema(),
    )


def _trained_metadata(trained, **specific) -> dict:
    """What every trained scratch model reports (folder, val loss, size, speed, loss plot), its own keys, notes."""
    run = trained.run
    return {
        "path": dg.MetadataValue.path(str(trained.folder)),
        "val_loss": round(run.val_loss, 4),
        "val_perplexity": round(run.val_perplexity, 2),
        "parameters": run.n_parameters,
        "tokens_per_second": round(run.train.tokens_per_second, 1),
        "mfu": round(float(run.throughput.get("mfu") or 0.0), 4),  # vs the measured matmul peak
        "precision": str(run.throughput.get("precision", "")),
        "train_seconds": round(run.train_seconds, 1),
        "loss_curves": image_markdown(trained.plot_path),
        **specific,
        "notes": "; ".join(run.notes) or "none",
    }


@_training_asset(["token_arrays"], ScratchTransformerRunConfig)
def scratch_transformer(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """A decoder-only Transformer LM (GPT) trained from scratch on the poems' token arrays."""
    from genai_assets.defs._distributed import torchrun_trainer
    from genai_assets.stages.scratch import run_scratch_transformer

    run_config = ScratchTransformerRunConfig.from_context(context)
    config = run_config.to_library()
    trainer, reported = None, {}
    if run_config.distributed is not None:
        work_dir = lake.checkpoint_dir("scratch_transformer") / "torchrun"
        trainer = torchrun_trainer(context, run_config.distributed.to_library(), work_dir, reported)
    trained = run_scratch_transformer(config, lake, log=context.log.info, trainer=trainer)
    run = trained.run
    return dg.MaterializeResult(
        metadata={
            **_trained_metadata(
                trained,
                val_bits_per_char=round(run.val_bpc, 4),
                tokens_seen=run.tokens_seen,
                steps=run.train.steps,
                resumed_from_step=run.train.resumed_from_step,
                samples=dg.MetadataValue.md(_samples_markdown(run.samples)),
            ),
            **{key: reported[key] for key in ("world_size", "backend", "worker_device") if key in reported},
        }
    )


@_training_asset(["token_arrays"], NextLineTransformerRunConfig)
def next_line_transformer(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """The encoder–decoder Transformer (§3 of the paper) trained to write a poem's next line."""
    import pandas as pd

    from genai_assets.stages.scratch import run_next_line_transformer

    config = NextLineTransformerRunConfig.from_context(context).to_library()
    trained = run_next_line_transformer(config, lake, log=context.log.info)
    run = trained.run
    return dg.MaterializeResult(
        metadata=_trained_metadata(
            trained,
            train_pairs=run.n_train_pairs,
            val_pairs=run.n_val_pairs,
            examples=dataframe_markdown(pd.DataFrame(run.examples), max_rows=config.n_examples),
        )
    )


@_training_asset(["token_arrays", "scratch_transformer"], RNNBaselinesRunConfig)
def rnn_baselines(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """RNN, LSTM and GRU language models on the same data and token budget, compared with the transformer."""
    from genai_assets.stages.scratch import run_rnn_baselines

    config = RNNBaselinesRunConfig.from_context(context).to_library()
    baselines = run_rnn_baselines(config, lake, log=context.log.info, warn=context.log.warning)
    record = baselines.record
    best = record["best"]
    return dg.MaterializeResult(
        metadata={
            "best": best,
            "best_path": dg.MetadataValue.path(record["best_dir"]),
            "comparison": dataframe_markdown(baselines.table, max_rows=10),
            "loss_curves": image_markdown(baselines.curves_path),
            "comparison_plot": image_markdown(baselines.bars_path),
            **{f"{kind}_val_loss": round(record["models"][kind]["val_loss"], 4) for kind in config.kinds},
            **{
                f"{kind}_mfu": round(float(record["models"][kind].get("mfu") or 0.0), 4)
                for kind in config.kinds
            },
            "samples_best": dg.MetadataValue.md(_samples_markdown(record["models"][best]["samples"])),
        }
    )


PRESETS = asset_presets(SCRATCH_PRESETS)

defs = dg.Definitions(assets=[scratch_transformer, next_line_transformer, rnn_baselines])
