"""The CPU benchmarks' generated blocks: figures rendered from the benchmarks' JSON, never typed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from genai_assets.reporting.bench_tables import (
    BENCH_CLEANSE,
    BENCH_GENERATION,
    cleanse_benchmark_table,
    generation_benchmark_table,
)
from genai_assets.reporting.docs_tables import LakeFiles, regenerate_text

ROOT = Path(__file__).resolve().parents[1]

CLEANSE = {
    "cores": 2, "load_at_start": [0.5, 0.4, 0.3], "load_at_end": [1.0, 0.6, 0.4], "rows_in": 512201,
    "rows_out": 432332, "wall_seconds": 20.94, "cpu_seconds": 32.6, "worker_cpu_seconds": 11.7,
    "peak_rss_gib": 1.64, "peak_rss_worker_gib": 1.05, "peak_tree_pss_gib": 1.69, "measured_at": "2026-12-04 23:03 UTC",
    "steps": [
        {"rule": "repair_unicode", "kind": "transform", "rows_in": 512201, "rows_changed": 660, "rows_removed": 0,
         "seconds": 2.4, "cpu_seconds": 3.66},
        {"rule": "near_duplicate", "kind": "dedup", "rows_in": 459178, "rows_changed": 0, "rows_removed": 10944,
         "seconds": 3.76, "cpu_seconds": 4.39},
    ],
}  # fmt: skip

GENERATION = {
    "new_tokens": 200, "greedy": {"cached": {"wall": 497.2, "cpu": 228.0}, "uncached": {"wall": 81.0, "cpu": 40.0}},
    "course": {"wall": 388.4, "cpu": 378.0}, "llm": {"wall": {"transformers": 15.2, "stream": 15.5},
    "cpu": {"transformers": 4.2, "stream": 13.9}}, "llm_new_tokens": 64, "cores": 2, "threads": 2,
    "load_at_start": [0.2, 0.2, 0.2], "load_at_end": [0.9, 0.3, 0.2], "torch": "2.13.0", "measured_at": "2026-12-04 23:04 UTC",
}  # fmt: skip


def test_cleanse_block_shows_each_step_and_the_totals_against_the_targets():
    table = cleanse_benchmark_table(CLEANSE)
    assert "| repair_unicode | 512,201 | 660 changed | 2.40 | 3.66 |" in table
    assert "| near_duplicate | 459,178 | 10,944 removed | 3.76 | 4.39 |" in table
    assert "**20.9 s wall** (target < 30 s ✔)" in table and "**1.69 GiB** PSS (target < 2 GiB ✔" in table
    assert (
        "20.9 s main process, 11.7 s the worker" in table and "load average 0.50 → 1.00 on 2 cores" in table
    )
    slow = cleanse_benchmark_table({**CLEANSE, "wall_seconds": 55.3, "peak_tree_pss_gib": 2.01})
    assert "(target < 30 s ✘)" in slow and "(target < 2 GiB ✘" in slow


def test_generation_block_shows_tokens_per_second_and_the_goals():
    table = generation_benchmark_table(GENERATION)
    assert "| greedy, KV cache | 497 | 228 | – |" in table
    assert "388 | 378 | ≥ 1,000 ✘ |" in table
    assert "| 15.5 vs 15.2 | 13.9 vs 4.2 | ≥ 1.0× ✔ (1.02×) |" in table
    without_llm = generation_benchmark_table({**GENERATION, "llm": None})
    assert "135 M" not in without_llm
    assert "ceiling" not in table and "worker thread" not in table  # a report from before these were measured
    llm = {"wall": {"transformers": 15.2, "transformers_worker": 14.0, "stream": 14.7},
           "cpu": {"transformers": 4.2, "transformers_worker": 13.6, "stream": 13.9}}  # fmt: skip
    on_a_worker = generation_benchmark_table({**GENERATION, "llm": llm})
    assert "| 14.7 vs 14.0 | 13.9 vs 13.6 | (1.05×) |" in on_a_worker and "≥ 1.0× ✘ (0.97×)" in on_a_worker
    floor = {"matrices": 17, "weight_mb": 16.8, "hot_ms": 0.625, "cold_ms": 1.25}
    with_floor = generation_benchmark_table({**GENERATION, "weight_read_floor": floor})
    assert "17 matrix–vector products alone (16.8 MB of fp32 weights per token)" in with_floor
    assert "| 1,600 / 800 | – | – |" in with_floor  # tokens/s = 1000 / ms


def test_report_docs_fills_the_blocks_from_the_lake_and_leaves_them_when_a_report_is_missing(tmp_path):
    text = (
        "a\n<!-- BEGIN generated:cleanse_benchmark -->\nold\n<!-- END generated:cleanse_benchmark -->\n"
        "<!-- BEGIN generated:generation_benchmark -->\nold\n<!-- END generated:generation_benchmark -->\n"
    )
    (tmp_path / "reports").mkdir()
    (tmp_path / BENCH_CLEANSE).write_text(json.dumps(CLEANSE))
    new_text, result = regenerate_text(text, LakeFiles(tmp_path))
    assert result.regenerated == ["cleanse_benchmark"] and "**20.9 s wall**" in new_text
    assert (
        "<!-- BEGIN generated:generation_benchmark -->\nold\n" in new_text
    )  # its JSON is missing: untouched
    assert "bench_models.py --only generation" in result.missing[0]
    (tmp_path / BENCH_GENERATION).write_text(json.dumps(GENERATION))
    assert "388" in regenerate_text(text, LakeFiles(tmp_path))[0]


def test_the_cleanse_benchmark_writes_the_report_the_block_reads(tmp_path):
    out = tmp_path / BENCH_CLEANSE
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_cleanse_gutenberg.py"), "--limit", "3000", "--out", str(out)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert report["rows_in"] == 3000 and 0 < report["rows_out"] <= 3000
    assert [step["rule"] for step in report["steps"]][:2] == ["repair_unicode", "normalize_punctuation"]
    assert report["peak_tree_pss_gib"] > 0.1  # the sampler read /proc
    cleanse_benchmark_table(report)  # renders without a missing key
