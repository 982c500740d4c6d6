"""Resumable training checkpoints: weights as safetensors, everything else in ``trainer_state.pt``.

A checkpoint folder holds two files (plus the run's ``fingerprint.json``, see below):

* ``model.safetensors`` — the model weights (all of them, or only the trained subset when the
  loop was given ``trainable_parameters``, e.g. LoRA adapters; tied weights are stored once);
* ``trainer_state.pt`` — optimizer and scheduler state, the step, the RNG states, the history
  so far; loaded with ``torch.load(weights_only=True)``, so it holds only tensors and plain
  Python values (no pickled classes).

The pair is written into a staging folder that is swapped in whole
(:func:`genai_assets.lake.atomic_directory`): a crash mid-write leaves the previous checkpoint
intact, and weights and state always belong to the same step.

Two runs of the same training asset must not share a checkpoint folder (one would resume, or
delete, the other's state). So:

* :func:`training_lock` takes an exclusive lock per training asset (``<checkpoints>/.<asset>.lock``,
  an OS file lock through ``filelock``, released by the OS if the process dies). A second run fails
  fast with :class:`TrainingLockedError` naming the asset rather than waiting: a queued duplicate
  would only redo the same work, and Dagster's concurrency pools are the place to queue runs.
* ``fingerprint.json`` (what the run must match to resume: settings + a hash of the data content)
  lives INSIDE the checkpoint folder and is swapped in with the weights, so a checkpoint can never
  carry another run's fingerprint. :func:`prepare_checkpoint` discards a checkpoint whose
  fingerprint differs.

One folder policy for every training asset (scratch models, RNN baselines, fine-tune):
:func:`prepare_run_checkpoint` — the run trains in ``<asset checkpoints>/run-<settings hash>``,
other ``run-*`` folders of the asset are deleted under the lock, and the folder resumes only if
its stored fingerprint matches.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genai_assets.lake import atomic_directory, atomic_write_text
from genai_assets.models.loading import WEIGHTS_FILE

STATE_FILE = "trainer_state.pt"
FINGERPRINT_FILE = "fingerprint.json"
# Folders this process holds the training lock of (checked before deleting other runs' folders).
_HELD_LOCKS: set[Path] = set()


class CheckpointError(RuntimeError):
    """A checkpoint folder exists but cannot be used (corrupt, or written for another model)."""


class TrainingLockedError(RuntimeError):
    """Another run holds the training lock of this asset."""


@contextlib.contextmanager
def training_lock(asset_checkpoint_root: str | Path, asset: str | None = None) -> Iterator[Path]:
    """Hold the exclusive training lock of one asset (its checkpoint root) for the block; fail fast.

    Under ``torchrun`` only rank 0 takes it (the other ranks belong to the same run).
    """
    from filelock import FileLock, Timeout

    root = Path(asset_checkpoint_root)
    root.mkdir(parents=True, exist_ok=True)
    if int(os.environ.get("RANK", "0")) != 0:
        yield root
        return
    # is_singleton/thread_local off: every call is its own lock holder, so two threads of one
    # process exclude each other exactly like two processes do.
    # Beside the folder, not in it: the folder itself stays only checkpoints (and may be deleted).
    lock_path = root.with_name(f".{root.name}.lock")
    lock = FileLock(str(lock_path), timeout=0, is_singleton=False, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise TrainingLockedError(
            f"Another run is training {asset or root.name!r} right now (lock {lock_path} is held). "
            "Wait for it to finish or cancel it, then run again; two runs would overwrite each other's "
            "checkpoints."
        ) from None
    _HELD_LOCKS.add(root.resolve())
    try:
        yield root
    finally:
        _HELD_LOCKS.discard(root.resolve())
        lock.release()


def holds_training_lock(folder: str | Path) -> bool:
    """True if this process holds the training lock of ``folder`` or of a folder above it."""
    folder = Path(folder).resolve()
    return any(folder == held or held in folder.parents for held in _HELD_LOCKS)


def remove_other_runs(base: str | Path, keep: str) -> list[str]:
    """Delete the ``run-*`` folders in ``base`` except ``keep``; only allowed under the asset's lock.

    They are checkpoints of other settings or data, which can never resume. Without the lock
    another run could be writing one of them, so this refuses instead.
    """
    base = Path(base)
    if not holds_training_lock(base):
        raise RuntimeError(f"Refusing to delete run folders in {base} without holding its training lock.")
    removed = []
    for stale in sorted(base.glob("run-*")):
        if stale.name != keep and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale.name)
    return removed


def discard_run_checkpoint(checkpoint_dir: str | Path) -> bool:
    """Delete a finished run's checkpoint folder, unless another run of the asset holds the lock now.

    Called after success, when the run has released its lock: a second run with the same settings
    may already have taken the lock and resumed from this folder, so it is left to that run.
    Returns True if the folder was deleted.
    """
    checkpoint_dir = Path(checkpoint_dir)
    try:
        with training_lock(checkpoint_dir.parent):
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
    except TrainingLockedError:
        return False
    return True


def prepare_run_checkpoint(
    asset_root: str | Path, run_name: str, fingerprint: str, resume: bool = True
) -> tuple[Path, str, list[str]]:
    """Ready ``<asset_root>/<run_name>`` (``run-<settings hash>``) for a run; call it holding the lock.

    Every other ``run-*`` folder of the asset is deleted (:func:`remove_other_runs`: a checkpoint of
    other settings can never resume), then :func:`prepare_checkpoint` keeps the folder only if it
    holds a complete checkpoint with ``fingerprint`` and ``resume`` is on.
    Returns ``(folder, action, removed folder names)``.
    """
    if not run_name.startswith("run-"):
        raise ValueError(f"Run checkpoint folders are named run-<hash>, got {run_name!r}.")
    asset_root = Path(asset_root)
    removed = remove_other_runs(asset_root, keep=run_name)
    action = prepare_checkpoint(asset_root / run_name, fingerprint, resume)
    return asset_root / run_name, action, removed


def run_fingerprint(*parts: Any, arrays: Iterable = ()) -> str:
    """SHA-256 (hex) of what a resumable run must match: ``parts`` (settings, data digests) as
    sorted-key JSON, other types by ``str``, then each of ``arrays`` (token ids) as int64 bytes.
    The one fingerprint of the scratch models' and the fine-tune's checkpoints."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
    for array in arrays:
        digest.update(np.asarray(array, dtype=np.int64).tobytes())
    return digest.hexdigest()


