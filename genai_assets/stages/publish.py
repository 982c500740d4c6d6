"""Stages of the ``publish`` group: ``poems_hf_dataset`` (:func:`run_poems_hf_dataset`) and
``hub_upload`` (:func:`run_hub_upload`).

Gather the model card's inputs from the lake (training metrics, base model, corpus, evaluation and
its samples), stage the model folder with the card under ``<lake>/hub_staging/<repo name>/``, then
upload it through ``hub`` (any object with ``has_token`` and ``upload_folder``, e.g. the Dagster
``HubClient`` resource) unless this is a dry run; the cleansed corpus's dataset folder goes to a
dataset repo next to it the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from genai_assets.escaping import md_inline, md_table_from_frame
from genai_assets.publish.config import HubUploadSettings, PoemsDatasetCardSettings
from genai_assets.publish.hf_dataset import (
    poems_dataset_card,
    poems_dataset_dict,
    save_hub_dataset_folder,
    stage_hub_dataset_copy,
)
from genai_assets.publish.hub import path_inside, scrub_local_paths, stage_model_folder, validate_repo_id
from genai_assets.publish.model_card import ModelCardInputs, build_model_card

# Base model names of genai_assets.finetune.base_model → the Hub id to cite as base_model.
PACKAGED_BASE_HUB_IDS = {"smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct"}
# Files of the model folder that are ours, not the model's (local paths, training bookkeeping).
NOT_PUBLISHED = ("metrics.json", "base_info.json")


class PublishLake(Protocol):
    path: Path

    def model_dir(self, asset_name: str) -> Path: ...

    def folder(self, name: str) -> Path: ...

    def table_path(self, name: str) -> Path: ...

    def reports_dir(self) -> Path: ...


@dataclass(frozen=True)
class StagedRepo:
    """One staged folder and what became of it (``uploaded`` False = dry run or no token)."""

    folder: Path
    files: list[str]
    uploaded: bool
    status: str
    repo_url: str | None = None
    commit_url: str | None = None


@dataclass(frozen=True)
class HubUploadResult:
    card_text: str
    base_model: str | None  # the Hub id the card cites as base_model
    model: StagedRepo
    dataset: StagedRepo | None  # None when publish_dataset is off


def run_hub_upload(
    config: HubUploadSettings, lake: PublishLake, log: Callable[[str], None], hub: Any, dataset_dir: Path
) -> HubUploadResult:
    """Validate → build the card → stage the model → upload (unless dry run) → the same for the dataset."""
    # Checked before anything is read or written: a bad id must not reach the staging swap.
    validate_repo_id(config.repo_id)
    if config.publish_dataset:
        validate_repo_id(config.dataset_repo_id, "dataset_repo_id")
    path_inside(lake.path / "models" / config.model_asset, lake.path / "models", "model_asset folder")
    model_dir = lake.model_dir(config.model_asset)
    inputs = model_card_inputs(config, lake, model_dir)
    # Training configs and base-model names may hold this machine's paths (lake, home): not published.
    card_text = scrub_local_paths(
        str(build_model_card(inputs)), [lake.path, lake.path.resolve(), Path.home()]
    )
    staging_root = lake.folder("hub_staging")
    staged = path_inside(staging_root / config.repo_id.split("/")[-1], staging_root, "staging folder")
    files = stage_model_folder(model_dir, card_text, staged, exclude=NOT_PUBLISHED)
    log(f"Staged {len(files)} files for {config.repo_id} in {staged}.")
    model = _upload_unless_dry_run(config, hub, staged, files, config.repo_id, "model")
    if not model.uploaded:
        log(model.status)
    dataset = None
    if config.publish_dataset:
        target = path_inside(
            staging_root / config.dataset_repo_id.split("/")[-1], staging_root, "staging folder"
        )
        dataset_files = stage_hub_dataset_copy(dataset_dir, config.dataset_repo_id, target)
        dataset = _upload_unless_dry_run(
            config, hub, target, dataset_files, config.dataset_repo_id, "dataset"
        )
        log(f"Dataset {config.dataset_repo_id}: {len(dataset_files)} files staged.")
    return HubUploadResult(card_text=card_text, base_model=inputs.base_model, model=model, dataset=dataset)


def _upload_unless_dry_run(
    config: HubUploadSettings, hub: Any, folder: Path, files: list[str], repo_id: str, repo_type: str
) -> StagedRepo:
    if config.dry_run or not hub.has_token:
        reason = "dry_run is set in the config" if config.dry_run else "HF_TOKEN is not set"
        status = f"dry run: nothing was uploaded because {reason}; the staged folder is complete."
        return StagedRepo(folder, files, uploaded=False, status=status)
    kwargs = {} if repo_type == "model" else {"repo_type": repo_type}
    report = hub.upload_folder(
        folder, repo_id, private=config.private, commit_message=config.commit_message, **kwargs
    )
    return StagedRepo(
        folder, files, uploaded=True, status=f"uploaded {len(report.files)} files",
        repo_url=report.repo_url, commit_url=report.commit_url,
    )  # fmt: skip


def model_card_inputs(config: HubUploadSettings, lake: PublishLake, model_dir: Path) -> ModelCardInputs:
    """The card's inputs from the lake: training metrics, base model, corpus, evaluation and samples."""
    training = _read_json(model_dir / "metrics.json")
    base_info = training.get("base_model") or _read_json(lake.model_dir("base_lm") / "base_info.json")
    poems_path = lake.table_path("cleansed_poems")
    poems = pd.read_parquet(poems_path) if poems_path.is_file() else None
    evaluation = _read_json(lake.reports_dir() / "evaluation.json")
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
    return ModelCardInputs(
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
        sample_poems=_evaluation_samples(lake, config.model_asset, config.n_sample_poems),
        evaluation_notes="Figures from asset `evaluation` on the held-out test split (see its report).",
    )


