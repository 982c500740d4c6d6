"""Settings of the three scratch-model stages, defined once (the Dagster configs derive from these).

``ScratchTransformerConfig``, ``NextLineTransformerConfig`` and ``RNNBaselinesConfig`` each hold
one training run's settings (shared fields in :class:`ScratchRunConfig`) plus the model's.
Defaults are the cpu demo profile; :data:`SCRATCH_PRESETS` names the ``tiny`` and ``gpu`` ones.
This module imports no torch, so ``genai_assets.definitions`` can import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Annotated

from genai_assets.config_checks import non_finite_problems, raise_problems, upper_bound_problems
from genai_assets.models.gpt_config import GPT_PRESETS, GPTArchitecture, GPTConfig
from genai_assets.models.sampling_settings import SamplingConfig
from genai_assets.training.precision import precision_problems

DEFAULT_PROMPTS = ["", "The moon", "Shall I compare thee", "O gentle love,"]
RNN_BASELINE_KINDS = ("rnn", "lstm", "gru")


@dataclass
class ScratchRunConfig:
    """Settings shared by every scratch training run (defaults = the cpu demo profile)."""

    max_steps: Annotated[int, "optimizer steps"] = 600
    batch_size: Annotated[int, "sequences per micro-batch"] = 16
    learning_rate: Annotated[float, "AdamW peak learning rate"] = 2e-3
    weight_decay: Annotated[float, "AdamW weight decay (weight matrices only)"] = 0.1
    warmup_steps: Annotated[int, "linear warm-up steps (capped at max_steps), then linear decay to 0"] = 30
    grad_accum_steps: Annotated[int, "micro-batches per optimizer step"] = 1
    grad_clip: Annotated[
        float, "max global gradient norm (the cure for exploding RNN gradients); 0 = off"
    ] = 1.0
    eval_every: Annotated[int, "steps between validation passes (one at the end too)"] = 100
    eval_batches: Annotated[int, "validation batches per periodic pass (the final one uses all); 0 = all"] = (
        20
    )
    sample_every: Annotated[int, "steps between logged samples; 0 = never"] = 0
    checkpoint_every: Annotated[int, "steps between resumable checkpoints; 0 = end only"] = 100
    seed: Annotated[int, "seed of initialisation, batch sampling and dropout"] = 1337
    device: Annotated[str, "'auto' (cuda if available, else cpu), 'cpu' or 'cuda[:n]'"] = "auto"
    keep_checkpoint: Annotated[bool, "keep the final checkpoint after success"] = False
    precision: Annotated[
        str,
        "'auto' (bf16 autocast on CUDA, fp16 + gradient scaler on GPUs without bf16, fp32 on CPU), "
        "'fp32', 'bf16' or 'fp16'",
    ] = "auto"
    compile: Annotated[bool, "torch.compile the training forward (pays for small models on a GPU)"] = False
    num_threads: Annotated[
        int, "torch CPU threads (0 = torch's default, one per core); 1 is faster on a busy machine"
    ] = 0

    def __post_init__(self) -> None:
        raise_problems(self, self.problems())

    def problems(self) -> list[str]:
        """Every invalid field, named (subclasses extend the list)."""
        # A GPT config's layer fields are bounded by architecture_problems (not twice).
        layers = GPTArchitecture.__dataclass_fields__ if isinstance(self, GPTArchitecture) else {}
        names = [item.name for item in fields(self) if item.name not in layers]
        problems = non_finite_problems(self) + upper_bound_problems(self, names)
        for name in ("max_steps", "batch_size", "grad_accum_steps"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "eval_every", "eval_batches", "sample_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            problems.append(f"learning_rate must be > 0, got {self.learning_rate}")
        for name in ("weight_decay", "grad_clip"):
            if not getattr(self, name) >= 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.num_threads < 0:
            problems.append(f"num_threads must be >= 0, got {self.num_threads}")
        problems += precision_problems(self.precision)
        if not (self.device in ("auto", "cpu") or self.device.startswith(("cuda", "mps"))):
            problems.append(f"device must be 'auto', 'cpu' or 'cuda[:n]', got {self.device!r}")
        return problems

    def loop_config(self):
        """The shared loop's :class:`~genai_assets.training.loop.TrainLoopConfig` (imports torch)."""
        from genai_assets.training.loop import TrainLoopConfig

        return TrainLoopConfig(
            max_steps=self.max_steps,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            warmup_steps=min(self.warmup_steps, self.max_steps),
            grad_accum_steps=self.grad_accum_steps,
            grad_clip=self.grad_clip,
            eval_every=self.eval_every,
            eval_batches=self.eval_batches,
            sample_every=self.sample_every,
            checkpoint_every=self.checkpoint_every,
            seed=self.seed,
            precision=self.precision,
            compile=self.compile,
        )


