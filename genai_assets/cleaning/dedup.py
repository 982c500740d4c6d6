"""Exact and near-duplicate detection over poems given in priority order (earlier wins).

Exact duplicates share :func:`dedup_key`: the lower-cased words joined by single spaces, so
copies that differ only in punctuation, case, spacing or line breaks collapse.

Near duplicates are found with MinHash + LSH from ``datasketch`` over word shingles (``k``
consecutive words). Shingles are hashed to 32 bits deterministically (BLAKE2b per distinct word,
then a multiply-xor mix over the ``k`` word hashes, vectorised with numpy over the whole corpus),
so the same corpus always yields the same sketches regardless of ``PYTHONHASHSEED``. Each poem
queries the LSH index of poems kept so far; an LSH candidate counts as a duplicate only if the
estimated Jaccard similarity of the two sketches is at least the threshold (LSH alone has false
positives). A poem that is not a duplicate is inserted, so the first copy in priority order is
the one kept.

Contained duplicates catch what whole-poem similarity misses: the same verse cut differently by
two sources (a Gutenberg excerpt holding half a Shakespeare stanza plus the next one). A poem is
a contained duplicate when most of its *distinctive* lines (at least ``min_line_words`` words,
compared by :func:`dedup_key`) already belong to poems kept before it.
"""

from __future__ import annotations

import array
import collections
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from genai_assets.cleaning.rules import DICTIONARY_WORD_PATTERN, dictionary_words

_MIX_MULTIPLIER = np.uint64(0x100000001B3)  # 64-bit FNV prime: spreads each word over the state
_FINAL_MULTIPLIER = np.uint64(0xFF51AFD7ED558CCD)  # MurmurHash3 fmix64 constant


def dedup_key(text: str) -> str:
    """The text as its lower-cased words joined by one space (punctuation/layout ignored)."""
    return " ".join(dictionary_words(text))


def line_dedup_keys(text: str) -> list[str]:
    """``[dedup_key(line) for line in text.split("\\n")]``, from one regex scan of the whole text
    (the containment step's hot loop: one scan per poem instead of one per line; equal: tested)."""
    joined = " ".join(_WORD_OR_NEWLINE.findall(text.lower()))  # "a b \n c" for "A b,\nc."
    return [segment.strip(" ") for segment in joined.split("\n")]


_WORD_OR_NEWLINE = re.compile(DICTIONARY_WORD_PATTERN.pattern + r"|\n")


def exact_duplicate_of(texts: Sequence[str] | TokenizedTexts) -> np.ndarray:
    """For each text, the index of the first earlier text with the same :func:`dedup_key`, or -1.

    Given :class:`TokenizedTexts`, a text's word-id sequence is its key (equal ids = equal words).
    """
    if isinstance(texts, TokenizedTexts):
        keys: Iterable[str | bytes] = texts.word_id_bytes()
    else:
        keys = map(dedup_key, texts)
    first_seen: dict[str | bytes, int] = {}
    duplicate_of = np.full(len(texts), -1, dtype=np.int64)
    for index, key in enumerate(keys):
        earlier = first_seen.setdefault(key, index)
        if earlier != index:
            duplicate_of[index] = earlier
    return duplicate_of


