"""Staging a model folder for the Hub, and uploading a staged folder through an ``HfApi``.

The Dagster resource ``genai_assets.defs._resources.HubClient`` is the only place that builds
an ``HfApi`` and calls :func:`upload_folder`: tests replace it (or its ``api()`` factory) with a
recording fake. The token is a secret: it reaches
``HfApi`` and nothing else; it is never logged, put in metadata, or written to a file, and any
error message that might echo it is redacted before it is raised.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from genai_assets.lake import atomic_directory

# What a Hub model repo needs; anything else (optimizer state, checkpoints) stays home.
STAGED_SUFFIXES = (".json", ".safetensors", ".txt", ".model", ".jinja")
REDACTED = "***"
TOKEN_ENV_VAR = "HF_TOKEN"
ENDPOINT_ENV_VAR = "HF_ENDPOINT"
# Hub endpoints the client may talk to besides $HF_ENDPOINT (set by whoever runs the deployment,
# never by whoever launches a run).
ALLOWED_ENDPOINTS = ("https://huggingface.co",)


def clean_token(value: str | None) -> str | None:
    """The token without surrounding whitespace (CRLF .env files and mounted secrets add ``\\r\\n``).

    None for an empty value. A token with whitespace or control characters inside is refused
    (the message does not repeat it): sent as a header it would be rejected or split.
    """
    if value is None:
        return None
    token = value.strip()
    if not token:
        return None
    if any(character.isspace() or not character.isprintable() for character in token):
        raise ValueError(f"${TOKEN_ENV_VAR} contains whitespace or control characters inside the token.")
    return token


def hub_endpoint(environ: dict[str, str] | None = None) -> str | None:
    """The Hub URL from ``$HF_ENDPOINT`` (None = huggingface_hub's default, huggingface.co).

    Only the environment chooses it: a run-config endpoint would let anyone who can launch a run
    receive ``Authorization: Bearer <HF_TOKEN>`` on their own server. The value must be an
    ``https`` URL (or ``http`` to a loopback host, for a local mirror).
    """
    value = (os.environ if environ is None else environ).get(ENDPOINT_ENV_VAR, "").strip().rstrip("/")
    if not value:
        return None
    parts = urlsplit(value)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if (
        value in ALLOWED_ENDPOINTS
        or (parts.scheme == "https" and parts.hostname)
        or (parts.scheme == "http" and loopback)
    ):
        return value
    raise ValueError(
        f"${ENDPOINT_ENV_VAR}={value!r} is not an https URL (http only to localhost); refusing to send the token there."
    )


def secret_renderings(secret: str) -> list[str]:
    """Every way ``secret`` (and its unstripped form) may be rendered in a message, longest first.

    Raw, ``repr``/bytes-``repr`` escaped (``\\r\\n``), JSON-escaped and URL-encoded forms.
    """
    forms = set()
    for value in {secret, secret.strip()}:
        if not value:
            continue
        forms |= {
            value,
            repr(value)[1:-1],
            repr(value.encode("utf-8"))[2:-1],
            json.dumps(value)[1:-1],
            quote(value, safe=""),
            quote_plus(value),
        }
    return sorted((form for form in forms if form), key=len, reverse=True)


def redact(text: str, secret: str | None) -> str:
    """``text`` with every rendering of ``secret`` replaced by ``***`` (no-op for an empty secret)."""
    if not secret:
        return text
    for form in secret_renderings(secret):
        text = text.replace(form, REDACTED)
    return text


def validate_repo_id(repo_id: str, field: str = "repo_id") -> str:
    """``repo_id`` if it is a Hub id ``owner/name``, else a ValueError naming ``field``.

    Matters beyond the Hub: the name part becomes a folder under ``hub_staging/``, and a name such
    as ``.`` would make the staging swap replace ``hub_staging`` itself.
    """
    from huggingface_hub.utils import HFValidationError
    from huggingface_hub.utils import validate_repo_id as hub_validate

    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise ValueError(f"{field} {repo_id!r} must be 'owner/name' (exactly one '/').")
    try:
        hub_validate(repo_id)
    except HFValidationError as error:
        raise ValueError(f"{field} {repo_id!r} is not a valid Hub repo id: {error}") from None
    return repo_id


def path_inside(path: Path, root: Path, what: str) -> Path:
    """``path`` resolved, if it lies strictly inside ``root`` (symlinks followed), else a ValueError."""
    resolved, base = Path(path).resolve(), Path(root).resolve()
    if resolved == base or base not in resolved.parents:
        raise ValueError(f"{what} {path} is not inside {root}; only folders of the data lake are published.")
    return resolved


# Absolute local paths: POSIX (/home/x/...) not preceded by a URL's host or scheme, and Windows (C:\...).
_LOCAL_PATH = re.compile(r"(?<![\w:/.])/(?:[\w.~@+-]+/)+[\w.~@+-]*|\b[A-Za-z]:\\[^\s'\")\]]+")


def scrub_local_paths(text: str, known_roots: list[str | Path] = ()) -> str:
    """``text`` with local file-system paths replaced by ``<local path>`` (for published cards).

    ``known_roots`` (the lake root, the home folder) are replaced wherever they appear; other
    absolute paths by pattern. URLs are kept.
    """
    for root in sorted({str(r) for r in known_roots if str(r) not in ("", "/")}, key=len, reverse=True):
        text = re.sub(re.escape(root) + r"[^\s'\")\]`|]*", LOCAL_PATH_PLACEHOLDER, text)
    return _LOCAL_PATH.sub(LOCAL_PATH_PLACEHOLDER, text)


LOCAL_PATH_PLACEHOLDER = "<local path>"


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


class _RedactingFilter(logging.Filter):
    """Rewrites every record passing a handler so that no rendering of the secret is emitted."""

    def __init__(self, secret: str):
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            # A logged traceback is text too: fold it into the message, redacted, if it holds the secret.
            trace = "".join(traceback.format_exception(*record.exc_info))
            if redact(trace, self.secret) != trace:
                message = f"{message}\n{trace}"
                record.exc_info, record.exc_text = None, None
        record.msg, record.args = redact(message, self.secret), None
        return True


@contextlib.contextmanager
def redacted_logging(secret: str | None):
    """While the block runs, every log handler in the process redacts ``secret`` from what it emits.

    Handler filters see records from every logger that propagates to them, including third-party
    libraries' (httpx, huggingface_hub) debug logs of request headers.
    """
    if not secret:
        yield
        return
    redacting = _RedactingFilter(secret)
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    handlers = {id(handler): handler for logger in loggers for handler in logger.handlers}
    for handler in handlers.values():
        handler.addFilter(redacting)
    try:
        yield
    finally:
        for handler in handlers.values():
            handler.removeFilter(redacting)


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
    failure = None
    try:
        with redacted_logging(token):  # a client that logs its request headers logs them redacted
            api = make_api()
            repo_url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
            commit = api.upload_folder(
                repo_id=repo_id, folder_path=str(folder), repo_type=repo_type, commit_message=commit_message
            )
    except Exception as error:  # noqa: BLE001 - any client error may echo the Authorization header
        failure = redact(f"{type(error).__name__}: {error}", token)
    if failure is not None:
        # Raised outside the except block: the original error (and the token in it) is neither the
        # cause nor the context of this one, so no traceback renderer can print it.
        raise RuntimeError(f"Upload of {folder} to {repo_type} repo {repo_id!r} failed: {failure}")
    return UploadReport(
        repo_url=str(repo_url), commit_url=str(getattr(commit, "commit_url", commit)), files=files
    )
