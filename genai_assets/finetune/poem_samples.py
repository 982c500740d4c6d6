"""Settings of the ``generated_poems`` stage: which prompts, which models, which decoding settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from genai_assets.config_checks import non_finite_problems, raise_problems
from genai_assets.generation import SamplingConfig

DEFAULT_PROMPTS = ["The rose", "Upon the sea at night", "O gentle love"]


@dataclass
class GeneratedPoemsConfig:
    """Sample poems from the fine-tuned model (and the base, for comparison)."""

    prompts: Annotated[list[str], "first words of each poem"] = field(
        default_factory=lambda: list(DEFAULT_PROMPTS)
    )
    num_samples: Annotated[int, "samples per prompt and model"] = 1
    max_new_tokens: Annotated[int, "tokens generated per sample"] = 60
    temperature: Annotated[float, "sampling temperature (> 0)"] = 0.9
    top_k: Annotated[int, "top-k filter (0 = off)"] = 50
    top_p: Annotated[float, "nucleus filter mass in (0, 1]"] = 0.95
    repetition_penalty: Annotated[float, "penalty on repeated tokens (1 = none)"] = 1.1
    no_repeat_ngram_size: Annotated[int, "never repeat an n-gram of this size (0 = off)"] = 0
    do_sample: Annotated[bool, "sample (True) or greedy decoding (False)"] = True
    preset: Annotated[
        str,
        "Named decoding preset ('course': temperature 1.0, top-k 50, top-p 0.95, repetition penalty 1.2, no repeated 2-grams, 3 samples per prompt); its values replace the fields above. Empty = use the fields.",
    ] = ""
    include_base: Annotated[bool, "also generate from base_lm, side by side"] = True
    seed: Annotated[int, "seed of the sampling (reproducible table)"] = 1234

    def __post_init__(self) -> None:
        problems = non_finite_problems(self)
        if not self.prompts:
            problems.append("prompts must hold at least one prompt ('' = from scratch)")
        try:
            self.sampling()  # the decoding settings' own checks, with the preset applied
        except ValueError as error:
            problems.append(str(error).rstrip("."))
        raise_problems(self, problems)

    def sampling(self) -> SamplingConfig:
        """The decoding settings: these fields, then the preset's values over them."""
        from genai_assets.generation.presets import sampling_preset

        values = dict(
            do_sample=self.do_sample,
            top_k=self.top_k,
            top_p=self.top_p,
            temperature=self.temperature,
            repetition_penalty=self.repetition_penalty,
            no_repeat_ngram_size=self.no_repeat_ngram_size,
            num_return_sequences=self.num_samples,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed,
        )
        # A Dagster config cannot tell a default from a typed value, so a preset replaces what it names.
        return SamplingConfig(**{**values, **(sampling_preset(self.preset) if self.preset else {})})


GENERATED_POEMS_PRESETS: dict[str, dict] = {
    "tiny": {"prompts": ["The rose"], "max_new_tokens": 12},
    "cpu": {},
    "gpu": {"num_samples": 3, "max_new_tokens": 120},
}