@dataclass(frozen=True)
class TokenizedTexts:
    """Texts as dictionary-word ids, split once and shared by every step that reads words.

    ``ids`` (int32) holds text 0's word ids, then text 1's ...; ``lengths[i]`` is text ``i``'s
    word count; ``vocabulary[id]`` the word (ids in first-seen order).
    """

    ids: np.ndarray
    lengths: np.ndarray
    vocabulary: list[str]

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def offsets(self) -> np.ndarray:
        """Start of each text's ids, plus the end: text ``i`` is ``ids[offsets[i]:offsets[i + 1]]``."""
        return np.concatenate(([0], np.cumsum(self.lengths))).astype(np.int64)

    def select(self, rows: np.ndarray) -> TokenizedTexts:
        """These texts (row positions) in this order; the vocabulary is shared."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        # Position of every selected word in ids: its text's start + its index within the text,
        # as one running index that jumps at each text boundary (one int64 array, no temporaries).
        jumps = self.offsets[rows] - (np.cumsum(lengths) - lengths)
        positions = np.repeat(jumps, lengths)
        positions += np.arange(len(positions))
        return TokenizedTexts(self.ids[positions], lengths, self.vocabulary)

    def word_id_bytes(self) -> Iterator[bytes]:
        """Each text's word ids as bytes: equal exactly when the texts' dedup keys are equal."""
        offsets = self.offsets
        for index in range(len(self.lengths)):
            yield self.ids[offsets[index] : offsets[index + 1]].tobytes()


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


#: Bytes kept by the word scan: a-z, the apostrophe and NUL (the text end marker); the rest is a space.
_WORD_BYTES = bytes(code if 97 <= code <= 122 or code in (0, 39) else 32 for code in range(256))


def _tokenize_dictionary_words(texts: Sequence[str], batch_texts: int = 4096) -> TokenizedTexts:
    """:func:`tokenize_texts` with :func:`dictionary_words`, without a regex.

    A batch of texts is joined by `` NUL `` (NUL is never part of a word), lower-cased (per
    character, so the same letters as per text) and encoded to ASCII (other characters become
    ``?``, a separator as for the regex); every byte but a-z, ``'`` and NUL becomes a space, an
    apostrophe not between two letters too, and ``bytes.split`` gives the words (and one NUL
    after each text's words). The same ids, lengths and vocabulary as one regex scan per text
    (tested on the whole Gutenberg corpus and by hypothesis), about twice as fast.
    """
    vocabulary: collections.defaultdict[bytes, int] = collections.defaultdict()
    vocabulary.default_factory = vocabulary.__len__
    vocabulary[b"\x00"]  # id 0: the text end marker, dropped below
    word_ids = array.array("i")  # grows in place (a list of chunks + concatenate held both)
    lengths = np.zeros(len(texts), dtype=np.int64)
    for start in range(0, len(texts), batch_texts):
        batch = texts[start : start + batch_texts]
        joined = " \x00 ".join(batch) + " \x00"
        if joined.count("\x00") != len(batch):  # a NUL inside a text: one regex scan per text
            for offset, text in enumerate(batch):
                words = [word.encode("ascii") for word in dictionary_words(text)]
                lengths[start + offset] = len(words)
                word_ids.extend(vocabulary[word] - 1 for word in words)
            continue
        scanned = np.frombuffer(joined.lower().encode("ascii", "replace").translate(_WORD_BYTES), np.uint8)
        scanned = scanned.copy()
        apostrophes = np.flatnonzero(scanned == 39)
        before = scanned[np.maximum(apostrophes - 1, 0)]
        after = scanned[np.minimum(apostrophes + 1, len(scanned) - 1)]
        inner = (apostrophes > 0) & (before >= 97) & (before <= 122) & (after >= 97) & (after <= 122)
        scanned[apostrophes[~inner]] = 32
        batch_ids = np.fromiter(map(vocabulary.__getitem__, scanned.tobytes().split()), dtype=np.int32)
        ends = np.flatnonzero(batch_ids == 0)  # one per text
        lengths[start : start + len(batch)] = np.diff(ends, prepend=-1) - 1
        word_ids.frombytes((batch_ids[batch_ids != 0] - 1).tobytes())
    del vocabulary[b"\x00"]
    return TokenizedTexts(
        np.frombuffer(word_ids, dtype=np.int32), lengths, [word.decode("ascii") for word in vocabulary]
    )


def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def _fold_to_32_bits(values: np.ndarray) -> np.ndarray:
    mixed = values ^ (values >> np.uint64(33))
    mixed = mixed * _FINAL_MULTIPLIER
    mixed = mixed ^ (mixed >> np.uint64(33))
    return (mixed & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def shingle_hashes(
    texts: Sequence[str] | TokenizedTexts,
    shingle_size: int,
    tokenize: Callable[[str], list[str]] = dictionary_words,
) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of every text's word ``shingle_size``-grams, as ``(flat, counts)``.

    ``flat`` (uint32) holds the hashes of text 0, then text 1, ...; ``counts[i]`` is how many
    belong to text ``i``. A text with fewer words than ``shingle_size`` (but at least one) has one
    shingle made of all its words; a text without words has none. ``tokenize`` splits a text into
    its words; :class:`TokenizedTexts` are used as they are.
    """
    if shingle_size < 1:
        raise ValueError(f"shingle_size must be >= 1, got {shingle_size}.")
    tokens = texts if isinstance(texts, TokenizedTexts) else tokenize_texts(texts, tokenize)
    lengths = tokens.lengths
    vocabulary_hashes = np.fromiter((_word_hash(word) for word in tokens.vocabulary), dtype=np.uint64)
    flat_words = vocabulary_hashes[tokens.ids] if len(tokens.ids) else np.zeros(0, np.uint64)

    n_windows = max(len(flat_words) - shingle_size + 1, 0)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    counts = np.where(lengths >= shingle_size, lengths - shingle_size + 1, np.minimum(lengths, 1))
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps on purpose
        mixed = flat_words[:n_windows].copy()
        for offset in range(1, shingle_size):
            mixed = (mixed * _MIX_MULTIPLIER) ^ flat_words[offset : offset + n_windows]
        # A window is valid when it ends inside the text it starts in.
        text_of_position = np.repeat(np.arange(len(texts)), lengths)[:n_windows]
        valid = np.arange(n_windows) - starts[text_of_position] <= lengths[text_of_position] - shingle_size
        flat = _fold_to_32_bits(mixed[valid])
        short_texts = np.flatnonzero((lengths > 0) & (lengths < shingle_size))
        if len(short_texts):
            # Texts shorter than one shingle: one shingle of all their words, spliced in place.
            short_hashes = []
            for index in short_texts:
                state = flat_words[starts[index] : starts[index] + 1].copy()
                for value in flat_words[starts[index] + 1 : starts[index] + lengths[index]]:
                    state = (state * _MIX_MULTIPLIER) ^ value
                short_hashes.append(_fold_to_32_bits(state)[0])
            offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
            flat = np.insert(flat, offsets[short_texts] - np.arange(len(short_texts)), short_hashes)
    return flat, counts


def minhash_permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``(a, b)`` affine permutations datasketch's ``MinHash(num_perm, seed)`` uses (uint32)."""
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=seed, hashfunc=int).permutations
    return np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32)


