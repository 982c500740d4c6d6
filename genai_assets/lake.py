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

The lake only ever touches files it created. A root is marked on first use (``.genai_assets_lake.json``:
project and layout version); an unmarked root is adopted only when everything in it is part of
this layout (the tracked ``data_lake/README.md``, ``.gitkeep`` and ``human_eval/README.md``
included), and refused otherwise (:func:`open_lake`). Every temporary, staging and backup name the
lake creates starts with :data:`LAKE_TEMP_PREFIX`, and recovery acts on those names only, logging
each file it moves or removes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

DATA_LAKE_ENV_VAR = "GENAI_DATA_LAKE"
LAKE_MARKER_FILE = ".genai_assets_lake.json"
LAKE_PROJECT = "genai_assets"
LAKE_LAYOUT_VERSION = 1  # bump when the layout changes in a way an older version must not write into
# Every temporary file, staging folder and backup the lake creates starts with this; recovery
# renames or deletes nothing else, so a person's own ".x.tmp" or ".y.old" is never touched.
LAKE_TEMP_PREFIX = ".genai_assets~"
# What an unmarked root may hold to be adopted as a lake: the layout above, the files tracked in
# the repository's data_lake/, and any "<asset>.parquet" table the Parquet IO manager writes.
KNOWN_LAKE_ENTRIES = frozenset(
    {
        "raw_poems",
        "exports",
        "reports",
        "models",
        "checkpoints",
        "datasets",
        "hub_staging",
        "teaching",
        "embeddings",
        "token_arrays",
        "human_eval",
        "versions",
        "README.md",
        ".gitkeep",
    }
)
_TABLE_FILE = re.compile(r"[a-z][a-z0-9_]*\.parquet")
# Leftovers of this project's writers from before the prefix existed (".<known>.<random>.tmp").
_LEGACY_LEFTOVER = re.compile(r"\.(?P<name>[^/]+?)(\.[^./]+)?\.(tmp|staging|old)")

logger = logging.getLogger(__name__)
Log = Callable[[str], None]


class LakeRefusedError(RuntimeError):
    """The lake root holds files this project did not create, or was marked by something else."""


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
    fd, tmp_name = tempfile.mkstemp(
        prefix=f"{LAKE_TEMP_PREFIX}{target.name}.", suffix=".tmp", dir=target.parent
    )
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
    staging = Path(
        tempfile.mkdtemp(prefix=f"{LAKE_TEMP_PREFIX}{target.name}.", suffix=".staging", dir=target.parent)
    )
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
    return target.with_name(f"{LAKE_TEMP_PREFIX}{target.name}.old")


def recover_interrupted_swap(target: str | os.PathLike[str], log: Log | None = None) -> bool:
    """Undo half a folder swap: if ``target`` is missing but its backup exists, rename it back.

    :func:`atomic_directory` renames the old folder aside (``.genai_assets~<name>.old``), then the
    new one in; a kill between the two leaves only the backup, which is the last complete folder.
    Returns True if it recovered one. A backup next to an existing ``target`` is a finished swap's
    leftover and is removed. ``log`` (default: this module's logger) hears of every move and removal.
    """
    log = log or logger.warning
    target = Path(target)
    backup = _backup_path(target)
    if not backup.is_dir():
        return False
    if target.exists():
        shutil.rmtree(backup, ignore_errors=True)
        log(f"Data lake: removed {backup} (backup left by a finished folder swap of {target.name}).")
        return False
    try:
        os.replace(backup, target)
    except FileNotFoundError:  # another process recovered it first
        return target.exists()
    log(f"Data lake: moved {backup} back to {target} (a run was killed in the middle of a folder swap).")
    return True


def clean_stale_leftovers(
    folder: str | os.PathLike[str], max_age_seconds: float = STALE_LEFTOVER_SECONDS, log: Log | None = None
) -> list[str]:
    """Remove the lake's own ``.genai_assets~*.staging`` folders and ``.genai_assets~*.tmp`` files older than ``max_age_seconds``.

    They are what a killed writer leaves behind. Young ones are left alone: they may belong to a
    writer still at work in another process. Names without :data:`LAKE_TEMP_PREFIX` are never
    touched. Returns the names removed; ``log`` hears of each.
    """
    log = log or logger.warning
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now, removed = time.time(), []
    for path in folder.iterdir():
        name = path.name
        if not name.startswith(LAKE_TEMP_PREFIX) or not name.endswith((".staging", ".tmp")):
            continue
        try:
            age = now - path.lstat().st_mtime
            if age < max_age_seconds:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:  # removed meanwhile by its writer
            continue
        log(f"Data lake: removed {path} (left by a killed writer {age / 60:.0f} min ago).")
        removed.append(name)
    return sorted(removed)


