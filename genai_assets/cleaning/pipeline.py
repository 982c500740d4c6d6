"""The cleansing pipeline: raw poems in, cleaned, filtered, de-duplicated and split poems out.

Order (each step counted in the report):

1. the text transforms of :data:`genai_assets.cleaning.rules.TRANSFORMS`;
2. filters: ``empty``, ``too_short``, ``too_long``, ``non_english``;
3. de-duplication in *keep priority* order — poems with a title and an author first, then by
   source (``ALL_SITES`` order), then table order — so the best-attributed copy survives:
   ``duplicate_poem_id``, ``exact_duplicate`` (same words), ``near_duplicate`` (MinHash LSH),
   ``contained_duplicate`` (most of a poem's distinctive lines already kept elsewhere);
4. ``split`` from a hash of ``poem_id``.

The output keeps the input's row order (sources in ``ALL_SITES`` order when built from
partitions) and has exactly :data:`genai_assets.schema.CLEANSED_POEM_COLUMNS`.

The per-text work (transforms, counts, splitting into words) is :func:`clean_texts`, on two
processes for a large corpus (same result: tested); every later step reads its word ids.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Annotated

import numpy as np
import pandas as pd

from genai_assets.cleaning.dedup import (
    contained_duplicate_of,
    exact_duplicate_of,
    near_duplicate_of,
)
from genai_assets.cleaning.rules import (
    TRANSFORMS,
    clean_label,
    is_too_long,
    is_too_short,
    stopword_shares,
)
from genai_assets.cleaning.split import assign_splits
from genai_assets.cleaning.textpass import TextPass, clean_texts
from genai_assets.config_checks import Ge, Interval, range_problems
from genai_assets.schema import CLEANSED_POEM_COLUMNS, RAW_POEM_COLUMNS
from genai_assets.sources.sites import ALL_SITES


@dataclass
class CleaningConfig:
    """Thresholds of the cleansing pipeline (defaults = the cpu demo profile)."""

    min_lines: Annotated[int, Ge(0), "fewer non-blank lines → dropped as too short"] = 2
    min_words: Annotated[int, Ge(0), "fewer words → dropped as too short"] = 6
    max_lines: Annotated[int, Ge(1), "more lines → dropped as too long (Lucrece has ~1,860)"] = 2500
    max_words: Annotated[int, Ge(1), "more words → dropped as too long"] = 25000
    min_ascii_letter_ratio: Annotated[
        float, Interval(ge=0, le=1), "share of letters that are a-z/A-Z, below → non-English"
    ] = 0.95
    min_stopword_ratio: Annotated[
        float, Interval(ge=0, le=1), "share of words that are English stopwords, below → non-English"
    ] = 0.1
    near_duplicate_threshold: Annotated[
        float, Interval(gt=0, le=1), "estimated Jaccard of word shingles at/above → near duplicate"
    ] = 0.7
    shingle_size: Annotated[int, Ge(1), "words per shingle for MinHash"] = 3
    num_perm: Annotated[
        int, Interval(ge=16, le=1024), "MinHash permutations (more = more precise, slower)"
    ] = 64
    lsh_false_negative_weight: Annotated[
        float, Interval(gt=0, lt=1), "LSH band layout: weight of missed pairs vs false candidates"
    ] = 0.7
    near_dedup: Annotated[bool, "run the MinHash near-duplicate step at all"] = True
    containment_ratio: Annotated[
        float, Interval(gt=0, le=1), "share of a poem's distinctive lines already kept → contained duplicate"
    ] = 0.5
    containment_min_line_words: Annotated[int, Ge(1), "words a line needs to count as distinctive"] = 4
    containment_dedup: Annotated[bool, "run the line-containment step at all"] = True
    train_ratio: Annotated[float, Interval(gt=0, le=1), "share of poems in train"] = 0.9
    val_ratio: Annotated[float, Ge(0), "share in val; test gets the rest"] = 0.05
    seed: Annotated[int, "seeds the split hash and the MinHash permutations"] = 1337

    def __post_init__(self) -> None:
        problems = range_problems(self)
        if self.max_lines < self.min_lines or self.max_words < self.min_words:
            problems.append(
                f"max_lines/max_words must be >= the minimums (got max_lines={self.max_lines}, "
                f"max_words={self.max_words}, min_lines={self.min_lines}, min_words={self.min_words})"
            )
        if self.train_ratio + self.val_ratio > 1.0:
            problems.append(
                f"split ratios need train_ratio + val_ratio <= 1 "
                f"(got train_ratio={self.train_ratio}, val_ratio={self.val_ratio})"
            )
        if problems:
            raise ValueError("Invalid cleaning config: " + "; ".join(problems) + ".")


# Named presets (overrides of the defaults above; cpu = the defaults).
CLEANING_PRESETS: dict[str, dict] = {"tiny": {"num_perm": 32}, "cpu": {}, "gpu": {"num_perm": 128}}


@dataclass
class RuleReport:
    """What one pipeline step did."""

    rule: str
    kind: str  # "transform", "filter" or "dedup"
    rows_in: int
    rows_changed: int  # transforms: texts the rule altered
    rows_removed: int  # filters and dedup: rows dropped
    seconds: float = 0.0  # wall time of the step
    cpu_seconds: float = 0.0  # CPU time of this process during the step (unaffected by other load)


@dataclass
class CleanseResult:
    table: pd.DataFrame  # the cleansed poems (CLEANSED_POEM_COLUMNS)
    steps: list[RuleReport]  # one entry per step, in order
    removed: pd.DataFrame  # poem_id, source, rule, duplicate_of, similarity for every dropped row

    def steps_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(step) for step in self.steps])


def combine_partitions(partitions: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Concatenate raw_poems partitions in ``ALL_SITES`` order (unknown sites last, by name)."""
    rank = {site: index for index, site in enumerate(ALL_SITES)}
    ordered = sorted(partitions, key=lambda site: (rank.get(site, len(rank)), site))
    frames = [partitions[site] for site in ordered if len(partitions[site])]
    if not frames:
        raise ValueError(f"Empty corpus: the raw_poems partitions {ordered or '[]'} hold no poems.")
    return pd.concat(frames, ignore_index=True)


