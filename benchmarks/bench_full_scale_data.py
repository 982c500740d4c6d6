"""Benchmark: the data stage at full scale — every Gutenberg excerpt (the ``gpu`` preset's data).

    .venv/bin/python benchmarks/bench_full_scale_data.py [--lake /tmp/full_lake] [--threads 2]

Materializes ``raw_poems`` (gutenberg + shakespeare partitions) → ``cleansed_poems`` →
``poem_tokenizer`` → ``token_arrays`` → ``cooccurrence_embeddings`` with ``--preset gpu`` (no
excerpt cap, 16k BPE, 20k-word co-occurrence vocabulary) through the project's own command,
``genai-assets materialize``, one asset per child process, so each asset's wall time and peak
resident memory (``wait4`` rusage of that child: the whole process, Python and Dagster included)
are its own. Results: ``benchmarks/results/full_scale_data.json`` and a printed table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = [
    ("raw_poems", ["--sites", "gutenberg", "shakespeare"]),
    ("cleansed_poems", []),
    ("poem_tokenizer", []),
    ("token_arrays", []),
    ("cooccurrence_embeddings", []),
]


def run_step(asset: str, extra: list[str], env: dict) -> dict:
    command = [
        sys.executable,
        "-m",
        "genai_assets.cli",
        "materialize",
        "--preset",
        "gpu",
        "--select",
        asset,
        *extra,
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{asset} failed:\n{output[-4000:]}")
    return {"asset": asset, "seconds": round(elapsed, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def lake_figures(lake: Path) -> dict:
    import pandas as pd

    figures = {}
    cleansed = lake / "cleansed_poems.parquet"
    if cleansed.is_file():
        table = pd.read_parquet(cleansed, columns=["source"])
        figures["cleansed_rows_by_source"] = table["source"].value_counts().to_dict()
    meta = lake / "token_arrays" / "meta.json"
    if meta.is_file():
        splits = json.loads(meta.read_text())["splits"]
        figures["tokens_by_split"] = {split: info.get("n_tokens") for split, info in splits.items()}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", help="Data lake root (default: a temporary folder, deleted after).")
    parser.add_argument("--threads", type=int, default=2, help="OMP/torch threads of each step.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lake = Path(args.lake or tmp)
        env = {**os.environ, "GENAI_DATA_LAKE": str(lake), "OMP_NUM_THREADS": str(args.threads)}
        env.pop("DAGSTER_HOME", None)  # an ephemeral instance: the benchmark leaves no runs behind
        rows = []
        for asset, extra in STEPS:
            rows.append(run_step(asset, extra, env))
            print(
                f"{asset:26s} {rows[-1]['seconds']:8.1f} s  peak RSS {rows[-1]['peak_rss_mib']:8.1f} MiB",
                flush=True,
            )
        report = {
            "preset": "gpu",
            "steps": rows,
            "total_seconds": round(sum(row["seconds"] for row in rows), 1),
            "figures": lake_figures(lake),
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "note": "measured on a shared machine under load",
        }
    out = Path(__file__).parent / "results" / "full_scale_data.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["figures"], indent=2))
    print(f"total {report['total_seconds']} s -> {out}")


if __name__ == "__main__":
    main()
