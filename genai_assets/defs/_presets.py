"""Named hyperparameter presets that span stages: ``tiny`` (tests), ``cpu`` (the demo), ``gpu``.

Each stage module under ``genai_assets.defs`` may define ``PRESETS: dict[str, dict]`` mapping a
preset name to the run-config fragment of its assets, i.e. ``{asset_name: {"config": {...}}}``.
``cpu`` is always the empty fragment's equivalent: every ``dg.Config`` default *is* the cpu
profile, so ``--preset cpu`` changes nothing and the Launchpad shows the demo values.
"""

from __future__ import annotations

import importlib

from genai_assets.defs import stage_modules

PRESET_NAMES: tuple[str, ...] = ("tiny", "cpu", "gpu")


def preset_run_config(name: str) -> dict:
    """Run config (``{"ops": {...}}``) for preset ``name``, merged over every stage module."""
    if name not in PRESET_NAMES:
        raise ValueError(f"Unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}.")
    ops: dict[str, dict] = {}
    for module_name in stage_modules():
        presets = getattr(importlib.import_module(module_name), "PRESETS", {})
        for asset_name, fragment in presets.get(name, {}).items():
            if asset_name in ops:
                raise ValueError(f"Preset {name!r} configures {asset_name!r} in two stage modules.")
            ops[asset_name] = fragment
    return {"ops": ops}
