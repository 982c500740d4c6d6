"""The data lake: where every asset keeps its files, and how they are written safely.

Layout (root is ``data_lake/`` unless ``GENAI_DATA_LAKE`` says otherwise)::

    raw_poems/<site>.parquet        one file per partition (source site)
    cleansed_poems.parquet          unpartitioned tables: <asset>.parquet
    exports/                        seed-format exports (raw_poems.json, cleansed.txt)
    reports/                        EDA and evaluation reports and their PNG plots
    models/<asset>/                 Hugging Face folders (config, safetensors, tokenizer, card)
    checkpoints/<asset>/            resumable training state

Every write goes to a temporary file in the same folder and is then renamed over the target
(``os.replace`` is atomic on POSIX), so a crash never leaves half a file behind and readers
see either the old snapshot or the new one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

DATA_LAKE_ENV_VAR = "GENAI_DATA_LAKE"


def default_lake_root() -> Path:
    """The lake root: ``$GENAI_DATA_LAKE`` if set, else ``./data_lake`` (absolute)."""
    return Path(os.environ.get(DATA_LAKE_ENV_VAR) or "data_lake").expanduser().resolve()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` if the block succeeds.

    If the block raises, the temporary file is removed and ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600 files; lake files are ordinary readable data, like open() would make.
    tmp.chmod(0o644)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(target: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically and return the target path."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically and return the target path."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty staging folder; swap it in for ``target`` if the block succeeds.

    Used for model folders: a half-written ``save_pretrained`` never replaces the last good
    model. The swap renames the old folder aside, renames the new one in, then deletes the
    old one, so at every instant one complete folder sits at ``target``'s path or its backup.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes 0700 folders; model folders are meant to be shared.
    try:
        yield staging
        backup = target.with_name(f".{target.name}.old")
        if backup.exists():
            shutil.rmtree(backup)
        if target.exists():
            os.replace(target, backup)
        os.replace(staging, target)
        if backup.exists():
            shutil.rmtree(backup)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
