"""Settings of the ``generated_poems`` stage: which prompts, which models, which decoding settings."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Annotated

from genai_assets.config_checks import raise_problems, range_problems
from genai_assets.generation import SamplingConfig

DEFAULT_PROMPTS = ["The rose", "Upon the sea at night", "O gentle love"]


@dataclass
class GeneratedPoemsConfig:
    """Sample poems from the fine-tuned model (and the base, for comparison)."""

    prompts: Annotated[list[str], "first words of each poem"] = field(
        default_factory=lambda: list(DEFAULT_PROMPTS)
    )
    sampling: Annotated[
        SamplingConfig,
        "decoding settings (transformers generate names; num_return_sequences = samples per prompt)",
    ] = field(default_factory=lambda: SamplingConfig(max_new_tokens=60, seed=1234))
    preset: Annotated[
        str,
        "Named decoding preset ('course': temperature 1.0, top-k 50, top-p 0.95, repetition penalty 1.2, "
        "no repeated 2-grams, 3 samples per prompt); its values replace those of sampling. Empty = sampling's.",
    ] = ""
    include_base: Annotated[bool, "also generate from base_lm, side by side"] = True

    def __post_init__(self) -> None:
        if isinstance(self.sampling, dict):  # a run config's nested mapping
            self.sampling = SamplingConfig(**self.sampling)
        problems = range_problems(self)
        if not self.prompts:
            problems.append("prompts must hold at least one prompt ('' = from scratch)")
        try:
            self.applied_sampling()  # the preset's values must pass the decoding settings' checks too
        except ValueError as error:
            problems.append(str(error).rstrip("."))
        raise_problems(self, problems)

    def applied_sampling(self) -> SamplingConfig:
        """The decoding settings: ``sampling``, then the named preset's values over them."""
        from genai_assets.generation.presets import sampling_preset

        # A Dagster config cannot tell a default from a typed value, so a preset replaces what it names.
        return replace(self.sampling, **sampling_preset(self.preset)) if self.preset else self.sampling


GENERATED_POEMS_PRESETS: dict[str, dict] = {
    "tiny": {"prompts": ["The rose"], "sampling": {"max_new_tokens": 12}},
    "cpu": {},
    "gpu": {"sampling": {"num_return_sequences": 3, "max_new_tokens": 120}},
}
