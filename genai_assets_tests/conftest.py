"""Shared fixtures. Every test runs offline (HF_HUB_OFFLINE=1) against a temporary data lake."""

from __future__ import annotations

import os

# Set before anything imports huggingface_hub / transformers.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# The property-based tests' budgets: modest by default (a loaded 2-core machine);
# HYPOTHESIS_PROFILE=deep runs 20x more examples.
settings.register_profile(
    "default", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "deep", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def lake_root(tmp_path, monkeypatch):
    """A fresh, empty data lake root; GENAI_DATA_LAKE points at it for the test's duration."""
    root = tmp_path / "lake"
    root.mkdir()
    monkeypatch.setenv("GENAI_DATA_LAKE", str(root))
    return root
