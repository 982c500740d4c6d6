"""Perplexity / bits per char: parity with transformers' own loss, sliding windows, scratch interface."""

import math

import pytest
import torch

from genai_assets.evaluation.perplexity import (
    context_prefix_ids,
    evaluate_perplexity,
    truncate_at_line,
)
from genai_assets_tests.test_publish_hub import save_tiny_gpt2

TEXTS = [
    "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate:",
    "Rough winds do shake the darling buds of May,\nAnd summer's lease hath all too short a date;",
]


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = save_tiny_gpt2(tmp_path_factory.mktemp("gpt2"))
    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def test_total_nll_equals_transformers_loss_after_the_unscored_prefix(tiny_gpt2):
    model, tokenizer = tiny_gpt2
    assert context_prefix_ids(tokenizer) == [tokenizer.eos_token_id]  # GPT-2: no bos of its own, no marker
    result = evaluate_perplexity(model, tokenizer, TEXTS, context_length=64)
    expected_nll, expected_tokens = 0.0, 0
    for text in TEXTS:
        ids = [tokenizer.eos_token_id] + tokenizer(text)["input_ids"]
        labels = torch.tensor([[-100] + ids[1:]])  # the prefix is context only
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([ids]), labels=labels).loss
        expected_nll += float(loss) * (len(ids) - 1)
        expected_tokens += len(ids) - 1
    assert result.n_tokens == expected_tokens
    assert result.total_nll_nats == pytest.approx(expected_nll, rel=1e-5)
    assert result.perplexity == pytest.approx(math.exp(expected_nll / expected_tokens), rel=1e-5)
    assert result.n_chars == sum(len(text) for text in TEXTS)
    assert result.bits_per_char == pytest.approx(expected_nll / math.log(2) / result.n_chars, rel=1e-5)


def test_sliding_window_scores_every_token_once_with_enough_history(tiny_gpt2):
    model, tokenizer = tiny_gpt2
    text = " ".join(TEXTS * 2)  # ~80 tokens, longer than a 16-token window
    full = evaluate_perplexity(model, tokenizer, [text], context_length=None)
    windowed = evaluate_perplexity(model, tokenizer, [text], context_length=16)
    assert windowed.n_tokens == full.n_tokens == len(tokenizer(text)["input_ids"])
    # Less history per token changes the numbers, but not wildly for an untrained model.
    assert windowed.total_nll_nats == pytest.approx(full.total_nll_nats, rel=0.05)
    assert windowed.total_nll_nats != full.total_nll_nats


class ScratchStyle(torch.nn.Module):
    """The scratch-model interface (forward(idx, targets=None) -> (logits, loss)) around GPT-2."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, idx, targets=None):
        return self.inner(input_ids=idx).logits, None


def test_scratch_interface_gives_the_same_numbers(tiny_gpt2):
    model, tokenizer = tiny_gpt2
    wrapped = ScratchStyle(model)
    assert not hasattr(wrapped, "generation_config")
    assert evaluate_perplexity(wrapped, tokenizer, TEXTS) == evaluate_perplexity(model, tokenizer, TEXTS)


def test_poem_marker_is_the_prefix_when_the_tokenizer_knows_it(tiny_gpt2):
    _, tokenizer = tiny_gpt2
    marked = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    marked.add_special_tokens({"additional_special_tokens": ["<|startofpoem|>"]})
    assert context_prefix_ids(marked) == [marked.convert_tokens_to_ids("<|startofpoem|>")]


def test_truncation_cuts_at_a_line_break_and_rejects_empty_input(tiny_gpt2):
    assert truncate_at_line("one two\nthree four\nfive", 14) == "one two"
    assert truncate_at_line("short", 100) == "short"
    with pytest.raises(ValueError, match="No texts"):
        evaluate_perplexity(*tiny_gpt2, ["", ""])
