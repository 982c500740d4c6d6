"""Scratch transformer vs GRU at equal token budgets on the cpu preset: which recipe closes the gap.

Every run trains a fresh model on the lake's ``token_arrays`` with the project's own
``run_language_model`` (the function behind the assets) and ends with its schedule fully decayed
at the budget, then scores the whole val split (loss, bits/char). The demo's own comparison
reads the transformer at step 100 of a 300-step schedule, i.e. before its learning rate has
decayed, which handicaps it against RNNs whose 100-step schedule has ended; here both end at
the budget.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scratch_vs_gru.py [--only NAME ...]

Writes ``<lake>/reports/scratch_vs_gru.json`` (one row per run, kept across invocations) and
prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# name -> (model kind, config overrides). Tokens = max_steps x batch_size x block_size (128).
RUNS: dict[str, tuple[str, dict]] = {
    "gru_100": ("gru", {"max_steps": 100}),
    "gpt_4x128_100": ("gpt", {"max_steps": 100}),
    "gpt_4x128_b8_200": ("gpt", {"max_steps": 200, "batch_size": 8}),
    "gpt_2x128_100": ("gpt", {"max_steps": 100, "n_layer": 2}),
    "gpt_4x128_b4_400": ("gpt", {"max_steps": 400, "batch_size": 4}),
    "gru_b4_400": ("gru", {"max_steps": 400, "batch_size": 4}),
    "gpt_4x128_b2_800": ("gpt", {"max_steps": 800, "batch_size": 2}),
    "gru_300": ("gru", {"max_steps": 300}),
    "gpt_4x128_300": ("gpt", {"max_steps": 300}),
}


def run(name: str, lake: Path) -> dict:
    import torch

    from genai_assets.models.rnn import RNNConfig, RNNLanguageModel
    from genai_assets.models.transformer import GPT, GPTConfig
    from genai_assets.stages.scratch import sampling_for
    from genai_assets.text.datasets import read_token_meta
    from genai_assets.training.scratch_config import RNNBaselinesConfig, ScratchTransformerConfig
    from genai_assets.training.scratch_runs import run_language_model

    kind, overrides = RUNS[name]
    quiet = {"sample_prompts": [""], "sampling": {"max_new_tokens": 1}, "checkpoint_every": 0}
    steps = overrides["max_steps"]
    token_dir = lake / "token_arrays"
    vocab = int(read_token_meta(token_dir)["vocab_size"])
    if kind == "gpt":
        config = ScratchTransformerConfig(**overrides, **quiet, eval_every=steps)
        torch.manual_seed(config.seed)
        model = GPT(
            GPTConfig(
                vocab_size=vocab, block_size=config.block_size, n_layer=config.n_layer,
                n_head=config.n_head, n_embd=config.n_embd, dropout=config.dropout,
            )
        )  # fmt: skip
    else:
        config = RNNBaselinesConfig(**overrides, **quiet, eval_every=steps)
        torch.manual_seed(config.seed)
        model = RNNLanguageModel(
            RNNConfig(kind=kind, vocab_size=vocab, n_embd=config.n_embd, hidden_size=config.hidden_size)
        )
    started = time.perf_counter()
    result = run_language_model(
        model, token_dir, config.loop_config(), config.block_size, config.batch_size, sampling_for(config)
    )
    metrics = result.metrics()
    return {
        "run": name,
        "model": kind,
        "overrides": overrides,
        "learning_rate": config.learning_rate,
        "parameters": metrics["n_parameters"],
        "tokens": metrics["tokens_seen"],
        "val_loss": metrics["val_loss"],
        "val_bpc": metrics["val_bpc"],
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(RUNS))
    args = parser.parse_args()
    lake = Path(os.environ.get("GENAI_DATA_LAKE", "data_lake"))
    if not (lake / "token_arrays" / "meta.json").is_file():
        print(f"{lake} has no token_arrays: materialize poem_tokenizer and token_arrays first.")
        return 2
    out = lake / "reports" / "scratch_vs_gru.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = {row["run"]: row for row in (json.loads(out.read_text()) if out.is_file() else [])}
    for name in args.only or list(RUNS):
        rows[name] = run(name, lake)
        print(json.dumps(rows[name]), flush=True)
        out.write_text(json.dumps(list(rows.values()), indent=2) + "\n")
    from genai_assets.reporting.docs_tables import scratch_gru_table

    print(scratch_gru_table(list(rows.values())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
