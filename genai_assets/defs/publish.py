"""Stage "publish": stage the fine-tuned model with its model card and upload it to the Hub.

Asset ``hub_upload`` (group ``publish``) writes ``<lake>/hub_staging/<repo name>/`` (model,
tokenizer, generated README.md card; swapped in atomically), then ``create_repo(exist_ok=True)``
+ ``upload_folder`` through the ``hub`` resource (:class:`~genai_assets.publish.hub.HubClient`).
Without a token (``HF_TOKEN`` unset) or with ``dry_run`` it stops after staging and says so in
its metadata. The cleansed corpus (asset ``poems_hf_dataset``: DatasetCard + Parquet per split) goes to a
dataset repo next to the model the same way (``publish_dataset``, on by default), and the
model card names that repo in its ``datasets:`` field.

The token comes from ``dg.EnvVar("HF_TOKEN")`` (never from run config) and is never logged.
"""

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from genai_assets.defs._config import stage_config
from genai_assets.defs._resources import DataLake, HubClient
from genai_assets.escaping import md_inline, md_table_from_frame
from genai_assets.publish.config import HubUploadSettings

# Base model names of genai_assets.finetune.base_model → the Hub id to cite as base_model.
PACKAGED_BASE_HUB_IDS = {"smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct"}
# Files of the model folder that are ours, not the model's (local paths, training bookkeeping).
NOT_PUBLISHED = ("metrics.json", "base_info.json")


HubUploadConfig = stage_config(HubUploadSettings)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def base_model_hub_id(base_info: dict) -> str | None:
    """The Hub id of the base model for the card's ``base_model``; None for local/random bases."""
    name, kind = base_info.get("name"), base_info.get("kind")
    if kind == "hub":
        return name
    return PACKAGED_BASE_HUB_IDS.get(name)


def training_data_markdown(poems: pd.DataFrame | None) -> str:
    """Sources, licenses, cleaning and split sizes of the cleansed corpus, for the card."""
    if poems is None or poems.empty:
        return "_The cleansed corpus was not found when the card was written._"
    counts = poems.groupby(["source", "split"]).size().unstack(fill_value=0)
    table = md_table_from_frame(counts.reset_index())
    licenses = (  # scraped text: escaped so a license cannot add Markdown or HTML to the card
        md_inline(", ".join(sorted(poems["license"].dropna().astype(str).unique())))
        if "license" in poems
        else "unknown"
    )
    return (
        f"{len(poems)} poems ({int(poems['n_words'].sum()) if 'n_words' in poems else '?'} words) from the sources "
        f"below; licenses: {licenses}. Cleaning (asset `cleansed_poems`, `genai_assets.cleaning`): text "
        "repair with ftfy, ASCII quotes, stray special characters removed, line and stanza breaks kept; "
        "empty, too short, too long and non-English poems dropped; exact and near duplicates (MinHash LSH) "
        "removed, keeping the best-attributed copy; a train/val/test split per poem from a hash of its id, "
        "so no poem is in two splits.\n\n"
        f"{table}"
    )