def _murmur_fmix32(values: np.ndarray) -> np.ndarray:
    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


def minhash_signatures(
    flat: np.ndarray, counts: np.ndarray, num_perm: int, seed: int, chunk_shingles: int = 1 << 15
) -> np.ndarray:
    """MinHash signatures (``(n_texts, num_perm)`` uint32) of the shingle sets ``(flat, counts)``.

    Bit-for-bit what ``datasketch.MinHash(num_perm, seed, hashfunc=int)`` (scheme ``affine32``)
    computes after ``update_batch(shingles)`` — MurmurHash3 fmix32 pre-mix, then
    ``a * h + b mod 2**32``, minimum per permutation (tested) — but vectorised over the whole
    corpus, about ten times faster than one ``MinHash`` object per poem. Chunks of ~32k shingles
    keep the ``(shingles, num_perm)`` block in cache: six times faster than 1M-shingle chunks. Texts without shingles
    get the all-``0xFFFFFFFF`` signature of an empty MinHash.
    """
    a, b = minhash_permutations(num_perm, seed)
    signatures = np.full((len(counts), num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    nonempty = np.flatnonzero(counts > 0)
    position = 0
    with np.errstate(over="ignore"):  # uint32 arithmetic is mod 2**32 by design
        while position < len(nonempty):
            # Take whole texts until the chunk holds about chunk_shingles shingles.
            first_offset = offsets[nonempty[position]]
            stop = np.searchsorted(offsets[nonempty + 1], first_offset + chunk_shingles, side="right")
            stop = max(stop, position + 1)
            chunk_texts = nonempty[position:stop]
            block = _murmur_fmix32(flat[first_offset : offsets[chunk_texts[-1] + 1]])
            permuted = block[:, None] * a[None, :] + b[None, :]  # (shingles, num_perm)
            signatures[chunk_texts] = np.minimum.reduceat(
                permuted, offsets[chunk_texts] - first_offset, axis=0
            )
            position = stop
    return signatures


def band_collisions(signatures: np.ndarray, rows: np.ndarray, bands: int, rows_per_band: int) -> np.ndarray:
    """Mask of ``rows`` whose signature shares at least one LSH band with another row's.

    A cheap vectorised pre-pass (one ``np.unique`` per band) with the same banding as
    ``MinHashLSH``: a row that collides with nobody can never be a candidate nor have one, so
    the exact datasketch loop only needs the colliding rows. Band values are hashed to 64 bits,
    so a (vanishingly rare) hash collision only adds a row to the loop, never removes one.
    """
    collides = np.zeros(len(rows), dtype=bool)
    with np.errstate(over="ignore"):
        for band in range(bands):
            block = signatures[rows, band * rows_per_band : (band + 1) * rows_per_band].astype(np.uint64)
            key = block[:, 0].copy()
            for column in range(1, block.shape[1]):
                key = (key * _MIX_MULTIPLIER) ^ block[:, column]
            _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
            collides |= counts[inverse] > 1
    return collides


def near_duplicate_of(
    texts: Sequence[str] | TokenizedTexts,
    threshold: float,
    shingle_size: int,
    num_perm: int,
    seed: int,
    prefilter: bool = True,
    false_negative_weight: float = 0.5,
    tokenize: Callable[[str], list[str]] = dictionary_words,
) -> tuple[np.ndarray, np.ndarray]:
    """For each text, the index of an earlier *kept* text it nearly duplicates, or -1.

    Returns ``(duplicate_of, similarity)``: the estimated Jaccard similarity of word shingles to
    that kept text (0.0 where none). Texts without words are never duplicates. ``prefilter``
    skips texts that share no LSH band with any other (:func:`band_collisions`); the result is
    the same either way (tested), only faster. ``false_negative_weight`` is datasketch's weight
    of missed pairs vs. false candidates when it picks the band layout: above 0.5 it finds more
    pairs near the threshold, and the Jaccard verification discards the extra false candidates.
    ``texts`` and ``tokenize`` as in :func:`shingle_hashes`.
    """
    from datasketch import LeanMinHash, MinHashLSH

    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"near-duplicate threshold must be in (0, 1], got {threshold}.")
    flat, counts = shingle_hashes(texts, shingle_size, tokenize)
    signatures = minhash_signatures(flat, counts, num_perm, seed)
    del flat
    if not 0.0 < false_negative_weight < 1.0:
        raise ValueError(f"false_negative_weight must be in (0, 1), got {false_negative_weight}.")
    weights = (1.0 - false_negative_weight, false_negative_weight)
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
    duplicate_of = np.full(len(texts), -1, dtype=np.int64)
    similarity = np.zeros(len(texts), dtype=np.float64)
    candidates = np.flatnonzero(counts > 0)
    if prefilter:
        candidates = candidates[band_collisions(signatures, candidates, lsh.b, lsh.r)]
    for index in candidates.tolist():
        sketch = LeanMinHash(seed=seed, hashvalues=signatures[index], scheme="affine32")
        # Sorted candidates: the earliest kept match wins, independent of LSH bucket order.
        for candidate in sorted(lsh.query(sketch)):
            estimate = float(np.mean(signatures[candidate] == signatures[index]))
            if estimate >= threshold:
                duplicate_of[index] = candidate
                similarity[index] = estimate
                break
        else:
            lsh.insert(index, sketch)
    return duplicate_of, similarity


def contained_duplicate_of(
    texts: Sequence[str], min_line_words: int = 4, min_shared_ratio: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """For each text, the earlier *kept* text that owns most of its shared lines, or -1.

    Returns ``(duplicate_of, shared_ratio)``. A text's distinctive lines are its lines with at
    least ``min_line_words`` words (short lines such as "O love!" recur innocently); each such
    line is owned by the first kept text that has it. A text whose share of distinctive lines
    owned by earlier kept texts is at least ``min_shared_ratio`` is a duplicate of the owner of
    most of them; otherwise it is kept and becomes the owner of its unowned lines. A line repeated
    inside one poem (a refrain) never makes that poem a duplicate of itself.
    """
    if not 0.0 < min_shared_ratio <= 1.0:
        raise ValueError(f"min_shared_ratio must be in (0, 1], got {min_shared_ratio}.")
    if min_line_words < 1:
        raise ValueError(f"min_line_words must be >= 1, got {min_line_words}.")
    owner_of_line: dict[str, int] = {}
    duplicate_of = np.full(len(texts), -1, dtype=np.int64)
    shared_ratio = np.zeros(len(texts), dtype=np.float64)
    for index, text in enumerate(texts):
        keys = {key for key in line_dedup_keys(text) if key.count(" ") + 1 >= min_line_words}
        if not keys:
            continue
        owned = [owner_of_line[key] for key in keys if key in owner_of_line]
        shared = len(owned) / len(keys)
        if owned and shared >= min_shared_ratio:
            # The most-shared owner; ties go to the earliest (highest-priority) kept text. (Counted
            # only for duplicates: most texts own their lines, and a Counter each cost seconds.)
            owners = collections.Counter(owned)
            duplicate_of[index] = min(owners, key=lambda owner: (-owners[owner], owner))
            shared_ratio[index] = shared
            continue
        for key in keys:
            owner_of_line.setdefault(key, index)
    return duplicate_of, shared_ratio
