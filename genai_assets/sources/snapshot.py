"""Snapshot safety for ``raw_poems``: decide whether a new scrape may replace the last good file.

Three blocking checks, evaluated on the new frame before anything is written:

* ``schema`` — columns, order and value types match the contract (:mod:`genai_assets.schema`);
* ``non_empty`` — at least one poem;
* ``row_count_not_collapsed`` — for online sites, the new scrape has at least ``min_ratio`` ×
  the rows of the last good snapshot (default 50 %). A site that half-answers (rate limited,
  redesigned markup, an outage mid-crawl) shows up as a collapse. Bundled sites are
  deterministic (their size is set by config), so the check passes for them with a note.

If any check fails the frame is *rejected*: written to
``<lake>/raw_poems/_rejected/<site>-<UTC timestamp>.parquet`` for inspection, while the last
good ``<lake>/raw_poems/<site>.parquet`` stays untouched. A last good file that cannot be read
(truncated, not Parquet) would block its site forever, so :func:`inspect_previous_snapshot`
moves it to ``<lake>/raw_poems/_corrupt/`` and the scrape proceeds as if there were none.
Plain functions, no Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from genai_assets.lake import atomic_path
from genai_assets.schema import CheckOutcome, schema_problems

CHECK_SCHEMA = "schema"
CHECK_NON_EMPTY = "non_empty"
CHECK_NOT_COLLAPSED = "row_count_not_collapsed"


@dataclass(frozen=True)
class SnapshotVerdict:
    checks: list[CheckOutcome]

    @property
    def accepted(self) -> bool:
        """True if the new frame may replace the last good snapshot."""
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> list[str]:
        return [check.name for check in self.checks if not check.passed]


def previous_row_count(path: str | Path) -> int | None:
    """Rows of the last good snapshot at ``path`` (Parquet footer only), or None if there is none.

    Raises if the file exists but is not readable Parquet; :func:`inspect_previous_snapshot`
    is the forgiving variant the asset uses.
    """
    path = Path(path)
    if not path.exists():
        return None
    import pyarrow.parquet as pq

    return pq.read_metadata(path).num_rows


@dataclass(frozen=True)
class PreviousSnapshot:
    """What is known about the last good snapshot before a new one is judged."""

    rows: int | None  # None: there is none (never written, or moved aside as corrupt)
    quarantined_to: Path | None = None  # where an unreadable file was moved
    problem: str = ""  # why it was unreadable (one line)


def inspect_previous_snapshot(
    path: str | Path, quarantine_folder: str | Path, now: datetime | None = None
) -> PreviousSnapshot:
    """Row count of the last good snapshot; an unreadable one is moved aside, not fatal.

    A corrupt file would otherwise crash every future scrape of its site (and every reader
    downstream). It goes to ``<quarantine_folder>/<name>-<UTC timestamp>.parquet`` for
    inspection and the caller proceeds as if there were no previous snapshot.
    """
    path = Path(path)
    try:
        return PreviousSnapshot(previous_row_count(path))
    except PermissionError:
        raise  # a problem of the lake itself, not of the file's content
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid/ArrowIOError subclass these
        if not path.exists():
            raise
        problem = f"{type(error).__name__}: {error}".splitlines()[0][:300]
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = Path(quarantine_folder) / f"{path.stem}-{stamp}{path.suffix}"
    target.parent.mkdir(parents=True, exist_ok=True)
    path.replace(target)  # same lake, same filesystem: an atomic move
    return PreviousSnapshot(None, quarantined_to=target, problem=problem)


def evaluate_snapshot(
    frame: pd.DataFrame,
    previous_rows: int | None,
    min_ratio: float = 0.5,
    check_collapse: bool = True,
) -> SnapshotVerdict:
    """Run the three checks (see module docstring) on a freshly scraped frame."""
    if not 0.0 <= min_ratio <= 1.0:
        raise ValueError(f"min_ratio must be within [0, 1], got {min_ratio}.")
    problems = schema_problems(frame)
    schema = CheckOutcome(
        CHECK_SCHEMA,
        not problems,
        "columns and types match the raw_poems contract" if not problems else "; ".join(problems),
        {"columns": list(map(str, frame.columns)), "problems": problems},
    )
    rows = len(frame)
    non_empty = CheckOutcome(CHECK_NON_EMPTY, rows > 0, f"{rows} poems", {"rows": rows})
    counts: dict[str, Any] = {"new_rows": rows, "previous_rows": previous_rows, "min_ratio": min_ratio}
    if not check_collapse:
        collapse = CheckOutcome(CHECK_NOT_COLLAPSED, True, "not applicable (size set by config)", counts)
    elif not previous_rows:
        collapse = CheckOutcome(CHECK_NOT_COLLAPSED, True, "no earlier snapshot to compare with", counts)
    else:
        ratio = rows / previous_rows
        counts["ratio"] = round(ratio, 4)
        passed = ratio >= min_ratio
        relation = ">=" if passed else "<"
        collapse = CheckOutcome(
            CHECK_NOT_COLLAPSED,
            passed,
            f"{rows} rows vs {previous_rows} in the last good snapshot: ratio {ratio:.2f} {relation} {min_ratio}",
            counts,
        )
    return SnapshotVerdict([schema, non_empty, collapse])


def write_rejected(frame: pd.DataFrame, folder: str | Path, site: str, now: datetime | None = None) -> Path:
    """Keep a rejected scrape for inspection: ``<folder>/<site>-<YYYYmmddTHHMMSSffffffZ>.parquet`` (UTC, microseconds)."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = Path(folder) / f"{site}-{stamp}.parquet"
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)
    return target
