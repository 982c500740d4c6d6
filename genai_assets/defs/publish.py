"""Stage "publish": stage the fine-tuned model with its model card and upload it to the Hub.

The work is :func:`genai_assets.stages.publish.run_hub_upload`; the asset turns its result into metadata.

Asset ``hub_upload`` (group ``publish``) writes ``<lake>/hub_staging/<repo name>/`` (model,
tokenizer, generated README.md card; swapped in atomically), then ``create_repo(exist_ok=True)``
+ ``upload_folder`` through the ``hub`` resource (:class:`~genai_assets.publish.hub.HubClient`).
Without a token (``HF_TOKEN`` unset) or with ``dry_run`` it stops after staging and says so in
its metadata. The cleansed corpus (asset ``poems_hf_dataset``: DatasetCard + Parquet per split) goes to a
dataset repo next to the model the same way (``publish_dataset``, on by default), and the
model card names that repo in its ``datasets:`` field.

The token comes from ``dg.EnvVar("HF_TOKEN")`` (never from run config) and is never logged.
"""

import dagster as dg

from genai_assets.defs._config import stage_config
from genai_assets.defs._resources import DataLake, HubClient
from genai_assets.publish.config import HubUploadSettings

HubUploadConfig = stage_config(HubUploadSettings)


@dg.asset(
    group_name="publish",
    deps=["finetuned_lm", "evaluation", "poems_hf_dataset"],
    kinds={"huggingface"},
    config_schema=HubUploadConfig.config_schema(),
)
def hub_upload(context: dg.AssetExecutionContext, lake: DataLake, hub: HubClient) -> dg.MaterializeResult:
    """Stage the model with a generated model card, then upload it (or say why not: dry run)."""
    from genai_assets.stages.publish import hf_dataset_dir, run_hub_upload

    config = HubUploadConfig.from_context(context).to_library()
    result = run_hub_upload(config, lake, context.log.info, hub, dataset_dir=hf_dataset_dir(lake))
    model = result.model
    metadata: dict = {
        "repo_id": config.repo_id,
        "private": config.private,
        "staged_folder": dg.MetadataValue.path(str(model.folder)),
        "staged_files": dg.MetadataValue.json(model.files),
        "base_model": str(result.base_model),
        "model_card": dg.MetadataValue.md(result.card_text[:4000]),
        "uploaded": model.uploaded,
        "status": model.status,
    }
    if model.uploaded:
        metadata["repo_url"] = dg.MetadataValue.url(model.repo_url)
        metadata["commit_url"] = model.commit_url
    if result.dataset is not None:
        metadata["dataset_staged_folder"] = dg.MetadataValue.path(str(result.dataset.folder))
        metadata["dataset_files"] = dg.MetadataValue.json(result.dataset.files)
        metadata["dataset_uploaded"] = result.dataset.uploaded
        if result.dataset.uploaded:
            metadata["dataset_commit_url"] = result.dataset.commit_url
    return dg.MaterializeResult(metadata=metadata)


def hub_client_from_env() -> HubClient:
    """The ``hub`` resource. It reads ``HF_TOKEN``/``HF_ENDPOINT`` itself when it uploads (no config
    fields, so run config cannot redirect the token); without a token, publishing is a dry run."""
    return HubClient()


PRESETS: dict = {}

defs = dg.Definitions(assets=[hub_upload], resources={"hub": hub_client_from_env()})
