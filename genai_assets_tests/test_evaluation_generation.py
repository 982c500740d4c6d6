"""Batched generation in the evaluation equals one-prompt-at-a-time generation (greedy)."""

from genai_assets.evaluation.runner import generate_continuations
from genai_assets.generation import SamplingConfig, generate_poems, load_generator
from genai_assets_tests.test_publish_hub import save_tiny_gpt2


def test_left_padded_batch_generates_what_single_prompts_generate(tmp_path):
    generator = load_generator(save_tiny_gpt2(tmp_path / "gpt2"))
    prompts = [
        "Shall I compare thee\nto a summer's day?\n",
        "O rose\n",
        "The sea is calm tonight.\nThe tide is full\n",
    ]
    greedy = SamplingConfig(do_sample=False, repetition_penalty=1.0, max_new_tokens=8, seed=0)
    batched = generate_continuations(generator, prompts, greedy, batch_size=3)
    single = generate_poems(generator.model, generator.tokenizer, prompts, greedy)
    assert [row["text"] for row in batched] == [row["text"] for row in single]
    assert [row["n_new_tokens"] for row in batched] == [row["n_new_tokens"] for row in single]
