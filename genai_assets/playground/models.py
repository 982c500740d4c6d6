"""The lake's saved model folders, opened for the playground (each loaded once, a few kept).

Every folder under ``<lake>/models/`` with a ``config.json`` is listed under its folder name
(``finetuned_lm``, ``scratch_transformer``, ``rnn_gru``, ``next_line_transformer``, ...);
``base_lm`` that only records where the cached base lives (``base_info.json``) points there.
Opening a folder goes through :func:`genai_assets.generation.load_generator` (its checks give the
clear messages for a missing or corrupt folder); the next-line encoder–decoder, which
``load_generator`` refuses for free-running generation, is opened as a scratch model and maps
the prompt (a line) to the line after it.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path

from genai_assets.generation.loading import (
    Generator,
    context_length_of,
    load_generator,
    saved_sampling_defaults,
)

ENCODER_DECODER_TYPE = "genai_scratch_encdec"


def model_folders(lake_root: str | Path) -> dict[str, Path]:
    """``{name: folder}`` of every saved model in the lake, sorted by name (fine-tuned first)."""
    models = Path(lake_root) / "models"
    found: dict[str, Path] = {}
    if not models.is_dir():
        return found
    for folder in sorted(models.iterdir()):
        if not folder.is_dir():
            continue
        if folder.name == "base_lm" and (folder / "base_info.json").is_file():
            from genai_assets.finetune.base_model import base_model_dir

            try:
                found[folder.name] = Path(base_model_dir(folder))
            except (OSError, ValueError, KeyError):
                found[folder.name] = folder  # opening it will say what is wrong
        elif (folder / "config.json").is_file() or folder.name.startswith(
            ("finetuned", "base", "scratch", "rnn")
        ):
            found[folder.name] = folder
    order = {"finetuned_lm": 0, "base_lm": 1, "scratch_transformer": 2}
    return dict(sorted(found.items(), key=lambda item: (order.get(item[0], 3), item[0])))


def model_kind(generator: Generator) -> str:
    """``transformers``, ``gpt`` (the scratch transformer: attention maps), ``rnn`` or ``encoder-decoder``."""
    if generator.kind == "transformers":
        return "transformers"
    name = type(generator.model).__name__
    if name == "GPT":
        return "gpt"
    return "encoder-decoder" if name == "EncoderDecoderTransformer" else "rnn"


def open_model(folder: Path) -> Generator:
    """A :class:`Generator` for ``folder``; ``ValueError`` with a clear message when it cannot be opened."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"Model folder {folder} does not exist (materialize its asset first).")
    config_path = folder / "config.json"
    try:
        model_type = json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
    except FileNotFoundError:
        raise ValueError(f"Model folder {folder} has no config.json: not a saved model.") from None
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
        raise ValueError(
            f"{config_path} is not a valid JSON object ({error}); the folder is corrupt."
        ) from None
    try:
        if model_type == ENCODER_DECODER_TYPE:
            from genai_assets.models.loading import load_scratch_model

            model, tokenizer = load_scratch_model(folder)
            model.eval()
            return Generator(
                model,
                tokenizer,
                "scratch",
                str(folder),
                context_length_of(model),
                saved_sampling_defaults(folder),
            )
        return load_generator(folder)
    except ValueError:
        raise
    except Exception as error:  # a truncated weight file, a bad tokenizer: one line, no traceback
        raise ValueError(f"Cannot open model folder {folder}: {type(error).__name__}: {error}") from None


class ModelCache:
    """Opened models by folder, the ``capacity`` most recently used kept in memory (thread-safe)."""

    def __init__(self, capacity: int = 3):
        self.capacity = capacity
        self._opened: OrderedDict[Path, Generator] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, folder: Path) -> Generator:
        folder = Path(folder).resolve()
        with self._lock:
            if folder in self._opened:
                self._opened.move_to_end(folder)
                return self._opened[folder]
            generator = open_model(folder)
            self._opened[folder] = generator
            while len(self._opened) > self.capacity:
                self._opened.popitem(last=False)
            return generator