def keep_priority(frame: pd.DataFrame) -> np.ndarray:
    """Row positions in the order de-duplication visits them (earlier copies are kept)."""

    def present(column: str) -> np.ndarray:
        values = frame[column].tolist()  # a list comprehension: Series.map with a lambda cost 3x more
        return np.array([isinstance(value, str) and bool(value.strip()) for value in values], dtype=bool)

    missing_metadata = (~present("title")).astype(int) + (~present("author")).astype(int)
    site_rank = {site: index for index, site in enumerate(ALL_SITES)}
    sources = frame["source"].tolist()
    source_rank = np.array([site_rank.get(source, len(site_rank)) for source in sources], dtype=int)
    return np.lexsort((np.arange(len(frame)), source_rank, missing_metadata))


def _transform_reports(cleaned: TextPass, rows: int) -> list[RuleReport]:
    return [
        RuleReport(name, "transform", rows, changed, 0, seconds, cpu_seconds)
        for (name, _), changed, seconds, cpu_seconds in zip(
            TRANSFORMS, cleaned.changed, cleaned.seconds, cleaned.cpu_seconds, strict=True
        )
    ]


class _Removals:
    """The rows still alive, and one ``RuleReport`` plus removed-rows frame per removal step."""

    def __init__(self, frame: pd.DataFrame, steps: list[RuleReport]) -> None:
        self.alive = np.ones(len(frame), dtype=bool)
        self.poem_ids = frame["poem_id"].to_numpy(dtype=object)
        self.sources = frame["source"].to_numpy(dtype=object)
        self.removed: list[pd.DataFrame] = []
        self.steps = steps  # the transforms' reports; each removal step appends its own
        self.step_started, self.step_cpu_started = time.perf_counter(), time.process_time()

    def drop(self, positions, rule: str, kind: str, duplicate_of=None, similarity=None) -> None:
        """Drop ``positions`` under ``rule``; the step's time runs from the end of the previous step."""
        positions = np.asarray(positions, dtype=np.int64)
        rows_in = int(self.alive.sum())
        self.removed.append(
            pd.DataFrame(
                {
                    "poem_id": self.poem_ids[positions],
                    "source": self.sources[positions],
                    "rule": rule,
                    "duplicate_of": None
                    if duplicate_of is None
                    else self.poem_ids[np.asarray(duplicate_of, dtype=np.int64)],
                    "similarity": np.nan if similarity is None else np.asarray(similarity, dtype=float),
                }
            )
        )
        self.alive[positions] = False
        now, cpu_now = time.perf_counter(), time.process_time()
        self.steps.append(
            RuleReport(
                rule,
                kind,
                rows_in,
                0,
                len(positions),
                now - self.step_started,
                cpu_now - self.step_cpu_started,
            )
        )
        self.step_started, self.step_cpu_started = now, cpu_now

    def drop_duplicates(
        self, order: np.ndarray, rule: str, duplicate_of: np.ndarray, similarity: np.ndarray
    ) -> np.ndarray:
        """Drop each visited row whose match (index into ``order``, -1 = none) came first; the survivors' order."""
        hits = np.flatnonzero(duplicate_of >= 0)
        self.drop(order[hits], rule, "dedup", order[duplicate_of[hits]], similarity[hits])
        return order[self.alive[order]]


