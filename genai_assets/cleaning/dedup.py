"""Exact and near-duplicate detection over poems given in priority order (earlier wins).

Exact duplicates share :func:`dedup_key`: the lower-cased words joined by single spaces, so
copies that differ only in punctuation, case, spacing or line breaks collapse.

Near duplicates are found with MinHash + LSH over word shingles (``k`` consecutive words): the
signatures are bit-for-bit ``datasketch``'s, and the LSH index has ``datasketch.MinHashLSH``'s
band layout and candidates (one dict per band; tested against it). Shingles are hashed to 32 bits deterministically (BLAKE2b per distinct word,
then a multiply-xor mix over the ``k`` word hashes, vectorised with numpy over the whole corpus),
so the same corpus always yields the same sketches regardless of ``PYTHONHASHSEED``. Each poem
queries the LSH index of poems kept so far; an LSH candidate counts as a duplicate only if the
estimated Jaccard similarity of the two sketches is at least the threshold (LSH alone has false
positives). A poem that is not a duplicate is inserted, so the first copy in priority order is
the one kept.

Contained duplicates (:mod:`genai_assets.cleaning.containment`) catch what whole-poem similarity
misses: a poem most of whose distinctive lines already belong to poems kept before it.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from genai_assets.cleaning.containment import contained_duplicate_of
from genai_assets.cleaning.rules import dictionary_words
from genai_assets.cleaning.textpass import usable_cores
from genai_assets.cleaning.tokens import TokenizedTexts, equal_runs, tokenize_texts

__all__ = [  # the tokenizer and the containment step live in their own modules; imported from here too
    "TokenizedTexts",
    "contained_duplicate_of",
    "tokenize_texts",
]

_MIX_MULTIPLIER = np.uint64(0x100000001B3)  # 64-bit FNV prime: spreads each word over the state
_FINAL_MULTIPLIER = np.uint64(0xFF51AFD7ED558CCD)  # MurmurHash3 fmix64 constant


def dedup_key(text: str) -> str:
    """The text as its lower-cased words joined by one space (punctuation/layout ignored)."""
    return " ".join(dictionary_words(text))


def exact_duplicate_of(texts: Sequence[str] | TokenizedTexts) -> np.ndarray:
    """For each text, the index of the first earlier text with the same :func:`dedup_key`, or -1.

    Given :class:`TokenizedTexts`, a text's word-id sequence is its key (equal ids = equal words),
    matched for all texts at once by :func:`equal_runs` (dense keys in first-seen order).
    """
    if isinstance(texts, TokenizedTexts):
        keys = equal_runs(texts.ids, texts.lengths)
        first_index = np.zeros(int(keys.max()) + 1 if len(keys) else 0, dtype=np.int64)
        first_index[keys[::-1]] = np.arange(len(keys) - 1, -1, -1)  # the last write wins: the first text
        first = first_index[keys]
        return np.where(first != np.arange(len(keys)), first, -1)
    first_seen: dict[str, int] = {}
    duplicate_of = np.full(len(texts), -1, dtype=np.int64)
    for index, key in enumerate(map(dedup_key, texts)):
        earlier = first_seen.setdefault(key, index)
        if earlier != index:
            duplicate_of[index] = earlier
    return duplicate_of


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
    flat_words = _vocabulary_hashes(tokens.vocabulary)[tokens.ids]
    return _shingles_of(flat_words, tokens.lengths, shingle_size)


def _vocabulary_hashes(vocabulary: list[str]) -> np.ndarray:
    """:func:`_word_hash` of every word of ``vocabulary`` (uint64, indexed by word id)."""
    return np.fromiter(map(_word_hash, vocabulary), dtype=np.uint64, count=len(vocabulary))


def _shingles_of(
    flat_words: np.ndarray, lengths: np.ndarray, shingle_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`shingle_hashes` of texts given as their word hashes (``flat_words``, ``lengths``)."""
    n_windows = max(len(flat_words) - shingle_size + 1, 0)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    counts = np.where(lengths >= shingle_size, lengths - shingle_size + 1, np.minimum(lengths, 1))
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps on purpose
        mixed = flat_words[:n_windows].copy()
        for offset in range(1, shingle_size):
            mixed *= _MIX_MULTIPLIER
            mixed ^= flat_words[offset : offset + n_windows]
        # A window is valid when it ends inside the text it starts in.
        text_of_position = np.repeat(np.arange(len(lengths)), lengths)[:n_windows]
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
    flat: np.ndarray, counts: np.ndarray, num_perm: int, seed: int, chunk_shingles: int = 1 << 12
) -> np.ndarray:
    """MinHash signatures (``(n_texts, num_perm)`` uint32) of the shingle sets ``(flat, counts)``.

    Bit-for-bit what ``datasketch.MinHash(num_perm, seed, hashfunc=int)`` (scheme ``affine32``)
    computes after ``update_batch(shingles)`` — MurmurHash3 fmix32 pre-mix, then
    ``a * h + b mod 2**32``, minimum per permutation (tested) — but vectorised over the whole
    corpus, about ten times faster than one ``MinHash`` object per poem. Texts without shingles
    get the all-``0xFFFFFFFF`` signature of an empty MinHash.
    """
    a, b = minhash_permutations(num_perm, seed)
    signatures = np.full((len(counts), num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    _minhash_into(signatures, flat, counts, (a, b), chunk_shingles)
    return signatures


def _minhash_into(
    signatures: np.ndarray,
    flat: np.ndarray,
    counts: np.ndarray,
    permutations: tuple[np.ndarray, np.ndarray],
    chunk_shingles: int = 1 << 12,
) -> None:
    """Write the signatures of the non-empty shingle sets into ``signatures`` (rows = texts).

    A chunk of ~4k shingles is permuted into one reused ``(num_perm, shingles)`` block, so each
    permutation's values of a text are contiguous and ``minimum.reduceat`` runs along rows: with
    the block in cache, 4-5 times faster than the ``(shingles, num_perm)`` layout.
    """
    a, b = permutations
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    nonempty = np.flatnonzero(counts > 0)
    ends = offsets[nonempty + 1]
    block = np.empty((len(a), chunk_shingles), dtype=np.uint32)
    position = 0
    with np.errstate(over="ignore"):  # uint32 arithmetic is mod 2**32 by design
        while position < len(nonempty):
            # Take whole texts until the chunk holds about chunk_shingles shingles.
            first_offset = offsets[nonempty[position]]
            stop = max(int(np.searchsorted(ends, first_offset + chunk_shingles, side="right")), position + 1)
            chunk_texts = nonempty[position:stop]
            mixed = _murmur_fmix32(flat[first_offset : ends[stop - 1]])
            if len(mixed) > block.shape[1]:
                block = np.empty((len(a), len(mixed)), dtype=np.uint32)
            permuted = block[:, : len(mixed)]
            np.multiply(a[:, None], mixed[None, :], out=permuted)
            permuted += b[:, None]
            signatures[chunk_texts] = np.minimum.reduceat(
                permuted, offsets[chunk_texts] - first_offset, axis=1
            ).T
            position = stop


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
    from datasketch import MinHashLSH

    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"near-duplicate threshold must be in (0, 1], got {threshold}.")
    if not 0.0 < false_negative_weight < 1.0:
        raise ValueError(f"false_negative_weight must be in (0, 1), got {false_negative_weight}.")
    if shingle_size < 1:
        raise ValueError(f"shingle_size must be >= 1, got {shingle_size}.")
    tokens = texts if isinstance(texts, TokenizedTexts) else tokenize_texts(texts, tokenize)
    signatures = _signatures(tokens, shingle_size, num_perm, seed)
    # datasketch's band layout for this threshold and weighting (its MinHashLSH picks it).
    layout = MinHashLSH(
        threshold=threshold, num_perm=num_perm, weights=(1.0 - false_negative_weight, false_negative_weight)
    )
    candidates = np.flatnonzero(tokens.lengths > 0)  # texts with at least one shingle
    if prefilter:
        candidates = candidates[band_collisions(signatures, candidates, layout.b, layout.r)]
    return _lsh_first_matches(signatures, candidates, threshold, layout.b, layout.r)


def _signatures(
    tokens: TokenizedTexts, shingle_size: int, num_perm: int, seed: int, batch_words: int = 1 << 19
) -> np.ndarray:
    """MinHash signatures of every text's shingles (:func:`shingle_hashes` + :func:`minhash_signatures`),
    a batch of ~500k words at a time: the shingle temporaries stay small (they were the pipeline's
    peak memory when made for the whole corpus at once). Two threads share the batches when there
    are several: numpy releases the GIL in its loops, and each batch writes only its own rows."""
    permutations = minhash_permutations(num_perm, seed)
    word_hashes = _vocabulary_hashes(tokens.vocabulary)
    signatures = np.full((len(tokens), num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    offsets = tokens.offsets
    bounds = [0]
    while bounds[-1] < len(tokens):
        first = bounds[-1]
        bounds.append(
            max(int(np.searchsorted(offsets, offsets[first] + batch_words, side="right")) - 1, first + 1)
        )

    def batch(first: int, stop: int) -> None:
        flat_words = word_hashes[tokens.ids[offsets[first] : offsets[stop]]]
        flat, counts = _shingles_of(flat_words, tokens.lengths[first:stop], shingle_size)
        _minhash_into(signatures[first:stop], flat, counts, permutations)

    if len(bounds) > 3 and usable_cores() >= 2:
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(batch, bounds[:-1], bounds[1:]))  # list(): re-raise a batch's error
    else:
        for first, stop in itertools.pairwise(bounds):
            batch(first, stop)
    return signatures


def _lsh_first_matches(
    signatures: np.ndarray, candidates: np.ndarray, threshold: float, bands: int, rows_per_band: int
) -> tuple[np.ndarray, np.ndarray]:
    """Visit ``candidates`` in order against an LSH index of the texts kept so far.

    The index is ``datasketch.MinHashLSH``'s (a text's band ``i`` is its signature values
    ``i * rows_per_band`` up to the next band; a query returns every inserted text sharing a band)
    as one dict per band keyed by the band's bytes: the same candidates, without the per-call
    overhead of LeanMinHash objects. A text matches the first (lowest index) candidate whose
    estimated Jaccard (share of equal signature values) is at least ``threshold``; else it is inserted.
    """
    num_perm = signatures.shape[1]
    band_bytes = rows_per_band * signatures.itemsize
    tables: list[dict[bytes, list[int]]] = [{} for _ in range(bands)]
    duplicate_of = np.full(len(signatures), -1, dtype=np.int64)
    similarity = np.zeros(len(signatures), dtype=np.float64)
    for index in candidates.tolist():
        signature = signatures[index]
        raw = signature.tobytes()
        keys = [raw[band * band_bytes : (band + 1) * band_bytes] for band in range(bands)]
        found: set[int] = set()
        for table, key in zip(tables, keys, strict=True):
            found.update(table.get(key, ()))
        for candidate in sorted(found):  # the earliest kept match wins
            # The same float as np.mean(a == b): an exact count divided by num_perm.
            estimate = np.count_nonzero(signatures[candidate] == signature) / num_perm
            if estimate >= threshold:
                duplicate_of[index] = candidate
                similarity[index] = estimate
                break
        else:
            for table, key in zip(tables, keys, strict=True):
                table.setdefault(key, []).append(index)
    return duplicate_of, similarity
