"""Exact and near-duplicate detection, MinHash parity with datasketch, and hash splits."""

import subprocess
import sys

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from genai_assets.cleaning.dedup import (
    dedup_key,
    exact_duplicate_of,
    minhash_signatures,
    near_duplicate_of,
    shingle_hashes,
)
from genai_assets.cleaning.split import assign_splits, split_fraction

BASE = (
    "Along the cold and silent shore the grey waves break and fall, and far beyond the harbour lights "
    "the patient sailors call; the gulls are crying overhead, the nets are hung to dry, and every "
    "mother at the door looks out to sea and sky"
)


def test_dedup_key_ignores_case_punctuation_and_layout():
    assert dedup_key("The Rose,\nthe  ROSE!") == dedup_key("the rose the rose") == "the rose the rose"


def test_exact_duplicate_of_points_at_the_first_copy():
    texts = ["A rose.", "b", "a ROSE", "B!", "c", "a rose"]
    assert exact_duplicate_of(texts).tolist() == [-1, -1, 0, 1, -1, 0]


def test_shingles_count_windows_within_each_text_only():
    flat, counts = shingle_hashes(["one two three four", "", "solo", "a b", "x y z"], shingle_size=3)
    assert counts.tolist() == [2, 0, 1, 1, 1]
    assert len(flat) == 5 and flat.dtype == np.uint32
    # Same words, same shingle hash, wherever the text sits in the corpus.
    again, _ = shingle_hashes(["x y z"], shingle_size=3)
    assert again[0] == flat[-1]


def test_minhash_signatures_match_datasketch_bit_for_bit():
    texts = [BASE, "a short one", "", "word", BASE.replace("grey", "green") + " and more words at the end"]
    flat, counts = shingle_hashes(texts, shingle_size=3)
    signatures = minhash_signatures(flat, counts, num_perm=64, seed=7, chunk_shingles=10)  # tiny chunks
    offsets = np.concatenate(([0], np.cumsum(counts)))
    for index in range(len(texts)):
        reference = MinHash(num_perm=64, seed=7, hashfunc=int)
        reference.update_batch(flat[offsets[index] : offsets[index + 1]].tolist())
        assert np.array_equal(signatures[index], reference.hashvalues), index


