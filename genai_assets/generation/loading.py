"""Open a saved model for generation: a transformers causal LM folder or Hub id, or a scratch model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

from genai_assets.generation.settings import saved_sampling_defaults

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")


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
        from genai_assets.models.size_guard import check_transformers_folder

        check_transformers_folder(folder)  # a crafted config.json is refused before any allocation
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