@dataclass
class LanguageModelRunConfig(ScratchRunConfig):
    """A run of a next-token language model (GPT or RNN): context window and sampling settings."""

    block_size: Annotated[int, "training window in tokens (GPT: also its context length)"] = 128
    sample_prompts: Annotated[list[str], "'' = from scratch"] = field(
        default_factory=lambda: list(DEFAULT_PROMPTS)
    )
    sampling: Annotated[
        SamplingConfig,
        "how the logged samples are decoded (no repetition controls by default: they show what was learned); "
        "seed None = the run's seed; temperature, top-k and top-p are also the saved generation defaults",
    ] = field(
        default_factory=lambda: SamplingConfig(temperature=0.8, repetition_penalty=1.0, max_new_tokens=96)
    )

    def __post_init__(self) -> None:
        if isinstance(self.sampling, dict):  # a run config's or a torchrun worker's nested mapping
            self.sampling = SamplingConfig(**self.sampling)  # its own checks run here
        super().__post_init__()

    def problems(self) -> list[str]:
        problems = super().problems()
        if self.block_size < 2:
            problems.append(f"block_size must be >= 2, got {self.block_size}")
        if not self.sample_prompts:
            problems.append("sample_prompts must hold at least one prompt ('' = from scratch)")
        if self.sampling.num_return_sequences != 1:
            problems.append(
                f"sampling.num_return_sequences must be 1 (one sample per prompt), got "
                f"{self.sampling.num_return_sequences}"
            )
        return problems


@dataclass
class ScratchTransformerConfig(GPTArchitecture, LanguageModelRunConfig):
    """The decoder-only GPT and its training run (defaults = the cpu demo profile).

    The model's fields and their checks are :class:`~genai_assets.models.gpt_config.GPTArchitecture`'s
    (declared once, there); the context length is the run's ``block_size`` and the vocabulary the
    tokenizer's, both filled in by :meth:`gpt_config`.
    """

    max_steps: int = 300
    learning_rate: float = 4e-3
    eval_batches: Annotated[int, "validation batches per pass; 0 = the whole val split"] = 0

    def problems(self) -> list[str]:
        return super().problems() + self.architecture_problems()

    def gpt_config(self, vocab_size: int) -> GPTConfig:
        """The model's config: these layers, the run's ``block_size`` and the tokenizer's vocabulary."""
        return GPTConfig(vocab_size=vocab_size, block_size=self.block_size, **self.architecture())


@dataclass
class NextLineTransformerConfig(ScratchRunConfig):
    """The encoder–decoder next-line model and its training run."""

    max_steps: int = 300
    batch_size: Annotated[int, "line pairs per micro-batch"] = 32
    learning_rate: float = 3e-3
    n_encoder_layers: Annotated[int, "encoder layers"] = 2
    n_decoder_layers: Annotated[int, "decoder layers"] = 2
    n_head: Annotated[int, "attention heads"] = 4
    d_model: Annotated[int, "model width"] = 128
    dropout: Annotated[float, "dropout (P_drop; 0: the demo sees a fraction of an epoch)"] = 0.0
    norm_first: Annotated[bool, "pre-norm if true, the paper's post-norm if false"] = True
    max_line_tokens: Annotated[int, "longest source/target line in tokens (longer ones are cut)"] = 32
    n_examples: Annotated[int, "validation lines shown with their generated next line"] = 8

    def problems(self) -> list[str]:
        names = ("n_encoder_layers", "n_decoder_layers", "n_head", "d_model", "max_line_tokens")
        problems = super().problems() + _model_problems(self, names)
        if self.n_head >= 1 and self.d_model % self.n_head:
            problems.append(f"d_model ({self.d_model}) must be divisible by n_head ({self.n_head})")
        if self.n_examples < 0:
            problems.append(f"n_examples must be >= 0, got {self.n_examples}")
        return problems


