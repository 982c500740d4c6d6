"""Settings of the publishing stage (``hub_upload``) and of the dataset card (``poems_hf_dataset``).

The Hub token is never config: it comes from ``$HF_TOKEN`` only (see ``genai_assets.publish.hub``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class HubUploadSettings:
    """Where and how to publish (the token is not config: it comes from $HF_TOKEN)."""

    repo_id: str = "genai-assets/poetry-smollm2-135m"  # target model repo, 'owner/name'
    private: bool = True  # create the repo as private
    commit_message: str = "Upload poetry model from the genai_assets pipeline"  # commit message
    model_asset: str = "finetuned_lm"  # model folder under <lake>/models/ to publish
    dry_run: bool = False  # stage only, even when a token is set
    publish_dataset: bool = True  # also publish poems_hf_dataset to dataset_repo_id; the model card links it
    dataset_repo_id: str = "genai-assets/cleansed-poems"  # target dataset repo, 'owner/name'
    n_sample_poems: int = 3  # generated samples quoted in the model card

    def __post_init__(self) -> None:
        # repo_id, dataset_repo_id and model_asset are checked by the asset before anything is
        # staged (publish.hub.validate_repo_id / path_inside), with their own tests.
        if self.n_sample_poems < 0:
            raise ValueError(f"n_sample_poems must be >= 0, got {self.n_sample_poems}.")
        if not self.commit_message.strip():
            raise ValueError("commit_message must not be empty.")


@dataclass
class PoemsDatasetCardSettings:
    """The dataset repo the card is written for (``hub_upload`` rewrites it if it publishes elsewhere)."""

    repo_id: str = "genai-assets/cleansed-poems"  # Hub dataset repo id named in the card

    def __post_init__(self) -> None:
        from genai_assets.publish.hub import validate_repo_id

        validate_repo_id(self.repo_id, "repo_id")
