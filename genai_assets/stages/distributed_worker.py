"""The process ``torchrun`` starts on every rank: one training run described by a JSON spec.

A stage-level entry point (it runs scratch training *and* fine-tuning, so it sits above both
``training`` and ``finetune``; ``training.distributed.WORKER_MODULE`` names it only as a string).

    python -m torch.distributed.run --standalone --nproc_per_node=2 \\
        -m genai_assets.stages.distributed_worker --spec spec.json

Every rank joins the process group, builds the same model from the same seed, and calls the same
:func:`~genai_assets.training.scratch_runs.run_language_model` as an in-process asset; the loop
trains data-parallel because a process group exists (:mod:`genai_assets.training.distributed`).
Rank 0 then writes the trained weights and the run's figures to ``output_dir`` (atomically), which
the launching asset reads back with :func:`read_language_model_run`.

Under Dagster Pipes (the asset launched torchrun with ``PipesSubprocessClient``, which puts the
``DAGSTER_PIPES_*`` variables into every rank's environment) rank 0 alone opens the Pipes session:
its progress rows become log lines of the asset's run and its final figures the materialization's
metadata. Without Pipes the worker prints the same lines to stderr, so it also runs by hand.
``dagster-pipes`` is a small package with no dependency on dagster itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from genai_assets.finetune.train import FinetuneConfig, FinetuneResult, finetune
from genai_assets.lake import atomic_directory, atomic_write_text
from genai_assets.models.loading import GPT_MODEL_TYPE, _classes
from genai_assets.models.transformer import GPTConfig
from genai_assets.training.distributed import init_distributed
from genai_assets.training.loop import TrainLoopConfig, TrainResult
from genai_assets.training.scratch_runs import LanguageModelRun, Sampling, resolve_device, run_language_model

SPEC_VERSION = 1
RESULT_FILE = "result.json"
WEIGHTS_FILE = "model.safetensors"


def language_model_spec(
    *,
    model_type: str,
    model_config: dict,
    loop_config,
    token_dir: str | Path,
    block_size: int,
    batch_size: int,
    sampling,
    checkpoint_dir: str | Path | None,
    output_dir: str | Path,
    backend: str = "auto",
    device: str = "auto",
    seed: int = 0,
    max_context: int | None = None,
) -> dict:
    """A JSON-able description of one scratch language-model run (what the asset would run in-process).

    ``batch_size`` is the global micro-batch: each of the N ranks trains on its 1/N slice.
    """
    return {
        "version": SPEC_VERSION,
        "kind": "language_model",
        "model_type": model_type,
        "model_config": model_config,
        "loop_config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(loop_config).items()},
        "token_dir": str(token_dir),
        "block_size": block_size,
        "batch_size": batch_size,
        "sampling": asdict(sampling),
        "checkpoint_dir": None if checkpoint_dir is None else str(checkpoint_dir),
        "output_dir": str(output_dir),
        "backend": backend,
        "device": device,
        "seed": seed,
        "max_context": max_context,
    }


def write_scratch_gpt_spec(
    run_dir: Path,
    token_dir: Path,
    meta: dict,
    gpt: dict,
    loop_config,
    *,
    batch_size: int,
    sampling,
    checkpoint_dir: Path | None = None,
    seed: int = 0,
) -> Path:
    """Write ``<run_dir>/spec.json`` for a from-scratch GPT on ``token_dir``; its output goes to ``<run_dir>/output``.

    For callers that launch torchrun themselves (tests, benchmarks). ``meta``: the token arrays'
    ``meta.json`` (gives the vocabulary size); ``gpt``: the other ``GPTConfig`` fields (its
    ``block_size`` is also the training window).
    """

    model_config = GPTConfig(vocab_size=int(meta["vocab_size"]), **gpt)
    spec = language_model_spec(
        model_type=GPT_MODEL_TYPE,
        model_config=model_config.to_dict(),
        loop_config=loop_config,
        token_dir=token_dir,
        block_size=model_config.block_size,
        batch_size=batch_size,
        sampling=sampling,
        checkpoint_dir=checkpoint_dir,
        output_dir=run_dir / "output",
        seed=seed,
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "spec.json"
    atomic_write_text(path, json.dumps(spec))
    return path


def _progress_line(row: dict, total_steps: int, rank_note: str) -> str:
    if "sample" in row:
        return f"{rank_note}sample at step {row['step']}:\n{row['sample']}"
    if "event" in row:
        return f"{rank_note}{row['event']} at step {row.get('step', '?')} ({row.get('checkpoint_dir', '')})"
    text = (
        f"{rank_note}step {row['step']}/{total_steps} train_loss {row['train_loss']:.4f} lr {row['lr']:.2e}"
    )
    if "val_loss" in row:
        text += f" val_loss {row['val_loss']:.4f} val_ppl {row['val_perplexity']:.2f}"
    return text


def _open_pipes(is_main: bool):
    """Rank 0's Pipes session when launched under Dagster Pipes, else ``None``."""
    if not is_main or "DAGSTER_PIPES_CONTEXT" not in os.environ:
        return contextlib.nullcontext(None)
    from dagster_pipes import open_dagster_pipes

    return open_dagster_pipes()


