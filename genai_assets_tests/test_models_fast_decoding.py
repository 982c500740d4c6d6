"""The fast decoding path: GPTDecoder = GPT.forward with a KVCache, incremental repetition controls =
the whole-sequence reference functions (themselves tested against transformers' processors)."""

from __future__ import annotations

import pytest
import torch

from genai_assets.models.gpt_decoding import GPTDecoder, attention_weights
from genai_assets.models.sampling import (
    RepetitionControls,
    apply_repetition_penalty,
    ban_repeated_ngrams,
    draw_one,
    filter_top_k,
    filter_top_k_top_p,
    filter_top_p,
    generate_tokens,
    sample_next_token,
)
from genai_assets.models.transformer import GPT, GPTConfig


def tiny_gpt(**overrides) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig.from_preset("tiny", vocab_size=50, **overrides)).eval()


@pytest.mark.parametrize(
    "overrides",
    [{}, {"norm_first": False, "positional_encoding": "sinusoidal", "activation": "relu", "bias": False}],
)
def test_decoder_matches_forward_with_kv_cache(overrides):
    model = tiny_gpt(**overrides)
    prompt = torch.randint(0, 50, (2, 6), generator=torch.Generator().manual_seed(1))
    following = torch.randint(0, 50, (2, 5), generator=torch.Generator().manual_seed(2))
    decoder = GPTDecoder(model, batch=2)
    cache = model.new_cache()
    with torch.no_grad():
        torch.testing.assert_close(decoder(prompt), model(prompt, cache=cache)[0][:, -1])
        for step in range(following.size(1)):
            token = following[:, step : step + 1]
            torch.testing.assert_close(decoder(token), model(token, cache=cache)[0][:, -1])
    assert len(decoder) == 11 == len(cache[0])


