"""Resumable training checkpoints: weights as safetensors, everything else in ``trainer_state.pt``.

A checkpoint folder holds exactly two files:

* ``model.safetensors`` — the model weights (all of them, or only the trained subset when the
  loop was given ``trainable_parameters``, e.g. LoRA adapters; tied weights are stored once);
* ``trainer_state.pt`` — optimizer and scheduler state, the step, the RNG states, the history
  so far; loaded with ``torch.load(weights_only=True)``, so it holds only tensors and plain
  Python values (no pickled classes).

The pair is written into a staging folder that is swapped in whole
(:func:`genai_assets.lake.atomic_directory`): a crash mid-write leaves the previous checkpoint
intact, and weights and state always belong to the same step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genai_assets.lake import atomic_directory

WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "trainer_state.pt"


class CheckpointError(RuntimeError):
    """A checkpoint folder exists but cannot be used (corrupt, or written for another model)."""


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
    with atomic_directory(checkpoint_dir) as staging:
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
