"""Data-parallel training with PyTorch's own machinery: ``torchrun`` + ``DistributedDataParallel``.

Distributed training is a launch mode of the one training loop (:mod:`genai_assets.training.loop`),
not a second loop. ``torchrun`` starts ``nproc_per_node`` copies of
:mod:`genai_assets.stages.distributed_worker` on each of ``nnodes`` machines; each copy calls
:func:`init_distributed`, then runs the same ``run_language_model`` / ``finetune`` function as the
in-process path. When the loop sees an initialised process group it:

* wraps the model in ``DistributedDataParallel`` (gradients all-reduced in the backward pass;
  ``no_sync`` on every micro-batch but the last of a step, so accumulation costs one all-reduce);
* gives every rank the same *global* micro-batch stream (a data RNG seeded identically on every
  rank) and lets each rank keep only its contiguous slice of each batch (:func:`shard_batch`), so
  every row — every token — is used by exactly one rank, once, and the run with ``batch_size`` B on
  N ranks sees the same batches as a single process with batch B (tested: equal loss curves);
* keeps a second, per-rank RNG (seeded ``seed + rank``) for dropout, so ranks do not drop the same
  units; both RNGs of every rank are saved in checkpoints and restored on resume;
* lets rank 0 alone write checkpoints (atomic, as in-process), then holds every rank at a barrier,
  so a rank that resumes always finds a complete checkpoint.

The backend is ``nccl`` when CUDA is available and ``gloo`` otherwise (``backend="auto"``).
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from typing import Annotated, Any

from genai_assets.config_checks import Ge, raise_problems, range_problems

BACKENDS = ("auto", "gloo", "nccl")
WORKER_MODULE = "genai_assets.stages.distributed_worker"
# Test hook: "RANK:STEP" makes that rank exit abruptly (os._exit) when it reaches that step, the way a
# killed or crashed worker would. Read by the loop only in distributed mode.
FAULT_ENV = "GENAI_ASSETS_FAULT_EXIT"


@dataclass
class DistributedConfig:
    """How to launch a data-parallel run with ``torchrun``."""

    nproc_per_node: Annotated[int, Ge(1), "training processes per machine (one per GPU on GPU machines)"] = 2
    nnodes: Annotated[int, Ge(1), "machines; > 1 needs rdzv_endpoint reachable from every machine"] = 1
    rdzv_endpoint: Annotated[
        str, '"host:port" of the rendezvous (c10d); "" = a free local port (one node)'
    ] = ""
    rdzv_id: Annotated[str, "names the job at the rendezvous; the same on every node"] = "genai-assets"
    backend: Annotated[str, '"auto" (nccl on CUDA, else gloo), "gloo" or "nccl"'] = "auto"
    threads_per_process: Annotated[
        int, Ge(0), "OMP/torch threads per process on CPU (2 processes x 1 thread on 2 cores)"
    ] = 1

    def __post_init__(self) -> None:
        problems = range_problems(self)
        if self.nnodes > 1 and not self.rdzv_endpoint:
            problems.append("nnodes > 1 needs rdzv_endpoint ('host:port' reachable from every node)")
        if self.rdzv_endpoint and ":" not in self.rdzv_endpoint:
            problems.append(f"rdzv_endpoint must be 'host:port', got {self.rdzv_endpoint!r}")
        if self.backend not in BACKENDS:
            problems.append(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        raise_problems(self, problems)

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes


def resolve_backend(backend: str = "auto") -> str:
    """``auto`` → ``nccl`` if CUDA is available, else ``gloo``; an explicit ``nccl`` without CUDA is refused."""
    import torch

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    if backend == "auto":
        return "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        raise ValueError("backend='nccl' needs CUDA GPUs; use 'auto' or 'gloo' on CPU.")
    return backend


def torchrun_command(config: DistributedConfig, worker_args: list[str]) -> list[str]:
    """The ``torchrun`` command line (as ``python -m torch.distributed.run``, the same venv) for the worker."""
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={config.nproc_per_node}"]
    if config.nnodes == 1 and not config.rdzv_endpoint:
        command.append("--standalone")  # a private rendezvous on a free port: no clashes between runs
    else:
        command += [
            f"--nnodes={config.nnodes}",
            "--rdzv_backend=c10d",
            f"--rdzv_endpoint={config.rdzv_endpoint}",
            f"--rdzv_id={config.rdzv_id}",
        ]
    # No restarts: a failed rank fails the run (the next run resumes from the last checkpoint).
    command += ["--max_restarts=0", "-m", WORKER_MODULE, *worker_args]
    return command


def worker_environment(config: DistributedConfig) -> dict[str, str]:
    """Environment for the torchrun process: thread count per rank (torchrun would otherwise force 1)."""
    env = {}
    if config.threads_per_process:
        env["OMP_NUM_THREADS"] = str(config.threads_per_process)
    return env


def describe(command: list[str]) -> str:
    return shlex.join(command)


@dataclass
class DistributedContext:
    """This process's place in the job (from torchrun's environment variables)."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(backend: str = "auto") -> DistributedContext:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_*``).

    Without torchrun's variables this is a world of one and no process group is created. On CUDA the
    rank uses GPU ``LOCAL_RANK``.
    """
    import torch
    import torch.distributed as dist

    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistributedContext(rank=0, world_size=1, local_rank=0, backend="none")
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = resolve_backend(backend)
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, backend=backend)


def active_world() -> tuple[int, int] | None:
    """``(rank, world_size)`` if a process group is initialised, else ``None`` (in-process training)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return None


