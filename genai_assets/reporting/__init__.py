"""Measured figures in the docs, regenerated from what the assets wrote to the lake.

``docs_tables`` holds the renderers (one per generated block) and the marker-comment rewriter
behind ``genai-assets report-docs``. Plain Python: no dagster, no torch.
"""
