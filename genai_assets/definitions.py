"""The code location: every stage's definitions merged, plus the shared resources.

Loaded by the UI (``make dev``), by ``genai-assets materialize`` and by
``dagster asset materialize -m genai_assets.definitions``. It must stay light to import:
torch and transformers are imported inside asset bodies only (tested).
"""

from __future__ import annotations

import importlib
import pkgutil

import dagster as dg

import genai_assets.defs as defs_package
from genai_assets.defs._io_manager import ParquetIOManager
from genai_assets.defs._resources import DataLake


def stage_modules() -> list[str]:
    """Names of the stage modules under ``genai_assets.defs``, in a stable order."""
    return sorted(
        f"{defs_package.__name__}.{info.name}"
        for info in pkgutil.iter_modules(defs_package.__path__)
        if not info.name.startswith("_")
    )


def build_definitions(lake_root: str | None = None) -> dg.Definitions:
    """Merge every stage's ``defs`` and bind the shared resources (lake root overridable for tests)."""
    stage_defs = [importlib.import_module(name).defs for name in stage_modules()]
    lake_kwargs = {"root": lake_root} if lake_root else {}
    shared = dg.Definitions(
        resources={
            "io_manager": ParquetIOManager(**lake_kwargs),
            "lake": DataLake(**lake_kwargs),
        }
    )
    return dg.Definitions.merge(*stage_defs, shared)


defs = build_definitions()
