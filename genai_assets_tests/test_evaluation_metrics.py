"""Metric functions: parity with the sacrebleu command line, hand-computed toy values, brute force."""

import math
import subprocess
import sys

import numpy as np
import pytest

from genai_assets.evaluation.metrics import (
    CopyIndex,
    bleu_score,
    build_suffix_array,
    chrf_score,
    distinct_n,
    form_summary,
    memorisation,
    metric_words,
    rhyme_counts,
    self_bleu,
    stanzas,
    words_rhyme,
)

HYPOTHESES = [
    "the cat sat on a mat\nand dreamed of fish",
    "shall we compare you to a winter night",
    "O rose thou art sick",
]
REFERENCES = [
    "the cat sat on the mat\nand dreamed of birds",
    "shall i compare thee to a summer's day",
    "O Rose thou art sick.",
]


def test_bleu_and_chrf_match_the_sacrebleu_command_line(tmp_path):
    # One segment per line, as the CLI wants: our functions join poem lines with spaces.
    (tmp_path / "hyp.txt").write_text("\n".join(" ".join(h.split()) for h in HYPOTHESES) + "\n")
    (tmp_path / "ref.txt").write_text("\n".join(" ".join(r.split()) for r in REFERENCES) + "\n")
    output = subprocess.run(
        [sys.executable, "-m", "sacrebleu", str(tmp_path / "ref.txt"), "-i", str(tmp_path / "hyp.txt")]
        + ["-m", "bleu", "chrf", "-b", "-w", "4"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cli_bleu, cli_chrf = (float(value.strip(" ,")) for value in output.strip("[]\n ").split("\n"))
    assert bleu_score(HYPOTHESES, REFERENCES) == pytest.approx(cli_bleu, abs=1e-4)
    assert chrf_score(HYPOTHESES, REFERENCES) == pytest.approx(cli_chrf, abs=1e-4)


def test_bleu_rejects_unpaired_inputs():
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        bleu_score(["a", "b"], ["a"])


def test_distinct_n_on_hand_counted_samples():
    samples = ["the sea the sea", "the sky"]
    # unigrams: the sea the sea the sky -> 6 total, {the, sea, sky} = 3 unique
    assert distinct_n(samples, 1) == pytest.approx(3 / 6)
    # bigrams: (the sea)(sea the)(the sea) + (the sky) -> 4 total, 3 unique
    assert distinct_n(samples, 2) == pytest.approx(3 / 4)
    # trigrams: (the sea the)(sea the sea) -> 2 total, 2 unique; "the sky" has none
    assert distinct_n(samples, 3) == pytest.approx(1.0)
    assert distinct_n(["one"], 2) == 0.0


def test_self_bleu_on_hand_computed_toys():
    # "a b c d" vs "a b c e": precisions 3/4, 2/3, 1/2 and 0/1 -> exp smoothing gives 1/(2*1);
    # equal lengths so no brevity penalty: (3/4 * 2/3 * 1/2 * 1/2) ** (1/4) = 0.125 ** 0.25.
    assert self_bleu(["a b c d", "a b c e"]) == pytest.approx(100 * 0.125**0.25, abs=1e-6)
    assert self_bleu(["to be or not", "to be or not", "to be or not"]) == pytest.approx(100.0)
    assert self_bleu(["red green blue pink", "one two three four"]) == pytest.approx(0.0, abs=1e-9)


def test_self_bleu_uses_the_other_samples_as_references_not_itself():
    # Two identical samples and one different one: each identical sample finds its twin among
    # the references (100); the odd one out shares nothing (0) -> mean 200/3.
    score = self_bleu(["w x y z", "w x y z", "p q r s"])
    assert score == pytest.approx(200 / 3, abs=1e-6)


def test_suffix_array_matches_naive_sort():
    rng = np.random.default_rng(0)
    for length in (1, 2, 7, 200):
        tokens = rng.integers(-1, 4, length)
        expected = sorted(range(length), key=lambda start: list(tokens[start:]))
        assert build_suffix_array(tokens).tolist() == expected


def _brute_force_match(training: list[list[str]], query: list[str], start: int) -> int:
    best = 0
    for poem in training:
        for offset in range(len(poem)):
            length = 0
            while (
                start + length < len(query)
                and offset + length < len(poem)
                and poem[offset + length] == query[start + length]
            ):
                length += 1
            best = max(best, length)
    return best


def test_copy_index_match_lengths_equal_brute_force_and_stop_at_poem_boundaries():
    training = [
        "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate",
        "Rough winds do shake the darling buds of May",
        "the darling buds of May and more",
    ]
    index = CopyIndex(training)
    query = "thou art more lovely and more rough winds do shake the darling buds of may and more unseen"
    expected = [
        _brute_force_match([metric_words(t) for t in training], metric_words(query), i)
        for i in range(len(metric_words(query)))
    ]
    assert index.match_lengths(query) == expected
    # "temperate rough" spans two training poems: the separator stops the match.
    assert index.match_lengths("temperate rough winds")[0] == 1


def test_memorisation_counts_copied_8grams_and_longest_span():
    training = ["one two three four five six seven eight nine ten"]
    index = CopyIndex(training)
    sample = "one two three four five six seven eight nine zebra"  # 10 words, 3 8-grams
    stats = memorisation([sample, "nothing here at all"], index, n=8)
    # 8-grams starting at words 0, 1 are copied; the one at 2 contains "zebra"; sample 2 has none.
    assert stats.n_ngrams == 3
    assert stats.copied_ngram_share == pytest.approx(2 / 3)
    assert stats.longest_copied_span == 9
    assert stats.longest_copied_text == "one two three four five six seven eight nine"
    assert math.isnan(memorisation(["too short"], index).copied_ngram_share)


def test_form_summary_counts_lines_stanzas_and_rhymes():
    poem = "The night is long\nThe light is gone\nI sing my song\n\nA cat\nA hat"
    assert [len(stanza) for stanza in stanzas(poem)] == [3, 2]
    # Stanza 1: gone~long? no; song~long yes (window 2). Stanza 2: hat~cat yes -> 2 of 3.
    assert words_rhyme("song", "long") and not words_rhyme("gone", "long") and not words_rhyme("cat", "cat")
    assert rhyme_counts(poem) == (2, 3)
    summary = form_summary([poem, "One line only"])
    assert summary["lines_per_poem"] == pytest.approx(3.0)
    assert summary["stanzas_per_poem"] == pytest.approx(1.5)
    assert summary["words_per_line"] == pytest.approx((4 + 4 + 4 + 2 + 2 + 3) / 6)
    assert summary["rhyme_rate"] == pytest.approx(2 / 3)


def test_metric_words_and_dictionary_words_differ_on_purpose():
    """Metrics count digits and every script; dedup keys and rhyme lookups use dictionary spelling only."""
    from genai_assets.cleaning.rules import dictionary_words

    text = "In 1923 the Café's light, o'er snow"
    assert metric_words(text) == ["in", "1923", "the", "café's", "light", "o'er", "snow"]
    assert dictionary_words(text) == ["in", "the", "caf", "s", "light", "o'er", "snow"]
