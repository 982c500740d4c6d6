"""An out-of-domain evaluation set: 20th-century verse that is in none of the training sources.

The training corpus is 19th-century and older verse (the Gutenberg Poetry Corpus, Shakespeare,
PoetryDB and poets.org fixtures). These poems were first published 1915-1928 and are public
domain in the United States (published before 1931). They are the yardstick for *forgetting*:
a fine-tune that learns the corpus's style should not get worse at verse in general.

The poems live in the data file ``genai_assets/data/ood_poems.toml`` (text and provenance per
poem: title, author, year of first publication, license); this module loads them. ``check_overlap``
(used by the tests and by ``benchmarks/sweep_finetune.py``) verifies that no word 8-gram of these
poems occurs in a training text; poems that did overlap the full Gutenberg Poetry Corpus were
dropped when this set was built (see docs/evaluation.md).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass

from genai_assets.evaluation.metrics import metric_words, ngrams
from genai_assets.package_data import project_data_text

DATA_FILE = "ood_poems.toml"


@dataclass(frozen=True)
class OodPoem:
    title: str
    author: str
    year: int  # first publication
    text: str
    license: str = ""

    @property
    def attribution(self) -> str:
        return f"{self.author}, “{self.title}” ({self.year})"


def load_ood_poems(name: str = DATA_FILE) -> tuple[OodPoem, ...]:
    """The poems of the packaged data file, in file order (texts without surrounding blank lines)."""
    entries = tomllib.loads(project_data_text(name))["poem"]
    return tuple(
        OodPoem(entry["title"], entry["author"], entry["year"], entry["text"].strip("\n"), entry["license"])
        for entry in entries
    )


OOD_POEMS: tuple[OodPoem, ...] = load_ood_poems()


def check_overlap(training_texts: Iterable[str], poems: Iterable[OodPoem] = OOD_POEMS, n: int = 8) -> dict:
    """``{attribution: shared n-gram count}`` for every poem sharing a word ``n``-gram with a training text.

    Words are the metrics' (:func:`~genai_assets.evaluation.metrics.metric_words`), the unit the
    copy rate counts in. Each training text is read once as a word stream, so a shared phrase is
    found across its line breaks too. An empty result means the set is clean against ``training_texts``.
    """
    poems = list(poems)
    owner: dict[tuple[str, ...], set[int]] = {}
    for index, poem in enumerate(poems):
        for gram in ngrams(metric_words(poem.text), n):
            owner.setdefault(gram, set()).add(index)
    hits: dict[int, set[tuple[str, ...]]] = {}
    for text in training_texts:
        for gram in ngrams(metric_words(text), n):
            for index in owner.get(gram, ()):
                hits.setdefault(index, set()).add(gram)
    return {poems[index].attribution: len(grams) for index, grams in sorted(hits.items())}


def ood_texts(poems: Iterable[OodPoem] = OOD_POEMS) -> list[str]:
    """The poem texts, the input of ``evaluate_perplexity``."""
    return [poem.text for poem in poems]
