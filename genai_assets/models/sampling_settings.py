"""Decoding settings: the one type every model this project generates from takes (no torch here).

:class:`SamplingConfig` uses transformers' ``generate`` names and its convention for "off": top-k
``0`` and top-p ``1.0`` disable those filters, ``do_sample=False`` is greedy decoding, a
repetition penalty of ``1.0`` is none. The fine-tuned model gets it as ``generate`` kwargs
(:meth:`SamplingConfig.generate_kwargs`), the scratch models' decoding loop
(:mod:`genai_assets.models.sampling`, which re-exports this type) as :meth:`SamplingConfig.decoding_kwargs`.
It lives in its own module because configs read at import time (the stage configs, which
``genai_assets.definitions`` loads without torch) declare fields of this type.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Annotated, Any

from genai_assets.config_checks import Ge, Gt, Interval, range_problems

# The sampling filters' types with their ranges, declared once: every config with these knobs
# (this one, the evaluation's) declares its fields with them, e.g. ``Annotated[TopP, "..."]``.
Temperature = Annotated[float, Gt(0)]
TopK = Annotated[int, Ge(0)]  # 0 = no top-k filter
TopP = Annotated[float, Interval(gt=0, le=1)]  # 1.0 = no nucleus filter


@dataclass
class SamplingConfig:
    """Decoding settings (transformers ``generate`` names). Defaults: the fine-tuned model's."""

    do_sample: Annotated[bool, "sample (True) or greedy decoding (False)"] = True
    top_k: Annotated[TopK, "keep the k most likely tokens; 0 = no top-k filter"] = 50
    top_p: Annotated[TopP, "nucleus: keep the most likely tokens holding this probability mass"] = 0.95
    temperature: Annotated[Temperature, "below 1 sharpens, above 1 flattens the distribution"] = 0.9
    repetition_penalty: Annotated[float, Gt(0), "1.0 = none; > 1 discourages tokens already present"] = 1.1
    no_repeat_ngram_size: Annotated[int, Ge(0), "forbid repeating any n-gram of this size; 0 = off"] = 0
    num_return_sequences: Annotated[int, Ge(1), "samples per prompt"] = 1
    max_new_tokens: Annotated[
        int, Ge(1), "tokens generated after the prompt (fewer if end-of-poem comes first)"
    ] = 80
    seed: Annotated[int | None, "seeds torch once before the first sample: reproducible output"] = None

    def __post_init__(self) -> None:
        problems = range_problems(self)
        if problems:
            raise ValueError("Invalid sampling settings: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict:
        return asdict(self)

    def applied(self) -> dict:
        """The settings that take effect, for records: greedy decoding has no temperature, top-k,
        top-p or seed, so those are None rather than values that were never used."""
        values = self.to_dict()
        if not self.do_sample:
            values.update(temperature=None, top_k=None, top_p=None, seed=None)
        return values

    def decoding_kwargs(self) -> dict:
        """Keyword arguments for a scratch model's ``generate`` (``models.sampling.generate_tokens``):
        the same settings, greedy decoding spelled ``temperature=0``; top-k 0 and top-p 1 are off there too."""
        return {
            "temperature": self.temperature if self.do_sample else 0.0,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "repetition_penalty": self.repetition_penalty,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
        }

    def generate_kwargs(self) -> dict:
        """Keyword arguments for ``model.generate`` (one sequence; sampling knobs only when sampling)."""
        kwargs: dict[str, Any] = {
            "do_sample": self.do_sample,
            "max_new_tokens": self.max_new_tokens,
            "repetition_penalty": self.repetition_penalty,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
        }
        if self.do_sample:
            kwargs.update(top_k=self.top_k, top_p=self.top_p, temperature=self.temperature)
        return kwargs

    @classmethod
    def from_defaults(cls, defaults: dict | None = None, **overrides) -> SamplingConfig:
        """``defaults`` (e.g. a saved ``generation_config.json``; unknown keys ignored), then ``overrides``
        (None values ignored), then the class defaults."""
        names = {field.name for field in fields(cls)} - {"seed", "num_return_sequences"}
        values = {key: value for key, value in (defaults or {}).items() if key in names and value is not None}
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)
