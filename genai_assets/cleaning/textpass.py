"""The per-text part of cleansing: every transform, then line and word counts, the dictionary
words and the share of ASCII letters; on two processes for a large corpus.

Each text is cleaned on its own, so the corpus can be cut in two: this process cleans the first
part while one worker process cleans the rest, and the parts are joined in order. The result is
the same texts, counts and per-rule change counts as one process (tested), and the work is
deterministic. A small corpus (tests, the demo) stays in one process: starting a worker (a fresh
interpreter importing numpy and ftfy, about a second) would cost more than it saves.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from genai_assets.cleaning.rules import TRANSFORMS, ascii_letter_ratio, count_lines, count_words
from genai_assets.cleaning.tokens import TokenizedTexts, concat_tokenized, tokenize_texts

#: From this many texts on, a worker process cleans part of them (the full Gutenberg corpus has 512k).
PARALLEL_MIN_TEXTS = 50_000
#: The worker's share: a little under half, as it starts about a second after this process.
WORKER_SHARE = 0.46


@dataclass
class TextPass:
    """Cleaned texts, their counts, and per transform (in :data:`TRANSFORMS` order) what it did."""

    texts: list[str]
    n_lines: np.ndarray
    n_words: np.ndarray
    changed: list[int]  # texts the transform altered
    seconds: list[float]  # wall time (two processes: the longer of the two parts)
    cpu_seconds: list[float]  # CPU time (two processes: both)
    tokens: TokenizedTexts  # every cleaned text's dictionary words (with lines)
    ascii_ratios: np.ndarray  # rules.ascii_letter_ratio of every cleaned text
    words_seconds: float  # splitting into words and the ASCII shares (two processes: + the merge)
    words_cpu_seconds: float
    other_seconds: float  # counting, and with a worker the hand-over (start, transfer, wait)
    other_cpu_seconds: float


def _one_process(texts: list[str]) -> TextPass:
    """Every transform over ``texts`` in order, then the counts, in this process.

    ``settle`` only re-runs the texts some rule changed: a text every rule left alone is settled
    already (a second pass would see exactly the same input), and that is most of a clean corpus.
    """
    originals = texts
    changed, seconds, cpu_seconds = [], [], []
    for name, transform in TRANSFORMS:
        started, cpu_started = time.perf_counter(), time.process_time()
        if name == "settle":
            cleaned = [
                text if text == original else transform(text)
                for text, original in zip(texts, originals, strict=True)
            ]
        else:
            cleaned = [transform(text) for text in texts]
        # A rule returns the very same object when it changes nothing (the common case): skip the compare.
        changed.append(
            sum(
                1
                for before, after in zip(texts, cleaned, strict=True)
                if before is not after and before != after
            )
        )
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
        texts = cleaned
    started, cpu_started = time.perf_counter(), time.process_time()
    n_lines = np.fromiter(map(count_lines, texts), dtype=np.int64, count=len(texts))
    n_words = np.fromiter(map(count_words, texts), dtype=np.int64, count=len(texts))
    other = time.perf_counter() - started, time.process_time() - cpu_started
    started, cpu_started = time.perf_counter(), time.process_time()
    tokens = tokenize_texts(texts)
    ascii_ratios = np.fromiter(map(ascii_letter_ratio, texts), dtype=np.float64, count=len(texts))
    words = time.perf_counter() - started, time.process_time() - cpu_started
    return TextPass(
        texts, n_lines, n_words, changed, seconds, cpu_seconds, tokens, ascii_ratios, *words, *other
    )


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells, else the machine's)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _start_method() -> multiprocessing.context.BaseContext:
    """fork when this process runs one thread (fast, and a script without a ``__main__`` guard
    works); spawn when it runs more (Dagster's), as a forked child may inherit a lock another
    thread held."""
    if threading.active_count() == 1 and sys.platform.startswith("linux"):  # fork is unsafe on macOS
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _two_parts(texts: list[str], split: int) -> tuple[TextPass, TextPass]:
    """:func:`_one_process` of ``texts[:split]`` here and of ``texts[split:]`` in a worker process.

    If the worker dies (a spawned interpreter first re-runs the calling script, which fails when
    the script has no ``if __name__ == "__main__"`` guard), this process cleans that part too.
    """
    head = tail = None
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=_start_method()) as pool:
            future = pool.submit(_one_process, texts[split:])
            head = _one_process(texts[:split])
            tail = future.result()
    except BrokenProcessPool:
        warnings.warn("the cleansing worker process died; cleaning its part in this process", stacklevel=3)
    head = _one_process(texts[:split]) if head is None else head
    tail = _one_process(texts[split:]) if tail is None else tail
    return head, tail


def clean_texts(texts: list[str], parallel_min_texts: int | None = None) -> TextPass:
    """:func:`_one_process` over ``texts``, split with one worker process from ``parallel_min_texts``
    (default :data:`PARALLEL_MIN_TEXTS`) texts on, when the machine has two cores or more."""
    threshold = PARALLEL_MIN_TEXTS if parallel_min_texts is None else parallel_min_texts
    if len(texts) < threshold or usable_cores() < 2:
        return _one_process(texts)
    started, cpu_started = time.perf_counter(), time.process_time()
    split = len(texts) - int(len(texts) * WORKER_SHARE)
    head, tail = _two_parts(texts, split)
    merge_started, merge_cpu_started = time.perf_counter(), time.process_time()
    tokens = concat_tokenized(head.tokens, tail.tokens)
    merge = time.perf_counter() - merge_started, time.process_time() - merge_cpu_started
    seconds = [max(pair) for pair in zip(head.seconds, tail.seconds, strict=True)]
    words_seconds = max(head.words_seconds, tail.words_seconds) + merge[0]
    wall = time.perf_counter() - started
    # This process' CPU beyond its own transforms and words (counting, pickling) plus the worker's counting.
    own_other_cpu = (
        time.process_time() - cpu_started - sum(head.cpu_seconds) - head.words_cpu_seconds - merge[1]
    )
    return TextPass(
        head.texts + tail.texts,
        np.concatenate((head.n_lines, tail.n_lines)),
        np.concatenate((head.n_words, tail.n_words)),
        [first + second for first, second in zip(head.changed, tail.changed, strict=True)],
        seconds,
        [first + second for first, second in zip(head.cpu_seconds, tail.cpu_seconds, strict=True)],
        tokens,
        np.concatenate((head.ascii_ratios, tail.ascii_ratios)),
        words_seconds,
        head.words_cpu_seconds + tail.words_cpu_seconds + merge[1],
        max(wall - sum(seconds) - words_seconds, 0.0),  # the per-rule maxima may overlap the rest
        own_other_cpu + tail.other_cpu_seconds,
    )
