"""Texts split into dictionary words once, as int32 word ids shared by every step that reads words.

:func:`tokenize_texts` numbers the words of many texts (ids in first-seen order) and, on its fast
path, also records each text's lines (words per line), which the containment step compares.
:func:`equal_runs` gives equal id runs (whole texts or lines) one dense key, exactly.
"""

from __future__ import annotations

import array
import collections
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from genai_assets.cleaning.rules import dictionary_words


def _gather(values: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The runs ``values[offsets[row]:offsets[row] + lengths[row]]`` of ``rows``, concatenated."""
    # Position of every selected value: its run's start + its index within the run, as one
    # running index that jumps at each run boundary (one int64 array, no temporaries).
    jumps = offsets[rows] - (np.cumsum(lengths) - lengths)
    positions = np.repeat(jumps, lengths)
    positions += np.arange(len(positions))
    return values[positions]


def _starts(lengths: np.ndarray) -> np.ndarray:
    """Start of each run, plus the end, for runs of ``lengths`` laid end to end (int64)."""
    return np.concatenate(([0], np.cumsum(lengths, dtype=np.int64)))


@dataclass(frozen=True)
class TokenizedTexts:
    """Texts as dictionary-word ids, split once and shared by every step that reads words.

    ``ids`` (int32) holds text 0's word ids, then text 1's ...; ``lengths[i]`` is text ``i``'s
    word count; ``vocabulary[id]`` the word (ids in first-seen order). ``line_counts[i]`` is how
    many lines (``text.split("\\n")``) text ``i`` has and ``line_lengths`` the word count of every
    line, text by text (both ``None`` when the texts were split by a custom tokenizer).
    """

    ids: np.ndarray
    lengths: np.ndarray
    vocabulary: list[str]
    line_lengths: np.ndarray | None = None
    line_counts: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def offsets(self) -> np.ndarray:
        """Start of each text's ids, plus the end: text ``i`` is ``ids[offsets[i]:offsets[i + 1]]``."""
        return _starts(self.lengths)

    def select(self, rows: np.ndarray) -> TokenizedTexts:
        """These texts (row positions) in this order; the vocabulary is shared."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        ids = _gather(self.ids, self.offsets, lengths, rows)
        if self.line_lengths is None or self.line_counts is None:
            return TokenizedTexts(ids, lengths, self.vocabulary)
        line_counts = self.line_counts[rows]
        line_lengths = _gather(self.line_lengths, _starts(self.line_counts), line_counts, rows)
        return TokenizedTexts(ids, lengths, self.vocabulary, line_lengths, line_counts)


def equal_runs(ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A dense key per run of ``ids`` (runs of ``lengths`` laid end to end): equal keys exactly
    when the runs hold the same ids (Arrow's hash table compares the bytes; keys in first-seen
    order). About 1 s for the corpus' 2.7M lines; a numpy 64-bit hash of the runs, sorted and
    verified id by id, took 3-4 s."""
    ids = np.ascontiguousarray(ids, dtype=np.int32)
    offsets = _starts(lengths) * ids.itemsize
    small = offsets[-1] < 2**31  # 32-bit offsets: Arrow's plain binary type, a little faster
    runs = pa.Array.from_buffers(
        pa.binary() if small else pa.large_binary(),
        len(lengths),
        [None, pa.py_buffer(offsets.astype(np.int32) if small else offsets), pa.py_buffer(ids)],
    )
    return runs.dictionary_encode().indices.to_numpy(zero_copy_only=False).astype(np.int64)


def tokenize_texts(
    texts: Sequence[str], tokenize: Callable[[str], list[str]] = dictionary_words
) -> TokenizedTexts:
    """Split every text into its words once (``tokenize``) and number the words."""
    if tokenize is dictionary_words:
        return _tokenize_dictionary_words(texts)
    # Word -> dense id, assigned in first-seen order by C-level dict calls (no Python loop per word).
    vocabulary: collections.defaultdict[str, int] = collections.defaultdict()
    vocabulary.default_factory = vocabulary.__len__
    word_ids = array.array("i")
    lengths = np.zeros(len(texts), dtype=np.int64)
    for index, text in enumerate(texts):
        tokens = tokenize(text)
        lengths[index] = len(tokens)
        word_ids.extend(map(vocabulary.__getitem__, tokens))
    return TokenizedTexts(np.frombuffer(word_ids, dtype=np.int32), lengths, list(vocabulary))


#: Bytes kept by the word scan: a-z, the apostrophe, NUL (text end) and SOH (line end); the rest
#: is a space.
_WORD_BYTES = bytes(code if 97 <= code <= 122 or code in (0, 1, 39) else 32 for code in range(256))
_TEXT_END, _LINE_END = 0, 1  # ids of the two markers in the batch vocabulary (words start at 2)


def _token_ids(scanned: np.ndarray, vocabulary: collections.defaultdict[bytes, int]) -> np.ndarray:
    """Ids of the tokens of ``scanned`` (runs of bytes other than a space), numbered in ``vocabulary``.

    ``scanned.tobytes().split()`` then one dict look-up per token, without making a Python object
    per token: the runs become an Arrow binary array, Arrow's hash table numbers the batch's
    distinct tokens (in first-seen order, so new words enter ``vocabulary`` in the same order) and
    only those are looked up: about 30k per batch instead of 180k.
    """
    is_token = scanned != 32
    edges = np.flatnonzero(np.diff(is_token.view(np.int8), prepend=0, append=0))
    starts, ends = edges[0::2], edges[1::2]
    offsets = np.concatenate(([0], np.cumsum(ends - starts))).astype(np.int32)
    tokens = pa.Array.from_buffers(
        pa.binary(),
        len(starts),
        [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(scanned[is_token]))],
    ).dictionary_encode()
    local = tokens.dictionary.to_pylist()
    global_ids = np.fromiter(map(vocabulary.__getitem__, local), dtype=np.int32, count=len(local))
    return global_ids[tokens.indices.to_numpy(zero_copy_only=False)]


