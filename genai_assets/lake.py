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
import time
from collections.abc import Iterator
from pathlib import Path

DATA_LAKE_ENV_VAR = "GENAI_DATA_LAKE"
# A ``.staging``/``.tmp`` leftover older than this is from a dead writer (a live one touches its
# files every few seconds; the slowest, a large save_pretrained, takes minutes), so it is removed.
STALE_LEFTOVER_SECONDS = 3600.0


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
    # A crash between the two renames of an earlier swap left only the backup: put it back first,
    # so the backup deleted below is never the last good copy.
    recover_interrupted_swap(target)
    clean_stale_leftovers(target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes 0700 folders; model folders are meant to be shared.
    try:
        yield staging
        backup = _backup_path(target)
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


def _backup_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


def recover_interrupted_swap(target: str | os.PathLike[str]) -> bool:
    """Undo half a folder swap: if ``target`` is missing but its backup ``.<name>.old`` exists, rename it back.

    :func:`atomic_directory` renames the old folder aside, then the new one in; a kill between the
    two leaves only the backup, which is the last complete folder. Returns True if it recovered one.
    A backup next to an existing ``target`` is a finished swap's leftover and is removed.
    """
    target = Path(target)
    backup = _backup_path(target)
    if not backup.is_dir():
        return False
    if target.exists():
        shutil.rmtree(backup, ignore_errors=True)
        return False
    try:
        os.replace(backup, target)
    except FileNotFoundError:  # another process recovered it first
        return target.exists()
    return True


def clean_stale_leftovers(
    folder: str | os.PathLike[str], max_age_seconds: float = STALE_LEFTOVER_SECONDS
) -> list[str]:
    """Remove ``.*.staging`` folders and ``.*.tmp`` files in ``folder`` older than ``max_age_seconds``.

    They are what a killed writer leaves behind. Young ones are left alone: they may belong to a
    writer still at work in another process. Returns the names removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now, removed = time.time(), []
    for path in folder.iterdir():
        name = path.name
        if not name.startswith(".") or not name.endswith((".staging", ".tmp")):
            continue
        try:
            if now - path.lstat().st_mtime < max_age_seconds:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:  # removed meanwhile by its writer
            continue
        removed.append(name)
    return sorted(removed)


def recover_lake(root: str | os.PathLike[str]) -> dict[str, list[str]]:
    """On start: recover every interrupted model-folder swap and clean stale leftovers under ``root``.

    Looks at ``root`` and its first two folder levels (``models/<asset>``, ``checkpoints/<asset>/run-*``,
    ``human_eval/...``), which is where folders are swapped. Returns what it did, for metadata/logs.
    """
    root = Path(root)
    recovered: list[str] = []
    cleaned: list[str] = []
    frontier = [root] if root.is_dir() else []
    for _depth in range(3):
        next_frontier = []
        for folder in frontier:
            for backup in folder.glob(".*.old"):
                target = folder / backup.name[1:-4]
                if recover_interrupted_swap(target):
                    recovered.append(str(target.relative_to(root)))
            cleaned += [str((folder / name).relative_to(root)) for name in clean_stale_leftovers(folder)]
            next_frontier += [
                child for child in folder.iterdir() if child.is_dir() and not child.name.startswith(".")
            ]
        frontier = next_frontier
    return {"recovered": sorted(recovered), "cleaned": sorted(cleaned)}
