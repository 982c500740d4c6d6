"""Kubernetes manifests for one multi-node ``torchrun`` training job: an indexed Job + a headless Service.

Every one of the N pods runs the *same* command, ``torchrun --nnodes=N --rdzv_backend=c10d
--rdzv_endpoint=<job>-0.<job>:PORT ...`` (:func:`~genai_assets.training.distributed.torchrun_command`):

* the Job is ``completionMode: Indexed`` with ``completions = parallelism = N``, so Kubernetes names
  the pods ``<job>-<index>-<suffix>``, gives pod *i* the hostname ``<job>-<i>``, and — because the pod
  template sets ``subdomain: <job>`` — a DNS name ``<job>-<i>.<job>`` through the headless Service of
  the same name (https://kubernetes.io/docs/concepts/workloads/controllers/job/#completion-mode);
* the c10d rendezvous endpoint is pod 0's DNS name: torchrun's agent on pod 0 sees that the endpoint
  resolves to itself and hosts the rendezvous store, the others join it; ranks are assigned by the
  rendezvous (node order is not the index order);
* the Service is headless (``clusterIP: None``) and publishes not-ready addresses, so the names resolve
  as soon as the pods exist (no readiness probe is needed for the rendezvous);
* ``backoffLimit: 0`` and torchrun's ``--max_restarts=0``: one failed pod fails the whole job; the
  launching asset then fails naming the checkpoint on the shared lake the next run resumes from.

Plain dictionaries in the Kubernetes API's own (camelCase) shape: the Dagster layer hands them to the
Kubernetes client, tests validate them against the Kubernetes schemas (``kubernetes-validate``).
No Dagster import here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated

from genai_assets.config_checks import Ge, raise_problems, range_problems
from genai_assets.training.distributed import DistributedConfig, torchrun_command

DEFAULT_RDZV_PORT = 29400
# Pod i's hostname is "<job>-<i>" and must stay a DNS label (<= 63 chars): room for the index.
MAX_JOB_NAME = 52
LABEL_JOB = "genai-assets/training-job"


@dataclass
class TrainingPodSettings:
    """What every training pod gets: image, namespace, resources, the lake volume, extra environment."""

    image: str  # the code location's image (the same code and dependencies as the launching step)
    namespace: str = "default"
    cpu: str = "4"  # CPU request per pod
    memory: str = "16Gi"  # memory request (and limit) per pod
    gpus_per_node: Annotated[int, Ge(0), "nvidia.com/gpu per pod; 0 = CPU training (gloo)"] = 1
    lake_claim: str = (
        "genai-assets-lake"  # the ReadWriteMany PVC holding the lake (deploy/helm/lake-pvc.yaml)
    )
    lake_mount: str = "/lake"  # where the lake is mounted (GENAI_DATA_LAKE)
    shm_size: str = "2Gi"  # /dev/shm for NCCL/gloo between local ranks (the default 64 Mi is too small)
    env: dict[str, str] = field(default_factory=dict)  # extra variables (e.g. Dagster Pipes' bootstrap)
    optional_env_secret: str = "genai-assets-hf-token"  # envFrom, optional: pods start without it
    service_account: str = ""  # "" = the namespace's default service account
    ttl_seconds_after_finished: int = 3600  # Kubernetes deletes the finished Job (and pods) after this

    def __post_init__(self) -> None:
        problems = range_problems(self)
        if not self.image:
            problems.insert(0, "image is empty (the code location's image)")
        raise_problems(self, problems)


def job_name(run_id: str, asset_name: str) -> str:
    """A DNS-1123 name for the training job of ``asset_name`` in run ``run_id`` (<= 52 chars)."""
    base = re.sub(r"[^a-z0-9-]+", "-", f"train-{asset_name}".lower()).strip("-")
    suffix = re.sub(r"[^a-z0-9]", "", run_id.lower())[:8]
    return f"{base[: MAX_JOB_NAME - len(suffix) - 1].rstrip('-')}-{suffix}"


def rendezvous_endpoint(name: str, config: DistributedConfig) -> str:
    """Pod 0's stable DNS name through the headless Service, with the configured (or default) port."""
    port = config.rdzv_endpoint.rpartition(":")[2] if config.rdzv_endpoint else str(DEFAULT_RDZV_PORT)
    return f"{name}-0.{name}:{port}"


