"""The code location: every stage's definitions merged, plus the shared resources.

Loaded by the UI (``make dev``), by ``genai-assets materialize`` and by
``dagster asset materialize -m genai_assets.definitions``. It must stay light to import:
torch and transformers are imported inside asset bodies only (tested).
"""

from __future__ import annotations

import importlib
import os

import dagster as dg

from genai_assets.defs import stage_modules
from genai_assets.defs._io_manager import ParquetIOManager
from genai_assets.defs._resources import DataLake


def deployment_executor():
    """The executor named by ``GENAI_ASSETS_EXECUTOR``: unset = Dagster's default; ``k8s`` = one pod per step.

    ``k8s`` (deploy/helm/values.yaml sets it) uses ``dagster_k8s.k8s_job_executor``, so the training
    assets' ``dagster-k8s/config`` tags (GPU requests) shape their own pods.
    """
    name = os.environ.get("GENAI_ASSETS_EXECUTOR", "")
    if not name:
        return None
    if name != "k8s":
        raise ValueError(f"GENAI_ASSETS_EXECUTOR must be unset or 'k8s', got {name!r}.")
    try:
        from dagster_k8s import k8s_job_executor
    except ImportError as error:
        raise RuntimeError(
            "GENAI_ASSETS_EXECUTOR=k8s needs the dagster-k8s package: pip install -e '.[k8s]'."
        ) from error
    return k8s_job_executor


def build_definitions(lake_root: str | None = None) -> dg.Definitions:
    """Merge every stage's ``defs`` and bind the shared resources (lake root overridable for tests)."""
    stage_defs = [importlib.import_module(name).defs for name in stage_modules()]
    lake_kwargs = {"root": lake_root} if lake_root else {}
    shared = dg.Definitions(
        resources={
            "io_manager": ParquetIOManager(**lake_kwargs),
            "lake": DataLake(**lake_kwargs),
        },
        executor=deployment_executor(),
    )
    return dg.Definitions.merge(*stage_defs, shared)


defs = build_definitions()
