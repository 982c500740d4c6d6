"""genai_assets: a Dagster asset graph that turns public poetry into trained creative-text models.

Nothing heavy is imported here: the Dagster UI and every run step import this package, and
torch/transformers are imported inside the functions that need them.
"""

__version__ = "0.1.0"
