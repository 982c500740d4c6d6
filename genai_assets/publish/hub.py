"""Staging a model folder for the Hub, and uploading a staged folder through an ``HfApi``.

The Dagster resource ``genai_assets.defs._resources.HubClient`` is the only place that builds
an ``HfApi`` and calls :func:`upload_folder`: tests replace it (or its ``api()`` factory) with a
recording fake. The token is a secret: it reaches
``HfApi`` and nothing else; it is never logged, put in metadata, or written to a file, and any
error message that might echo it is redacted before it is raised.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genai_assets.lake import atomic_directory

# What a Hub model repo needs; anything else (optimizer state, checkpoints) stays home.
STAGED_SUFFIXES = (".json", ".safetensors", ".txt", ".model", ".jinja")
REDACTED = "***"


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced (no-op for an empty secret)."""
    return text.replace(secret, REDACTED) if secret else text


def stage_model_folder(
    model_dir: Path,
    card_text: str,
    target: Path,
    extra_files: dict[str, str] | None = None,
    exclude: tuple[str, ...] = (),
) -> list[str]:
    """Copy the model/tokenizer files of ``model_dir`` plus the card (README.md) into ``target``, atomically.

    Only files ending in :data:`STAGED_SUFFIXES` are copied, minus the names in ``exclude``.
    Returns the staged file names, sorted. Raises a clear error if the folder lacks weights or config.
    """
    if not model_dir.is_dir():
        raise FileNotFoundError(
            f"Model folder {model_dir} does not exist; materialize the model asset first."
        )
    names = {path.name for path in model_dir.iterdir() if path.is_file()}
    if "config.json" not in names or not any(name.endswith(".safetensors") for name in names):
        raise FileNotFoundError(
            f"{model_dir} is not a complete model folder: it needs config.json and *.safetensors, has {sorted(names)}."
        )
    with atomic_directory(target) as staging:
        for path in sorted(model_dir.iterdir()):
            skip = path.name == "README.md" or path.name in exclude
            if path.is_file() and not skip and path.name.endswith(STAGED_SUFFIXES):
                shutil.copy2(path, staging / path.name)
        (staging / "README.md").write_text(card_text, encoding="utf-8")
        for name, text in (extra_files or {}).items():
            (staging / name).write_text(text, encoding="utf-8")
    return sorted(path.name for path in target.iterdir())


@dataclass(frozen=True)
class UploadReport:
    repo_url: str
    commit_url: str
    files: list[str]


def upload_folder(
    make_api: Callable[[], Any],
    folder: Path,
    repo_id: str,
    *,
    token: str | None,
    private: bool,
    commit_message: str,
    repo_type: str = "model",
) -> UploadReport:
    """``create_repo(exist_ok=True)`` then ``upload_folder`` on ``make_api()`` (an ``HfApi``).

    Errors, including one from building the API, come back with ``token`` redacted; ``token`` is
    only used here to refuse a token-less upload and to redact."""
    if not token:
        raise PermissionError("No Hub token configured (set HF_TOKEN); refusing to upload.")
    files = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
    try:
        api = make_api()
        repo_url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=str(folder), repo_type=repo_type, commit_message=commit_message
        )
    except Exception as error:  # re-raise without the secret; the chain is dropped for the same reason
        raise RuntimeError(
            f"Upload of {folder} to {repo_type} repo {repo_id!r} failed: "
            f"{redact(f'{type(error).__name__}: {error}', token)}"
        ) from None
    return UploadReport(
        repo_url=str(repo_url), commit_url=str(getattr(commit, "commit_url", commit)), files=files
    )