def read_lake_marker(root: str | os.PathLike[str]) -> dict | None:
    """The marker of the lake at ``root``; None when there is none."""
    path = Path(root) / LAKE_MARKER_FILE
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise LakeRefusedError(
            f"{path} is not a readable lake marker ({error}); remove it or fix it."
        ) from error
    return marker if isinstance(marker, dict) else {}


def _foreign_entries(root: Path) -> list[str]:
    """Top-level names in ``root`` that are not part of this project's lake layout."""
    foreign = []
    for entry in root.iterdir():
        name = entry.name
        legacy = _LEGACY_LEFTOVER.fullmatch(name)
        ours = (
            name in KNOWN_LAKE_ENTRIES
            or name.startswith(LAKE_TEMP_PREFIX)
            or (_TABLE_FILE.fullmatch(name) and entry.is_file())
            or (legacy and (legacy["name"] in KNOWN_LAKE_ENTRIES or _TABLE_FILE.fullmatch(legacy["name"])))
        )
        if not ours:
            foreign.append(name)
    return sorted(foreign)


def open_lake(root: str | os.PathLike[str], log: Log | None = None) -> str:
    """Make sure ``root`` is this project's lake before anything writes or recovers in it.

    Returns ``"marked"`` (already a lake), ``"created"`` (new or empty folder, now marked) or
    ``"adopted"`` (an unmarked folder holding only this layout, now marked). Raises
    :class:`LakeRefusedError` for a folder holding anything else, or marked by another project or
    by a newer layout version.
    """
    log = log or logger.info
    root = Path(root)
    marker = read_lake_marker(root)
    if marker is not None:
        if marker.get("project") != LAKE_PROJECT:
            raise LakeRefusedError(
                f"{root} is marked as a data lake of {marker.get('project')!r}, not {LAKE_PROJECT!r} "
                f"({root / LAKE_MARKER_FILE}). Point {DATA_LAKE_ENV_VAR} at another folder."
            )
        if int(marker.get("layout_version", 0)) > LAKE_LAYOUT_VERSION:
            raise LakeRefusedError(
                f"{root} has lake layout version {marker.get('layout_version')}, newer than this version "
                f"of {LAKE_PROJECT} knows ({LAKE_LAYOUT_VERSION}); upgrade the project or use another folder."
            )
        return "marked"
    if root.exists() and not root.is_dir():
        raise LakeRefusedError(f"{root} is a file, not a folder; point {DATA_LAKE_ENV_VAR} at a folder.")
    foreign = _foreign_entries(root) if root.is_dir() else []
    if foreign:
        shown = ", ".join(foreign[:8]) + (f" and {len(foreign) - 8} more" if len(foreign) > 8 else "")
        raise LakeRefusedError(
            f"{root} is not a {LAKE_PROJECT} data lake: it has no {LAKE_MARKER_FILE} marker and holds "
            f"files this project did not create ({shown}). The lake renames and deletes its own leftover "
            f"files, so it will not share a folder with other files. Point {DATA_LAKE_ENV_VAR} (or the "
            "lake resource's root) at an empty or new folder, which is created and marked, or at a lake "
            "this project made."
        )
    status = "adopted" if root.is_dir() and any(root.iterdir()) else "created"
    root.mkdir(parents=True, exist_ok=True)
    marker = {
        "project": LAKE_PROJECT,
        "layout_version": LAKE_LAYOUT_VERSION,
        "marked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "how": status,
    }
    atomic_write_text(root / LAKE_MARKER_FILE, json.dumps(marker, indent=2) + "\n")
    log(f"Data lake: {status} and marked {root} ({LAKE_MARKER_FILE}, layout version {LAKE_LAYOUT_VERSION}).")
    return status


def recover_lake(root: str | os.PathLike[str], log: Log | None = None) -> dict[str, list[str]]:
    """On start: recover every interrupted model-folder swap and clean stale leftovers under ``root``.

    Only in a marked lake (:func:`open_lake` first; raises :class:`LakeRefusedError` otherwise), and
    only on names the lake creates (:data:`LAKE_TEMP_PREFIX`). Looks at ``root`` and its first two
    folder levels (``models/<asset>``, ``checkpoints/<asset>/run-*``, ``human_eval/...``), which is
    where folders are swapped. Returns what it did; ``log`` hears of every file moved or removed.
    """
    root = Path(root)
    if root.is_dir() and read_lake_marker(root) is None:
        raise LakeRefusedError(f"{root} is not a marked data lake; call open_lake({str(root)!r}) first.")
    # First: finish publications past their commit point (their staged files must not be cleaned).
    recovered: list[str] = [f"{asset} (publication)" for asset in complete_publications(root, log=log)]
    cleaned: list[str] = []
    frontier = [root] if root.is_dir() else []
    for _depth in range(3):
        next_frontier = []
        for folder in frontier:
            for backup in folder.glob(f"{LAKE_TEMP_PREFIX}*.old"):  # "~" is no glob wildcard
                target = folder / backup.name[len(LAKE_TEMP_PREFIX) : -len(".old")]
                if recover_interrupted_swap(target, log=log):
                    recovered.append(str(target.relative_to(root)))
            cleaned += [
                str((folder / name).relative_to(root)) for name in clean_stale_leftovers(folder, log=log)
            ]
            next_frontier += [
                child for child in folder.iterdir() if child.is_dir() and not child.name.startswith(".")
            ]
        frontier = next_frontier
    return {"recovered": sorted(recovered), "cleaned": sorted(cleaned)}


