"""Prompt → poems from any model this project saves (contract 8), streamed as they are produced.

``load_generator(path_or_id)`` opens a transformers causal LM folder or Hub id (the fine-tuned
model, the cached base) or one of the scratch models (``genai_assets.models.loading``);
``generate_poems`` samples continuations of prompts with the seed's knobs (``SamplingConfig``)
and stops at end-of-poem. Prompts use the training format (``<|startofpoem|>`` + prompt) when
the tokenizer knows the marker, so the fine-tuned model starts a poem rather than continuing
arbitrary text. Light to import: torch and transformers load inside the functions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

POEM_START = "<|startofpoem|>"  # same literal as genai_assets.finetune.data.POEM_START (kept light)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")


@dataclass
class SamplingConfig:
    """Decoding settings (transformers ``generate`` names). Defaults: the fine-tuned model's."""

    do_sample: bool = True  # sample (True) or greedy decoding (False)
    top_k: int = 50  # keep the k most likely tokens; 0 = no top-k filter
    top_p: float = 0.95  # nucleus: keep the most likely tokens holding this probability mass (0, 1]
    temperature: float = 0.9  # > 0; below 1 sharpens, above 1 flattens the distribution
    repetition_penalty: float = 1.1  # > 0; 1.0 = none; > 1 discourages tokens already present
    no_repeat_ngram_size: int = 0  # forbid repeating any n-gram of this size; 0 = off
    num_return_sequences: int = 1  # samples per prompt
    max_new_tokens: int = 80  # tokens generated after the prompt (fewer if end-of-poem comes first)
    seed: int | None = None  # seeds torch once before the first sample: reproducible output

    def __post_init__(self) -> None:
        problems = []
        if not self.temperature > 0:
            problems.append(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            problems.append(f"top_k must be >= 0 (0 disables it), got {self.top_k}")
        if not self.repetition_penalty > 0:
            problems.append(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if self.no_repeat_ngram_size < 0:
            problems.append(f"no_repeat_ngram_size must be >= 0, got {self.no_repeat_ngram_size}")
        if self.num_return_sequences < 1:
            problems.append(f"num_return_sequences must be >= 1, got {self.num_return_sequences}")
        if self.max_new_tokens < 1:
            problems.append(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if problems:
            raise ValueError("Invalid sampling settings: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict:
        return asdict(self)

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


def saved_sampling_defaults(folder: Path) -> dict:
    """The values written to ``generation_config.json`` (transformers saves only non-default ones)."""
    path = Path(folder) / "generation_config.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error


@dataclass
class Generator:
    """A loaded model ready to generate from, and what kind it is."""

    model: Any
    tokenizer: Any
    kind: str  # "transformers" | "scratch"
    name: str  # the path or id it was loaded from
    context_length: int | None  # max tokens the model can attend to (prompt + generated)
    sampling_defaults: dict = dataclass_field(default_factory=dict)  # from generation_config.json


def context_length_of(model) -> int | None:
    config = getattr(model, "config", None)
    for name in ("n_positions", "max_position_embeddings", "block_size", "n_ctx", "max_seq_len"):
        value = getattr(config, name, None) if config is not None else None
        if isinstance(config, dict):
            value = config.get(name)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_safetensors(folder: Path) -> None:
    """Fail with the file's name if a safetensors file cannot be opened (truncated, garbled)."""
    from safetensors import safe_open

    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt") as handle:
                keys = list(handle.keys())
                if keys:
                    handle.get_slice(keys[-1])  # touches the header's offsets for the last tensor
            if path.stat().st_size < 8:
                raise ValueError("file shorter than its header length field")
        except Exception as error:
            raise ValueError(f"Corrupt safetensors file {path}: {error}") from error


def load_generator(path_or_id: str | Path) -> Generator:
    """Open a model folder (transformers or scratch) or a Hub id for generation, in eval mode."""
    import torch

    name = str(path_or_id)
    folder = Path(name).expanduser()
    if folder.exists():
        if not folder.is_dir():
            raise ValueError(f"Model path {folder} is a file; give the model folder.")
        if not (folder / "config.json").is_file():
            raise ValueError(f"Model folder {folder} has no config.json: not a saved model.")
        scratch = _load_scratch(folder)
        if scratch is not None:
            return scratch
        if not any((folder / file).is_file() for file in TOKENIZER_FILES):
            raise ValueError(
                f"Model folder {folder} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); "
                "save the tokenizer next to the model with tokenizer.save_pretrained(folder)."
            )
        check_safetensors(folder)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32)
    except OSError as error:
        raise ValueError(
            f"Cannot load model {name!r}: {error}. Give a saved model folder (e.g. "
            "data_lake/models/finetuned_lm) or a Hub id available offline."
        ) from error
    model.eval()
    defaults = saved_sampling_defaults(folder) if folder.is_dir() else {}
    return Generator(model, tokenizer, "transformers", name, context_length_of(model), defaults)


def _load_scratch(folder: Path) -> Generator | None:
    try:
        from genai_assets.models.loading import is_scratch_model_folder, load_scratch_model
    except ImportError:  # the scratch models are optional for generation
        return None
    if not is_scratch_model_folder(folder):
        return None
    if json.loads((folder / "config.json").read_text()).get("model_type") == "genai_scratch_encdec":
        raise ValueError(
            f"{folder} is an encoder-decoder (next-line) model: it maps a line to the next line and has no "
            "free-running prompt continuation; use a decoder-only model folder."
        )
    model, tokenizer = load_scratch_model(folder)
    model.eval()
    return Generator(
        model, tokenizer, "scratch", str(folder), context_length_of(model), saved_sampling_defaults(folder)
    )


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """Prompt ids in the training format when the tokenizer knows the poem marker."""
    marker = tokenizer.convert_tokens_to_ids(POEM_START)
    if marker is not None and marker != tokenizer.unk_token_id:
        return [marker, *tokenizer(prompt, add_special_tokens=False)["input_ids"]]
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if not ids:  # an empty prompt: start from the document separator, as GPT-2 does
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        ids = [start]
    return ids


def stop_token_ids(tokenizer) -> list[int]:
    """End-of-poem ids: eos, and the start marker (a new poem begins = this one ended)."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    marker = tokenizer.convert_tokens_to_ids(POEM_START)
    if marker is not None and marker != tokenizer.unk_token_id and marker not in ids:
        ids.append(marker)
    return ids


def generate_poems(
    model,
    tokenizer,
    prompts: Sequence[str],
    sampling: SamplingConfig,
    stream: Callable[[str], None] | None = None,
) -> list[dict]:
    """``num_return_sequences`` samples per prompt: dicts ``prompt, sample_index, text, n_new_tokens, params``.

    ``text`` is the prompt followed by the generated continuation, special tokens removed.
    ``stream`` receives text pieces as the model produces them (e.g. ``sys.stdout.write``).
    Samples are generated one at a time, so streaming works for every sample.
    """
    import torch

    if isinstance(prompts, str):
        prompts = [prompts]
    is_scratch = not hasattr(model, "generation_config")
    context = context_length_of(model)
    if sampling.seed is not None:
        torch.manual_seed(sampling.seed)
    device = next(model.parameters()).device
    results = []
    for prompt in prompts:
        prompt_ids = encode_prompt(tokenizer, prompt)
        max_new = sampling.max_new_tokens
        if context is not None:
            if len(prompt_ids) >= context:
                raise ValueError(
                    f"Prompt is {len(prompt_ids)} tokens long; the model's context is {context} tokens. "
                    "Shorten the prompt."
                )
            max_new = min(max_new, context - len(prompt_ids))
        params = {**sampling.to_dict(), "max_new_tokens": max_new}
        for sample_index in range(sampling.num_return_sequences):
            if stream is not None:
                stream(("\n" if results else "") + f"--- sample {sample_index + 1} ---\n{prompt}")
            ids = torch.tensor([prompt_ids], device=device)  # (1, T)
            with torch.no_grad():
                if is_scratch:
                    new_ids = _generate_scratch(model, tokenizer, ids, sampling, max_new, stream)
                else:
                    new_ids = _generate_transformers(model, tokenizer, ids, sampling, max_new, stream)
            continuation = tokenizer.decode(new_ids, skip_special_tokens=True)
            if stream is not None:
                stream("\n")
            results.append(
                {
                    "prompt": prompt,
                    "sample_index": sample_index,
                    "text": prompt + continuation,
                    "n_new_tokens": len(new_ids),
                    "params": json.dumps(params, sort_keys=True),
                }
            )
    return results


def _generate_transformers(
    model, tokenizer, ids, sampling: SamplingConfig, max_new: int, stream
) -> list[int]:
    from transformers import TextStreamer

    streamer = None
    if stream is not None:

        class CallbackStreamer(TextStreamer):
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                stream(text)

        streamer = CallbackStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    stops = stop_token_ids(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0] if stops else None
    kwargs = {**sampling.generate_kwargs(), "max_new_tokens": max_new}
    output = model.generate(
        ids,
        attention_mask=ids.new_ones(ids.shape),
        eos_token_id=stops or None,
        pad_token_id=pad_id,
        streamer=streamer,
        **kwargs,
    )  # (1, T + new)
    new_ids = output[0, ids.shape[1] :].tolist()
    return _cut_at_stop(new_ids, stops)


def _generate_scratch(model, tokenizer, ids, sampling: SamplingConfig, max_new: int, stream) -> list[int]:
    """One token at a time through the scratch model's ``generate`` so we can stream and stop.

    Repetition penalty and no-repeat n-grams are transformers logits processors; the scratch
    models do not implement them, so they are not applied here (recorded in ``params`` anyway).
    """
    stops = set(stop_token_ids(tokenizer))
    top_k = 1 if not sampling.do_sample else (sampling.top_k or None)
    top_p = sampling.top_p if sampling.do_sample else None
    new_ids: list[int] = []
    printed = ""
    for _ in range(max_new):
        ids = model.generate(ids, 1, temperature=sampling.temperature, top_k=top_k, top_p=top_p)  # (1, T + 1)
        token = int(ids[0, -1])
        if token in stops:
            break
        new_ids.append(token)
        if stream is not None:
            text = tokenizer.decode(new_ids, skip_special_tokens=True)
            if not text.endswith("\ufffd"):  # wait for a complete UTF-8 character
                stream(text[len(printed) :])
                printed = text
    return new_ids


def _cut_at_stop(new_ids: list[int], stops: list[int]) -> list[int]:
    for position, token in enumerate(new_ids):
        if token in stops:
            return new_ids[:position]
    return new_ids
