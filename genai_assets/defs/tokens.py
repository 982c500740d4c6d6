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
import time

import dagster as dg
import pandas as pd

from genai_assets.defs._config import asset_presets, stage_config
from genai_assets.defs._metadata import dataframe_markdown, save_figure
from genai_assets.defs._resources import DataLake
from genai_assets.lake import atomic_directory
from genai_assets.plotting import new_figure
from genai_assets.text.tokenization import (
    TOKEN_ARRAYS_PRESETS,
    TOKENIZER_PRESETS,
    TokenArraysConfig,
    TokenizerTrainingConfig,
)

WORDLEVEL_TOKENIZER_ASSET_DIR = "poem_tokenizer_wordlevel"


PoemTokenizerConfig = stage_config(TokenizerTrainingConfig)
TokenArraysRunConfig = stage_config(TokenArraysConfig)


@dg.asset(group_name="tokens", kinds={"huggingface"}, config_schema=PoemTokenizerConfig.config_schema())
def poem_tokenizer(
    context: dg.AssetExecutionContext,
    lake: DataLake,
    cleansed_poems: pd.DataFrame,
) -> dg.MaterializeResult:
    """A byte-level BPE tokenizer trained on the train split, compared with word-level and GPT-2."""
    from genai_assets.text.token_arrays import check_poem_table
    from genai_assets.text.tokenization import (
        compare_tokenizers,
        load_gpt2_tokenizer,
        rare_words,
        train_bpe_tokenizer,
        train_wordlevel_tokenizer,
    )

    training = PoemTokenizerConfig.from_context(context).to_library()
    poems = check_poem_table(cleansed_poems)
    train_texts = poems.loc[poems["split"] == "train", "text"].tolist()
    eval_split = "val" if (poems["split"] == "val").any() else "train"
    eval_texts = poems.loc[poems["split"] == eval_split, "text"].tolist()

    started = time.perf_counter()
    bpe = train_bpe_tokenizer(train_texts, training)
    wordlevel = train_wordlevel_tokenizer(train_texts, training)
    train_seconds = time.perf_counter() - started
    context.log.info(
        f"Trained BPE ({len(bpe)} ids) and word-level ({len(wordlevel)} ids) in {train_seconds:.1f} s"
    )

    target = lake.model_dir("poem_tokenizer")
    with atomic_directory(target) as staging:
        bpe.save_pretrained(staging)
    wordlevel_target = lake.model_dir(WORDLEVEL_TOKENIZER_ASSET_DIR)
    with atomic_directory(wordlevel_target) as staging:
        wordlevel.save_pretrained(staging)

    examples = rare_words(train_texts, eval_texts, count=training.n_example_words)
    stats, segmentations = compare_tokenizers(
        {"poem BPE": bpe, "word-level": wordlevel, "GPT-2": load_gpt2_tokenizer()}, eval_texts, examples
    )
    stats_by_name = {row["tokenizer"]: row for row in stats}
    notes = [] if eval_split == "val" else ["val split is empty: the comparison uses the train split"]
    if len(bpe) < training.vocab_size:
        notes.append(f"the corpus supported only {len(bpe)} of {training.vocab_size} requested BPE ids")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(target)),
            "wordlevel_path": dg.MetadataValue.path(str(wordlevel_target)),
            "vocab_size": len(bpe),
            "special_token_ids": dg.MetadataValue.json(
                {"pad": bpe.pad_token_id, "bos": bpe.bos_token_id, "eos": bpe.eos_token_id}
            ),
            "train_poems": len(train_texts),
            "train_seconds": round(train_seconds, 2),
            "comparison_split": eval_split,
            "chars_per_token_bpe": stats_by_name["poem BPE"]["chars_per_token"],
            "chars_per_token_gpt2": stats_by_name["GPT-2"]["chars_per_token"],
            "chars_per_token_wordlevel": stats_by_name["word-level"]["chars_per_token"],
            "unknown_rate_wordlevel": stats_by_name["word-level"]["unknown_rate"],
            "comparison": dataframe_markdown(pd.DataFrame(stats)),
            "rare_word_segmentations": dataframe_markdown(pd.DataFrame(segmentations), max_chars=200)
            if segmentations
            else dg.MetadataValue.md("(no word of the comparison split is unseen in train)"),
            "notes": dg.MetadataValue.json(notes),
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
    import numpy as np
    from transformers import AutoTokenizer

    from genai_assets.text.datasets import SPLITS
    from genai_assets.text.token_arrays import check_poem_table, encode_splits, write_token_arrays

    tokenizer_dir = lake.model_dir("poem_tokenizer")
    if not (tokenizer_dir / "tokenizer.json").exists():
        raise FileNotFoundError(
            f"No poem tokenizer in {tokenizer_dir}: materialize poem_tokenizer first "
            "(`genai-assets materialize --select poem_tokenizer`)."
        )
    config = TokenArraysRunConfig.from_context(context).to_library()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    poems = check_poem_table(cleansed_poems)

    started = time.perf_counter()
    encoded = encode_splits(tokenizer, poems)
    encode_seconds = time.perf_counter() - started
    n_chars = sum(arrays.n_chars for arrays in encoded.values())
    context.log.info(f"Encoded {n_chars / 1e6:.2f} M characters in {encode_seconds:.2f} s")

    target = lake.path / "token_arrays"
    with atomic_directory(target) as staging:
        meta = write_token_arrays(encoded, staging, tokenizer, tokenizer_dir)

    figure = new_figure(7, 4)
    axes = figure.add_subplot()
    lengths = {split: encoded[split].lengths for split in SPLITS if len(encoded[split].lengths)}
    all_lengths = np.concatenate(list(lengths.values()))
    bins = np.linspace(0, max(int(np.percentile(all_lengths, 99.5)), 2), config.histogram_bins + 1)
    for split, split_lengths in lengths.items():
        axes.hist(np.minimum(split_lengths, bins[-1]), bins=bins, density=True, alpha=0.5, label=split)
    axes.set(xlabel="tokens per poem (incl. bos/eos; last bin = 99.5th percentile and up)", ylabel="density")
    axes.set_title("Poem lengths in poem-tokenizer tokens")
    axes.legend()
    plot = save_figure(figure, lake.reports_dir() / "token_arrays_poem_lengths.png")

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
        "poem_length_histogram": plot,
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