def _tokenize_dictionary_words(texts: Sequence[str], batch_texts: int = 4096) -> TokenizedTexts:
    """:func:`tokenize_texts` with :func:`dictionary_words`, without a regex, lines recorded.

    A batch of texts is joined by `` NUL ``, each ``\\n`` becomes `` SOH `` (neither is ever part
    of a word), lower-cased (per character, so the same letters as per text) and encoded to ASCII
    (other characters become ``?``, a separator as for the regex); every byte but a-z, ``'``, NUL
    and SOH becomes a space, an apostrophe not between two letters too, and ``bytes.split`` gives
    the words with one marker after each line. The same ids, lengths and vocabulary as one regex
    scan per text (tested on the whole Gutenberg corpus and by hypothesis), about twice as fast;
    the line lengths are those of one regex scan per line (no word spans a ``\\n``).
    """
    vocabulary: collections.defaultdict[bytes, int] = collections.defaultdict()
    vocabulary.default_factory = vocabulary.__len__
    vocabulary[b"\x00"], vocabulary[b"\x01"]  # ids 0 and 1: the markers, dropped below
    word_ids = array.array("i")  # grows in place (a list of chunks + concatenate held both)
    line_lengths = array.array("i")
    line_counts = np.zeros(len(texts), dtype=np.int64)
    for start in range(0, len(texts), batch_texts):
        batch = texts[start : start + batch_texts]
        joined = " \x00 ".join(batch) + " \x00"
        if joined.count("\x00") != len(batch) or "\x01" in joined:  # a marker inside a text
            for offset, text in enumerate(batch):
                lines = [
                    [word.encode("ascii") for word in dictionary_words(line)] for line in text.split("\n")
                ]
                line_counts[start + offset] = len(lines)
                line_lengths.extend(len(words) for words in lines)
                word_ids.extend(vocabulary[word] - 2 for words in lines for word in words)
            continue
        joined = joined.replace("\n", " \x01 ")
        scanned = np.frombuffer(joined.lower().encode("ascii", "replace").translate(_WORD_BYTES), np.uint8)
        scanned = scanned.copy()
        apostrophes = np.flatnonzero(scanned == 39)
        before = scanned[np.maximum(apostrophes - 1, 0)]
        after = scanned[np.minimum(apostrophes + 1, len(scanned) - 1)]
        inner = (apostrophes > 0) & (before >= 97) & (before <= 122) & (after >= 97) & (after <= 122)
        scanned[apostrophes[~inner]] = 32
        batch_ids = _token_ids(scanned, vocabulary)
        markers = np.flatnonzero(batch_ids <= _LINE_END)  # one per line: SOH, or NUL for a text's last
        line_lengths.frombytes((np.diff(markers, prepend=-1) - 1).astype(np.int32).tobytes())
        text_ends = np.flatnonzero(batch_ids[markers] == _TEXT_END)
        line_counts[start : start + len(batch)] = np.diff(text_ends, prepend=-1)
        word_ids.frombytes((batch_ids[batch_ids > _LINE_END] - 2).tobytes())
    del vocabulary[b"\x00"], vocabulary[b"\x01"]
    line_lengths_array = np.frombuffer(line_lengths, dtype=np.int32)
    line_starts = _starts(line_counts)
    lengths = (
        np.add.reduceat(line_lengths_array, line_starts[:-1], dtype=np.int64) if len(texts) else line_counts
    )
    return TokenizedTexts(
        np.frombuffer(word_ids, dtype=np.int32),
        lengths,
        [word.decode("ascii") for word in vocabulary],
        line_lengths_array,
        line_counts,
    )


def concat_tokenized(head: TokenizedTexts, tail: TokenizedTexts) -> TokenizedTexts:
    """``head``'s texts then ``tail``'s, in one vocabulary: ``tail``'s new words numbered after
    ``head``'s in ``tail``'s first-seen order, so the ids are those of tokenizing all texts at once."""
    index = {word: word_id for word_id, word in enumerate(head.vocabulary)}
    vocabulary = list(head.vocabulary)
    remap = np.empty(len(tail.vocabulary), dtype=np.int32)
    for word_id, word in enumerate(tail.vocabulary):
        known = index.setdefault(word, len(vocabulary))
        if known == len(vocabulary):
            vocabulary.append(word)
        remap[word_id] = known
    with_lines = head.line_lengths is not None and tail.line_lengths is not None
    return TokenizedTexts(
        np.concatenate((head.ids, remap[tail.ids])),
        np.concatenate((head.lengths, tail.lengths)),
        vocabulary,
        np.concatenate((head.line_lengths, tail.line_lengths)) if with_lines else None,
        np.concatenate((head.line_counts, tail.line_counts)) if with_lines else None,
    )
