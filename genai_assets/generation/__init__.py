"""Prompt → poems from any model this project saves (contract 8), streamed as they are produced.

``load_generator(path_or_id)`` opens a transformers causal LM folder or Hub id (the fine-tuned
model, the cached base) or one of the scratch models (``genai_assets.models.loading``);
``generate_poems`` samples continuations of prompts with the seed's knobs (``SamplingConfig``)
and stops at end-of-poem. Prompts use the training format (``<|startofpoem|>`` + prompt) when
the tokenizer knows the marker, so the fine-tuned model starts a poem rather than continuing
arbitrary text. ``genai_assets.generation.cli`` is ``genai-assets generate``.
Light to import: torch and transformers load inside the functions.
"""

from genai_assets.generation.loading import (
    TOKENIZER_FILES,
    Generator,
    check_safetensors,
    context_length_of,
    load_generator,
)
from genai_assets.generation.poems import encode_prompt, generate_poems, stop_token_ids
from genai_assets.generation.settings import SamplingConfig, saved_sampling_defaults
from genai_assets.text.tokenization import POEM_START

__all__ = [
    "POEM_START",
    "TOKENIZER_FILES",
    "Generator",
    "SamplingConfig",
    "check_safetensors",
    "context_length_of",
    "encode_prompt",
    "generate_poems",
    "load_generator",
    "saved_sampling_defaults",
    "stop_token_ids",
]