def pod_command(name: str, config: DistributedConfig, worker_args: list[str]) -> list[str]:
    """The one torchrun command every pod runs (``python`` of the image, c10d on pod 0's name)."""
    multi_node = DistributedConfig(
        nproc_per_node=config.nproc_per_node,
        nnodes=config.nnodes,
        rdzv_endpoint=rendezvous_endpoint(name, config),
        rdzv_id=name,  # one rendezvous per job: a rerun never joins a stale one
        backend=config.backend,
        threads_per_process=config.threads_per_process,
    )
    command = torchrun_command(multi_node, worker_args)
    # torchrun advertises this address for the process group's master (rank 0's node): the pod IP
    # (downward API, below) rather than a hostname that only the headless Service can resolve.
    return ["python", *command[1:3], "--local_addr=$(POD_IP)", *command[3:]]


def headless_service(name: str, settings: TrainingPodSettings, port: int) -> dict:
    """The Service that gives pod i the DNS name ``<name>-<i>.<name>`` (needed by the rendezvous)."""
    spec = {
        "clusterIP": "None",
        "publishNotReadyAddresses": True,
        "selector": {LABEL_JOB: name},
        "ports": [{"name": "c10d", "port": port, "targetPort": port, "protocol": "TCP"}],
    }
    return _manifest("v1", "Service", name, settings, spec)


def _manifest(api_version: str, kind: str, name: str, settings: TrainingPodSettings, spec: dict) -> dict:
    """One object of the training job, named and labelled so that the launcher can find and delete it."""
    metadata = {"name": name, "namespace": settings.namespace, "labels": {LABEL_JOB: name}}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}


def _container(
    command: list[str], config: DistributedConfig, settings: TrainingPodSettings, port: int
) -> dict:
    requests = {"cpu": settings.cpu, "memory": settings.memory}
    limits = {"memory": settings.memory}
    if settings.gpus_per_node:
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(settings.gpus_per_node)
    env = [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "GENAI_DATA_LAKE", "value": settings.lake_mount},
        *({"name": key, "value": value} for key, value in sorted(settings.env.items())),
    ]
    if config.threads_per_process:
        env.append({"name": "OMP_NUM_THREADS", "value": str(config.threads_per_process)})
    return {
        "name": "torchrun",
        "image": settings.image,
        "command": command,
        "env": env,
        "envFrom": [{"secretRef": {"name": settings.optional_env_secret, "optional": True}}],
        "ports": [{"name": "c10d", "containerPort": port, "protocol": "TCP"}],
        "resources": {"requests": requests, "limits": limits},
        "volumeMounts": [
            {"name": "lake", "mountPath": settings.lake_mount},
            {"name": "dshm", "mountPath": "/dev/shm"},
        ],
    }


def indexed_job(
    name: str, config: DistributedConfig, settings: TrainingPodSettings, worker_args: list[str]
) -> dict:
    """The indexed Job: ``config.nnodes`` pods, each running :func:`pod_command` (``nproc_per_node`` ranks)."""
    port = int(rendezvous_endpoint(name, config).rpartition(":")[2])
    pod_spec = {
        "restartPolicy": "Never",
        # The image's non-root user (deploy/Dockerfile); fsGroup: the lake is writable for it.
        "securityContext": {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001},
        "subdomain": name,  # + the headless Service of that name: pod i resolves as <name>-<i>.<name>
        "containers": [_container(pod_command(name, config, worker_args), config, settings, port)],
        "volumes": [
            {"name": "lake", "persistentVolumeClaim": {"claimName": settings.lake_claim}},
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": settings.shm_size}},
        ],
    }
    if settings.service_account:
        pod_spec["serviceAccountName"] = settings.service_account
    job_spec = {
        "completionMode": "Indexed",
        "completions": config.nnodes,
        "parallelism": config.nnodes,
        "backoffLimit": 0,  # one failed pod fails the job (torchrun: --max_restarts=0)
        "ttlSecondsAfterFinished": settings.ttl_seconds_after_finished,
        "template": {"metadata": {"labels": {LABEL_JOB: name}}, "spec": pod_spec},
    }
    return _manifest("batch/v1", "Job", name, settings, job_spec)


def training_manifests(
    name: str, config: DistributedConfig, settings: TrainingPodSettings, worker_args: list[str]
) -> list[dict]:
    """``[headless Service, indexed Job]`` for one multi-node torchrun training job (create in this order)."""
    if config.nnodes < 2:
        raise ValueError(
            f"A Kubernetes training job is for nnodes >= 2, got {config.nnodes} (one node runs in the step's pod)."
        )
    port = int(rendezvous_endpoint(name, config).rpartition(":")[2])
    return [headless_service(name, settings, port), indexed_job(name, config, settings, worker_args)]
