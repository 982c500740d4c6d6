"""Token-by-token streaming for interactive use (the playground): text so far, token count, tokens/s.

:func:`stream_generation` runs the model's own decoding (``transformers`` ``generate`` with a
streamer for a causal LM, the scratch models' cached ``generate`` with ``on_token``) on a worker
thread and yields a :class:`StreamEvent` per new token. The worker adds only a queue put per
token, so streaming is as fast as a plain ``generate`` (``benchmarks/bench_models.py --llm``).
Same prompt, settings and seed → the same text as :func:`~genai_assets.generation.generate_poems`'
first sample.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from genai_assets.generation.loading import context_length_of
from genai_assets.generation.poems import encode_prompt, stop_token_ids
from genai_assets.generation.settings import SamplingConfig

_DONE = object()  # the worker's last message


@dataclass(frozen=True)
class StreamEvent:
    """The generation so far: ``text`` is the continuation only (special tokens removed)."""

    text: str
    n_tokens: int  # new tokens so far (stop token excluded)
    seconds: float  # since the prompt was handed to the model (includes reading the prompt)
    done: bool
    ids: tuple[int, ...] = ()  # the last event only: prompt ids followed by the new ids

    @property
    def tokens_per_second(self) -> float:
        return self.n_tokens / self.seconds if self.seconds > 0 else 0.0


def is_encoder_decoder(model) -> bool:
    """The next-line model: its prompt is a source line and it generates the target line."""
    return hasattr(model, "encode") and hasattr(getattr(model, "config", None), "max_source_len")


def prompt_ids_and_budget(model, tokenizer, prompt: str, max_new_tokens: int) -> tuple[list[int], int]:
    """The prompt's ids and how many tokens may follow within the model's context."""
    if is_encoder_decoder(model):
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][: model.config.max_source_len]
        if not ids:
            raise ValueError("The next-line model needs a non-empty line as its prompt.")
        return ids, min(max_new_tokens, model.config.max_target_len - 1)
    ids = encode_prompt(tokenizer, prompt)
    context = context_length_of(model)
    if context is None:
        return ids, max_new_tokens
    if len(ids) >= context:
        raise ValueError(
            f"Prompt is {len(ids)} tokens long; the model's context is {context} tokens. Shorten the prompt."
        )
    return ids, min(max_new_tokens, context - len(ids))


def stream_generation(
    model, tokenizer, prompt: str, sampling: SamplingConfig, *, min_new_tokens: int | None = None
) -> Iterator[StreamEvent]:
    """Yield a :class:`StreamEvent` per generated token, then a final one with ``done=True``.

    ``sampling.seed`` seeds this generation; ``min_new_tokens`` (transformers models only) keeps
    the end-of-text token away until then (used by the benchmark for equal lengths).
    """
    import torch

    ids, max_new = prompt_ids_and_budget(model, tokenizer, prompt, sampling.max_new_tokens)
    stops = [model.config.eos_id] if is_encoder_decoder(model) else stop_token_ids(tokenizer)
    tokens: queue.SimpleQueue = queue.SimpleQueue()
    input_ids = torch.tensor([ids], device=next(model.parameters()).device)  # (1, T)
    scratch = not hasattr(model, "generation_config")
    target = _scratch_worker if scratch else _transformers_worker
    arguments = (model, input_ids, sampling, max_new, stops, tokens, min_new_tokens)
    started = time.perf_counter()
    threading.Thread(target=target, args=arguments, daemon=True).start()
    new_ids: list[int] = []
    text = ""
    while (item := tokens.get()) is not _DONE:
        if isinstance(item, BaseException):
            raise item
        if item in stops:
            continue
        new_ids.append(item)
        decoded = tokenizer.decode(new_ids, skip_special_tokens=True)
        if not decoded.endswith("\ufffd"):  # wait for a complete UTF-8 character
            text = decoded
            yield StreamEvent(text, len(new_ids), time.perf_counter() - started, False)
    seconds = time.perf_counter() - started
    text = tokenizer.decode(new_ids, skip_special_tokens=True)
    yield StreamEvent(text, len(new_ids), seconds, True, tuple(ids) + tuple(new_ids))


def _run_reporting_errors(tokens: queue.SimpleQueue, work) -> None:
    try:
        work()
    except BaseException as error:  # handed to the consumer, which raises it in its own thread
        tokens.put(error)
    finally:
        tokens.put(_DONE)


def _scratch_worker(model, input_ids, sampling, max_new, stops, tokens, _min_new_tokens) -> None:
    import torch

    generator = torch.Generator(device=input_ids.device)
    if sampling.seed is not None:
        generator.manual_seed(sampling.seed)

    def work() -> None:
        with torch.no_grad():
            model.generate(
                input_ids,
                max_new,
                temperature=sampling.temperature if sampling.do_sample else 0.0,  # 0 = greedy
                top_k=sampling.top_k or None,
                top_p=sampling.top_p,
                eos_token_id=stops or None,
                repetition_penalty=sampling.repetition_penalty,
                no_repeat_ngram_size=sampling.no_repeat_ngram_size,
                generator=generator,
                on_token=lambda token: tokens.put(int(token[0, 0])),  # token (1, 1)
            )

    _run_reporting_errors(tokens, work)


class _QueueStreamer:
    """transformers' streamer protocol (``put``/``end``): each new token id into the queue."""

    def __init__(self, tokens: queue.SimpleQueue):
        self.tokens, self.prompt_seen = tokens, False

    def put(self, value) -> None:
        if not self.prompt_seen:  # generate first hands over the prompt
            self.prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self.tokens.put(int(token))

    def end(self) -> None:
        pass


def _transformers_worker(model, input_ids, sampling, max_new, stops, tokens, min_new_tokens) -> None:
    import torch

    def work() -> None:
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)  # transformers samples from the global generator
        pad_id = model.generation_config.pad_token_id
        kwargs = {**sampling.generate_kwargs(), "max_new_tokens": max_new}
        if min_new_tokens:
            kwargs["min_new_tokens"] = min_new_tokens
        with torch.no_grad():
            model.generate(
                input_ids,
                attention_mask=torch.ones_like(input_ids),
                eos_token_id=stops or None,
                pad_token_id=pad_id if pad_id is not None else (stops[0] if stops else None),
                streamer=_QueueStreamer(tokens),
                **kwargs,
            )

    _run_reporting_errors(tokens, work)
