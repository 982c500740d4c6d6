"""Settings of the publishing stage (``hub_upload``) and of the dataset card (``poems_hf_dataset``).

The Hub token is never config: it comes from ``$HF_TOKEN`` only (see ``genai_assets.publish.hub``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from genai_assets.config_checks import Ge, raise_problems, range_problems


@dataclass
class HubUploadSettings:
    """Where and how to publish (the token is not config: it comes from $HF_TOKEN)."""

    repo_id: Annotated[str, "target model repo, 'owner/name'"] = "genai-assets/poetry-smollm2-135m"
    private: Annotated[bool, "create the repo as private"] = True
    commit_message: Annotated[str, "commit message"] = "Upload poetry model from the genai_assets pipeline"
    model_asset: Annotated[str, "model folder under <lake>/models/ to publish"] = "finetuned_lm"
    dry_run: Annotated[bool, "stage only, even when a token is set"] = False
    publish_dataset: Annotated[
        bool, "also publish poems_hf_dataset to dataset_repo_id; the model card links it"
    ] = True
    dataset_repo_id: Annotated[str, "target dataset repo, 'owner/name'"] = "genai-assets/cleansed-poems"
    n_sample_poems: Annotated[int, Ge(0), "generated samples quoted in the model card"] = 3

    def __post_init__(self) -> None:
        # repo_id, dataset_repo_id and model_asset are checked by the asset before anything is
        # staged (publish.hub.validate_repo_id / path_inside), with their own tests.
        problems = range_problems(self)
        if not self.commit_message.strip():
            problems.append("commit_message must not be empty")
        raise_problems(self, problems)


@dataclass
class PoemsDatasetCardSettings:
    """The dataset repo the card is written for (``hub_upload`` rewrites it if it publishes elsewhere)."""

    repo_id: Annotated[str, "Hub dataset repo id named in the card"] = "genai-assets/cleansed-poems"

    def __post_init__(self) -> None:
        from genai_assets.publish.hub import validate_repo_id

        validate_repo_id(self.repo_id, "repo_id")
