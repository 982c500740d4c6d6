"""The hyperparameter presets (``tiny``, ``cpu``, ``gpu``) as jobs in the Dagster UI.

For each preset, two jobs carry that preset's run config (the same one ``genai-assets
materialize --preset NAME`` uses, from :mod:`genai_assets.defs._presets`):

* ``raw_poems_<preset>`` — ``raw_poems`` alone. It is partitioned by site, so launch it as a
  backfill over the sites you want (Jobs → the job → "Materialize all" / partition picker).
* ``demo_<preset>`` — every other asset (all unpartitioned), launched once; ``cleansed_poems``
  reads every materialized ``raw_poems`` partition.

Why two: a run of a job that mixes the partitioned ``raw_poems`` with the unpartitioned assets
must pick one partition key, and ``cleansed_poems`` would then read that one site only. The
command line does the same split (one run per site, then one run for the rest).
Open the Launchpad from a job to see (and edit) the preset's values before launching.
"""

from __future__ import annotations

import dagster as dg

from genai_assets.defs._presets import PRESET_NAMES, preset_run_config

PARTITIONED_ASSETS = ("raw_poems",)


def preset_jobs() -> list[dg.UnresolvedAssetJobDefinition]:
    """``raw_poems_<preset>`` and ``demo_<preset>`` for every preset name."""
    partitioned = dg.AssetSelection.assets(*PARTITIONED_ASSETS)
    jobs = []
    for name in PRESET_NAMES:
        ops = preset_run_config(name)["ops"]
        raw_ops = {key: value for key, value in ops.items() if key in PARTITIONED_ASSETS}
        other_ops = {key: value for key, value in ops.items() if key not in PARTITIONED_ASSETS}
        jobs.append(
            dg.define_asset_job(
                f"raw_poems_{name}",
                selection=partitioned,
                config={"ops": raw_ops},
                description=f"raw_poems with the '{name}' preset; launch as a backfill over the sites.",
            )
        )
        jobs.append(
            dg.define_asset_job(
                f"demo_{name}",
                selection=dg.AssetSelection.all() - partitioned,
                config={"ops": other_ops},
                description=f"Every asset downstream of raw_poems with the '{name}' preset "
                "(materialize raw_poems_{name} first).".replace("{name}", name),
            )
        )
    return jobs


defs = dg.Definitions(jobs=preset_jobs())
