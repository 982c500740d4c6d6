"""The Gradio app: Generate, Compare and Rate tabs over :mod:`genai_assets.playground.core`.

``build_app(lake_root)`` returns the ``gr.Blocks``; ``launch(...)`` serves it (``genai-assets
playground``, ``make play``). Offline: analytics are switched off before Gradio is imported and
nothing is fetched from the network. Every handler turns an exception into a one-line message in
the status box, never a traceback. Element ids (``elem_id``) are what the browser test clicks.
"""

from __future__ import annotations

import os
from pathlib import Path

from genai_assets.escaping import md_inline
from genai_assets.evaluation.ratings_db import RatingsStore, ratings_db_url
from genai_assets.playground.core import (
    KNOBS,
    Playground,
    RatingSession,
    attention_figure,
    preset_knobs,
    preset_names,
    sampling_from_form,
    status_line,
    stream_text,
)

TITLE = "genai_assets poetry playground"


def _error(error: Exception) -> str:
    text = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
    return f"**Error:** {md_inline(text)}"


def _knob_components(gr) -> tuple:
    """Preset, sampling switch and the knobs, in :data:`KNOBS` order after the first two."""
    course = preset_knobs("course")
    with gr.Row():
        preset = gr.Dropdown(preset_names(), value="course", label="Preset", elem_id="preset")
        do_sample = gr.Checkbox(value=course["do_sample"], label="Sample (off = greedy)", elem_id="do_sample")
        seed = gr.Number(value=0, precision=0, label="Seed", elem_id="seed")
        max_new = gr.Number(value=60, precision=0, label="Max new tokens", elem_id="max_new_tokens")
    with gr.Row():
        temperature = gr.Slider(0.05, 2.0, value=course["temperature"], step=0.05, label="Temperature")
        top_k = gr.Slider(0, 200, value=course["top_k"], step=1, label="Top-k (0 = off)")
        top_p = gr.Slider(0.05, 1.0, value=course["top_p"], step=0.01, label="Top-p")
        repetition = gr.Slider(
            0.5, 2.0, value=course["repetition_penalty"], step=0.05, label="Repetition penalty"
        )
        no_repeat = gr.Slider(0, 6, value=course["no_repeat_ngram_size"], step=1, label="No-repeat n-gram")
    knobs = {
        "temperature": temperature,
        "top_k": top_k,
        "top_p": top_p,
        "repetition_penalty": repetition,
        "no_repeat_ngram_size": no_repeat,
        "max_new_tokens": max_new,
        "seed": seed,
    }

    def apply_preset(name: str):
        values = preset_knobs(name)
        return [values["do_sample"], *(values[knob] for knob in KNOBS[:5])]

    preset.change(apply_preset, preset, [do_sample, temperature, top_k, top_p, repetition, no_repeat])
    return preset, do_sample, [knobs[name] for name in KNOBS]


def _generate_tab(gr, playground: Playground, settings: list) -> None:
    names = playground.model_names()
    with gr.Row():
        model = gr.Dropdown(names, value=names[0] if names else None, label="Model", elem_id="model")
        button = gr.Button("Generate", variant="primary", elem_id="generate")
    prompt = gr.Textbox("The moon above the quiet sea", label="Prompt", lines=2, elem_id="prompt")
    output = gr.Textbox(label="Poem", lines=8, elem_id="output")
    status = gr.Markdown(elem_id="status")
    ids = gr.State(())
    attention = gr.Button("Show attention (scratch transformer)", elem_id="attention")
    heatmap = gr.Plot(label="Attention per head", elem_id="heatmap")

    def generate(model_name, prompt_text, *form):
        try:
            sampling = sampling_from_form(form[0], form[1], **dict(zip(KNOBS, form[2:], strict=True)))
            for event in stream_text(playground, model_name, prompt_text, sampling):
                yield prompt_text + event.text, status_line(event), event.ids
        except Exception as error:  # shown in the status box, never as a traceback
            yield "", _error(error), ()

    def show_attention(model_name, token_ids):
        try:
            return attention_figure(playground, model_name, token_ids), ""
        except Exception as error:
            return None, _error(error)

    button.click(generate, [model, prompt, *settings], [output, status, ids])
    attention.click(show_attention, [model, ids], [heatmap, status])