def test_shingle_hashes_do_not_depend_on_python_hash_seed():
    code = (
        "from genai_assets.cleaning.dedup import shingle_hashes;"
        "print(shingle_hashes(['the rose is red and the violet blue'], 2)[0].tolist())"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1


def test_near_duplicates_found_and_first_copy_kept():
    one_word_changed = BASE.replace("sky", "skies")
    reordered_lines = "\n".join(reversed(BASE.split(", ")))  # same shingles mostly, other order
    unrelated = "Tiger tiger burning bright in the forests of the night what immortal hand or eye could frame thy fearful symmetry"
    texts = [BASE, unrelated, one_word_changed, reordered_lines, "", unrelated.upper()]
    duplicate_of, similarity = near_duplicate_of(texts, threshold=0.7, shingle_size=3, num_perm=128, seed=1)
    assert duplicate_of.tolist() == [-1, -1, 0, 0, -1, 1]
    assert similarity[2] >= 0.7 and similarity[5] == 1.0 and similarity[1] == 0.0


def test_near_duplicate_threshold_is_validated():
    with pytest.raises(ValueError, match="threshold"):
        near_duplicate_of(["a b c"], threshold=0.0, shingle_size=3, num_perm=16, seed=1)


def test_splits_are_deterministic_per_poem_and_close_to_the_ratios():
    ids = [f"gutenberg-{index:06d}" for index in range(10_000)]
    labels = assign_splits(ids, train_ratio=0.9, val_ratio=0.05, seed=3)
    # A poem's split depends on its id only: order and neighbours do not matter.
    reordered = assign_splits(ids[::-1][:5000], 0.9, 0.05, 3)
    assert reordered.tolist() == labels[::-1][:5000].tolist()
    shares = {split: float(np.mean(labels == split)) for split in ("train", "val", "test")}
    assert shares["train"] == pytest.approx(0.9, abs=0.015)
    assert shares["val"] == pytest.approx(0.05, abs=0.01)
    assert shares["test"] == pytest.approx(0.05, abs=0.01)
    assert 0.0 <= split_fraction("x", 1) < 1.0
    assert assign_splits(ids[:100], 0.9, 0.05, seed=4).tolist() != labels[:100].tolist()  # seed matters


def test_split_ratios_are_validated():
    with pytest.raises(ValueError, match="train_ratio"):
        assign_splits(["a"], train_ratio=0.9, val_ratio=0.2, seed=1)
    assert set(assign_splits([f"p{i}" for i in range(50)], 1.0, 0.0, seed=1)) == {"train"}


def test_band_prefilter_gives_the_same_answer_as_the_full_lsh_loop():
    rng = np.random.default_rng(0)
    letters = "abcdefghijklmnopqrst"
    vocabulary = [first + second for first in letters for second in letters][:300]  # words are letters only
    originals = [" ".join(rng.choice(vocabulary, size=40)) for _ in range(60)]
    texts = list(originals)
    for index in range(0, 60, 3):  # near copies: one word changed (Jaccard 36/40 = 0.9)
        words_ = originals[index].split()
        words_[38] = "changed"
        texts.append(" ".join(words_))
    full = near_duplicate_of(texts, 0.7, 3, 64, seed=2, prefilter=False)
    fast = near_duplicate_of(texts, 0.7, 3, 64, seed=2, prefilter=True)
    assert np.array_equal(full[0], fast[0]) and np.array_equal(full[1], fast[1])
    assert (full[0][60:] == np.arange(0, 60, 3)).all() and (full[0][:60] == -1).all()


def test_contained_duplicate_catches_verse_cut_differently_by_two_sources():
    from genai_assets.cleaning.dedup import contained_duplicate_of

    stanza = (
        "From fairest creatures we desire increase,\n"
        "That thereby beauty's rose might never die,\n"
        "But as the riper should by time decease,\n"
        "His tender heir might bear his memory:"
    )
    # Priority order: the titled stanza first, then an excerpt holding three of its four lines
    # plus one new line, then a poem sharing only one line, then one sharing only short lines.
    excerpt = (
        "That thereby beauty's rose might never die,\n"
        "But as the riper should by time decease,\n"
        "His tender heir might bear his memory:\n"
        "And all the lovely summer went away."
    )
    one_line = (
        "But as the riper should by time decease,\n"
        "The orchard keeps its apples for the frost,\n"
        "And every bough remembers what it lost."
    )
    # Its one distinctive line came from the dropped excerpt: dropped poems own no lines.
    short_lines = "O love!\nO rose!\nAnd all the lovely summer went away."
    # A refrain repeats a line inside one poem; that never makes a poem its own duplicate.
    refrain = (
        "I sing the garden and the morning light.\n"
        "The river runs beneath the silver moon.\n"
        "I sing the garden and the morning light."
    )
    duplicate_of, shared = contained_duplicate_of([stanza, excerpt, one_line, short_lines, refrain])
    assert duplicate_of.tolist() == [-1, 0, -1, -1, -1]
    assert shared.tolist() == [0.0, 0.75, 0.0, 0.0, 0.0]
    # With a stricter ratio the excerpt (3 of 4 lines shared) is kept.
    strict, _ = contained_duplicate_of([stanza, excerpt], min_shared_ratio=0.8)
    assert strict.tolist() == [-1, -1]


def test_contained_duplicate_rejects_bad_settings():
    from genai_assets.cleaning.dedup import contained_duplicate_of

    with pytest.raises(ValueError, match="min_shared_ratio"):
        contained_duplicate_of(["a b c d"], min_shared_ratio=0.0)
    with pytest.raises(ValueError, match="min_line_words"):
        contained_duplicate_of(["a b c d"], min_line_words=0)


def _contained_by_strings(texts, min_line_words, min_shared_ratio):
    """The containment step as it was (one dict of line strings, text by text): the reference."""
    import collections

    from genai_assets.cleaning.dedup import dedup_key

    owner_of_line, duplicate_of, shared_ratio = {}, [-1] * len(texts), [0.0] * len(texts)
    for index, text in enumerate(texts):
        keys = {key for line in text.split("\n") if (key := dedup_key(line)).count(" ") + 1 >= min_line_words}
        owned = [owner_of_line[key] for key in keys if key in owner_of_line]
        if keys and owned and len(owned) / len(keys) >= min_shared_ratio:
            owners = collections.Counter(owned)
            duplicate_of[index] = min(owners, key=lambda owner: (-owners[owner], owner))
            shared_ratio[index] = len(owned) / len(keys)
            continue
        for key in keys:
            owner_of_line.setdefault(key, index)
    return duplicate_of, shared_ratio


LINES = ["the rose is red today", "O love!", "and so the night went on", "", "The Rose is red, today.", "a b"]


@given(
    st.lists(st.lists(st.sampled_from(LINES), max_size=5).map("\n".join), max_size=12),
    st.integers(1, 5),
    st.sampled_from([0.3, 0.5, 1.0]),
)
@settings(max_examples=300, deadline=None)
def test_contained_duplicate_of_equals_the_string_reference(texts, min_line_words, ratio):
    from genai_assets.cleaning.dedup import contained_duplicate_of, tokenize_texts

    expected = _contained_by_strings(texts, min_line_words, ratio)
    tokens = tokenize_texts(texts)
    for given_texts in (texts, tokens, tokens.select(np.arange(len(texts)))):
        duplicate_of, shared = contained_duplicate_of(given_texts, min_line_words, ratio)
        assert (duplicate_of.tolist(), shared.tolist()) == expected


@given(st.lists(st.text(st.sampled_from("ab '\n\x00\x01.K\u212a"), max_size=20), max_size=6), st.data())
def test_tokenized_lines_are_the_words_of_each_line(texts, data):
    from genai_assets.cleaning.dedup import dictionary_words, tokenize_texts

    rows = data.draw(st.lists(st.integers(0, max(len(texts) - 1, 0)), max_size=6)) if texts else []
    tokens = tokenize_texts(texts).select(rows)
    expected = [len(dictionary_words(line)) for row in rows for line in texts[row].split("\n")]
    assert tokens.line_lengths.tolist() == expected
    assert tokens.line_counts.tolist() == [texts[row].count("\n") + 1 for row in rows]


def _near_by_datasketch(texts, threshold, num_perm, seed, weight):
    """The near-duplicate loop as it was (datasketch's MinHashLSH and LeanMinHash): the reference."""
    from datasketch import LeanMinHash, MinHashLSH

    flat, counts = shingle_hashes(texts, 3)
    signatures = minhash_signatures(flat, counts, num_perm, seed)
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(1 - weight, weight))
    duplicate_of, similarity = [-1] * len(texts), [0.0] * len(texts)
    for index in np.flatnonzero(counts > 0).tolist():
        sketch = LeanMinHash(seed=seed, hashvalues=signatures[index], scheme="affine32")
        for candidate in sorted(lsh.query(sketch)):
            estimate = float(np.mean(signatures[candidate] == signatures[index]))
            if estimate >= threshold:
                duplicate_of[index], similarity[index] = candidate, estimate
                break
        else:
            lsh.insert(index, sketch)
    return duplicate_of, similarity


