"""The whole cleansing pipeline on a hand-made corpus: exactly which poems survive, and why."""

import numpy as np
import pandas as pd
import pytest

from genai_assets.cleaning.pipeline import CleaningConfig, cleanse_poems, combine_partitions, keep_priority
from genai_assets.schema import CLEANSED_POEM_COLUMNS, raw_poems_frame

ROSES = "The rose is red and the violet blue,\nSugar is sweet and so are you."
SHORE = (
    "Along the cold and silent shore the grey waves break and fall,\n"
    "and far beyond the harbour lights the patient sailors call;\n\n"
    "the gulls are crying overhead, the nets are hung to dry,\n"
    "and every mother at the door looks out to sea and sky."
)
TIGER = "Tiger, tiger, burning bright\nIn the forests of the night,\nWhat immortal hand or eye\nCould frame thy fearful symmetry?"


def record(source, key, text, title=None, author=None):
    return {
        "source": source,
        "source_key": key,
        "text": text,
        "title": title,
        "author": author,
        "license": "PD",
    }


def toy_raw() -> pd.DataFrame:
    """Keys name what should happen to each poem."""
    return raw_poems_frame(
        [
            record("gutenberg", "roses-untitled", ROSES),  # exact dup of the titled copy below
            record("gutenberg", "shore-untitled", SHORE.replace("sky.", "skies.")),  # near dup of poetrydb's
            record("gutenberg", "tiger", "  _Tiger_, tiger--burning bright{3}\n" + TIGER.split("\n", 1)[1]),
            record("gutenberg", "too-short", "Ah me,\nalas."),
            record(
                "gutenberg",
                "latin",
                "Monstrat Joannes Christum, haud res mira videtur:\nVox unus, verbum scilicet alter erat.",
            ),
            record("gutenberg", "empty", "* * *\n\n123"),
            record("gutenberg", "roses-shouted", ROSES.upper().replace(",", "!")),  # exact dup
            record("shakespeare", "roses", ROSES, title="Roses", author="Anon"),
            record("poetrydb", "shore", SHORE, title="Shore", author="A. Poet"),
        ]
    )


def test_exactly_the_expected_poems_survive_with_reasons():
    raw = toy_raw()
    result = cleanse_poems(raw, CleaningConfig(num_perm=128))
    ids = dict(
        zip(
            raw["poem_id"],
            [
                key
                for key in (
                    "roses-untitled",
                    "shore-untitled",
                    "tiger",
                    "too-short",
                    "latin",
                    "empty",
                    "roses-shouted",
                    "roses",
                    "shore",
                )
            ],
            strict=True,
        )
    )
    kept = [ids[poem_id] for poem_id in result.table["poem_id"]]
    assert kept == ["tiger", "roses", "shore"]  # input order kept
    removed = {ids[row.poem_id]: (row.rule, ids.get(row.duplicate_of)) for row in result.removed.itertuples()}
    assert removed == {
        "empty": ("empty", None),
        "too-short": ("too_short", None),
        "latin": ("non_english", None),
        "roses-untitled": ("exact_duplicate", "roses"),  # the titled, authored copy wins
        "roses-shouted": ("exact_duplicate", "roses"),
        "shore-untitled": ("near_duplicate", "shore"),
    }
    steps = result.steps_frame().set_index("rule")
    assert steps.loc["too_short", "rows_in"] == 8 and steps.loc["too_short", "rows_removed"] == 1
    assert steps.loc["near_duplicate", "rows_in"] == 4 and steps.loc["near_duplicate", "rows_removed"] == 1
    assert steps.loc["strip_markup", "rows_changed"] == 1  # the {3}
    assert steps.loc["normalize_punctuation", "rows_changed"] == 1  # the --


def test_output_table_follows_the_contract():
    result = cleanse_poems(toy_raw(), CleaningConfig(num_perm=128))
    table = result.table
    assert tuple(table.columns) == CLEANSED_POEM_COLUMNS
    tiger = table.loc[table["title"].isna(), "text"].item()
    assert (
        tiger
        == "Tiger, tiger\u2014burning bright\nIn the forests of the night,\nWhat immortal hand or eye\nCould frame thy fearful symmetry?"
    )
    assert table["n_lines"].tolist() == [4, 2, 4]
    assert table["n_words"].tolist() == [19, 15, 45]
    assert table["n_lines"].dtype == np.int64 and set(table["split"]) <= {"train", "val", "test"}
    # content_hash is the raw identity column, carried over unchanged.
    raw = toy_raw().set_index("poem_id")
    assert (table["content_hash"].to_numpy() == raw.loc[table["poem_id"], "content_hash"].to_numpy()).all()


