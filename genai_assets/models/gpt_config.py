"""The GPT's hyperparameters and named presets, declared once (no torch: the stage configs build on them).

:class:`GPTArchitecture` holds what shapes the layers; :class:`GPTConfig` adds the two sizes the
data decides (vocabulary, context length) and is what :class:`~genai_assets.models.transformer.GPT`
takes. The scratch stage's config (``training.scratch_config.ScratchTransformerConfig``) inherits
:class:`GPTArchitecture`, so its fields, comments and checks are these, and :data:`GPT_PRESETS` is
the one size table that tests (``GPTConfig.from_preset``) and the pipeline presets both read.
"""

from __future__ import annotations

import typing
from dataclasses import asdict, dataclass, fields
from typing import Annotated, Literal

from genai_assets.config_checks import Ge, Interval, declared_values, range_problems

PositionalEncoding = Literal["learned", "sinusoidal"]
Activation = Literal["gelu", "gelu_tanh", "relu"]  # the keys of models.layers.ACTIVATIONS (tested)


def transformer_layer_problems(config, width: str) -> list[str]:
    """The checks every Transformer's layer settings share (GPT, encoder–decoder) beyond each field's
    declared range: ``n_head`` dividing the ``width`` field, a known positional encoding (an even
    width for the sinusoidal one) and a known activation."""
    problems = []
    size = getattr(config, width)
    if config.n_head >= 1 and size % config.n_head:
        problems.append(f"{width}={size} must be divisible by n_head={config.n_head}")
    if config.positional_encoding not in typing.get_args(PositionalEncoding):
        problems.append(
            f"positional_encoding must be 'learned' or 'sinusoidal', got {config.positional_encoding!r}"
        )
    elif config.positional_encoding == "sinusoidal" and size % 2:
        problems.append(f"sinusoidal positional encodings need an even {width}")
    if config.activation not in typing.get_args(Activation):
        problems.append(
            f"activation must be one of {list(typing.get_args(Activation))}, got {config.activation!r}"
        )
    return problems


@dataclass
class GPTArchitecture:
    """The layers of a GPT, apart from the sizes set by the data. Defaults are the ``cpu`` demo size."""

    n_layer: Annotated[int, Ge(1), "number of decoder layers (N in the paper)"] = 4
    n_head: Annotated[int, Ge(1), "attention heads per layer (h); n_embd must be divisible by it"] = 4
    n_embd: Annotated[int, Ge(1), "width of the residual stream (d_model = C)"] = 128
    ffn_multiplier: Annotated[
        int, Ge(1), "feed-forward hidden width = ffn_multiplier * n_embd (d_ff = 4·d_model, §3.3)"
    ] = 4
    dropout: Annotated[
        float,
        Interval(ge=0, lt=1),
        "on embeddings, attention weights and residual branches (0: short runs, < 1 epoch)",
    ] = 0.0
    bias: Annotated[bool, "biases in linear layers and LayerNorms (GPT-2: True)"] = True
    norm_first: Annotated[bool, "pre-norm (GPT-2) if true, post-norm (the paper) if false"] = True
    positional_encoding: Annotated[PositionalEncoding, "'learned' (GPT-2) or 'sinusoidal' (§3.5)"] = "learned"
    activation: Annotated[Activation, "feed-forward non-linearity: 'gelu', 'gelu_tanh' (GPT-2) or 'relu'"] = (
        "gelu"
    )
    tie_weights: Annotated[bool, "output head shares the token embedding matrix (§3.4)"] = True
    use_sdpa: Annotated[bool, "fused F.scaled_dot_product_attention; false = the explicit teaching path"] = (
        True
    )

    def architecture_problems(self) -> list[str]:
        """Every invalid layer setting, named (a different name from ``problems`` so that a run
        config inheriting this class keeps its own ``problems`` and adds these)."""
        # Ranges checked before anything is built (the run config checks its own fields).
        problems = range_problems(self, [item.name for item in fields(GPTArchitecture)])
        return problems + transformer_layer_problems(self, "n_embd")

    def architecture(self) -> dict:
        """Just these fields (from a subclass: without its other settings)."""
        return declared_values(self, GPTArchitecture)


@dataclass
class GPTConfig(GPTArchitecture):
    """Hyperparameters of :class:`~genai_assets.models.transformer.GPT`. Defaults are the ``cpu`` demo size."""

    vocab_size: Annotated[int, Ge(1), "number of token ids (from the tokenizer)"] = 4096
    block_size: Annotated[
        int, Ge(1), "longest context in tokens; learned positions exist for 0..block_size-1"
    ] = 128

    def __post_init__(self) -> None:
        problems = range_problems(self, ("vocab_size", "block_size")) + self.architecture_problems()
        if problems:
            raise ValueError("Invalid GPTConfig: " + "; ".join(problems) + ".")

    @classmethod
    def from_preset(cls, name: str, **overrides) -> GPTConfig:
        """``tiny`` (tests, seconds), ``cpu`` (the demo, minutes on 2 cores), ``gpu`` (a real run)."""
        if name not in GPT_PRESETS:
            raise ValueError(f"Unknown GPT preset {name!r}; choose one of {', '.join(GPT_PRESETS)}.")
        return cls(**{**GPT_PRESETS[name], **overrides})

    def to_dict(self) -> dict:
        return asdict(self)


# Overrides of the defaults above (cpu = the defaults); the scratch_transformer presets start from these.
GPT_PRESETS: dict[str, dict] = {
    "tiny": dict(block_size=32, n_layer=2, n_head=2, n_embd=64, dropout=0.0),
    "cpu": {},
    "gpu": dict(block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2),
}