def checkpoint_fingerprint(checkpoint_dir: str | Path | None) -> str | None:
    """The fingerprint stored inside ``checkpoint_dir``; None if absent or unreadable."""
    if checkpoint_dir is None:
        return None
    try:
        value = json.loads((Path(checkpoint_dir) / FINGERPRINT_FILE).read_text()).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def prepare_checkpoint(checkpoint_dir: str | Path, fingerprint: str, resume: bool = True) -> str:
    """Make ``checkpoint_dir`` ready for a run with ``fingerprint``; returns what was done.

    A complete checkpoint with the same fingerprint is kept (``"resume"``). Anything else (other
    fingerprint, none, ``resume`` off, a partial folder) is replaced by a folder holding only the
    fingerprint (``"fresh"`` or ``"discarded"``); :func:`save_checkpoint` carries it into every
    checkpoint it writes.
    """
    checkpoint_dir = Path(checkpoint_dir)
    complete = has_checkpoint(checkpoint_dir)
    if resume and complete and checkpoint_fingerprint(checkpoint_dir) == fingerprint:
        return "resume"
    with atomic_directory(checkpoint_dir) as staging:
        atomic_write_text(staging / FINGERPRINT_FILE, json.dumps({"fingerprint": fingerprint}) + "\n")
    return "discarded" if complete else "fresh"