def _evaluation_samples(lake: PublishLake, model_asset: str, n_samples: int) -> list[dict]:
    samples_path = lake.reports_dir() / "evaluation_samples.parquet"
    if not samples_path.is_file():
        return []
    table = pd.read_parquet(samples_path)
    own = table[table["model"] == model_asset].head(n_samples)
    return [{"prompt": row.prompt.rstrip(), "text": row.text.strip()} for row in own.itertuples()]


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


# --- poems_hf_dataset ---------------------------------------------------------------------------

DATASET_FOLDER = "poems_hf_dataset"  # under <lake>/datasets/


def hf_dataset_dir(lake: PublishLake) -> Path:
    """Where ``poems_hf_dataset`` writes the Hub-ready dataset folder (``hub_upload`` stages a copy)."""
    return lake.folder("datasets") / DATASET_FOLDER


@dataclass(frozen=True)
class PoemsHFDatasetResult:
    folder: Path
    files: list[str]
    splits: dict[str, int]  # split -> rows
    dataset: Any  # datasets.DatasetDict with typed Features
    card: Any  # huggingface_hub.DatasetCard


def run_poems_hf_dataset(
    config: PoemsDatasetCardSettings,
    lake: PublishLake,
    log: Callable[[str], None],
    cleansed_poems: pd.DataFrame,
    cleaning: dict | None,
) -> PoemsHFDatasetResult:
    """The cleansed poems as a DatasetDict folder with its card; ``cleaning``: rows per cleaning step
    (None = unknown here: the card says so)."""
    dataset = poems_dataset_dict(cleansed_poems)
    card = poems_dataset_card(dataset, config.repo_id, cleaning)
    folder = hf_dataset_dir(lake)
    files = save_hub_dataset_folder(dataset, card, folder)
    splits = {split: len(part) for split, part in dataset.items()}
    log(f"poems_hf_dataset: {splits} -> {folder}")
    return PoemsHFDatasetResult(folder, files, splits, dataset, card)
