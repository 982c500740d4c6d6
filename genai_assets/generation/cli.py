"""``genai-assets generate``: prompt → poems from a saved model, streamed to the terminal.

    genai-assets generate --model data_lake/models/finetuned_lm --prompt "The rose" \\
        --top-k 50 --top-p 0.95 --temperature 0.9 --num-return-sequences 2 --seed 7 --output poems.jsonl

Sampling flags left out take the ``--preset``'s values (``course``: the course's final settings,
see ``genai_assets.generation.presets``), then the model folder's ``generation_config.json``
defaults (what ``finetuned_lm`` saved), then ``SamplingConfig``'s. Kept light: ``cli.py``
imports this module to build its parser, so torch and transformers load only in ``run_generate``.
"""

from __future__ import annotations

import argparse
import json
import sys

from genai_assets.generation.presets import SAMPLING_PRESETS, merge_sampling_values


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="Model folder (HF or scratch) or Hub id.")
    parser.add_argument(
        "--prompt",
        required=True,
        action="append",
        help="First words of the poem (repeat for several prompts).",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--do-sample", dest="do_sample", action="store_true", default=None, help="Sample (default)."
    )
    mode.add_argument("--greedy", dest="do_sample", action="store_false", help="Greedy decoding.")
    parser.add_argument("--top-k", type=int, help="Keep the k most likely tokens (0 = off).")
    parser.add_argument("--top-p", type=float, help="Nucleus sampling mass in (0, 1].")
    parser.add_argument("--temperature", type=float, help="Sampling temperature (> 0).")
    parser.add_argument("--repetition-penalty", type=float, help="> 1 discourages repeated tokens; 1 = none.")
    parser.add_argument(
        "--no-repeat-ngram-size", type=int, help="Never repeat an n-gram of this size (0 = off)."
    )
    parser.add_argument("--num-return-sequences", type=int, help="Samples per prompt (default 1).")
    parser.add_argument(
        "--preset",
        choices=sorted(SAMPLING_PRESETS),
        help="Named decoding settings; 'course' = temperature 1.0, top-k 50, top-p 0.95, repetition "
        "penalty 1.2, no repeated 2-grams, 3 samples per prompt. Explicit flags override it.",
    )
    parser.add_argument("--max-new-tokens", type=int, help="Tokens to generate after the prompt.")
    parser.add_argument("--seed", type=int, help="Random seed: the same seed and flags give the same poems.")
    parser.add_argument("--output", help="Also write the samples, prompts and parameters to this JSONL file.")
    parser.add_argument("--overwrite", action="store_true", help="Replace the --output file if it exists.")
    parser.add_argument("--quiet", action="store_true", help="Do not stream tokens to the terminal.")


def sampling_from_args(args: argparse.Namespace, saved_defaults: dict | None = None):
    """``SamplingConfig`` from the flags over the model's saved defaults (raises ValueError on bad values)."""
    from dataclasses import fields

    from genai_assets.generation import SamplingConfig

    # Every flag is named after its SamplingConfig field; a flag left out is None (defaults apply).
    explicit = {field.name: getattr(args, field.name, None) for field in fields(SamplingConfig)}
    return SamplingConfig.from_defaults(saved_defaults, **merge_sampling_values(args.preset, explicit))


def run_generate(args: argparse.Namespace) -> int:
    from genai_assets.cli_input import check_output_path, resolve_model_argument
    from genai_assets.generation import generate_poems, load_generator

    try:
        # Input checks before the (slow) model load: a bad --output or --model fails in one line.
        output = check_output_path(args.output, args.overwrite) if args.output else None
        model_argument = resolve_model_argument(args.model)
        sampling_from_args(args)  # validate the flags before loading a model
        generator = load_generator(model_argument)
        sampling = sampling_from_args(args, generator.sampling_defaults)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    def stream(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    try:
        samples = generate_poems(
            generator.model, generator.tokenizer, args.prompt, sampling, stream=None if args.quiet else stream
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.quiet:
        for sample in samples:
            print(sample["text"], end="\n\n")
    if output is not None:
        from genai_assets.lake import atomic_write_text

        records = [
            json.dumps(
                {"model": generator.name, **sample, "params": json.loads(sample["params"])},
                ensure_ascii=False,
            )
            for sample in samples
        ]
        atomic_write_text(output, "".join(record + "\n" for record in records))
        print(f"\nwrote {len(samples)} samples to {output}", file=sys.stderr)
    return 0
