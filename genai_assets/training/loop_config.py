"""Settings of the one training loop, declared once (no torch: the stage configs inherit them).

:func:`genai_assets.training.loop.train` takes a :class:`TrainLoopConfig`: the
:class:`TrainingSettings` every run has, plus its length in steps. The scratch stages' run config
(``training.scratch_config.ScratchRunConfig``) inherits :class:`TrainLoopConfig` and the
fine-tune's (``finetune.train.FinetuneConfig``, whose length is in epochs) :class:`TrainingSettings`,
so their optimiser, schedule, evaluation and checkpoint fields, descriptions and checks are these.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Annotated

from genai_assets.config_checks import (
    Ge,
    Gt,
    Interval,
    declared_values,
    raise_problems,
    range_problems,
)
from genai_assets.training.precision import precision_problems

PRECISION_HELP = (
    "'auto' (bf16 autocast on CUDA, fp16 + gradient scaler on GPUs without bf16, fp32 on CPU), "
    "'fp32', 'bf16' or 'fp16'"
)


@dataclass
class TrainingSettings:
    """What every training run sets, however its length is counted (steps here, epochs in the
    fine-tune): optimiser, warm-up, clipping, evaluation size, samples, checkpoints, seed, precision."""

    learning_rate: Annotated[float, Gt(0), "AdamW peak learning rate, reached at the end of warm-up"] = 3e-4
    weight_decay: Annotated[float, Ge(0), "AdamW decoupled weight decay, on weight matrices only"] = 0.1
    adam_betas: Annotated[tuple[float, float], Interval(ge=0, lt=1), "AdamW (beta1, beta2)"] = (0.9, 0.95)
    adam_eps: Annotated[float, Gt(0), "AdamW epsilon"] = 1e-8
    warmup_steps: Annotated[
        int, Ge(0), "linear warm-up steps (capped at the run's length), then linear decay to 0"
    ] = 20
    grad_accum_steps: Annotated[int, Ge(1), "micro-batches per optimizer step"] = 1
    grad_clip: Annotated[
        float, Ge(0), "max global gradient L2 norm (the cure for exploding RNN gradients); 0 = off"
    ] = 1.0
    eval_batches: Annotated[
        int, Ge(0), "validation batches per periodic pass (the final one uses all); 0 = all"
    ] = 20
    sample_every: Annotated[int, Ge(0), "steps between logged samples; 0 = never"] = 0
    checkpoint_every: Annotated[int, Ge(0), "steps between resumable checkpoints; 0 = end only"] = 100
    seed: Annotated[int, "seeds initialisation, batch sampling and dropout (torch, numpy, random)"] = 1337
    precision: Annotated[str, PRECISION_HELP] = "auto"

    def __post_init__(self) -> None:
        self.adam_betas = tuple(self.adam_betas)  # configs from JSON or Dagster give lists
        raise_problems(self, self.problems())

    def problems(self) -> list[str]:
        """Every invalid setting, named (subclasses extend the list)."""
        own = [item.name for item in fields(TrainingSettings)]  # a subclass bounds its own fields
        problems = range_problems(self, own)
        if len(self.adam_betas) != 2:
            problems.append(f"adam_betas must be two numbers (beta1, beta2), got {self.adam_betas}")
        return problems + precision_problems(self.precision)

    def training_settings(self) -> dict:
        """Just these fields (from a subclass: without its other settings)."""
        return declared_values(self, TrainingSettings)


@dataclass
class TrainLoopConfig(TrainingSettings):
    """Hyperparameters of :func:`~genai_assets.training.loop.train`: the shared settings plus the run's
    length in optimizer steps. Defaults are a small CPU run."""

    max_steps: Annotated[
        int, Ge(1), "optimizer steps in total (a resumed run counts the steps already done)"
    ] = 200
    eval_every: Annotated[
        int, Ge(0), "steps between validation passes (one at the end too); 0 = end only"
    ] = 50
    compile: Annotated[bool, "torch.compile the training forward (pays for small models on a GPU)"] = False

    def problems(self) -> list[str]:
        return super().problems() + range_problems(self, ("max_steps", "eval_every"))

    def loop_config(self) -> TrainLoopConfig:
        """Just the loop's settings (a subclass's run config carries more fields than ``train`` takes)."""
        return TrainLoopConfig(**declared_values(self, TrainLoopConfig))
