"""Plain metric functions for generated poems (no Dagster, no torch).

- BLEU and chrF: ``sacrebleu`` corpus scores (Post 2018, "A Call for Clarity in Reporting BLEU
  Scores"), with line breaks turned into spaces because sacrebleu scores one-line segments.
- distinct-n (Li et al. 2016): unique n-grams / all n-grams over every sample.
- self-BLEU (Zhu et al. 2018, Texygen): each sample scored against all *other* samples as
  references, averaged. Sentence BLEU with sacrebleu's default ``exp`` smoothing, so short
  samples do not collapse to 0 (Texygen uses NLTK's smoothing; values differ slightly).
- memorisation: share of generated word 8-grams that occur in the training poems, and the
  longest copied word span, both from one suffix array over the training words.
- form: lines per poem, words per line, stanzas, and a CMUdict rhyme rate (``pronouncing``).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from genai_assets.cleaning.rules import dictionary_words

_METRIC_WORD = re.compile(r"\w+(?:'\w+)*")


def metric_words(text: str) -> list[str]:
    """Lower-cased word tokens of generated or reference text (letters of any script and digits, inner
    apostrophes kept: "o'er", "ne'er"): the unit of every word n-gram measure here and of the
    out-of-domain overlap check. Deliberately not the cleaning's ``dictionary_words`` (ASCII letters
    only): a sample of digits or non-English words still has words to count and copy."""
    return _METRIC_WORD.findall(text.lower())


def _one_line(text: str) -> str:
    """sacrebleu segments are single lines: poem line breaks become spaces."""
    return " ".join(text.split())


# --- BLEU / chrF -------------------------------------------------------------------------------


def bleu_score(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (sacrebleu defaults: 13a tokenizer, exp smoothing, 4-grams), one reference each."""
    from sacrebleu.metrics import BLEU

    _check_parallel(hypotheses, references)
    return BLEU().corpus_score([_one_line(h) for h in hypotheses], [[_one_line(r) for r in references]]).score


def chrf_score(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (sacrebleu defaults: character 6-grams, beta 2), one reference each."""
    from sacrebleu.metrics import CHRF

    _check_parallel(hypotheses, references)
    return CHRF().corpus_score([_one_line(h) for h in hypotheses], [[_one_line(r) for r in references]]).score


def _check_parallel(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references: they must pair up.")
    if not hypotheses:
        raise ValueError("No hypotheses to score.")


# --- diversity ---------------------------------------------------------------------------------


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(samples: Iterable[str], n: int) -> float:
    """Unique word n-grams / total word n-grams over all samples (0.0 when there are none)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}.")
    all_ngrams = [gram for sample in samples for gram in ngrams(metric_words(sample), n)]
    return len(set(all_ngrams)) / len(all_ngrams) if all_ngrams else 0.0


def self_bleu(samples: Sequence[str]) -> float:
    """Mean sentence BLEU of each sample against all the others as references (higher = less diverse)."""
    from sacrebleu.metrics import BLEU

    if len(samples) < 2:
        raise ValueError(f"self-BLEU needs at least 2 samples, got {len(samples)}.")
    lines = [_one_line(sample) for sample in samples]
    metric = BLEU(effective_order=False)
    # sacrebleu logs a recommendation to use effective_order for every sentence score; we keep
    # plain 4-gram BLEU with exp smoothing on purpose (see the module docstring).
    sacrebleu_logger = logging.getLogger("sacrebleu")
    previous_level = sacrebleu_logger.level
    sacrebleu_logger.setLevel(logging.ERROR)
    try:
        scores = [
            metric.sentence_score(line, lines[:index] + lines[index + 1 :]).score
            for index, line in enumerate(lines)
        ]
    finally:
        sacrebleu_logger.setLevel(previous_level)
    return float(np.mean(scores))


# --- memorisation ------------------------------------------------------------------------------