def _prepare_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """The raw columns in contract order, titles and authors without invisible characters; refuse bad input."""
    missing = [column for column in RAW_POEM_COLUMNS if column not in raw.columns]
    if missing:
        raise ValueError(f"raw poems lack the columns {missing}; expected {list(RAW_POEM_COLUMNS)}.")
    if raw.empty:
        raise ValueError("Empty corpus: raw_poems has no rows to cleanse.")
    frame = raw.loc[:, list(RAW_POEM_COLUMNS)].reset_index(drop=True)
    # Titles and authors lose invisible characters too (the text rule minus printable debris).
    for column in ("title", "author"):
        frame[column] = pd.Series([clean_label(value) for value in frame[column]], dtype=object)
    return frame


def _filter_texts(cleaned: TextPass, config: CleaningConfig, removals: _Removals) -> tuple:
    """Drop empty, too short, too long and non-English texts; the word ids of every text (by position).

    Each text was split into its dictionary words once (:func:`clean_texts`): the language filter,
    the exact, near and contained duplicate steps all read these word ids.
    """
    alive, n_lines, n_words = removals.alive, cleaned.n_lines, cleaned.n_words
    # is_empty(text) is exactly n_words == 0: str.strip() and str.split() share one notion of whitespace.
    removals.drop(np.flatnonzero(alive & (n_words == 0)), "empty", "filter")
    short = is_too_short(n_lines, n_words, config.min_lines, config.min_words)
    removals.drop(np.flatnonzero(alive & short), "too_short", "filter")
    long = is_too_long(n_lines, n_words, config.max_lines, config.max_words)
    removals.drop(np.flatnonzero(alive & long), "too_long", "filter")
    # The language filter's share of the text pass (splitting into words, ASCII shares) is its time.
    removals.step_started -= cleaned.words_seconds
    removals.step_cpu_started -= cleaned.words_cpu_seconds
    candidates = np.flatnonzero(alive)
    tokens = cleaned.tokens
    shares = stopword_shares(tokens.vocabulary, tokens.ids, tokens.lengths)[candidates]
    # rules.looks_non_english, for all candidates at once.
    foreign = (cleaned.ascii_ratios[candidates] < config.min_ascii_letter_ratio) | (
        shares < config.min_stopword_ratio
    )
    removals.drop(candidates[foreign], "non_english", "filter")
    return tokens


