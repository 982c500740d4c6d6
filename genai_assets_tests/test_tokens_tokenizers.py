"""Tokenizers: byte-level BPE round trips, special tokens, word-level baseline, real GPT-2 files."""

from itertools import accumulate

import pytest

from genai_assets.text.tokenization import (
    BOS_TOKEN,
    EOS_TOKEN,
    PAD_TOKEN,
    TokenizerTrainingConfig,
    compare_tokenizers,
    encode_poems,
    encode_poems_one_by_one,
    load_gpt2_tokenizer,
    rare_words,
    train_bpe_tokenizer,
    train_wordlevel_tokenizer,
)
from genai_assets_tests.test_tokens_arrays import sonnet_texts

TRICKY_TEXTS = [
    "Shall I compare thee to a summer’s day?",
    "“Curly quotes” and ‘single ones’ — em dash… ellipsis",
    "Emoji 🌹🌙✨ and a family 👨‍👩‍👧 (ZWJ sequence)",
    "漢字とかな、한국어 and 中文 poetry",
    "long     whitespace\t\ttabs\n\n\n   indented line   \n",
    "  leading and trailing spaces  ",
    "Ünïcödé: naïve café, Straße, ﬁ ligature, combining é",
    "",
]


@pytest.fixture(scope="module")
def bpe():
    return train_bpe_tokenizer(sonnet_texts(), TokenizerTrainingConfig(vocab_size=600))


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_bpe_round_trips_unicode(bpe, text):
    ids = bpe.encode(text, add_special_tokens=False)
    assert bpe.decode(ids) == text
    assert all(0 <= token < len(bpe) for token in ids)


def test_bpe_special_tokens_and_saved_folder(bpe, tmp_path):
    from transformers import AutoTokenizer

    assert len(bpe) == 600
    assert (bpe.pad_token, bpe.bos_token, bpe.eos_token) == (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN)
    assert (bpe.pad_token_id, bpe.bos_token_id, bpe.eos_token_id) == (0, 1, 2)
    # A special token written in the text is one id, and decode can skip it.
    framed = bpe.encode(f"{BOS_TOKEN}Rose{EOS_TOKEN}", add_special_tokens=False)
    assert framed[0] == 1 and framed[-1] == 2
    assert bpe.decode(framed, skip_special_tokens=True) == "Rose"
    bpe.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded.bos_token_id == 1 and reloaded.pad_token == PAD_TOKEN
    for text in TRICKY_TEXTS:
        assert reloaded.encode(text, add_special_tokens=False) == bpe.encode(text, add_special_tokens=False)


def test_batched_encoding_equals_one_by_one(bpe, monkeypatch):
    from genai_assets.text import tokenization

    monkeypatch.setattr(tokenization, "ENCODE_CHUNK_SIZE", 7)  # several batches, a partial last one
    texts = sonnet_texts()[:20] + TRICKY_TEXTS
    flat, offsets = encode_poems(bpe, texts)
    reference = encode_poems_one_by_one(bpe, texts)
    assert offsets.tolist() == [0, *accumulate(len(row) for row in reference)]
    assert flat.tolist() == [token for row in reference for token in row]


def test_gpt2_tokenizer_from_packaged_files():
    gpt2 = load_gpt2_tokenizer()
    assert gpt2("Hello world")["input_ids"] == [15496, 995]
    assert gpt2.eos_token_id == 50256 and len(gpt2) == 50257
    for text in TRICKY_TEXTS:
        assert gpt2.decode(gpt2.encode(text)) == text


def test_wordlevel_unknowns_and_comparison(bpe):
    texts = sonnet_texts()
    wordlevel = train_wordlevel_tokenizer(texts[:140], TokenizerTrainingConfig(wordlevel_vocab_size=300))
    assert wordlevel.unk_token_id == wordlevel.convert_tokens_to_ids("[UNK]")
    assert wordlevel.convert_ids_to_tokens(wordlevel.encode("thy xyzzyq", add_special_tokens=False)) == [
        "thy",
        "[UNK]",
    ]
    examples = rare_words(texts[:140], texts[140:], count=3)
    assert len(examples) == 3 and all(word.isalpha() for word in examples)
    assert not any(word.lower() in " ".join(texts[:140]).lower().split() for word in examples)
    stats, segmentations = compare_tokenizers({"bpe": bpe, "word": wordlevel}, texts[140:], examples)
    by_name = {row["tokenizer"]: row for row in stats}
    assert by_name["bpe"]["unknown_rate"] == 0 and by_name["word"]["unknown_rate"] > 0
    assert by_name["word"]["chars_per_token"] > by_name["bpe"]["chars_per_token"] > 1
    assert [row["rare word"] for row in segmentations] == examples
    assert all(row["word"] == "[UNK]" for row in segmentations)
    # BPE pieces spell the word back; "·" separates them (a "|" would break the Markdown table).
    assert all(row["bpe"].replace(" · ", "").lstrip("␣") == row["rare word"] for row in segmentations)


def test_bad_tokenizer_configs_and_corpora():
    with pytest.raises(ValueError, match="leaves no room for merges"):
        TokenizerTrainingConfig(vocab_size=259)
    with pytest.raises(ValueError, match="empty corpus"):
        train_bpe_tokenizer(["", "  \n"], TokenizerTrainingConfig(vocab_size=300))
    with pytest.raises(ValueError, match="empty corpus"):
        train_wordlevel_tokenizer([], TokenizerTrainingConfig())
    # A corpus too small for the requested merges gives a smaller, still working vocabulary.
    small = train_bpe_tokenizer(["the rose, the rose"], TokenizerTrainingConfig(vocab_size=1000))
    assert 259 < len(small) < 1000 and small.decode(small.encode("rosé 🌹")) == "rosé 🌹"
