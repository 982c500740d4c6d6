"""Stage "tokens": the poem tokenizer (byte-level BPE + comparisons) and the token arrays.

Assets (group ``tokens``):

* ``poem_tokenizer`` → ``<lake>/models/poem_tokenizer/`` (Hugging Face tokenizer folder:
  ``AutoTokenizer.from_pretrained`` loads it) and the word-level baseline in
  ``<lake>/models/poem_tokenizer_wordlevel/``. Metadata compares both with GPT-2's tokenizer.
* ``token_arrays`` → ``<lake>/token_arrays/`` (``{split}.parquet``, ``{split}.bin``,
  ``meta.json``; contract 4), read with :mod:`genai_assets.text.datasets`.

Heavy libraries are imported inside the asset bodies (``genai_assets.definitions`` stays light).
"""

import json

import dagster as dg
import pandas as pd

from genai_assets.defs._config import asset_presets, stage_config
from genai_assets.defs._metadata import dataframe_markdown, image_markdown
from genai_assets.defs._resources import DataLake
from genai_assets.defs._stage_call import run_stage
from genai_assets.text.tokenization import (
    TOKEN_ARRAYS_PRESETS,
    TOKENIZER_PRESETS,
    TokenArraysConfig,
    TokenizerTrainingConfig,
)

PoemTokenizerConfig = stage_config(TokenizerTrainingConfig)
TokenArraysRunConfig = stage_config(TokenArraysConfig)


@dg.asset(group_name="tokens", kinds={"huggingface"}, config_schema=PoemTokenizerConfig.config_schema())
def poem_tokenizer(
    context: dg.AssetExecutionContext,
    lake: DataLake,
    cleansed_poems: pd.DataFrame,
) -> dg.MaterializeResult:
    """A byte-level BPE tokenizer trained on the train split, compared with word-level and GPT-2."""
    from genai_assets.stages.tokens import run_poem_tokenizer

    result = run_stage(run_poem_tokenizer, PoemTokenizerConfig, context, lake, cleansed_poems)
    bpe, segmentations = result.bpe, result.segmentations
    stats_by_name = {row["tokenizer"]: row for row in result.stats}
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(result.folder)),
            "wordlevel_path": dg.MetadataValue.path(str(result.wordlevel_folder)),
            "vocab_size": len(bpe),
            "special_token_ids": dg.MetadataValue.json(
                {"pad": bpe.pad_token_id, "bos": bpe.bos_token_id, "eos": bpe.eos_token_id}
            ),
            "train_poems": result.train_poems,
            "train_seconds": round(result.train_seconds, 2),
            "comparison_split": result.comparison_split,
            "chars_per_token_bpe": stats_by_name["poem BPE"]["chars_per_token"],
            "chars_per_token_gpt2": stats_by_name["GPT-2"]["chars_per_token"],
            "chars_per_token_wordlevel": stats_by_name["word-level"]["chars_per_token"],
            "unknown_rate_wordlevel": stats_by_name["word-level"]["unknown_rate"],
            "comparison": dataframe_markdown(pd.DataFrame(result.stats)),
            "rare_word_segmentations": dataframe_markdown(pd.DataFrame(segmentations), max_chars=200)
            if segmentations
            else dg.MetadataValue.md("(no word of the comparison split is unseen in train)"),
            "notes": dg.MetadataValue.json(result.notes),
        }
    )


@dg.asset(
    group_name="tokens",
    deps=[poem_tokenizer],
    kinds={"numpy", "parquet"},
    config_schema=TokenArraysRunConfig.config_schema(),
)
def token_arrays(
    context: dg.AssetExecutionContext, lake: DataLake, cleansed_poems: pd.DataFrame
) -> dg.MaterializeResult:
    """The corpus encoded per split with the poem tokenizer: Parquet per poem + flat ``.bin`` streams."""
    from genai_assets.stages.tokens import run_token_arrays

    result = run_stage(run_token_arrays, TokenArraysRunConfig, context, lake, cleansed_poems)
    meta, target, encode_seconds, n_chars = result.meta, result.folder, result.encode_seconds, result.n_chars
    split_table = pd.DataFrame(
        [
            {
                "split": split,
                "poems": stats["n_poems"],
                "tokens": stats["n_tokens"],
                "chars": stats["n_chars"],
                "mean_tokens_per_poem": round(stats["n_tokens"] / stats["n_poems"], 1)
                if stats["n_poems"]
                else 0,
                "chars_per_token": round(stats["n_chars"] / stats["n_tokens"], 3) if stats["n_tokens"] else 0,
            }
            for split, stats in meta["splits"].items()
        ]
    )
    metadata = {
        "path": dg.MetadataValue.path(str(target)),
        "dtype": meta["dtype"],
        "vocab_size": meta["vocab_size"],
        "encode_seconds": round(encode_seconds, 3),
        "encode_mb_per_s": round(n_chars / 1e6 / max(encode_seconds, 1e-9), 2),
        "splits": dataframe_markdown(split_table),
        "poem_length_histogram": image_markdown(result.plot_path),
        "meta_json": dg.MetadataValue.json(json.loads((target / "meta.json").read_text())),
    }
    for split, stats in meta["splits"].items():
        metadata[f"{split}_tokens"] = stats["n_tokens"]
        metadata[f"{split}_poems"] = stats["n_poems"]
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(asset=token_arrays, blocking=True)
def token_arrays_splits_are_disjoint(lake: DataLake) -> dg.AssetCheckResult:
    """No poem appears in two splits, and each ``.bin`` holds exactly its Parquet rows' tokens."""
    from genai_assets.text.datasets import SPLITS, load_poem_sequences, load_token_stream

    folder = lake.path / "token_arrays"
    seen: dict[str, str] = {}
    leaks, size_mismatches = [], []
    for split in SPLITS:
        poem_ids, sequences = load_poem_sequences(folder, split)
        for poem_id in poem_ids:
            if poem_id in seen:
                leaks.append(f"{poem_id} in {seen[poem_id]} and {split}")
            seen[poem_id] = split
        if sum(len(sequence) for sequence in sequences) != len(load_token_stream(folder, split)):
            size_mismatches.append(split)
    return dg.AssetCheckResult(
        passed=not leaks and not size_mismatches,
        metadata={"leaks": dg.MetadataValue.json(leaks[:20]), "bin_size_mismatches": size_mismatches},
    )


PRESETS = asset_presets({"poem_tokenizer": TOKENIZER_PRESETS, "token_arrays": TOKEN_ARRAYS_PRESETS})

defs = dg.Definitions(assets=[poem_tokenizer, token_arrays], asset_checks=[token_arrays_splits_are_disjoint])
