"""The recurrent baselines' hyperparameters, declared once (no torch: the stage config builds on them).

:class:`RNNArchitecture` holds the widths and depth; :class:`RNNConfig` adds the cell kind and the
vocabulary and is what :class:`~genai_assets.models.rnn.RNNLanguageModel` takes. The
``rnn_baselines`` stage's config (``training.scratch_config.RNNBaselinesConfig``) inherits the
architecture, so its fields, descriptions and checks are these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Annotated

from genai_assets.config_checks import Ge, Interval, declared_values, raise_problems, range_problems

RNN_KINDS = ("rnn", "lstm", "gru")


@dataclass
class RNNArchitecture:
    """Widths and depth of a recurrent language model. Defaults are the ``cpu`` demo size."""

    n_embd: Annotated[int, Ge(1), "token embedding width (E; tied with the output head)"] = 128
    hidden_size: Annotated[int, Ge(1), "recurrent state width (H)"] = 256
    n_layer: Annotated[int, Ge(1), "stacked recurrent layers (L)"] = 1
    dropout: Annotated[
        float, Interval(ge=0, lt=1), "on embeddings, between recurrent layers and before the head"
    ] = 0.0
    tie_weights: Annotated[bool, "output head shares the embedding matrix (through an H → E projection)"] = (
        True
    )

    def architecture_problems(self) -> list[str]:
        """Every invalid layer setting, named (a run config inheriting this class adds its own)."""
        return range_problems(self, [item.name for item in fields(RNNArchitecture)])

    def architecture(self) -> dict:
        """Just these fields (from a subclass: without its other settings)."""
        return declared_values(self, RNNArchitecture)


@dataclass
class RNNConfig(RNNArchitecture):
    """Hyperparameters of :class:`~genai_assets.models.rnn.RNNLanguageModel`."""

    kind: Annotated[str, "'rnn' (Elman, tanh), 'lstm' or 'gru'"] = "lstm"
    vocab_size: Annotated[int, Ge(1), "number of token ids"] = 4096

    def __post_init__(self) -> None:
        problems = self.architecture_problems() + range_problems(self, ["vocab_size"])
        if self.kind not in RNN_KINDS:
            problems.append(f"kind must be one of {', '.join(RNN_KINDS)}, got {self.kind!r}")
        raise_problems(self, problems)

    def to_dict(self) -> dict:
        return asdict(self)