@given(
    st.lists(
        st.lists(st.sampled_from(BASE.split()[:14]), min_size=0, max_size=14).map(" ".join), max_size=25
    ),
    st.sampled_from([0.3, 0.5, 0.7]),
    st.sampled_from([0.5, 0.7]),
)
@settings(max_examples=60, deadline=None)
def test_near_duplicate_of_equals_the_datasketch_lsh_loop(texts, threshold, weight):
    expected = _near_by_datasketch(texts, threshold, 32, 7, weight)
    for prefilter in (True, False):
        found = near_duplicate_of(
            texts, threshold, 3, 32, 7, prefilter=prefilter, false_negative_weight=weight
        )
        assert (found[0].tolist(), found[1].tolist()) == expected


def test_assign_splits_uses_exactly_split_fraction():
    # assign_splits turns all digests into floats at once; each must equal split_fraction's.
    ids = [f"gutenberg-{index:x}" for index in range(3000)] + ["", "é", "x" * 300]
    labels = assign_splits(ids, 0.9, 0.05, seed=5)
    fractions = np.array([split_fraction(poem_id, 5) for poem_id in ids])
    expected = np.where(fractions < 0.9, "train", np.where(fractions < 0.95, "val", "test"))
    assert labels.tolist() == expected.tolist()
