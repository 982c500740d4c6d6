"""Fine-tuning and generation throughput, as ratios measured in one run.

1. Training throughput in real (non-padding) target tokens per second: packing (full blocks,
   the default) vs the seed's per-poem padding to ``block_size``, same model, same poems, same
   number of optimizer steps on the shared training loop. Target: packing >= 2x.
2. Generation tokens per second: the CLI path (``generate_poems`` with a streamer) vs a plain
   ``model.generate`` call with the same greedy settings. Target: no regression (ratio ~1).

    .venv/bin/python benchmarks/bench_finetune.py [--base smollm2-135m|tiny-gpt2-random|FOLDER]
        [--steps 4] [--block-sizes 128 256] [--batch-size 4]

The base is taken from ``<lake>/models/base_lm`` when it holds the requested base, else built
into a temporary folder; poems from ``<lake>/cleansed_poems.parquet`` when present, else 2,000
bundled Gutenberg excerpts with a deterministic split.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def load_poems(lake: Path) -> pd.DataFrame:
    table = lake / "cleansed_poems.parquet"
    if table.is_file():
        return pd.read_parquet(table, columns=["poem_id", "title", "text", "split"])
    from genai_assets.sources.gutenberg import gutenberg_poems

    records = gutenberg_poems(max_excerpts=2000).records
    splits = np.array(["train"] * 18 + ["val", "test"])[np.arange(len(records)) % 20]
    return pd.DataFrame(
        {
            "poem_id": [record["source_key"] for record in records],
            "title": [record.get("title") for record in records],
            "text": [record["text"] for record in records],
            "split": splits,
        }
    )


def base_folder(name: str, lake: Path, scratch: Path) -> Path:
    from genai_assets.finetune.base_model import BASE_INFO_FILE, base_model_dir, prepare_base_lm

    cached = lake / "models" / "base_lm"
    if (cached / BASE_INFO_FILE).is_file() and json.loads((cached / BASE_INFO_FILE).read_text())[
        "name"
    ] == name:
        return base_model_dir(cached)
    info = prepare_base_lm(name, scratch / "base_lm")
    return Path(info["model_dir"])


def training_throughput(
    model, sequences, collation: str, block_size: int, batch_size: int, steps: int
) -> dict:
    """Real target tokens per second over ``steps`` optimizer steps (after one warm-up step)."""
    import copy

    from genai_assets.finetune.data import RowBatches, collate
    from genai_assets.finetune.train import lm_loss
    from genai_assets.training.loop import TrainLoopConfig, train

    model = copy.deepcopy(model)
    pad_id = int(model.config.pad_token_id)
    rows = RowBatches(collate(sequences, collation, block_size, pad_id), batch_size, shuffle=True)
    config = TrainLoopConfig(
        max_steps=steps + 1, learning_rate=1e-5, warmup_steps=0, eval_every=0, eval_batches=1
    )
    result = train(model, rows, rows, config, lm_loss)
    history = result.history
    # Per-step figures, first step dropped (allocator and thread-pool warm-up). The median step time
    # resists the load spikes of a shared machine better than the total.
    step_seconds = np.diff([row["elapsed_s"] for row in history])
    step_tokens = np.diff([row["tokens"] for row in history])
    padded_slots = batch_size * block_size
    return {
        "collation": collation,
        "block_size": block_size,
        "real_tokens_per_s": float(np.mean(step_tokens) / np.median(step_seconds)),
        "real_token_share": float(np.mean(step_tokens) / padded_slots),
        "median_step_s": float(np.median(step_seconds)),
    }


def generation_throughput(folder: Path, max_new_tokens: int, repeats: int) -> dict:
    import torch

    from genai_assets.generation import (
        SamplingConfig,
        encode_prompt,
        generate_poems,
        load_generator,
        stop_token_ids,
    )

    generator = load_generator(folder)
    model, tokenizer = generator.model, generator.tokenizer
    sampling = SamplingConfig(do_sample=False, max_new_tokens=max_new_tokens, repetition_penalty=1.0)
    prompt = "The rose"
    ids = torch.tensor([encode_prompt(tokenizer, prompt)])

    def plain() -> int:
        output = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            repetition_penalty=1.0,
            eos_token_id=stop_token_ids(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            min_new_tokens=max_new_tokens,  # same length for both paths: no early stop
        )
        return output.shape[1] - ids.shape[1]

    def ours() -> int:
        model.generation_config.min_new_tokens = max_new_tokens
        try:
            return generate_poems(model, tokenizer, [prompt], sampling, stream=lambda text: None)[0][
                "n_new_tokens"
            ]
        finally:
            model.generation_config.min_new_tokens = None

    plain()  # warm-up
    best = {"plain_generate": float("inf"), "cli_path": float("inf")}
    produced = {}
    for _ in range(repeats):  # alternate the two paths; keep each one's best time (as timeit does)
        for name, function in (("plain_generate", plain), ("cli_path", ours)):
            started = time.perf_counter()
            produced[name] = function()
            best[name] = min(best[name], time.perf_counter() - started)
    results = {name: produced[name] / best[name] for name in best}
    results["cli_over_plain"] = results["cli_path"] / results["plain_generate"]
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="smollm2-135m")
    parser.add_argument("--steps", type=int, default=4, help="Timed optimizer steps per configuration.")
    parser.add_argument("--block-sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-poems", type=int, default=400, help="Train poems used (enough for the steps).")
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from genai_assets.finetune.data import tokenize_poems
    from genai_assets.finetune.train import load_base_for_finetuning, save_finetuned
    from genai_assets.generation import SamplingConfig, stop_token_ids
    from genai_assets.lake import default_lake_root

    lake = default_lake_root()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        folder = base_folder(args.base, lake, scratch)
        model, tokenizer = load_base_for_finetuning(folder)
        poems = load_poems(lake)
        train = poems[poems["split"] == "train"].head(args.max_poems)
        table = tokenize_poems(train, tokenizer)
        sequences = [np.asarray(ids, dtype=np.int64) for ids in table["input_ids"]]
        lengths = np.array([len(seq) for seq in sequences])
        print(
            f"base {args.base}: {model.num_parameters():,} parameters, torch threads {torch.get_num_threads()}"
        )
        print(
            f"{len(sequences)} train poems, tokens per poem: mean {lengths.mean():.1f}, median {np.median(lengths):.0f}"
        )
        rows = []
        context = getattr(model.config, "n_positions", None) or model.config.max_position_embeddings
        for block_size in args.block_sizes:
            if block_size > context:
                print(f"  block {block_size}: skipped, longer than the model's context of {context}")
                continue
            for collation in ("packing", "padding"):
                row = training_throughput(
                    model, sequences, collation, block_size, args.batch_size, args.steps
                )
                rows.append(row)
                print(
                    f"  block {block_size:4d} {collation:8s}: {row['real_tokens_per_s']:8.1f} real tokens/s "
                    f"({row['real_token_share']:.0%} of slots real, median step {row['median_step_s']:.2f}s)",
                    flush=True,
                )
            packed, padded = rows[-2], rows[-1]
            print(
                f"  block {block_size:4d} packing / padding = {packed['real_tokens_per_s'] / padded['real_tokens_per_s']:.2f}x"
            )
        saved = scratch / "saved"
        save_finetuned(
            model,
            tokenizer,
            saved,
            SamplingConfig(),
            {"base_model": {"name": args.base}},
            stop_token_ids(tokenizer),
        )
        generation = generation_throughput(saved, args.new_tokens, args.repeats)
        print(
            f"generation ({args.new_tokens} new tokens, greedy, best of {args.repeats}): plain model.generate "
            f"{generation['plain_generate']:.1f} tok/s, CLI path {generation['cli_path']:.1f} tok/s, "
            f"ratio {generation['cli_over_plain']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