def _compare_tab(gr, playground: Playground, settings: list) -> None:
    names = playground.model_names()
    with gr.Row():
        first = gr.Dropdown(names, value=names[0] if names else None, label="Model A", elem_id="compare_a")
        second = gr.Dropdown(
            names, value=names[1] if len(names) > 1 else None, label="Model B", elem_id="compare_b"
        )
    prompt = gr.Textbox(
        "Shall I compare thee", label="Prompt (same for both, same seed)", elem_id="compare_prompt"
    )
    button = gr.Button("Compare", variant="primary", elem_id="compare")
    with gr.Row():
        with gr.Column():
            output_a = gr.Textbox(label="A", lines=8, elem_id="compare_output_a")
            status_a = gr.Markdown(elem_id="compare_status_a")
        with gr.Column():
            output_b = gr.Textbox(label="B", lines=8, elem_id="compare_output_b")
            status_b = gr.Markdown(elem_id="compare_status_b")

    def compare(model_a, model_b, prompt_text, *form):
        texts, statuses = ["", ""], ["", ""]
        try:
            sampling = sampling_from_form(form[0], form[1], **dict(zip(KNOBS, form[2:], strict=True)))
        except Exception as error:
            yield "", _error(error), "", _error(error)
            return
        for side, name in enumerate((model_a, model_b)):  # one after the other: each seeded alike
            try:
                for event in stream_text(playground, name, prompt_text, sampling):
                    texts[side], statuses[side] = prompt_text + event.text, status_line(event)
                    yield texts[0], statuses[0], texts[1], statuses[1]
            except Exception as error:
                statuses[side] = _error(error)
                yield texts[0], statuses[0], texts[1], statuses[1]

    button.click(compare, [first, second, prompt, *settings], [output_a, status_a, output_b, status_b])


def _rate_tab(gr, session: RatingSession) -> None:
    gr.Markdown(
        "Read the prompt and both continuations, then pick the better poem. Which model wrote which "
        "is shown only after you vote; each pair counts once per rater."
    )
    with gr.Row():
        rater = gr.Textbox(label="Your name or initials", elem_id="rater")
        start = gr.Button("Next pair", elem_id="next_pair")
    prompt = gr.Markdown(elem_id="rate_prompt")
    with gr.Row():
        left = gr.Textbox(label="Left poem", lines=8, interactive=False, elem_id="left_poem")
        right = gr.Textbox(label="Right poem", lines=8, interactive=False, elem_id="right_poem")
    with gr.Row():
        buttons = {
            "left": gr.Button("Left is better", elem_id="vote_left"),
            "tie": gr.Button("About the same", elem_id="vote_tie"),
            "right": gr.Button("Right is better", elem_id="vote_right"),
        }
    result = gr.Markdown(elem_id="rate_result")
    pair = gr.State(None)

    def next_pair(name):
        try:
            chosen = session.next_pair(name)
            rated, total = session.progress(name)
        except Exception as error:
            return None, "", "", "", _error(error)
        if chosen is None:
            return None, "", "", "", f"All {total} pairs of the current sheet are rated. Thank you!"
        prompt_text = f"**Prompt** ({rated + 1} of {total}): {md_inline(chosen.prompt)}"
        return chosen, prompt_text, chosen.left, chosen.right, ""

    def vote(picked: str):
        def handler(name, chosen):
            if chosen is None:
                return None, "Press **Next pair** first."
            try:
                _, reveal = session.submit(name, chosen, picked)
            except Exception as error:
                return chosen, _error(error)
            return None, f"Vote saved. {reveal} Press **Next pair** to continue."

        return handler

    start.click(next_pair, rater, [pair, prompt, left, right, result])
    for picked, button in buttons.items():
        button.click(vote(picked), [rater, pair], [pair, result])


def build_app(lake_root: str | Path, ratings_url: str | None = None):
    """The playground as a ``gr.Blocks`` over the lake at ``lake_root``."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    playground = Playground.open(lake_root, ratings_url or ratings_db_url(lake_root))
    session = RatingSession(Path(lake_root), RatingsStore(playground.ratings_url))
    with gr.Blocks(title=TITLE, analytics_enabled=False) as app:
        gr.Markdown(f"# {TITLE}\nEvery model saved in `{md_inline(str(lake_root))}/models`.")
        with gr.Accordion("Sampling settings (Generate and Compare)", open=True):
            preset, do_sample, knobs = _knob_components(gr)
        settings = [preset, do_sample, *knobs]
        with gr.Tab("Generate", elem_id="tab_generate"):
            _generate_tab(gr, playground, settings)
        with gr.Tab("Compare", elem_id="tab_compare"):
            _compare_tab(gr, playground, settings)
        with gr.Tab("Rate", elem_id="tab_rate"):
            _rate_tab(gr, session)
    return app


def launch(lake_root: str | Path, host: str = "127.0.0.1", port: int = 7860, **options):
    """Serve the app (blocks until stopped unless ``prevent_thread_lock=True``)."""
    app = build_app(lake_root)
    app.queue(default_concurrency_limit=4)
    return app.launch(server_name=host, server_port=port, show_error=False, **options)
