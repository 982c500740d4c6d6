"""Settings of the ``generated_poems`` stage: which prompts, which models, which decoding settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from genai_assets.config_checks import non_finite_problems, raise_problems
from genai_assets.generation import SamplingConfig

DEFAULT_PROMPTS = ["The rose", "Upon the sea at night", "O gentle love"]


@dataclass
class GeneratedPoemsConfig:
    """Sample poems from the fine-tuned model (and the base, for comparison)."""

    prompts: list[str] = field(default_factory=lambda: list(DEFAULT_PROMPTS))  # first words of each poem
    num_samples: int = 1  # samples per prompt and model
    max_new_tokens: int = 60  # tokens generated per sample
    temperature: float = 0.9  # sampling temperature (> 0)
    top_k: int = 50  # top-k filter (0 = off)
    top_p: float = 0.95  # nucleus filter mass in (0, 1]
    repetition_penalty: float = 1.1  # penalty on repeated tokens (1 = none)
    no_repeat_ngram_size: int = 0  # never repeat an n-gram of this size (0 = off)
    do_sample: bool = True  # sample (True) or greedy decoding (False)
    # Named decoding preset ('course': temperature 1.0, top-k 50, top-p 0.95, repetition penalty 1.2,
    # no repeated 2-grams, 3 samples per prompt); its values replace the fields above. Empty = use the fields.
    preset: str = ""
    include_base: bool = True  # also generate from base_lm, side by side
    seed: int = 1234  # seed of the sampling (reproducible table)

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
