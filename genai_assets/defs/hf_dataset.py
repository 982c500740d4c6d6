"""Asset ``poems_hf_dataset``: the cleansed corpus as a Hugging Face dataset folder, ready for the Hub.

``<lake>/datasets/poems_hf_dataset/`` holds ``README.md`` (a ``DatasetCard``) and
``data/<split>-00000-of-00001.parquet`` for ``train``/``validation``/``test`` with typed
``Features`` (``genai_assets.publish.hf_dataset``): ``datasets.load_dataset(folder)`` reads it
as is, and ``hub_upload`` pushes it to a dataset repo next to the model. The card's cleaning
steps come from the latest ``cleansed_poems`` materialization recorded in this Dagster instance.
"""

import dagster as dg
import pandas as pd

from genai_assets.defs._config import stage_config
from genai_assets.defs._resources import DataLake
from genai_assets.publish.config import PoemsDatasetCardSettings

STEP_KINDS = ("transform", "filter", "dedup")  # cleansed_poems records "<kind>/<rule>": rows


PoemsHFDatasetConfig = stage_config(PoemsDatasetCardSettings)


def cleaning_report(instance: dg.DagsterInstance) -> dict | None:
    """Rows in/out and rows per cleaning step from the latest ``cleansed_poems`` materialization."""
    event = instance.get_latest_materialization_event(dg.AssetKey("cleansed_poems"))
    materialization = event.asset_materialization if event is not None else None
    if materialization is None:
        return None
    metadata = materialization.metadata
    steps = [
        {"kind": key.split("/", 1)[0], "rule": key.split("/", 1)[1], "rows": int(value.value)}
        for key, value in metadata.items()
        if key.split("/", 1)[0] in STEP_KINDS and "/" in key
    ]
    report = {"steps": steps}
    for key in ("rows_in", "rows_out"):
        if key in metadata:
            report[key] = int(metadata[key].value)
    return report


@dg.asset(
    group_name="publish", kinds={"huggingface", "parquet"}, config_schema=PoemsHFDatasetConfig.config_schema()
)
def poems_hf_dataset(
    context: dg.AssetExecutionContext,
    lake: DataLake,
    cleansed_poems: pd.DataFrame,
) -> dg.MaterializeResult:
    """The cleansed poems as a Hub-ready DatasetDict folder (typed Features, DatasetCard, Parquet per split)."""
    from genai_assets.stages.publish import run_poems_hf_dataset

    config = PoemsHFDatasetConfig.from_context(context).to_library()
    cleaning = cleaning_report(context.instance)
    if cleaning is None:
        context.log.warning("No cleansed_poems materialization in this instance: the card omits the steps.")
    run = run_poems_hf_dataset(config, lake, context.log.info, cleansed_poems, cleaning)
    folder, files, splits, dataset, card = run.folder, run.files, run.splits, run.dataset, run.card
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(folder)),
            "files": dg.MetadataValue.json(files),
            "splits": dg.MetadataValue.json(splits),
            "licenses": dg.MetadataValue.json(
                {str(k): int(v) for k, v in cleansed_poems["license"].value_counts().items()}
            ),
            "cleaning_steps_recorded": cleaning is not None,
            "features": dg.MetadataValue.json(
                {name: str(feature) for name, feature in dataset["train"].features.items()}
            ),
            "dataset_card": dg.MetadataValue.md(str(card)[:4000]),
        }
    )


defs = dg.Definitions(assets=[poems_hf_dataset])