def _worker_device(context, spec: dict):
    """This rank's device: its GPU under NCCL, the CPU under gloo, else the spec's choice."""
    import torch

    if context.backend == "nccl":
        return torch.device("cuda", context.local_rank)
    if context.backend == "gloo":
        return torch.device("cpu")
    return resolve_device(spec.get("device", "auto"))


def _pipes_logger(pipes, total_steps: int, rank_note: str):
    """Progress rows as lines: to the Pipes log under Dagster, else to stderr."""

    def log_fn(row: dict) -> None:
        line = _progress_line(row, total_steps, rank_note)
        if pipes is not None:
            pipes.log.info(line)
        else:
            print(line, file=sys.stderr, flush=True)

    return log_fn


def _save_rank_zero_result(model, run, context, device, spec: dict, pipes) -> dict:
    """Rank 0: the run's figures and the trained weights into ``output_dir`` (atomically), reported."""
    from safetensors.torch import save_model

    result = {
        **run.metrics(),
        "final_val_loss": run.train.final_val_loss,
        "world_size": context.world_size,
        "backend": context.backend,
        "device": str(device),
    }
    with atomic_directory(spec["output_dir"]) as staging:
        save_model(model, str(staging / WEIGHTS_FILE))
        (staging / RESULT_FILE).write_text(json.dumps(result, default=float), encoding="utf-8")
    if pipes is not None:
        pipes.report_asset_materialization(metadata=worker_metadata(result))
    return result


def run_language_model_worker(spec: dict) -> dict | None:
    """Run the spec on this rank; rank 0 writes ``output_dir`` and returns the result dict."""
    import torch
    import torch.distributed as dist

    context = init_distributed(spec.get("backend", "auto"))
    device = _worker_device(context, spec)
    model_class, config_class = _classes(spec["model_type"])
    loop_config = TrainLoopConfig(**spec["loop_config"])
    torch.manual_seed(int(spec["seed"]))  # the same initial weights on every rank (DDP also broadcasts)
    model = model_class(config_class(**spec["model_config"])).to(device)
    rank_note = f"[rank {context.rank}/{context.world_size}] "
    with _open_pipes(context.is_main) as pipes:
        if pipes is not None:
            pipes.log.info(
                f"{context.world_size} training process(es), backend {context.backend}, device {device}, "
                f"{torch.get_num_threads()} thread(s) per process"
            )
        run = run_language_model(
            model,
            spec["token_dir"],
            loop_config,
            int(spec["block_size"]),
            int(spec["batch_size"]),
            Sampling(**spec["sampling"]),
            None if spec["checkpoint_dir"] is None else Path(spec["checkpoint_dir"]),
            _pipes_logger(pipes, loop_config.max_steps, rank_note) if context.is_main else None,
            spec.get("max_context"),
        )
        result = _save_rank_zero_result(model, run, context, device, spec, pipes) if context.is_main else None
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return result


def worker_metadata(result: dict) -> dict[str, Any]:
    """The figures the worker reports through Pipes (the asset adds paths and plots)."""
    return {
        "world_size": result["world_size"],
        "backend": result["backend"],
        "worker_device": result["device"],
        "val_loss": round(result["val_loss"], 4),
        "tokens_per_second": round(result["tokens_per_second"], 1),
        "mfu": round(float(result.get("mfu") or 0.0), 4),
        "tokens_seen": result["tokens_seen"],
        "steps": result["steps"],
        "resumed_from_step": result["resumed_from_step"],
    }


def read_language_model_run(output_dir: str | Path, model):
    """Load rank 0's weights into ``model`` (in place) and rebuild its ``LanguageModelRun``."""
    from safetensors.torch import load_model

    output_dir = Path(output_dir)
    result_path = output_dir / RESULT_FILE
    if not result_path.is_file():
        raise FileNotFoundError(
            f"The distributed run wrote no {result_path}: rank 0 did not finish (see the worker logs)."
        )
    result = json.loads(result_path.read_text(encoding="utf-8"))
    load_model(
        model, str(output_dir / WEIGHTS_FILE), strict=True, device=str(next(model.parameters()).device)
    )
    train = TrainResult(
        steps=result["steps"],
        history=result["history"],
        final_val_loss=result["final_val_loss"],
        tokens_per_second=result["tokens_per_second"],
        resumed_from_step=result["resumed_from_step"],
        precision=result.get("throughput", {}).get("precision", "fp32"),
        device=result["device"],
    )
    return LanguageModelRun(
        train=train,
        val_loss=result["val_loss"],
        val_perplexity=result["val_perplexity"],
        val_bpc=result["val_bpc"],
        n_parameters=result["n_parameters"],
        tokens_seen=result["tokens_seen"],
        train_seconds=result["train_seconds"],
        samples=result["samples"],
        throughput=result.get("throughput", {}),
        notes=[
            *result["notes"],
            f"trained data-parallel on {result['world_size']} processes ({result['backend']})",
        ],
    )