def shard_batch(batch: Any, rank: int, world_size: int) -> Any:
    """This rank's contiguous slice (along dim 0) of every tensor in a global batch.

    Batches are tuples/lists of tensors ``(B, ...)`` or dicts of them. Slices differ by at most one
    row; the loop skips global batches with fewer rows than ranks (every rank needs a slice).
    """
    import torch

    if isinstance(batch, torch.Tensor):
        return batch.tensor_split(world_size)[rank]
    if isinstance(batch, dict):
        return {name: shard_batch(value, rank, world_size) for name, value in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard_batch(value, rank, world_size) for value in batch)
    raise TypeError(
        f"Cannot split a batch of type {type(batch).__name__} across ranks: "
        "use tensors, tuples/lists of tensors or dicts of tensors."
    )


def batch_rows(batch: Any) -> int:
    """Rows (dim 0) of a batch as :func:`shard_batch` understands it."""
    import torch

    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    values = list(batch.values()) if isinstance(batch, dict) else list(batch)
    return batch_rows(values[0])


def maybe_inject_fault(rank: int, step: int) -> None:
    """Exit this process abruptly if :data:`FAULT_ENV` names this rank and step (tests only)."""
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return
    fault_rank, _, fault_step = spec.partition(":")
    if int(fault_rank) == rank and int(fault_step) == step:
        print(f"[rank {rank}] {FAULT_ENV}={spec}: exiting at step {step}", file=sys.stderr, flush=True)
        os._exit(17)


def rank_device() -> str:
    """This process's device: its own GPU (``LOCAL_RANK``) under an nccl group, else cuda/cpu."""
    import torch
    import torch.distributed as dist

    if active_world() is not None and dist.get_backend() == "nccl":
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cuda" if torch.cuda.is_available() else "cpu"


def is_main_process() -> bool:
    """True in-process and on rank 0 of a distributed job (the one that writes files)."""
    world = active_world()
    return world is None or world[0] == 0


def on_rank_zero(fn):
    """``fn()`` on rank 0 only (e.g. preparing a checkpoint folder); every rank gets its result after it.

    In-process this is just ``fn()``. The result must be picklable (it is broadcast).
    """
    world = active_world()
    if world is None:
        return fn()
    import torch.distributed as dist

    holder = [fn() if world[0] == 0 else None]
    dist.broadcast_object_list(holder, src=0)  # also a barrier: no rank goes on before rank 0 is done
    return holder[0]
