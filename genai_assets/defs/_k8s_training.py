"""Launch a multi-node ``torchrun`` training job on Kubernetes and watch it through Dagster Pipes.

Selected by ``GENAI_ASSETS_TRAINING_LAUNCHER=k8s`` (deploy/helm/values.yaml sets it for run and step
pods) when a training asset's ``distributed.nnodes`` is 2 or more. The asset's step pod then:

1. opens a Pipes session (context through environment variables, messages read from pod logs —
   dagster-k8s's ``PipesK8sPodLogsMessageReader``, the reader ``PipesK8sClient`` uses);
2. creates the headless Service and the indexed Job of
   :func:`genai_assets.training.k8s_job.training_manifests` — N pods, the same torchrun command, c10d
   rendezvous on pod 0 — with the Pipes bootstrap variables in every pod's environment;
3. follows every pod's log (rank 0, wherever the rendezvous put it, sends the Pipes messages: log
   lines and the final metadata; the other pods' lines are forwarded to the step's stdout) until the
   Job succeeds or fails, then deletes the Job and the Service.

The spec, the checkpoints and the result are on the shared lake (the ReadWriteMany volume every pod
mounts), so a failed job is resumed by the next run from the last checkpoint, as on one node.
Needs the ``k8s`` extra (dagster-k8s) and RBAC for jobs, services and pod logs
(deploy/helm/training-rbac.yaml).
"""

from __future__ import annotations

import os
import threading
import time

import dagster as dg

from genai_assets.training.distributed import DistributedConfig

LAUNCHER_ENV = "GENAI_ASSETS_TRAINING_LAUNCHER"
POLL_SECONDS = 5.0


class TrainingJobFailed(RuntimeError):
    """A pod of the training Job failed (the Job has ``backoffLimit: 0``): the whole job stopped."""


def launches_on_kubernetes(config: DistributedConfig) -> bool:
    """True when this deployment runs multi-node training as a Kubernetes Job (see the module doc)."""
    launcher = os.environ.get(LAUNCHER_ENV, "").strip().lower()
    if launcher not in ("", "k8s", "local"):
        raise ValueError(f"{LAUNCHER_ENV} must be unset, 'local' or 'k8s', got {launcher!r}.")
    return launcher == "k8s" and config.nnodes > 1


def pod_settings_from_environment(context: dg.AssetExecutionContext, config: DistributedConfig):
    """Training pod settings: the run's own image and namespace, sizes from ``GENAI_ASSETS_TRAINING_*``."""
    from dagster_k8s.utils import detect_current_namespace

    from genai_assets.training.k8s_job import TrainingPodSettings

    origin = context.dagster_run.job_code_origin
    image = os.environ.get("GENAI_ASSETS_TRAINING_IMAGE") or (
        origin.repository_origin.container_image if origin is not None else None
    )
    return TrainingPodSettings(
        image=image or "",
        namespace=detect_current_namespace(None) or "default",
        cpu=os.environ.get("GENAI_ASSETS_TRAINING_CPU", "4"),
        memory=os.environ.get("GENAI_ASSETS_TRAINING_MEMORY", "16Gi"),
        gpus_per_node=int(os.environ.get("GENAI_ASSETS_TRAINING_GPUS_PER_NODE", str(config.nproc_per_node))),
        lake_claim=os.environ.get("GENAI_ASSETS_LAKE_CLAIM", "genai-assets-lake"),
        lake_mount=os.environ.get("GENAI_DATA_LAKE", "/lake"),
    )


def run_torchrun_on_kubernetes(
    context: dg.AssetExecutionContext, config: DistributedConfig, worker_args: list[str]
) -> dg.PipesClientCompletedInvocation:
    """Create the training Job, stream its pods' logs into the run, wait for it; raise if it failed."""
    import kubernetes
    from dagster_k8s.pipes import PipesK8sPodLogsMessageReader

    from genai_assets.training.k8s_job import job_name, training_manifests

    kubernetes.config.load_incluster_config()
    core, batch = kubernetes.client.CoreV1Api(), kubernetes.client.BatchV1Api()
    settings = pod_settings_from_environment(context, config)
    name = job_name(context.run_id, context.asset_key.to_python_identifier())
    reader = PipesK8sPodLogsMessageReader()
    with dg.open_pipes_session(
        context=context, context_injector=dg.PipesEnvContextInjector(), message_reader=reader
    ) as session:
        settings.env.update(session.get_bootstrap_env_vars())
        service, job = training_manifests(name, config, settings, worker_args)
        core.create_namespaced_service(settings.namespace, service)
        try:
            batch.create_namespaced_job(settings.namespace, job)
            context.log.info(
                f"Created training Job {name}: {config.nnodes} pods x {config.nproc_per_node} ranks"
            )
            _follow_until_done(context, core, batch, reader, name, settings.namespace, config.nnodes)
        finally:
            batch.delete_namespaced_job(name, settings.namespace, propagation_policy="Background")
            core.delete_namespaced_service(name, settings.namespace)
    return dg.PipesClientCompletedInvocation(session)


def _follow_until_done(context, core, batch, reader, name: str, namespace: str, nnodes: int) -> None:
    """Stream each pod's log once it runs; return when the Job succeeded, raise when it failed."""
    from genai_assets.training.k8s_job import LABEL_JOB

    followed: dict[str, threading.Thread] = {}
    # Pods that never start (no GPU node free, image pull errors) must not hold the step forever.
    start_deadline = time.monotonic() + float(os.environ.get("GENAI_ASSETS_TRAINING_START_TIMEOUT_S", "3600"))
    while True:
        pods = core.list_namespaced_pod(namespace, label_selector=f"{LABEL_JOB}={name}").items
        if len(followed) < nnodes and time.monotonic() > start_deadline:
            raise TrainingJobFailed(
                f"Training Job {name}: only {len(followed)} of {nnodes} pods started before "
                "GENAI_ASSETS_TRAINING_START_TIMEOUT_S (see `kubectl describe job`)"
            )
        for pod in pods:
            if pod.metadata.name not in followed and pod.status.phase in ("Running", "Succeeded", "Failed"):
                thread = threading.Thread(
                    target=reader.consume_pod_logs,
                    args=(context, core, pod.metadata.name, namespace),
                    daemon=True,
                )
                thread.start()
                followed[pod.metadata.name] = thread
        status = batch.read_namespaced_job_status(name, namespace).status
        if (status.succeeded or 0) >= nnodes or status.failed:
            for thread in followed.values():
                thread.join(timeout=60)  # the last log lines (rank 0's final metadata) arrive after exit
            if status.failed:
                raise TrainingJobFailed(f"Training Job {name} failed: {status.failed} pod(s) failed")
            return
        time.sleep(POLL_SECONDS)
