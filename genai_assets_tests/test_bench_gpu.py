"""benchmarks/bench_gpu.py in its smoke mode (CPU, tiny shapes) and the README table rendered from its JSON."""

import json
import subprocess
import sys
from pathlib import Path

from genai_assets.reporting.docs_tables import GPU_BENCHMARK_CASES, NOT_MEASURED, gpu_benchmark_table

ROOT = Path(__file__).resolve().parents[1]
RUN_SMOKE = """
import contextlib, io, runpy, sys
sys.argv = ["bench_gpu.py", "--smoke", "--steps", "3", "--cpu", "--out", sys.argv[1]]
with contextlib.redirect_stdout(io.StringIO()):
    runpy.run_path("benchmarks/bench_gpu.py", run_name="__main__")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("dagster", "datasets"))
assert not heavy, heavy  # the GPU machine may have neither
"""


def test_smoke_run_measures_every_case_without_dagster_or_datasets(tmp_path):
    out = tmp_path / "bench_gpu.json"
    completed = subprocess.run(
        [sys.executable, "-c", RUN_SMOKE, str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["device_type"] == "cpu" and report["smoke"] and report["steps"] == 3
    assert [row["case"] for row in report["cases"]] == [case for case, *_ in GPU_BENCHMARK_CASES]
    for row in report["cases"]:
        assert row["tokens_per_second"] > 0 and row["mfu"] > 0
        assert row["mfu"] * report["peak_flops"] == _approx(row["tokens_per_second"] * row["flops_per_token"])
    ours = report["cases"][0]  # our GPT at the smoke shape: 2 layers, 64 wide, block 32, vocab 512
    from genai_assets.models.transformer import GPT, GPTConfig

    n = GPT(GPTConfig(vocab_size=512, block_size=32, n_layer=2, n_head=2, n_embd=64)).num_parameters()
    assert ours["flops_per_token"] == 6 * n + 12 * 2 * 32 * 64
    assert set(report["ratios"]) == {
        "ours_vs_hf_same_loop", "ours_loop_vs_minimal_loop", "auto_vs_fp32", "gpu_preset_vs_minimal",
    }  # fmt: skip
    # A CPU run is not a GPU figure: the table says so instead of showing it.
    assert gpu_benchmark_table(report) == gpu_benchmark_table(None)


def _approx(value):
    import pytest

    return pytest.approx(value, rel=1e-9)


def test_gpu_table_shows_measured_figures_only_from_a_cuda_run():
    unmeasured = gpu_benchmark_table(None)
    assert unmeasured.count(NOT_MEASURED) == 2 * len(GPU_BENCHMARK_CASES)
    cases = [
        {"case": case, "tokens_per_second": 1_234_567.0 + index, "mfu": 0.456} for index, (case, *_) in
        enumerate(GPU_BENCHMARK_CASES)
    ]  # fmt: skip
    report = {
        "device_type": "cuda", "device": "NVIDIA H200", "torch": "2.11", "steps": 300, "compile": True,
        "peak_basis": "measured 8192x8192 bfloat16 matmul on NVIDIA H200", "peak_flops": 7.79e14,
        "cases": cases, "ratios": {"ours_vs_hf_same_loop": 2.5},
    }  # fmt: skip
    table = gpu_benchmark_table(report)
    assert NOT_MEASURED not in table
    assert (
        "| 1,234,567 | 45.6 % |" in table and "779 TFLOP/s" in table and "ours vs hf same loop 2.50×" in table
    )
