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

from genai_assets.config_checks import Ge, Interval, declared_values, raise_problems, range_problems
from genai_assets.models.gpt_config import Activation, PositionalEncoding, transformer_layer_problems


@dataclass
class EncoderDecoderArchitecture:
    """The two layer stacks, apart from the sizes set by the data. Defaults are the ``cpu`` demo size."""

    n_encoder_layers: Annotated[int, Ge(1), "N for the encoder stack"] = 2
    n_decoder_layers: Annotated[int, Ge(1), "N for the decoder stack"] = 2
    n_head: Annotated[int, Ge(1), "attention heads (h); d_model must be divisible by it"] = 4
    d_model: Annotated[int, Ge(1), "model width (C)"] = 128
    ffn_multiplier: Annotated[int, Ge(1), "d_ff = ffn_multiplier * d_model (the paper: 4)"] = 4
    dropout: Annotated[
        float, Interval(ge=0, lt=1), "P_drop (§5.4; the paper uses 0.1, 0 here: demo runs see < 1 epoch)"
    ] = 0.0
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
        problems = range_problems(self, [item.name for item in fields(EncoderDecoderArchitecture)])
        return problems + transformer_layer_problems(self, "d_model")

    def architecture(self) -> dict:
        """Just these fields (from a subclass: without its other settings)."""
        return declared_values(self, EncoderDecoderArchitecture)


@dataclass
class EncoderDecoderConfig(EncoderDecoderArchitecture):
    """Hyperparameters of :class:`~genai_assets.models.encoder_decoder.EncoderDecoderTransformer`."""

    vocab_size: Annotated[int, Ge(1), "shared source/target vocabulary"] = 4096
    pad_id: Annotated[int, "padding id in sources (masked out of attention); targets pad with -100"] = 0
    bos_id: Annotated[int, "decoder start token"] = 1
    eos_id: Annotated[int, "ends a generated target"] = 2
    max_source_len: Annotated[
        int, Ge(1), "longest source in tokens (longer ones are cut by the data pipeline)"
    ] = 48
    max_target_len: Annotated[int, Ge(2), "longest decoder input: the start token and at least one"] = 48

    def __post_init__(self) -> None:
        own = [
            item.name
            for item in fields(self)
            if item.name not in EncoderDecoderArchitecture.__dataclass_fields__
        ]
        problems = self.architecture_problems() + range_problems(self, own)
        for name in ("pad_id", "bos_id", "eos_id"):
            if not 0 <= getattr(self, name) < self.vocab_size:
                problems.append(
                    f"{name}={getattr(self, name)} is outside the vocabulary (size {self.vocab_size})"
                )
        raise_problems(self, problems)

    def to_dict(self) -> dict:
        return asdict(self)
