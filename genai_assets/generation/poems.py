"""Prompt → poems from a loaded model, streamed as they are produced, stopping at end-of-poem."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from genai_assets.generation.loading import context_length_of
from genai_assets.generation.settings import SamplingConfig
from genai_assets.text.tokenization import POEM_START


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """Prompt ids in the training format when the tokenizer knows the poem marker."""
    marker = tokenizer.convert_tokens_to_ids(POEM_START)
    if marker is not None and marker != tokenizer.unk_token_id:
        return [marker, *tokenizer(prompt, add_special_tokens=False)["input_ids"]]
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if not ids:  # an empty prompt: start from the document separator, as GPT-2 does
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        ids = [start]
    return ids


def stop_token_ids(tokenizer) -> list[int]:
    """End-of-poem ids: eos, and the start marker (a new poem begins = this one ended)."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    marker = tokenizer.convert_tokens_to_ids(POEM_START)
    if marker is not None and marker != tokenizer.unk_token_id and marker not in ids:
        ids.append(marker)
    return ids


def generate_poems(
    model,
    tokenizer,
    prompts: Sequence[str],
    sampling: SamplingConfig,
    stream: Callable[[str], None] | None = None,
) -> list[dict]:
    """``num_return_sequences`` samples per prompt: dicts ``prompt, sample_index, text, n_new_tokens, params``.

    ``text`` is the prompt followed by the generated continuation, special tokens removed.
    ``stream`` receives text pieces as the model produces them (e.g. ``sys.stdout.write``).
    Samples are generated one at a time, so streaming works for every sample.
    """
    import torch

    if isinstance(prompts, str):
        prompts = [prompts]
    is_scratch = not hasattr(model, "generation_config")
    context = context_length_of(model)
    if sampling.seed is not None:
        torch.manual_seed(sampling.seed)
    device = next(model.parameters()).device
    results = []
    for prompt in prompts:
        prompt_ids = encode_prompt(tokenizer, prompt)
        max_new = sampling.max_new_tokens
        if context is not None:
            if len(prompt_ids) >= context:
                raise ValueError(
                    f"Prompt is {len(prompt_ids)} tokens long; the model's context is {context} tokens. "
                    "Shorten the prompt."
                )
            max_new = min(max_new, context - len(prompt_ids))
        params = {**sampling.applied(), "max_new_tokens": max_new}  # what was really used
        for sample_index in range(sampling.num_return_sequences):
            if stream is not None:
                stream(("\n" if results else "") + f"--- sample {sample_index + 1} ---\n{prompt}")
            ids = torch.tensor([prompt_ids], device=device)  # (1, T)
            with torch.no_grad():
                if is_scratch:
                    new_ids = generate_scratch_ids(model, tokenizer, ids, sampling, max_new, stream)
                else:
                    new_ids = _generate_transformers(model, tokenizer, ids, sampling, max_new, stream)
            continuation = tokenizer.decode(new_ids, skip_special_tokens=True)
            if stream is not None:
                stream("\n")
            results.append(
                {
                    "prompt": prompt,
                    "sample_index": sample_index,
                    "text": prompt + continuation,
                    "n_new_tokens": len(new_ids),
                    "params": json.dumps(params, sort_keys=True),
                }
            )
    return results


def _generate_transformers(
    model, tokenizer, ids, sampling: SamplingConfig, max_new: int, stream
) -> list[int]:
    from transformers import TextStreamer

    streamer = None
    if stream is not None:

        class CallbackStreamer(TextStreamer):
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                stream(text)

        streamer = CallbackStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    stops = stop_token_ids(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0] if stops else None
    kwargs = {**sampling.generate_kwargs(), "max_new_tokens": max_new}
    output = model.generate(
        ids,
        attention_mask=ids.new_ones(ids.shape),
        eos_token_id=stops or None,
        pad_token_id=pad_id,
        streamer=streamer,
        **kwargs,
    )  # (1, T + new)
    new_ids = output[0, ids.shape[1] :].tolist()
    return _cut_at_stop(new_ids, stops)


def generate_scratch_ids(
    model, tokenizer, ids, sampling: SamplingConfig, max_new: int, stream=None
) -> list[int]:
    """New token ids (stop token excluded) from a scratch model, in one call of its own ``generate``.

    The scratch models decode through their own cache (the GPT's KV cache, the RNN's state) and
    apply every setting of ``sampling``, repetition penalty and no-repeat n-grams included, in
    the same order transformers does. ``stream`` gets text as soon as it forms whole characters.
    """
    stops = stop_token_ids(tokenizer)
    new_ids: list[int] = []
    printed = ""

    def on_token(token) -> None:  # token (1, 1)
        nonlocal printed
        if int(token[0, 0]) in stops:
            return
        new_ids.append(int(token[0, 0]))
        if stream is not None:
            text = tokenizer.decode(new_ids, skip_special_tokens=True)
            if not text.endswith("\ufffd"):  # wait for a complete UTF-8 character
                stream(text[len(printed) :])
                printed = text

    output = model.generate(
        ids,
        max_new,
        **sampling.decoding_kwargs(),
        eos_token_id=stops or None,
        on_token=on_token,
    )  # (1, T + new), stop token included
    return _cut_at_stop(output[0, ids.shape[1] :].tolist(), stops)


def _cut_at_stop(new_ids: list[int], stops: list[int]) -> list[int]:
    for position, token in enumerate(new_ids):
        if token in stops:
            return new_ids[:position]
    return new_ids
