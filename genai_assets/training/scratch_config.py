"""Settings of the three scratch-model stages, defined once (the Dagster configs derive from these).

``ScratchTransformerConfig``, ``NextLineTransformerConfig`` and ``RNNBaselinesConfig`` each hold
one training run's settings (shared fields in :class:`ScratchRunConfig`) plus the model's.
Defaults are the cpu demo profile; :data:`SCRATCH_PRESETS` names the ``tiny`` and ``gpu`` ones.
This module imports no torch, so ``genai_assets.definitions`` can import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genai_assets.config_checks import non_finite_problems, raise_problems
from genai_assets.generation.settings import filter_problems
from genai_assets.models.gpt_config import GPT_PRESETS, GPTArchitecture, GPTConfig

DEFAULT_PROMPTS = ["", "The moon", "Shall I compare thee", "O gentle love,"]
RNN_BASELINE_KINDS = ("rnn", "lstm", "gru")


@dataclass
class ScratchRunConfig:
    """Settings shared by every scratch training run (defaults = the cpu demo profile)."""

    max_steps: int = 600  # optimizer steps
    batch_size: int = 16  # sequences per micro-batch
    learning_rate: float = 2e-3  # AdamW peak learning rate
    weight_decay: float = 0.1  # AdamW weight decay (weight matrices only)
    warmup_steps: int = 30  # linear warm-up steps (capped at max_steps), then linear decay to 0
    grad_accum_steps: int = 1  # micro-batches per optimizer step
    grad_clip: float = 1.0  # max global gradient norm (the cure for exploding RNN gradients); 0 = off
    eval_every: int = 100  # steps between validation passes (one at the end too)
    eval_batches: int = 20  # validation batches per periodic pass (the final one uses all); 0 = all
    sample_every: int = 0  # steps between logged samples; 0 = never
    checkpoint_every: int = 100  # steps between resumable checkpoints; 0 = end only
    seed: int = 1337  # seed of initialisation, batch sampling and dropout
    device: str = "auto"  # 'auto' (cuda if available, else cpu), 'cpu' or 'cuda[:n]'
    keep_checkpoint: bool = False  # keep the final checkpoint after success
    # torch CPU threads (0 = torch's default, one per core); 1 is faster on a busy machine
    num_threads: int = 0

    def __post_init__(self) -> None:
        raise_problems(self, self.problems())

    def problems(self) -> list[str]:
        """Every invalid field, named (subclasses extend the list)."""
        problems = non_finite_problems(self)
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
        )


@dataclass
class LanguageModelRunConfig(ScratchRunConfig):
    """A run of a next-token language model (GPT or RNN): context window and sampling settings."""

    block_size: int = 128  # training window in tokens (GPT: also its context length)
    sample_prompts: list[str] = field(default_factory=lambda: list(DEFAULT_PROMPTS))  # '' = from scratch
    sample_max_new_tokens: int = 96  # new tokens per sample
    temperature: float = 0.8  # sampling temperature (also the saved generation default)
    top_k: int = 50  # top-k filter for sampling; 0 = off
    top_p: float = 0.95  # nucleus (top-p) filter for sampling; 1 = off

    def problems(self) -> list[str]:
        problems = super().problems()
        if self.block_size < 2:
            problems.append(f"block_size must be >= 2, got {self.block_size}")
        if not self.sample_prompts:
            problems.append("sample_prompts must hold at least one prompt ('' = from scratch)")
        if self.sample_max_new_tokens < 1:
            problems.append(f"sample_max_new_tokens must be >= 1, got {self.sample_max_new_tokens}")
        return problems + filter_problems(self.temperature, self.top_k, self.top_p)


@dataclass
class ScratchTransformerConfig(GPTArchitecture, LanguageModelRunConfig):
    """The decoder-only GPT and its training run (defaults = the cpu demo profile).

    The model's fields and their checks are :class:`~genai_assets.models.gpt_config.GPTArchitecture`'s
    (declared once, there); the context length is the run's ``block_size`` and the vocabulary the
    tokenizer's, both filled in by :meth:`gpt_config`.
    """

    max_steps: int = 300
    learning_rate: float = 4e-3
    eval_batches: int = 0  # validation batches per pass; 0 = the whole val split

    def problems(self) -> list[str]:
        return super().problems() + self.architecture_problems()

    def gpt_config(self, vocab_size: int) -> GPTConfig:
        """The model's config: these layers, the run's ``block_size`` and the tokenizer's vocabulary."""
        return GPTConfig(vocab_size=vocab_size, block_size=self.block_size, **self.architecture())


@dataclass
class NextLineTransformerConfig(ScratchRunConfig):
    """The encoder–decoder next-line model and its training run."""

    max_steps: int = 300
    batch_size: int = 32  # line pairs per micro-batch
    learning_rate: float = 3e-3
    n_encoder_layers: int = 2  # encoder layers
    n_decoder_layers: int = 2  # decoder layers
    n_head: int = 4  # attention heads
    d_model: int = 128  # model width
    dropout: float = 0.0  # dropout (P_drop; 0: the demo sees a fraction of an epoch)
    norm_first: bool = True  # pre-norm if true, the paper's post-norm if false
    max_line_tokens: int = 32  # longest source/target line in tokens (longer ones are cut)
    n_examples: int = 8  # validation lines shown with their generated next line

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

    max_steps: int = 100  # optimizer steps per model
    eval_every: int = 50
    eval_batches: int = 0  # validation batches per pass; 0 = the whole val split
    learning_rate: float = 1e-2  # AdamW peak learning rate (recurrent nets take a larger one)

    kinds: list[str] = field(
        default_factory=lambda: list(RNN_BASELINE_KINDS)
    )  # which recurrent cells to train
    n_embd: int = 128  # embedding width (tied with the output head)
    hidden_size: int = 256  # recurrent state width
    n_layer: int = 1  # stacked recurrent layers
    dropout: float = 0.0  # dropout on embeddings, between layers and before the head

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
            "eval_batches": 2, "checkpoint_every": 3, "sample_max_new_tokens": 12, "sample_prompts": ["", "The moon"],
        },
        "cpu": {**GPT_PRESETS["cpu"]},
        "gpu": {
            **GPT_PRESETS["gpu"], "max_steps": 5000, "batch_size": 64, "learning_rate": 1e-3, "warmup_steps": 200,
            "eval_every": 250, "eval_batches": 50, "checkpoint_every": 500,
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
            "sample_max_new_tokens": 12, "sample_prompts": ["", "The moon"], "num_threads": 1,
        },
        "cpu": {},
        "gpu": {
            "max_steps": 5000, "batch_size": 64, "block_size": 256, "n_embd": 384, "hidden_size": 768,
            "n_layer": 2, "dropout": 0.2, "learning_rate": 2e-3, "warmup_steps": 200, "eval_every": 250,
            "eval_batches": 50, "checkpoint_every": 500,
        },
    },
}  # fmt: skip
