"""Launch a training run with ``torchrun`` through Dagster Pipes (the Dagster half of distributed training).

A training asset whose config has ``distributed`` set calls :func:`run_torchrun` instead of training
in-process: it writes the worker's JSON spec, runs ``python -m torch.distributed.run ... -m
genai_assets.stages.distributed_worker --spec ...`` with ``dg.PipesSubprocessClient``, and returns
the metadata rank 0 reported. Rank 0's log lines arrive in the asset's run as they happen. A failed
rank fails the step with a message naming the checkpoint the next run resumes from. On Kubernetes
(``GENAI_ASSETS_TRAINING_LAUNCHER=k8s``) a run with ``nnodes`` >= 2 goes to N pods of an indexed Job
instead (:mod:`genai_assets.defs._k8s_training`), watched through the same Pipes protocol.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg

from genai_assets.defs._config import stage_config
from genai_assets.defs._k8s_training import (
    TrainingJobFailed,
    launches_on_kubernetes,
    run_torchrun_on_kubernetes,
)
from genai_assets.lake import atomic_write_text
from genai_assets.training.distributed import DistributedConfig

# The Launchpad form of the library's DistributedConfig (same fields, defaults and comments).
DistributedRunConfig = stage_config(DistributedConfig)

# Every training asset: one slot of pool "training" (the instance limits it; 1 by default, see
# dagster.yaml) and, under k8s_job_executor (deploy/helm), a GPU for its step pod.
TRAINING_POOL = "training"
TRAINING_OP_TAGS = {
    "dagster-k8s/config": {
        "container_config": {
            "resources": {
                "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
                # A memory limit too: dagster-k8s deep-merges this over the run pod's config, whose
                # memory limit (deploy/helm: 4Gi) would otherwise stay below the 16Gi request.
                "limits": {"memory": "16Gi", "nvidia.com/gpu": "1"},
            }
        }
    }
}


def run_torchrun(
    context: dg.AssetExecutionContext,
    config: DistributedConfig,
    spec: dict,
    work_dir: Path,
) -> dict:
    """Run the worker ``spec`` under torchrun via Pipes; returns the metadata rank 0 reported."""
    # Not re-exported at dagster's top level in 1.13; it is what PipesSubprocessClient raises on exit != 0.
    from dagster._core.errors import DagsterPipesExecutionError

    from genai_assets.training.distributed import describe, torchrun_command, worker_environment

    spec = {**spec, "backend": config.backend}
    spec_path = work_dir / "spec.json"
    atomic_write_text(spec_path, json.dumps(spec, indent=2))
    command = torchrun_command(config, ["--spec", str(spec_path)])
    try:
        if launches_on_kubernetes(config):  # N pods of an indexed Job (deploy/helm: nnodes >= 2)
            invocation = run_torchrun_on_kubernetes(context, config, ["--spec", str(spec_path)])
        else:
            context.log.info(f"Launching {config.world_size} training processes: {describe(command)}")
            invocation = dg.PipesSubprocessClient().run(
                context=context, command=command, env=worker_environment(config)
            )
    except (DagsterPipesExecutionError, TrainingJobFailed) as error:
        raise dg.Failure(
            description=(
                f"The torchrun training job failed ({error}): a training process exited or was killed, "
                f"so the whole job stopped (see the '[rank N]' lines and torchrun's failure summary in the "
                f"step's stderr). {_resume_hint(spec.get('checkpoint_dir') or spec.get('checkpoint_root'))}"
            )
        ) from error
    reported = invocation.get_materialize_result().metadata or {}
    return {key: getattr(value, "value", value) for key, value in reported.items()}


def _resume_hint(checkpoint_path: str | None) -> str:
    """Where the next run resumes: the checkpoint folder itself, or the newest ``run-*`` under a root."""
    import torch

    from genai_assets.training.checkpoint import STATE_FILE, has_checkpoint

    candidates = []
    if checkpoint_path:
        root = Path(checkpoint_path)
        candidates = [root, *sorted(root.glob("run-*"), key=lambda path: path.stat().st_mtime, reverse=True)]
    for folder in candidates:
        if has_checkpoint(folder):
            step = torch.load(folder / STATE_FILE, weights_only=True)["step"]
            return f"The next run resumes from the checkpoint of step {step} in {folder}."
    return "No checkpoint was written yet: the next run starts from scratch."


def train_language_model_distributed(
    context: dg.AssetExecutionContext,
    config: DistributedConfig,
    model,
    work_dir: Path,
    **spec_fields,
):
    """Train ``model``'s architecture under torchrun, load rank 0's weights into ``model``; return the run.

    ``spec_fields``: the arguments of ``distributed_worker.language_model_spec`` except ``model_type``,
    ``model_config`` and ``output_dir`` (taken from ``model`` and ``work_dir``). Returns
    ``(LanguageModelRun, metadata reported by rank 0)``.
    """
    from genai_assets.models.loading import model_type_of
    from genai_assets.stages.distributed_worker import language_model_spec, read_language_model_run

    work_dir.mkdir(parents=True, exist_ok=True)
    output_dir = work_dir / "output"
    shutil.rmtree(output_dir, ignore_errors=True)  # never read back a previous run's result
    spec = language_model_spec(
        model_type=model_type_of(model),
        model_config=model.config.to_dict(),
        output_dir=output_dir,
        **spec_fields,
    )
    reported = run_torchrun(context, config, spec, work_dir)
    run = read_language_model_run(output_dir, model)
    shutil.rmtree(output_dir, ignore_errors=True)  # the weights now live in ``model`` (saved by the asset)
    return run, reported


def torchrun_trainer(
    context: dg.AssetExecutionContext, config: DistributedConfig, work_dir: Path, reported: dict
):
    """A ``trainer`` for ``stages.scratch.run_*``: trains under torchrun; rank 0's metadata lands in ``reported``."""

    def trainer(model, **spec_fields):
        run, metadata = train_language_model_distributed(context, config, model, work_dir, **spec_fields)
        reported.update(metadata)
        return run

    return trainer


def finetune_distributed(
    context: dg.AssetExecutionContext, launch: DistributedConfig, work_dir: Path, **spec_fields
):
    """``finetune(...)`` under torchrun: rank 0 writes the model into ``out_dir``; returns (FinetuneResult, metadata).

    ``spec_fields``: ``distributed_worker.finetune_spec``'s arguments except ``result_path``.
    """
    from genai_assets.stages.distributed_worker import finetune_spec, read_finetune_result

    work_dir.mkdir(parents=True, exist_ok=True)
    result_path = work_dir / "result.json"
    result_path.unlink(missing_ok=True)  # never read back a previous run's result
    reported = run_torchrun(context, launch, finetune_spec(result_path=result_path, **spec_fields), work_dir)
    return read_finetune_result(result_path), reported
