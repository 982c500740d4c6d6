"""Settings of the three scratch-model stages, defined once (the Dagster configs derive from these).

``ScratchTransformerConfig``, ``NextLineTransformerConfig`` and ``RNNBaselinesConfig`` each hold
one training run's settings (shared fields in :class:`ScratchRunConfig`) plus the model's.
Defaults are the cpu demo profile; :data:`SCRATCH_PRESETS` names the ``tiny`` and ``gpu`` ones.
This module imports no torch, so ``genai_assets.definitions`` can import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Annotated

from genai_assets.config_checks import Ge, range_problems
from genai_assets.models.encoder_decoder_config import EncoderDecoderArchitecture, EncoderDecoderConfig
from genai_assets.models.gpt_config import GPT_PRESETS, GPTArchitecture, GPTConfig
from genai_assets.models.rnn_config import RNN_KINDS, RNNArchitecture, RNNConfig
from genai_assets.models.sampling_settings import SamplingConfig
from genai_assets.training.loop_config import TrainLoopConfig

DEFAULT_PROMPTS = ["", "The moon", "Shall I compare thee", "O gentle love,"]


@dataclass
class ScratchRunConfig(TrainLoopConfig):
    """One scratch training run: the loop's settings (declared in :class:`TrainLoopConfig`, with the
    cpu demo profile's defaults here) plus batch size, device and threads."""

    max_steps: int = 600
    learning_rate: float = 2e-3
    warmup_steps: int = 30
    eval_every: int = 100
    batch_size: Annotated[int, Ge(1), "sequences per micro-batch"] = 16
    device: Annotated[str, "'auto' (cuda if available, else cpu), 'cpu' or 'cuda[:n]'"] = "auto"
    keep_checkpoint: Annotated[bool, "keep the final checkpoint after success"] = False
    num_threads: Annotated[
        int, Ge(0), "torch CPU threads (0 = torch's default, one per core); 1 is faster on a busy machine"
    ] = 0

    def problems(self) -> list[str]:
        """Every invalid field, named (subclasses extend the list)."""
        # The loop's fields are checked by TrainLoopConfig, a model's layers (``architecture()``, in
        # the stage configs that inherit one) by its architecture_problems.
        checked = {item.name for item in fields(TrainLoopConfig)}
        if hasattr(self, "architecture"):
            checked |= set(self.architecture())
        problems = super().problems() + range_problems(
            self, [item.name for item in fields(self) if item.name not in checked]
        )
        if not (self.device in ("auto", "cpu") or self.device.startswith(("cuda", "mps"))):
            problems.append(f"device must be 'auto', 'cpu' or 'cuda[:n]', got {self.device!r}")
        return problems


@dataclass
class LanguageModelRunConfig(ScratchRunConfig):
    """A run of a next-token language model (GPT or RNN): context window and sampling settings."""

    block_size: Annotated[int, Ge(2), "training window in tokens (GPT: also its context length)"] = 128
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
class NextLineTransformerConfig(EncoderDecoderArchitecture, ScratchRunConfig):
    """The encoder–decoder next-line model and its training run.

    The model's fields and their checks are
    :class:`~genai_assets.models.encoder_decoder_config.EncoderDecoderArchitecture`'s (declared once,
    there); the line lengths and the vocabulary are filled in by :meth:`model_config`.
    """

    max_steps: int = 300
    batch_size: Annotated[int, "line pairs per micro-batch"] = 32
    learning_rate: float = 3e-3
    max_line_tokens: Annotated[int, Ge(1), "longest source/target line in tokens (longer ones are cut)"] = 32
    n_examples: Annotated[int, Ge(0), "validation lines shown with their generated next line"] = 8

    def problems(self) -> list[str]:
        return super().problems() + self.architecture_problems()

    def model_config(self, meta: dict) -> EncoderDecoderConfig:
        """The model's config: these layers, the run's line length and the tokenizer's ids (``meta``)."""
        return EncoderDecoderConfig(
            vocab_size=int(meta["vocab_size"]),
            pad_id=int(meta["pad_id"]),
            bos_id=int(meta["bos_id"]),
            eos_id=int(meta["eos_id"]),
            max_source_len=self.max_line_tokens,
            max_target_len=self.max_line_tokens + 1,  # + the start token
            **self.architecture(),
        )


@dataclass
class RNNBaselinesConfig(RNNArchitecture, LanguageModelRunConfig):
    """RNN/LSTM/GRU baselines on the same data; compared with the transformer at the same tokens seen.

    Each RNN trains for ``max_steps × batch_size × block_size`` tokens (a third of the
    transformer's demo budget, so the three fit the demo's time); the comparison table puts them
    next to the transformer's full-val evaluation at the same number of tokens (and at its end).
    The widths and their checks are :class:`~genai_assets.models.rnn_config.RNNArchitecture`'s.
    """

    max_steps: Annotated[int, "optimizer steps per model"] = 100
    eval_every: int = 50
    eval_batches: Annotated[int, "validation batches per pass; 0 = the whole val split"] = 0
    learning_rate: Annotated[float, "AdamW peak learning rate (recurrent nets take a larger one)"] = 1e-2
    kinds: Annotated[list[str], "which recurrent cells to train"] = field(
        default_factory=lambda: list(RNN_KINDS)
    )

    def problems(self) -> list[str]:
        problems = super().problems() + self.architecture_problems()
        unknown = sorted(set(self.kinds) - set(RNN_KINDS))
        if unknown or not self.kinds:
            problems.append(f"kinds must be a non-empty subset of {list(RNN_KINDS)}, got {self.kinds}")
        return problems

    def model_config(self, kind: str, vocab_size: int) -> RNNConfig:
        """The config of one baseline: cell ``kind``, these widths and the tokenizer's vocabulary."""
        return RNNConfig(kind=kind, vocab_size=vocab_size, **self.architecture())


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