def test_pipeline_is_deterministic_and_splits_do_not_depend_on_other_poems():
    raw = toy_raw()
    first = cleanse_poems(raw, CleaningConfig(num_perm=128)).table
    second = cleanse_poems(raw.iloc[::-1], CleaningConfig(num_perm=128)).table
    pd.testing.assert_frame_equal(
        first.sort_values("poem_id").reset_index(drop=True),
        second.sort_values("poem_id").reset_index(drop=True),
    )


def test_keep_priority_prefers_titled_authored_then_site_order():
    frame = pd.DataFrame(
        {
            "title": [None, "T", "T", None],
            "author": [None, None, "A", "A"],
            "source": ["gutenberg", "poets_org", "poets_org", "shakespeare"],
        }
    )
    assert keep_priority(frame).tolist() == [2, 3, 1, 0]


def test_bad_input_and_config_raise_clear_errors():
    with pytest.raises(ValueError, match="Empty corpus"):
        cleanse_poems(toy_raw().iloc[:0])
    with pytest.raises(ValueError, match="lack the columns"):
        cleanse_poems(toy_raw().drop(columns="license"))
    with pytest.raises(ValueError, match="removed every poem"):
        cleanse_poems(toy_raw(), CleaningConfig(min_words=500, max_words=1000))
    with pytest.raises(ValueError, match="near_duplicate_threshold"):
        CleaningConfig(near_duplicate_threshold=1.5)
    with pytest.raises(ValueError, match="lsh_false_negative_weight"):
        CleaningConfig(lsh_false_negative_weight=1.0)
    with pytest.raises(ValueError, match="split ratios"):
        CleaningConfig(train_ratio=0.9, val_ratio=0.5)
    with pytest.raises(ValueError, match="Empty corpus"):
        combine_partitions({"gutenberg": toy_raw().iloc[:0]})


def test_combine_partitions_orders_sites():
    raw = toy_raw()
    parts = {source: frame for source, frame in raw.groupby("source")}
    combined = combine_partitions(parts)
    assert combined["source"].drop_duplicates().tolist() == ["gutenberg", "shakespeare", "poetrydb"]


def test_two_processes_clean_exactly_as_one(monkeypatch):
    # Above PARALLEL_MIN_TEXTS a worker process cleans part of the corpus: same texts, counts,
    # word ids and per-rule change counts, and so the same cleansed table and removals.
    from genai_assets.cleaning import textpass

    raw = pd.concat([toy_raw()] * 3, ignore_index=True)
    raw["poem_id"] = [f"{poem_id}-{index}" for index, poem_id in enumerate(raw["poem_id"])]
    texts = [*raw["text"], "A\u00c3\u00a9 x\u200b\n\nthe  end--now", "caf\u00e9 \u2018quoted\u2019"]
    one, two = textpass.clean_texts(texts), textpass.clean_texts(texts, parallel_min_texts=2)
    assert (one.texts, one.changed) == (two.texts, two.changed)
    for field in ("n_lines", "n_words", "ascii_ratios"):
        assert np.array_equal(getattr(one, field), getattr(two, field))
    for field in ("ids", "lengths", "line_lengths", "line_counts"):
        assert np.array_equal(getattr(one.tokens, field), getattr(two.tokens, field))
    assert one.tokens.vocabulary == two.tokens.vocabulary
    serial = cleanse_poems(raw, CleaningConfig(num_perm=128))
    monkeypatch.setattr(textpass, "PARALLEL_MIN_TEXTS", 2)
    parallel = cleanse_poems(raw, CleaningConfig(num_perm=128))
    assert parallel.table.equals(serial.table) and parallel.removed.equals(serial.removed)
    columns = ["rule", "rows_in", "rows_changed", "rows_removed"]
    assert parallel.steps_frame()[columns].equals(serial.steps_frame()[columns])


def test_a_dead_worker_process_leaves_its_part_to_this_one(monkeypatch):
    # A spawned worker dies when the calling script lacks a __main__ guard: the result is the same.
    from concurrent.futures.process import BrokenProcessPool

    from genai_assets.cleaning import textpass

    class DeadPool:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc_info) -> bool:
            return False

        def submit(self, *args):
            class Dead:
                def result(self):
                    raise BrokenProcessPool("worker died")

            return Dead()

    texts = [*toy_raw()["text"], "caf\u00e9 \u2018quoted\u2019"]
    one = textpass.clean_texts(texts)
    monkeypatch.setattr(textpass, "ProcessPoolExecutor", DeadPool)
    with pytest.warns(UserWarning, match="worker process died"):
        two = textpass.clean_texts(texts, parallel_min_texts=2)
    assert (two.texts, two.changed, two.n_words.tolist()) == (one.texts, one.changed, one.n_words.tolist())
    assert np.array_equal(two.tokens.ids, one.tokens.ids)