@dataclass
class RNNBaselinesConfig(LanguageModelRunConfig):
    """RNN/LSTM/GRU baselines on the same data; compared with the transformer at the same tokens seen.

    Each RNN trains for ``max_steps × batch_size × block_size`` tokens (a third of the
    transformer's demo budget, so the three fit the demo's time); the comparison table puts them
    next to the transformer's full-val evaluation at the same number of tokens (and at its end).
    """

    max_steps: Annotated[int, "optimizer steps per model"] = 100
    eval_every: int = 50
    eval_batches: Annotated[int, "validation batches per pass; 0 = the whole val split"] = 0
    learning_rate: Annotated[float, "AdamW peak learning rate (recurrent nets take a larger one)"] = 1e-2

    kinds: Annotated[list[str], "which recurrent cells to train"] = field(
        default_factory=lambda: list(RNN_BASELINE_KINDS)
    )
    n_embd: Annotated[int, "embedding width (tied with the output head)"] = 128
    hidden_size: Annotated[int, "recurrent state width"] = 256
    n_layer: Annotated[int, "stacked recurrent layers"] = 1
    dropout: Annotated[float, "dropout on embeddings, between layers and before the head"] = 0.0

    def problems(self) -> list[str]:
        problems = super().problems() + _model_problems(self, ("n_embd", "hidden_size", "n_layer"))
        unknown = sorted(set(self.kinds) - set(RNN_BASELINE_KINDS))
        if unknown or not self.kinds:
            problems.append(
                f"kinds must be a non-empty subset of {list(RNN_BASELINE_KINDS)}, got {self.kinds}"
            )
        return problems


def _model_problems(config, positive: tuple[str, ...]) -> list[str]:
    problems = [
        f"{name} must be >= 1, got {getattr(config, name)}" for name in positive if getattr(config, name) < 1
    ]
    if not 0 <= config.dropout < 1:
        problems.append(f"dropout must be in [0, 1), got {config.dropout}")
    return problems


# Named presets: overrides of the defaults above per asset (cpu = the defaults).
SCRATCH_PRESETS: dict[str, dict[str, dict]] = {
    "scratch_transformer": {
        # the model's sizes (block_size included) are GPT_PRESETS'; the run's settings are added here
        "tiny": {
            **GPT_PRESETS["tiny"], "max_steps": 6, "batch_size": 4, "warmup_steps": 2, "eval_every": 3,
            "eval_batches": 2, "checkpoint_every": 3, "sampling": {"max_new_tokens": 12}, "sample_prompts": ["", "The moon"],
        },
        "cpu": {**GPT_PRESETS["cpu"]},
        "gpu": {
            **GPT_PRESETS["gpu"], "max_steps": 5000, "batch_size": 64, "learning_rate": 1e-3, "warmup_steps": 200,
            "eval_every": 250, "eval_batches": 50, "checkpoint_every": 500,
            # small, so launch-bound on a GPU: issue 16's H200 runs had a bf16 + compile loop 3.6x our fp32 one
            "compile": True,
        },
    },
    "next_line_transformer": {
        "tiny": {
            "max_steps": 6, "batch_size": 8, "n_encoder_layers": 1, "n_decoder_layers": 1, "n_head": 2,
            "d_model": 32, "dropout": 0.0, "warmup_steps": 2, "eval_every": 3, "eval_batches": 2,
            "checkpoint_every": 3, "max_line_tokens": 16, "n_examples": 2,
        },
        "cpu": {},
        "gpu": {
            "max_steps": 4000, "batch_size": 128, "n_encoder_layers": 4, "n_decoder_layers": 4, "n_head": 8,
            "d_model": 256, "dropout": 0.2, "warmup_steps": 200, "eval_every": 250, "checkpoint_every": 500,
        },
    },
    "rnn_baselines": {
        "tiny": {
            "max_steps": 6, "batch_size": 4, "block_size": 32, "n_embd": 32, "hidden_size": 48, "dropout": 0.0,
            "warmup_steps": 2, "eval_every": 3, "eval_batches": 2, "checkpoint_every": 3,
            "sampling": {"max_new_tokens": 12}, "sample_prompts": ["", "The moon"], "num_threads": 1,
        },
        "cpu": {},
        "gpu": {
            "max_steps": 5000, "batch_size": 64, "block_size": 256, "n_embd": 384, "hidden_size": 768,
            "n_layer": 2, "dropout": 0.2, "learning_rate": 2e-3, "warmup_steps": 200, "eval_every": 250,
            "eval_batches": 50, "checkpoint_every": 500,
        },
    },
}  # fmt: skip