def _drop_duplicate_ids(frame: pd.DataFrame, removals: _Removals) -> np.ndarray:
    """Drop later rows of a repeated ``poem_id``; the survivors in keep-priority order."""
    alive, poem_ids = removals.alive, removals.poem_ids
    # De-duplication visits the surviving rows in keep-priority order.
    order = keep_priority(frame)
    order = order[alive[order]]
    seen_ids: dict[str, int] = {}
    id_duplicates, id_originals = [], []
    for position in order.tolist():
        first = seen_ids.setdefault(poem_ids[position], position)
        if first != position:
            id_duplicates.append(position)
            id_originals.append(first)
    removals.drop(id_duplicates, "duplicate_poem_id", "dedup", id_originals, np.ones(len(id_duplicates)))
    return order[alive[order]]


def _drop_text_duplicates(
    order: np.ndarray, tokens, config: CleaningConfig, removals: _Removals
) -> np.ndarray:
    """Drop exact, then (if on) MinHash near duplicates of the word ids; the survivors' order."""
    exact = exact_duplicate_of(tokens.select(order))
    order = removals.drop_duplicates(order, "exact_duplicate", exact, np.ones(len(exact)))
    if config.near_dedup:
        near, similarity = near_duplicate_of(
            tokens.select(order),
            threshold=config.near_duplicate_threshold,
            shingle_size=config.shingle_size,
            num_perm=config.num_perm,
            seed=config.seed,
            false_negative_weight=config.lsh_false_negative_weight,
        )
        order = removals.drop_duplicates(order, "near_duplicate", near, similarity)
    return order


def _kept_table(
    frame: pd.DataFrame,
    texts: list[str],
    counts: tuple[np.ndarray, np.ndarray],
    config: CleaningConfig,
    alive,
) -> pd.DataFrame:
    """The surviving rows with their cleaned text, line/word counts and split, in contract columns."""
    n_lines, n_words = counts
    kept = np.flatnonzero(alive)
    table = frame.iloc[kept].reset_index(drop=True)
    kept_texts = [texts[position] for position in kept]
    table["text"] = pd.Series(kept_texts, dtype=object)
    table["n_lines"] = n_lines[kept]
    table["n_words"] = n_words[kept]
    table["split"] = assign_splits(table["poem_id"], config.train_ratio, config.val_ratio, config.seed)
    return table.loc[:, list(CLEANSED_POEM_COLUMNS)]


def cleanse_poems(raw: pd.DataFrame, config: CleaningConfig | None = None) -> CleanseResult:
    """Clean, filter, de-duplicate and split ``raw`` (a raw_poems table, all partitions)."""
    config = config or CleaningConfig()
    frame = _prepare_frame(raw)
    # tolist(): iterating an Arrow-backed string column yields one element at a time, 4x slower.
    cleaned = clean_texts([text if isinstance(text, str) else "" for text in frame["text"].tolist()])
    steps = _transform_reports(cleaned, len(frame))
    texts = cleaned.texts
    removals = _Removals(frame, steps)
    # The "empty" step also counts the counting and (two processes) the hand-over between them.
    removals.step_started -= cleaned.other_seconds
    removals.step_cpu_started -= cleaned.other_cpu_seconds
    tokens = _filter_texts(cleaned, config, removals)
    n_lines, n_words = cleaned.n_lines, cleaned.n_words
    del cleaned
    order = _drop_duplicate_ids(frame, removals)
    order = _drop_text_duplicates(order, tokens, config, removals)

    if config.containment_dedup:
        contained, shared = contained_duplicate_of(
            tokens.select(order),
            min_line_words=config.containment_min_line_words,
            min_shared_ratio=config.containment_ratio,
        )
        order = removals.drop_duplicates(order, "contained_duplicate", contained, shared)

    if not removals.alive.any():
        emptied_by = next(step.rule for step in reversed(steps) if step.rows_removed)
        raise ValueError(
            f"Cleansing removed every poem (the last ones by rule {emptied_by!r}); "
            "check the raw data and the thresholds in the cleansing config."
        )
    table = _kept_table(frame, texts, (n_lines, n_words), config, removals.alive)
    return CleanseResult(table=table, steps=steps, removed=pd.concat(removals.removed, ignore_index=True))
