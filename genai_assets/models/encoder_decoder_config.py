"""The encoder–decoder Transformer's hyperparameters, declared once (no torch: the stage config builds on them).

:class:`EncoderDecoderArchitecture` holds what shapes the layers; :class:`EncoderDecoderConfig`
adds the sizes and token ids the data decides and is what
:class:`~genai_assets.models.encoder_decoder.EncoderDecoderTransformer` takes. The next-line
stage's config (``training.scratch_config.NextLineTransformerConfig``) inherits the architecture,
so its fields, descriptions and checks are these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Annotated

from genai_assets.config_checks import declared_values, raise_problems, upper_bound_problems
from genai_assets.models.gpt_config import Activation, PositionalEncoding, transformer_layer_problems


@dataclass
class EncoderDecoderArchitecture:
    """The two layer stacks, apart from the sizes set by the data. Defaults are the ``cpu`` demo size."""

    n_encoder_layers: Annotated[int, "N for the encoder stack"] = 2
    n_decoder_layers: Annotated[int, "N for the decoder stack"] = 2
    n_head: Annotated[int, "attention heads (h); d_model must be divisible by it"] = 4
    d_model: Annotated[int, "model width (C)"] = 128
    ffn_multiplier: Annotated[int, "d_ff = ffn_multiplier * d_model (the paper: 4)"] = 4
    dropout: Annotated[float, "P_drop (§5.4; the paper uses 0.1, 0 here: demo runs see < 1 epoch)"] = 0.0
    norm_first: Annotated[bool, "pre-norm (trains without a long warm-up) or the paper's post-norm"] = True
    positional_encoding: Annotated[PositionalEncoding, "'sinusoidal' (the paper's choice) or 'learned'"] = (
        "sinusoidal"
    )
    activation: Annotated[
        Activation, "feed-forward non-linearity: 'relu' (the paper's), 'gelu' or 'gelu_tanh'"
    ] = "relu"
    tie_embeddings: Annotated[bool, "one matrix for source and target embeddings and the output (§3.4)"] = (
        True
    )
    use_sdpa: Annotated[bool, "fused attention kernel; false = the explicit teaching path"] = True

    def architecture_problems(self) -> list[str]:
        """Every invalid layer setting, named (a run config inheriting this class adds its own)."""
        positive = ("n_encoder_layers", "n_decoder_layers", "n_head", "d_model", "ffn_multiplier")
        problems = transformer_layer_problems(self, positive, "d_model")
        return problems + upper_bound_problems(
            self, [item.name for item in fields(EncoderDecoderArchitecture)]
        )

    def architecture(self) -> dict:
        """Just these fields (from a subclass: without its other settings)."""
        return declared_values(self, EncoderDecoderArchitecture)


@dataclass
class EncoderDecoderConfig(EncoderDecoderArchitecture):
    """Hyperparameters of :class:`~genai_assets.models.encoder_decoder.EncoderDecoderTransformer`."""

    vocab_size: Annotated[int, "shared source/target vocabulary"] = 4096
    pad_id: Annotated[int, "padding id in sources (masked out of attention); targets pad with -100"] = 0
    bos_id: Annotated[int, "decoder start token"] = 1
    eos_id: Annotated[int, "ends a generated target"] = 2
    max_source_len: Annotated[int, "longest source in tokens (longer ones are cut by the data pipeline)"] = 48
    max_target_len: Annotated[int, "longest decoder input, start token included"] = 48

    def __post_init__(self) -> None:
        problems = self.architecture_problems()
        problems += [f"{name} must be >= 1, got {getattr(self, name)}" for name in ("vocab_size", "max_source_len")
                     if getattr(self, name) < 1]  # fmt: skip
        if self.max_target_len < 2:
            problems.append(f"max_target_len must be >= 2 (start token + one), got {self.max_target_len}")
        for name in ("pad_id", "bos_id", "eos_id"):
            if not 0 <= getattr(self, name) < self.vocab_size:
                problems.append(
                    f"{name}={getattr(self, name)} is outside the vocabulary (size {self.vocab_size})"
                )
        raise_problems(self, problems)

    def to_dict(self) -> dict:
        return asdict(self)
