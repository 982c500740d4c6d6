"""A Gradio playground over the lake's saved models: generate, compare, rate blind pairs.

``core`` holds what the app does as plain functions (tested without a browser), ``models`` opens
the model folders, ``app`` is the Gradio wiring (``genai-assets playground``, ``make play``).
Feature layer: no Dagster here; Gradio is imported only by ``app.build_app``.
"""