def build_suffix_array(tokens: np.ndarray) -> np.ndarray:
    """Suffix array of an integer sequence by prefix doubling (Manber & Myers), O(n log^2 n) in numpy.

    Suffixes are ranked by their first ``step`` tokens; each round sorts on (rank of the first
    half, rank of the second half) and doubles ``step`` until all ranks are distinct. Running
    past the end counts as smaller than any token (rank -1).
    """
    length = len(tokens)
    if length == 0:
        return np.zeros(0, dtype=np.int64)
    rank = np.unique(tokens, return_inverse=True)[1].astype(np.int64)
    step = 1
    while True:
        second = np.full(length, -1, dtype=np.int64)
        second[: length - step] = rank[step:] if step < length else second[:0]
        order = np.lexsort((second, rank))  # last key is primary
        first_sorted, second_sorted = rank[order], second[order]
        new_group = np.ones(length, dtype=bool)
        new_group[1:] = (first_sorted[1:] != first_sorted[:-1]) | (second_sorted[1:] != second_sorted[:-1])
        rank = np.empty(length, dtype=np.int64)
        rank[order] = np.cumsum(new_group) - 1
        if rank.max() == length - 1 or step >= length:
            return order
        step *= 2


class CopyIndex:
    """Which word spans of a text occur verbatim in the training poems.

    All training words go into one integer sequence, poems separated by a separator id that
    no query word can have (so no match crosses a poem boundary), indexed by a suffix array.
    ``match_lengths`` gives, per query position, the longest training match starting there
    (matching statistics); an n-gram is copied exactly when its match length is >= n.
    """

    _SEPARATOR = -1
    _UNKNOWN = -2

    def __init__(self, training_texts: Iterable[str]) -> None:
        self.vocabulary: dict[str, int] = {}
        sequence: list[int] = []
        for text in training_texts:
            for word in metric_words(text):
                sequence.append(self.vocabulary.setdefault(word, len(self.vocabulary)))
            sequence.append(self._SEPARATOR)
        self.tokens = np.asarray(sequence, dtype=np.int64)
        self.suffix_array = build_suffix_array(self.tokens)
        self._first_tokens = self.tokens[self.suffix_array] if len(self.tokens) else self.tokens
        self.n_words = int((self.tokens != self._SEPARATOR).sum())

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(
            [self.vocabulary.get(word, self._UNKNOWN) for word in metric_words(text)], dtype=np.int64
        )

    def _longest_match(self, query: np.ndarray) -> int:
        """Length of the longest prefix of ``query`` that occurs in the training sequence."""
        total = len(self.tokens)
        low, high = 0, len(self.suffix_array)
        matched = 0
        while matched < len(query) and low < high:
            wanted = query[matched]
            if wanted < 0:
                break
            if matched == 0:
                column = self._first_tokens
            else:
                # Suffixes in [low, high) share the first `matched` tokens, so they are sorted
                # by their next token: binary-search it.
                positions = self.suffix_array[low:high] + matched
                column = np.where(positions < total, self.tokens[np.minimum(positions, total - 1)], -3)
            base = 0 if matched == 0 else low
            new_low = base + int(np.searchsorted(column, wanted, side="left"))
            new_high = base + int(np.searchsorted(column, wanted, side="right"))
            if new_low >= new_high:
                break
            low, high = new_low, new_high
            matched += 1
        return matched

    def match_lengths(self, text: str) -> list[int]:
        """Per word position of ``text``: the longest span starting there that is in the training poems."""
        query = self.encode(text)
        # One narrowing search per start position; each step only touches the suffixes that
        # still match, so a position costs O(match length * log n) plus a gather per step.
        return [self._longest_match(query[start:]) for start in range(len(query))]


@dataclass(frozen=True)
class MemorisationStats:
    copied_ngram_share: float  # share of generated n-grams found in training (nan if no n-grams)
    longest_copied_span: int  # words
    longest_copied_text: str  # that span, for reading
    n_ngrams: int  # generated n-grams considered


