"""Saving and loading scratch-model folders (contract 6).

A folder such as ``<lake>/models/scratch_transformer/`` holds:

* ``config.json`` — ``"model_type"`` (``genai_scratch_gpt``, ``genai_scratch_rnn`` or
  ``genai_scratch_encdec``), ``"architectures"`` (the class name) and every field of the model's
  config dataclass. These are not ``transformers`` models: ``AutoModel`` cannot load them; use
  :func:`load_scratch_model`;
* ``model.safetensors`` — the weights (tied matrices stored once);
* the poem tokenizer files (``tokenizer.json``, ``tokenizer_config.json``, ...), copied, so
  ``AutoTokenizer.from_pretrained(folder)`` works;
* ``generation_config.json`` — bos/eos/pad ids and the default sampling settings;
* ``README.md`` — the model card; optionally ``metrics.json`` (training figures).

The folder is written into a staging directory and swapped in whole (``atomic_directory``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from genai_assets.lake import atomic_directory

GPT_MODEL_TYPE = "genai_scratch_gpt"
RNN_MODEL_TYPE = "genai_scratch_rnn"
ENCODER_DECODER_MODEL_TYPE = "genai_scratch_encdec"
SCRATCH_MODEL_TYPES = (GPT_MODEL_TYPE, RNN_MODEL_TYPE, ENCODER_DECODER_MODEL_TYPE)
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"


def _classes(model_type: str):
    """(model class, config class) for a model type; imports torch lazily."""
    if model_type == GPT_MODEL_TYPE:
        from genai_assets.models.transformer import GPT, GPTConfig

        return GPT, GPTConfig
    if model_type == RNN_MODEL_TYPE:
        from genai_assets.models.rnn import RNNConfig, RNNLanguageModel

        return RNNLanguageModel, RNNConfig
    if model_type == ENCODER_DECODER_MODEL_TYPE:
        from genai_assets.models.encoder_decoder import EncoderDecoderConfig, EncoderDecoderTransformer

        return EncoderDecoderTransformer, EncoderDecoderConfig
    raise ValueError(
        f"Unknown scratch model type {model_type!r}; expected one of {', '.join(SCRATCH_MODEL_TYPES)}."
    )


def model_type_of(model) -> str:
    for model_type in SCRATCH_MODEL_TYPES:
        if type(model) is _classes(model_type)[0]:
            return model_type
    raise TypeError(f"{type(model).__name__} is not a scratch model class.")


def save_scratch_model(
    folder: str | Path,
    model,
    tokenizer_dir: str | Path,
    generation_defaults: dict[str, Any],
    model_card: str,
    extra_json: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` with its config, tokenizer, generation defaults and card to ``folder`` (atomically).

    ``extra_json``: more JSON files to write, ``{file name: content}`` (e.g. ``metrics.json``).
    """
    from safetensors.torch import save_model

    tokenizer_dir = Path(tokenizer_dir)
    if not (tokenizer_dir / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{tokenizer_dir} has no tokenizer.json: cannot bundle the tokenizer.")
    folder = Path(folder)
    model_type = model_type_of(model)
    config = {"model_type": model_type, "architectures": [type(model).__name__], **model.config.to_dict()}
    with atomic_directory(folder) as staging:
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        save_model(model, str(staging / WEIGHTS_FILE), metadata={"format": "pt", "model_type": model_type})
        for path in tokenizer_dir.iterdir():
            if path.is_file():
                shutil.copy2(path, staging / path.name)
        (staging / "generation_config.json").write_text(
            json.dumps(generation_defaults, indent=2) + "\n", encoding="utf-8"
        )
        (staging / "README.md").write_text(model_card, encoding="utf-8")
        for name, content in (extra_json or {}).items():
            (staging / name).write_text(json.dumps(content, indent=2, default=float) + "\n", encoding="utf-8")
    return folder


def read_scratch_config(path: str | Path) -> dict | None:
    """The folder's ``config.json`` if it describes a scratch model, else None."""
    config_path = Path(path) / "config.json"
    if not config_path.is_file():
        return None
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    return config if isinstance(config, dict) and config.get("model_type") in SCRATCH_MODEL_TYPES else None


def is_scratch_model_folder(path: str | Path) -> bool:
    """True if ``path`` is a folder written by :func:`save_scratch_model` (by its config's model_type)."""
    return Path(path).is_dir() and read_scratch_config(path) is not None


def load_scratch_model(path: str | Path, device: str = "cpu"):
    """``(model in eval mode, PreTrainedTokenizerFast)`` from a scratch-model folder.

    Clear errors for a folder that is missing, not a scratch model, has a config that does not
    validate, or weights that are corrupt or do not fit the config.
    """
    from safetensors.torch import load_model
    from transformers import PreTrainedTokenizerFast

    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"Scratch model folder {folder} does not exist.")
    config = read_scratch_config(folder)
    if config is None:
        raise ValueError(
            f"{folder} is not a scratch model folder: its config.json has no model_type in {SCRATCH_MODEL_TYPES}."
        )
    model_class, config_class = _classes(config["model_type"])
    fields = {name: value for name, value in config.items() if name not in ("model_type", "architectures")}
    try:
        model_config = config_class(**fields)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{folder / 'config.json'} does not describe a valid {model_class.__name__}: {error}"
        ) from error
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing.")
    from genai_assets.models.size_guard import check_config_fits_weights

    # Sizes checked on the meta device against the weights' headers before the real allocation.
    check_config_fits_weights(folder, lambda: model_class(model_config), config)
    model = model_class(model_config)
    try:
        load_model(model, str(weights), strict=True, device=device)
    except Exception as error:
        raise ValueError(f"Cannot load the weights {weights} into {model_class.__name__}: {error}") from error
    # Not AutoTokenizer: it would read config.json and warn about the unknown model_type.
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(folder))
    return model.to(device).eval(), tokenizer