def finetune_spec(
    *,
    base_dir: str | Path,
    dataset: str | Path,
    config,
    out_dir: str | Path,
    checkpoint_root: str | Path | None,
    base_info: dict,
    result_path: str | Path,
    backend: str = "auto",
) -> dict:
    """A JSON-able description of one fine-tuning run (``genai_assets.finetune.train.finetune``'s arguments)."""
    return {
        "version": SPEC_VERSION,
        "kind": "finetune",
        "base_dir": str(base_dir),
        "dataset": str(dataset),  # the finetune_dataset folder (save_to_disk)
        "config": asdict(config),
        "out_dir": str(out_dir),
        "checkpoint_root": None if checkpoint_root is None else str(checkpoint_root),
        "base_info": base_info,
        "result_path": str(result_path),
        "backend": backend,
    }


def dataclass_from_dict(cls, values: dict):
    """``cls(**values)`` with nested dataclass fields rebuilt from their dicts (JSON round trip)."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        hint = hints.get(name)
        nested = isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict)
        kwargs[name] = dataclass_from_dict(hint, value) if nested else value
    return cls(**kwargs)


def run_finetune_worker(spec: dict) -> dict | None:
    """Fine-tune on this rank (``finetune`` trains data-parallel under the process group); rank 0 saves."""
    import torch.distributed as dist

    context = init_distributed(spec.get("backend", "auto"))
    config = dataclass_from_dict(FinetuneConfig, spec["config"])
    rank_note = f"[rank {context.rank}/{context.world_size}] "
    with _open_pipes(context.is_main) as pipes:

        def log_fn(row: dict) -> None:
            line = rank_note + (
                _progress_line(row, config.max_steps, "")
                if "train_loss" in row
                else json.dumps(row, default=str)
            )
            if pipes is not None:
                pipes.log.info(line)
            else:
                print(line, file=sys.stderr, flush=True)

        result = finetune(
            spec["base_dir"],
            spec["dataset"],
            config,
            spec["out_dir"],
            checkpoint_root=None if spec["checkpoint_root"] is None else Path(spec["checkpoint_root"]),
            base_info=spec["base_info"],
            log_fn=log_fn if context.is_main else None,
        )
        payload = None
        if context.is_main:
            payload = {**asdict(result), "world_size": context.world_size, "backend": context.backend}
            atomic_write_text(spec["result_path"], json.dumps(payload, default=str))
            if pipes is not None:
                pipes.report_asset_materialization(
                    metadata={
                        "world_size": context.world_size,
                        "backend": context.backend,
                        "steps": result.steps,
                        "resumed_from_step": result.resumed_from_step,
                        "train_tokens_per_second": round(result.tokens_per_second, 1),
                        "mfu": round(float(result.throughput.get("mfu") or 0.0), 4),
                    }
                )
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return payload


def read_finetune_result(result_path: str | Path):
    """The ``FinetuneResult`` rank 0 wrote (the model folder itself is already in ``out_dir``)."""

    result_path = Path(result_path)
    if not result_path.is_file():
        raise FileNotFoundError(f"The distributed fine-tuning wrote no {result_path}: rank 0 did not finish.")
    payload = json.loads(result_path.read_text(encoding="utf-8"))
    payload.pop("world_size"), payload.pop("backend")
    return FinetuneResult(**payload)


WORKERS = {"language_model": run_language_model_worker, "finetune": run_finetune_worker}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="One rank of a torchrun training job (see module docstring)."
    )
    parser.add_argument("--spec", required=True, help="JSON file written by the launching asset.")
    args = parser.parse_args(argv)
    spec = json.loads(Path(args.spec).read_text(encoding="utf-8"))
    if spec.get("version") != SPEC_VERSION or spec.get("kind") not in WORKERS:
        raise SystemExit(
            f"{args.spec}: unsupported spec (version {spec.get('version')!r}, kind {spec.get('kind')!r}); "
            f"this worker runs version {SPEC_VERSION} specs of kind {sorted(WORKERS)}."
        )
    WORKERS[spec["kind"]](spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