@dg.asset(
    group_name="publish",
    deps=["finetuned_lm", "evaluation", "poems_hf_dataset"],
    kinds={"huggingface"},
    config_schema=HubUploadConfig.config_schema(),
)
def hub_upload(context: dg.AssetExecutionContext, lake: DataLake, hub: HubClient) -> dg.MaterializeResult:
    """Stage the model with a generated model card, then upload it (or say why not: dry run)."""
    from genai_assets.publish.hub import (
        path_inside,
        scrub_local_paths,
        stage_model_folder,
        validate_repo_id,
    )
    from genai_assets.publish.model_card import ModelCardInputs, build_model_card

    config = HubUploadConfig.from_context(context).to_library()
    # Checked before anything is read or written: a bad id must not reach the staging swap.
    validate_repo_id(config.repo_id)
    if config.publish_dataset:
        validate_repo_id(config.dataset_repo_id, "dataset_repo_id")
    path_inside(lake.path / "models" / config.model_asset, lake.path / "models", "model_asset folder")
    model_dir = lake.model_dir(config.model_asset)
    training = _read_json(model_dir / "metrics.json")
    base_info = training.get("base_model") or _read_json(lake.model_dir("base_lm") / "base_info.json")
    poems_path = lake.table_path("cleansed_poems")
    poems = pd.read_parquet(poems_path) if poems_path.is_file() else None
    evaluation = _read_json(lake.reports_dir() / "evaluation.json")
    samples_path = lake.reports_dir() / "evaluation_samples.parquet"
    samples = []
    if samples_path.is_file():
        table = pd.read_parquet(samples_path)
        own = table[table["model"] == config.model_asset].head(config.n_sample_poems)
        samples = [{"prompt": row.prompt.rstrip(), "text": row.text.strip()} for row in own.itertuples()]
    hyperparameters = {
        key: value
        for key, value in (training.get("config") or {}).items()
        if not isinstance(value, dict | list)
    }
    results = {
        key: training[key]
        for key in ("steps", "final_val_loss", "base_test_perplexity", "finetuned_test_perplexity")
        if key in training
    }
    inputs = ModelCardInputs(
        repo_id=config.repo_id,
        model_name=config.repo_id.split("/")[-1],
        base_model=base_model_hub_id(base_info),
        base_model_label=str(base_info.get("name") or ""),
        license=str(base_info.get("license") or "other"),
        datasets=[config.dataset_repo_id] if config.publish_dataset else [],
        training_data=training_data_markdown(poems),
        hyperparameters=hyperparameters,
        training_results=results,
        evaluation_rows=evaluation.get("models", []),
        evaluated_model=config.model_asset,
        sample_poems=samples,
        evaluation_notes="Figures from asset `evaluation` on the held-out test split (see its report).",
    )
    card = build_model_card(inputs)
    # Training configs and base-model names may hold this machine's paths (lake, home): not published.
    card_text = scrub_local_paths(str(card), [lake.path, lake.path.resolve(), Path.home()])
    repo_name = config.repo_id.split("/")[-1]
    staging_root = lake.folder("hub_staging")
    staged = path_inside(staging_root / repo_name, staging_root, "staging folder")
    files = stage_model_folder(model_dir, card_text, staged, exclude=NOT_PUBLISHED)
    context.log.info(f"Staged {len(files)} files for {config.repo_id} in {staged}.")

    metadata: dict = {
        "repo_id": config.repo_id,
        "private": config.private,
        "staged_folder": dg.MetadataValue.path(str(staged)),
        "staged_files": dg.MetadataValue.json(files),
        "base_model": str(inputs.base_model),
        "model_card": dg.MetadataValue.md(card_text[:4000]),
    }
    if config.dry_run or not hub.has_token:
        reason = "dry_run is set in the config" if config.dry_run else "HF_TOKEN is not set"
        metadata["uploaded"] = False
        metadata["status"] = f"dry run: nothing was uploaded because {reason}; the staged folder is complete."
        context.log.info(metadata["status"])
    else:
        report = hub.upload_folder(
            staged, config.repo_id, private=config.private, commit_message=config.commit_message
        )
        metadata["uploaded"] = True
        metadata["status"] = f"uploaded {len(report.files)} files"
        metadata["repo_url"] = dg.MetadataValue.url(report.repo_url)
        metadata["commit_url"] = report.commit_url
    if config.publish_dataset:
        metadata.update(_publish_dataset(context, config, lake, hub))
    return dg.MaterializeResult(metadata=metadata)


def _publish_dataset(context, config: HubUploadConfig, lake: DataLake, hub: HubClient) -> dict:
    """Stage (and upload unless dry run) the ``poems_hf_dataset`` folder as the dataset repo."""
    from genai_assets.defs.hf_dataset import hf_dataset_dir
    from genai_assets.publish.hf_dataset import stage_hub_dataset_copy
    from genai_assets.publish.hub import path_inside

    staging_root = lake.folder("hub_staging")
    target = path_inside(staging_root / config.dataset_repo_id.split("/")[-1], staging_root, "staging folder")
    files = stage_hub_dataset_copy(hf_dataset_dir(lake), config.dataset_repo_id, target)
    result = {
        "dataset_staged_folder": dg.MetadataValue.path(str(target)),
        "dataset_files": dg.MetadataValue.json(files),
    }
    if config.dry_run or not hub.has_token:
        result["dataset_uploaded"] = False
    else:
        report = hub.upload_folder(
            target,
            config.dataset_repo_id,
            private=config.private,
            commit_message=config.commit_message,
            repo_type="dataset",
        )
        result["dataset_uploaded"] = True
        result["dataset_commit_url"] = report.commit_url
    context.log.info(f"Dataset {config.dataset_repo_id}: {len(files)} files staged.")
    return result


def hub_client_from_env() -> HubClient:
    """The ``hub`` resource. It reads ``HF_TOKEN``/``HF_ENDPOINT`` itself when it uploads (no config
    fields, so run config cannot redirect the token); without a token, publishing is a dry run."""
    return HubClient()


PRESETS: dict = {}

defs = dg.Definitions(assets=[hub_upload], resources={"hub": hub_client_from_env()})
