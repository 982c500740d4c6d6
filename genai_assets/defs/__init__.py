"""Dagster wiring, one module per stage. Each module exposes ``defs = dg.Definitions(...)``
(assets, checks, schedules, stage-specific resources); ``genai_assets.definitions`` merges them
and binds the shared resources. Keep these modules thin: gather config and resources, call the
asset's ``run_<asset>`` in :mod:`genai_assets.stages`, turn its result into outputs and metadata."""

import pkgutil


def stage_modules() -> list[str]:
    """Names of the stage modules under ``genai_assets.defs``, in a stable order.

    Not ``dg.load_from_defs_folder``: it needs a ``[tool.dg]`` project file, imports the ``_``
    helper modules too, and validates the folder's jobs before the shared resources below can be
    bound, so ``build_definitions(lake_root=...)`` (the tests' lake) would have to move the
    resources into the folder and the lake root into the environment (tried with Dagster 1.13).
    """
    return sorted(
        f"{__name__}.{info.name}" for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")
    )