# --- files of one asset published together ----------------------------------------------------------

VERSIONS_FOLDER = "versions"  # <lake>/versions/<asset>.json: the run and file hashes of the current set


def _journal_path(root: Path, asset: str, run_id: str) -> Path:
    return root / f"{LAKE_TEMP_PREFIX}{asset}.{run_id}.commit.json"


class AssetVersion:
    """The files of one asset run, staged beside their targets and published as one version.

    The asset body and the IO manager each :meth:`stage` their files (written to prefixed temporary
    names, so nothing visible changes); the IO manager then calls :meth:`publish`, which writes a
    commit journal listing every staged file with its target, renames them all into place and
    removes the journal. A kill before the journal exists leaves the previous set untouched (the
    staged files are stale leftovers); a kill after it is rolled forward by
    :func:`complete_publications` at the next start, so readers only ever see all files of one run.
    ``<lake>/versions/<asset>.json`` names the run and each file's SHA-256, published with them.
    """

    def __init__(self, root: str | os.PathLike[str], asset: str, run_id: str) -> None:
        self.root, self.asset, self.run_id = Path(root), asset, run_id
        self._record = self.root / f"{LAKE_TEMP_PREFIX}{asset}.{run_id}.pending.tmp"
        self._base = self.root.resolve()

    def _staged(self) -> dict[str, str]:
        return json.loads(self._record.read_text(encoding="utf-8")) if self._record.is_file() else {}

    def stage(self, target: str | os.PathLike[str]) -> Path:
        """A path to write ``target``'s new content to; it becomes ``target`` when the version is published."""
        target = Path(target).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(f"{LAKE_TEMP_PREFIX}{target.name}.{self.run_id}.tmp")
        # Paths relative to the root: a journal stays valid if the lake is moved or copied.
        relative = {str(target.relative_to(self._base)): str(staged.relative_to(self._base))}
        atomic_write_text(self._record, json.dumps(self._staged() | relative))  # survives a process change
        return staged

    def discard(self) -> None:
        """Drop every staged file (the run declined to write a new version)."""
        for staged in self._staged().values():
            (self._base / staged).unlink(missing_ok=True)
        self._record.unlink(missing_ok=True)

    def publish(self, log: Log | None = None) -> dict[str, str]:
        """Journal, then rename every staged file into place; returns ``{target: sha256}``."""
        import hashlib

        staged = self._staged()
        missing = [target for target, path in staged.items() if not (self._base / path).is_file()]
        if missing:
            raise FileNotFoundError(f"{self.asset}: staged files were never written for {missing}.")
        hashes = {
            target: hashlib.sha256((self._base / path).read_bytes()).hexdigest()
            for target, path in staged.items()
        }
        manifest_staged = self.stage(self.root / VERSIONS_FOLDER / f"{self.asset}.json")
        manifest_staged.write_text(
            json.dumps({"asset": self.asset, "run_id": self.run_id, "files": hashes}, indent=2) + "\n",
            encoding="utf-8",
        )
        journal = _journal_path(self.root, self.asset, self.run_id)
        atomic_write_text(journal, json.dumps(self._staged()))  # the commit point
        self._record.unlink(missing_ok=True)
        complete_publications(self.root, log=log, quiet=True)
        return hashes


def complete_publications(
    root: str | os.PathLike[str], log: Log | None = None, quiet: bool = False
) -> list[str]:
    """Finish every publication whose commit journal exists (a kill came after its commit point).

    Renames each staged file still waiting into place, then removes the journal; idempotent.
    Returns the assets completed. ``log`` hears of every file moved, unless ``quiet`` (a normal publish).
    """
    log = log or logger.warning
    root = Path(root)
    completed = []
    for journal in sorted(root.glob(f"{LAKE_TEMP_PREFIX}*.commit.json")):
        for target, staged in json.loads(journal.read_text(encoding="utf-8")).items():
            staged, target = root / staged, root / target
            if staged.exists():
                os.replace(staged, target)
                if not quiet:
                    log(
                        f"Data lake: moved {staged} to {target} (finishing a publication a kill interrupted)."
                    )
        journal.unlink()
        completed.append(journal.name[len(LAKE_TEMP_PREFIX) : -len(".commit.json")])  # "<asset>.<run id>"
    return completed