def has_checkpoint(checkpoint_dir: str | Path | None) -> bool:
    """True if ``checkpoint_dir`` holds a complete checkpoint (weights and trainer state)."""
    if checkpoint_dir is None:
        return False
    folder = Path(checkpoint_dir)
    return (folder / WEIGHTS_FILE).is_file() and (folder / STATE_FILE).is_file()


def save_checkpoint(
    checkpoint_dir: str | Path,
    model: torch.nn.Module,
    trainer_state: dict[str, Any],
    parameter_names: list[str] | None = None,
) -> Path:
    """Write weights and ``trainer_state`` to ``checkpoint_dir``, replacing it whole.

    ``parameter_names``: save only these named parameters (the trained subset); ``None`` saves
    the full model via ``safetensors.torch.save_model`` (which de-duplicates tied weights).
    """
    from safetensors.torch import save_file, save_model

    checkpoint_dir = Path(checkpoint_dir)
    step_metadata = {"step": str(int(trainer_state["step"]))}
    fingerprint = checkpoint_fingerprint(checkpoint_dir)
    with atomic_directory(checkpoint_dir) as staging:
        if fingerprint is not None:  # the run's fingerprint travels inside every checkpoint it writes
            (staging / FINGERPRINT_FILE).write_text(json.dumps({"fingerprint": fingerprint}) + "\n")
        if parameter_names is None:
            save_model(model, str(staging / WEIGHTS_FILE), metadata=step_metadata)
        else:
            named = dict(model.named_parameters())
            tensors = {name: named[name].detach().contiguous().cpu() for name in parameter_names}
            save_file(tensors, str(staging / WEIGHTS_FILE), metadata=step_metadata)
        torch.save(trainer_state, staging / STATE_FILE)
    return checkpoint_dir


def load_checkpoint(
    checkpoint_dir: str | Path,
    model: torch.nn.Module,
    parameter_names: list[str] | None = None,
) -> dict[str, Any]:
    """Load the weights into ``model`` (in place) and return the trainer state.

    Raises :class:`CheckpointError` naming the folder if a file is unreadable, the weights do
    not fit the model, or weights and state disagree on the step.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file, load_model

    checkpoint_dir = Path(checkpoint_dir)
    weights_path, state_path = checkpoint_dir / WEIGHTS_FILE, checkpoint_dir / STATE_FILE
    hint = "delete the folder to start training from scratch"
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated/garbled files
        raise CheckpointError(f"Corrupt trainer state {state_path}: {error}; {hint}.") from error
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"Trainer state {state_path} has no 'step' entry; {hint}.")
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            weights_step = (handle.metadata() or {}).get("step")
        if parameter_names is None:
            # strict=True: every model tensor must be in the file and vice versa.
            load_model(model, str(weights_path), strict=True, device=_model_device(model))
        else:
            tensors = load_file(str(weights_path))
            if sorted(tensors) != sorted(parameter_names):
                raise CheckpointError(
                    f"Checkpoint {weights_path} holds parameters {sorted(tensors)[:5]}..., "
                    f"but the trained parameters are {sorted(parameter_names)[:5]}...; {hint}."
                )
            named = dict(model.named_parameters())
            with torch.no_grad():
                for name, tensor in tensors.items():
                    named[name].copy_(tensor)
    except CheckpointError:
        raise
    except Exception as error:
        raise CheckpointError(
            f"Checkpoint weights {weights_path} do not load into this model: {error}; {hint}."
        ) from error
    if weights_step is not None and int(weights_step) != int(state["step"]):
        raise CheckpointError(
            f"Checkpoint {checkpoint_dir} mixes weights of step {weights_step} with trainer state of "
            f"step {state['step']}; {hint}."
        )
    return state


def _model_device(model: torch.nn.Module) -> str:
    first = next(model.parameters(), None)
    return str(first.device) if first is not None else "cpu"
