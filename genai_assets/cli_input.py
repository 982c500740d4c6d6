"""Checks of command-line input that must fail early, in one line, with exit status 2.

Kept free of heavy imports: ``genai_assets.cli`` builds its parser from modules that import this.
Each function raises :class:`UsageError` (a ``ValueError``) whose message names the flag.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

# A Hub repo id: "name" or "owner/name" (letters, digits, '-', '_', '.'; huggingface_hub's rule).
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")


class UsageError(ValueError):
    """Bad command-line input; the message is one line and names the flag."""


def check_output_path(value: str, overwrite: bool) -> Path:
    """``--output`` as a path that may be written: not a folder, not an existing file unless ``--overwrite``."""
    path = Path(value).expanduser()
    if path.is_dir():
        raise UsageError(f"--output {value} is a directory; give a file name such as {path / 'poems.jsonl'}.")
    if path.exists() and not overwrite:
        raise UsageError(f"--output {value} already exists; pass --overwrite to replace it.")
    if path.parent.exists() and not path.parent.is_dir():
        raise UsageError(f"--output {value}: {path.parent} is not a directory.")
    return path


def looks_like_a_path(value: str) -> bool:
    """True if ``--model`` can only mean a local path, never a Hub id.

    Paths: anything starting with ``.``, ``/`` or ``~``, with a backslash or more than one ``/``,
    ending in ``/``, or not a valid Hub id; and ``first/second`` when ``first`` is a local folder
    (``data_lake/finetuned`` is a path even though it also parses as ``owner/name``).
    """
    if value.startswith((".", "/", "~")) or "\\" in value or value.endswith("/") or value.count("/") > 1:
        return True
    if not _HUB_ID.match(value):
        return True
    return "/" in value and Path(value.split("/")[0]).is_dir()


def resolve_model_argument(value: str) -> str:
    """``--model`` checked: an existing folder, or a Hub id; a missing local path is an error, not a download."""
    if not value.strip():
        raise UsageError("--model is empty; give a model folder such as data_lake/models/finetuned_lm.")
    if Path(value).expanduser().exists():
        return value
    if looks_like_a_path(value):
        raise UsageError(
            f"--model {value}: no such folder (relative to {os.getcwd()}); it is not treated as a Hub id."
        )
    return value


def parse_config_json(text: str | None) -> dict:
    """``--config-json`` as a JSON object (``{}`` when absent)."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"--config-json is not valid JSON: {error.msg} at character {error.pos}.") from None
    if not isinstance(value, dict):
        raise UsageError(
            f"--config-json must be a JSON object such as '{{\"ops\": {{...}}}}', got {type(value).__name__}."
        )
    unknown = sorted(set(value) - {"ops", "resources", "execution", "loggers"})
    if unknown:
        raise UsageError(
            f"--config-json has unknown top-level key(s) {unknown}; run config takes ops, resources, execution, loggers."
        )
    return value