def test_cached_generation_past_the_block_matches_the_module_cache():
    """Greedy tokens through the refill (block 32, 60 new tokens) equal the module path's."""
    from genai_assets.models.layers import KVCache

    model = tiny_gpt()
    prompt = torch.randint(0, 50, (1, 10), generator=torch.Generator().manual_seed(3))
    block = model.config.block_size
    cache: list[KVCache] | None = None

    def module_next_logits(sequence):  # the previous implementation, kept here as the reference
        nonlocal cache
        if cache is None or len(cache[0]) >= block:
            window = sequence[:, -block:] if cache is None else sequence[:, -(block // 2) :]
            cache = model.new_cache()
            return model(window, cache=cache)[0][:, -1]
        return model(sequence[:, -1:], cache=cache)[0][:, -1]

    with torch.no_grad():
        reference = generate_tokens(module_next_logits, prompt, 60, temperature=0)
    assert torch.equal(model.generate(prompt, 60, temperature=0), reference)


@pytest.mark.parametrize("on_host", [True, False])  # False: the tensor path an accelerator takes
def test_incremental_repetition_controls_equal_the_whole_sequence_functions(on_host):
    torch.manual_seed(0)
    sequence = torch.tensor([[1, 2, 3, 1, 2], [4, 4, 4, 4, 4], [0, 5, 0, 5, 0]])
    for penalty, size in ((1.3, 2), (0.7, 1), (2.0, 3), (1.0, 6), (1.2, 0), (1.0, 2)):
        controls = RepetitionControls(sequence[:, :2], penalty, size)
        controls.on_host = controls.on_host and on_host
        for column in range(2, sequence.size(1)):
            controls.observe(sequence[:, column : column + 1])
        logits = torch.randn(3, 12) * 3
        expected = ban_repeated_ngrams(apply_repetition_penalty(logits, sequence, penalty), sequence, size)
        assert torch.equal(controls.apply(logits, sequence), expected)


def test_sampled_generation_equals_the_step_by_step_reference():
    """Course settings, batch 2, seeded: the loop draws exactly what the reference functions give."""
    model = tiny_gpt()
    prompt = torch.randint(0, 50, (2, 4), generator=torch.Generator().manual_seed(4))
    settings = dict(temperature=1.0, top_k=20, top_p=0.95)
    controls = dict(repetition_penalty=1.2, no_repeat_ngram_size=2)
    fast = model.generate(prompt, 25, generator=torch.Generator().manual_seed(5), **settings, **controls)
    generator, sequence = torch.Generator().manual_seed(5), prompt
    with torch.no_grad():
        for _ in range(25):
            logits = model(sequence[:, -model.config.block_size :])[0][:, -1]
            token = sample_next_token(
                logits, **settings, generator=generator, previous_ids=sequence, **controls
            )
            sequence = torch.cat([sequence, token], dim=1)
    assert torch.equal(fast, sequence)
    assert fast.requires_grad is False and not fast.is_inference()  # usable anywhere afterwards


def test_attention_weights_are_causal_distributions():
    model = tiny_gpt()
    weights = attention_weights(model, torch.randint(0, 50, (1, 7)))
    assert weights.shape == (2, 2, 7, 7)  # (L, nh, T, T)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 2, 7))
    assert torch.all(weights.triu(diagonal=1) == 0)


def test_combined_top_k_top_p_equals_the_two_filters_in_turn():
    generator = torch.Generator().manual_seed(0)
    for k, p in ((1, 0.5), (5, 0.3), (50, 0.95), (50, 0.999), (200, 0.9)):
        logits = torch.randn(3, 300, generator=generator) * 2
        expected = filter_top_p(filter_top_k(logits, k), p)
        assert torch.equal(filter_top_k_top_p(logits, k, p), expected)


def test_draw_one_is_torch_multinomial():
    """Same tokens and the same generator state afterwards, so seeded generations keep their tokens."""
    data = torch.Generator().manual_seed(0)
    ours, reference = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    for trial in range(300):
        logits = torch.randn(1 + trial % 3, 500, generator=data) * 3
        logits = filter_top_k_top_p(logits, 40, 0.9) if trial % 2 else logits  # zeros too
        probabilities = torch.softmax(logits, dim=-1)
        expected = torch.multinomial(probabilities, 1, generator=reference)
        assert torch.equal(draw_one(probabilities, ours), expected)
    assert torch.equal(ours.get_state(), reference.get_state())


def test_batch_one_decodes_on_one_thread_and_restores_the_count():
    model, before = tiny_gpt(), torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        during = []
        model.generate(
            torch.tensor([[1, 2]]),
            3,
            temperature=0,
            on_token=lambda _: during.append(torch.get_num_threads()),
        )
        assert during == [1, 1, 1] and torch.get_num_threads() == 2
        model.generate(
            torch.tensor([[1, 2], [3, 4]]),
            2,
            temperature=0,
            on_token=lambda _: during.append(torch.get_num_threads()),
        )
        assert during[3:] == [2, 2]  # several rows keep the threads
        model.generate(
            torch.tensor([[1, 2]]),
            2,
            temperature=0,
            use_cache=False,
            on_token=lambda _: during.append(torch.get_num_threads()),
        )
        assert during[5:] == [2, 2]  # without a cache each step is whole-window matmuls: threads kept
    finally:
        torch.set_num_threads(before)


def test_course_step_draws_what_transformers_processors_and_multinomial_draw():
    """One decoding step with the course settings (repetition 1.2, no-repeat 2, top-k 50, top-p 0.95),
    fast path (incremental controls, one-pass top-k/top-p, draw_one) vs transformers' processors in
    ``generate``'s order then ``torch.multinomial``: same token and generator state, on random logits."""
    from transformers.generation.logits_process import (
        NoRepeatNGramLogitsProcessor,
        RepetitionPenaltyLogitsProcessor,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    processors = [
        RepetitionPenaltyLogitsProcessor(1.2),
        NoRepeatNGramLogitsProcessor(2),
        TopKLogitsWarper(50),
        TopPLogitsWarper(0.95),
    ]
    data = torch.Generator().manual_seed(0)
    ours, reference = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    for _ in range(100):
        sequence = torch.randint(0, 40, (2, 30), generator=data)  # small id range: repeated bigrams
        logits = torch.randn(2, 300, generator=data) * 3
        controls = RepetitionControls(sequence[:, :5], 1.2, 2)
        for column in range(5, sequence.size(1)):
            controls.observe(sequence[:, column : column + 1])
        token = sample_next_token(controls.apply(logits, sequence), 1.0, 50, 0.95, ours)
        expected_logits = logits.clone()
        for processor in processors:
            expected_logits = processor(sequence, expected_logits)
        expected = torch.multinomial(torch.softmax(expected_logits, dim=-1), 1, generator=reference)
        assert torch.equal(token, expected)
    assert torch.equal(ours.get_state(), reference.get_state())


def test_a_single_row_goes_through_numpy_blas_on_the_same_memory_and_equals_f_linear():
    """The decoder's matrix–vector path: NumPy views of the module's weights (no copies), the same
    values as ``F.linear`` up to rounding; several rows, autograd or another dtype take ``F.linear``."""
    import numpy as np

    from genai_assets.models.gpt_decoding import _Linear

    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 96)
    linear = _Linear.of(layer.weight, layer.bias)
    assert np.shares_memory(linear.host_weight, layer.weight.detach().numpy())
    row, rows = torch.randn(1, 64), torch.randn(3, 64)
    with torch.no_grad():
        reference = layer(row)
        torch.testing.assert_close(linear(row), reference, rtol=1e-5, atol=1e-5)
        assert torch.equal(linear(rows), layer(rows))  # the prompt path is F.linear itself
        layer.weight.mul_(2)  # a view, not a snapshot: the module's later weights are what it uses
        torch.testing.assert_close(linear(row), layer(row), rtol=1e-5, atol=1e-5)
    assert linear(row.requires_grad_()).requires_grad  # autograd: F.linear, never NumPy
    assert _Linear.of(layer.weight.half(), None).host_weight is None


def test_batch_one_generation_holds_torch_and_blas_to_one_thread_and_restores_them():
    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    model = tiny_gpt()
    before_torch, before_blas = torch.get_num_threads(), blas_threads()
    assert before_blas and max(before_blas) > 1  # NumPy's OpenBLAS: a pool to hold down
    try:
        for torch_threads in (2, 1):  # torch already on one thread: BLAS is still held to one
            torch.set_num_threads(torch_threads)
            seen: list[tuple[int, list[int]]] = []
            model.generate(
                torch.tensor([[1, 2]]),
                3,
                on_token=lambda _, seen=seen: seen.append((torch.get_num_threads(), blas_threads())),
            )
            assert seen == [(1, [1] * len(before_blas))] * 3
            assert torch.get_num_threads() == torch_threads and blas_threads() == before_blas
    finally:
        torch.set_num_threads(before_torch)