def memorisation(samples: Iterable[str], index: CopyIndex, n: int = 8) -> MemorisationStats:
    """Copied n-gram share and longest copied word span of ``samples`` against the training index."""
    copied = total = 0
    longest, longest_text = 0, ""
    for sample in samples:
        sample_words = metric_words(sample)
        lengths = index.match_lengths(sample)
        positions = max(0, len(sample_words) - n + 1)
        total += positions
        copied += sum(1 for length in lengths[:positions] if length >= n)
        for start, length in enumerate(lengths):
            if length > longest:
                longest, longest_text = length, " ".join(sample_words[start : start + length])
    share = copied / total if total else math.nan
    return MemorisationStats(share, longest, longest_text, total)


# --- form --------------------------------------------------------------------------------------


def stanzas(text: str) -> list[list[str]]:
    """Stanzas (blank-line separated) as lists of their non-empty, stripped lines."""
    blocks = re.split(r"\n\s*\n", text.strip())
    result = [[line.strip() for line in block.splitlines() if line.strip()] for block in blocks]
    return [block for block in result if block]


def _end_word(line: str) -> str | None:
    line_words = dictionary_words(line)  # as CMUdict spells words
    return line_words[-1] if line_words else None


_RHYME_CACHE: dict[str, frozenset[str]] = {}


def rhyming_parts(word: str) -> frozenset[str]:
    """CMUdict rhyming parts (last stressed vowel onwards) of every pronunciation; empty if unknown."""
    if word not in _RHYME_CACHE:
        import pronouncing

        _RHYME_CACHE[word] = frozenset(pronouncing.rhyming_part(p) for p in pronouncing.phones_for_word(word))
    return _RHYME_CACHE[word]


def words_rhyme(first: str, second: str) -> bool:
    """True when two different words share a CMUdict rhyming part ("night"/"light"; not "night"/"night")."""
    return first != second and bool(rhyming_parts(first) & rhyming_parts(second))


def rhyme_counts(text: str, window: int = 2) -> tuple[int, int]:
    """(rhyming lines, eligible lines) of one poem.

    A line is eligible when its end word is in CMUdict and so is the end word of at least one of
    the ``window`` lines before it in the same stanza; it rhymes when it rhymes with one of them
    (covers couplets AABB and alternate rhyme ABAB with the default window of 2).
    """
    rhyming = eligible = 0
    for stanza in stanzas(text):
        ends = [_end_word(line) for line in stanza]
        known = [word if word and rhyming_parts(word) else None for word in ends]
        for position in range(1, len(known)):
            if known[position] is None:
                continue
            previous = [word for word in known[max(0, position - window) : position] if word]
            if not previous:
                continue
            eligible += 1
            rhyming += any(words_rhyme(known[position], word) for word in previous)
    return rhyming, eligible


def form_summary(texts: Sequence[str]) -> dict[str, float]:
    """Mean lines per poem, words per line, stanzas per poem, and the pooled rhyme rate."""
    if not texts:
        raise ValueError("No poems to measure.")
    line_counts, stanza_counts, line_lengths = [], [], []
    rhyming = eligible = 0
    for text in texts:
        poem_stanzas = stanzas(text)
        lines = [line for stanza in poem_stanzas for line in stanza]
        line_counts.append(len(lines))
        stanza_counts.append(len(poem_stanzas))
        line_lengths.extend(len(line.split()) for line in lines)
        poem_rhyming, poem_eligible = rhyme_counts(text)
        rhyming += poem_rhyming
        eligible += poem_eligible
    return {
        "lines_per_poem": float(np.mean(line_counts)),
        "words_per_line": float(np.mean(line_lengths)) if line_lengths else 0.0,
        "stanzas_per_poem": float(np.mean(stanza_counts)),
        "rhyme_rate": rhyming / eligible if eligible else math.nan,
    }
