"""Publishing under attack: the Hub token and endpoint, bad repo ids, folders outside the lake, local paths.

The token test goes through a real Dagster instance (SQLite event storage in a temp folder): a
token with CRLF in ``HF_TOKEN``, and an HfApi stand-in whose error echoes the Authorization header
in every rendering a real client might use.
"""

import json
import logging
import traceback
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import pytest

from genai_assets.defs._resources import DataLake, HubClient
from genai_assets.defs.publish import hub_upload
from genai_assets.publish.hub import clean_token, hub_endpoint, redact, scrub_local_paths, validate_repo_id
from genai_assets_tests.test_publish_assets import publish_lake  # noqa: F401 - fixture

TOKEN = "hf_CRLFtoken/with+odd=chars0123456789"
SEEN: list[dict] = []  # what the HfApi stand-in was built with


class EchoingHfApi:
    """Stands in for ``huggingface_hub.HfApi``; fails like a client that prints its request headers."""

    def __init__(self, endpoint=None, token=None, **kwargs):
        SEEN.append({"endpoint": endpoint, "token": token})
        self.token = token

    def create_repo(self, repo_id, **kwargs):
        header = f"Bearer {self.token}\r\n"
        # As an HTTP client's debug logging would, and a library logging the failure with its traceback.
        logging.getLogger("huggingface_hub.fake").warning("request headers: %r", {"authorization": header})
        try:
            raise ConnectionError(f"during request with {header!r}")
        except ConnectionError:
            logging.getLogger("httpx").exception("request failed")
        raise ConnectionError(
            f"401 Unauthorized for https://hub.example/api/repos/create?token={quote(self.token, safe='')} "
            f"headers={{'authorization': {header.encode()!r}}} raw={header} repr={self.token!r} "
            f"json={json.dumps(header)}"
        )


def _traces(token: str) -> list[str]:
    """Fragments that would betray the token: itself and its distinctive renderings."""
    return [token, quote(token, safe=""), "CRLFtoken"]


def _materialize(root, run_config=None, instance=None, raise_on_error=True):
    return dg.materialize(
        [hub_upload],
        resources={"lake": DataLake(root=str(root)), "hub": HubClient()},
        run_config=run_config or {"ops": {"hub_upload": {"config": {"repo_id": "me/poems-tiny"}}}},
        instance=instance,
        raise_on_error=raise_on_error,
    )


def test_token_with_crlf_leaves_no_trace_anywhere(publish_lake, monkeypatch, tmp_path, capsys, caplog):  # noqa: F811
    import huggingface_hub

    monkeypatch.setenv("HF_TOKEN", TOKEN + "\r\n")
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.setattr(huggingface_hub, "HfApi", EchoingHfApi)
    SEEN.clear()
    caplog.set_level(logging.DEBUG)
    instance_dir = tmp_path / "dagster_home"
    instance_dir.mkdir()
    with dg.instance_for_test(temp_dir=str(instance_dir)) as instance:
        result = _materialize(publish_lake, instance=instance, raise_on_error=False)
        assert not result.success
        with pytest.raises(Exception) as raised:
            _materialize(publish_lake, instance=instance)
        events = "".join(
            dg.serialize_value(entry)
            for record in instance.get_run_records()
            for entry in instance.all_logs(record.dagster_run.run_id)
        )
    assert SEEN and {seen["token"] for seen in SEEN} == {TOKEN}  # stripped before HfApi sees it
    assert "Upload of" in events and "***" in events  # the failure is in the event log, redacted
    exception_text = "".join(traceback.format_exception(raised.value)) + repr(raised.value)
    captured = capsys.readouterr()
    logs = captured.out + captured.err + caplog.text
    assert "request headers" in logs and "request failed" in logs  # the client's logs were captured
    for trace in _traces(TOKEN):
        assert trace not in events, trace
        assert trace not in exception_text, trace
        assert trace not in logs, trace
    for folder in (publish_lake, instance_dir):
        for path in folder.rglob("*"):
            if path.is_file():
                assert TOKEN.encode() not in path.read_bytes(), path
                assert b"CRLFtoken" not in path.read_bytes(), path


def test_run_config_cannot_set_the_endpoint_or_token(publish_lake, monkeypatch):  # noqa: F811
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    for hub_config in ({"endpoint": "http://attacker.example"}, {"token": {"env": "HOME"}}):
        run_config = {
            "ops": {"hub_upload": {"config": {"repo_id": "me/poems-tiny"}}},
            "resources": {"hub": {"config": hub_config}},
        }
        with pytest.raises(dg.DagsterInvalidConfigError):
            _materialize(publish_lake, run_config)


def test_endpoint_comes_only_from_the_environment():
    assert hub_endpoint({}) is None
    assert hub_endpoint({"HF_ENDPOINT": "https://hub.mirror.example/"}) == "https://hub.mirror.example"
    assert hub_endpoint({"HF_ENDPOINT": "http://127.0.0.1:8080"}) == "http://127.0.0.1:8080"
    with pytest.raises(ValueError, match="not an https URL"):
        hub_endpoint({"HF_ENDPOINT": "http://attacker.example"})


def test_token_cleaning_and_every_rendering_redacted():
    assert clean_token(f"{TOKEN}\r\n") == TOKEN and clean_token(" \n") is None
    with pytest.raises(ValueError, match="inside the token") as error:
        clean_token("hf_ab\r\ncd")
    assert "hf_ab" not in str(error.value)
    raw = TOKEN + "\r\n"
    text = f"{raw} {raw!r} {('Bearer ' + raw).encode()!r} {quote(TOKEN, safe='')} {json.dumps(raw)}"
    assert not any(trace in redact(text, raw) for trace in _traces(TOKEN))


@pytest.mark.parametrize("repo_id", ["owner/.", "owner/..", "poems", "a/b/c", "owner/-x", "../x"])
def test_bad_repo_ids_are_refused_before_staging(publish_lake, repo_id, monkeypatch):  # noqa: F811
    monkeypatch.delenv("HF_TOKEN", raising=False)
    keep = publish_lake / "hub_staging" / "other-model" / "README.md"
    keep.parent.mkdir(parents=True)
    keep.write_text("an earlier staged model")
    run_config = {"ops": {"hub_upload": {"config": {"repo_id": repo_id}}}}
    with pytest.raises(ValueError, match="repo_id"):
        _materialize(publish_lake, run_config)
    assert keep.read_text() == "an earlier staged model"  # hub_staging not wiped
    with pytest.raises(ValueError):
        validate_repo_id(repo_id)


def test_only_model_folders_inside_the_lake_are_staged(publish_lake, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.delenv("HF_TOKEN", raising=False)
    outside = tmp_path / "secrets_model"
    (outside / "config.json").parent.mkdir()
    (outside / "config.json").write_text("{}")
    for model_asset in ("../../secrets_model", str(outside)):
        run_config = {"ops": {"hub_upload": {"config": {"repo_id": "me/x", "model_asset": model_asset}}}}
        with pytest.raises(ValueError, match="not inside"):
            _materialize(publish_lake, run_config)
    assert not (publish_lake / "hub_staging" / "x").exists()


def test_published_card_has_no_local_paths(publish_lake, monkeypatch):  # noqa: F811
    monkeypatch.delenv("HF_TOKEN", raising=False)
    metrics_path = publish_lake / "models" / "finetuned_lm" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["config"]["base_dir"] = str(publish_lake / "models" / "base_lm")
    metrics["config"]["cache"] = str(Path.home() / ".cache" / "poems")
    metrics["base_model"]["name"] = "/opt/models/my-base"
    metrics_path.write_text(json.dumps(metrics))
    _materialize(publish_lake)
    card = (publish_lake / "hub_staging" / "poems-tiny" / "README.md").read_text()
    assert "| base_dir | <local path> |" in card
    for local in (str(publish_lake), str(Path.home()), "/opt/models"):
        assert local not in card
    assert "| learning_rate | 5e-05 |" in card  # the rest of the card is untouched


def test_scrub_keeps_urls_and_hub_ids():
    text = "see https://huggingface.co/HuggingFaceTB/SmolLM2-135M and HuggingFaceTB/SmolLM2; /home/u/x/y"
    assert scrub_local_paths(text) == (
        "see https://huggingface.co/HuggingFaceTB/SmolLM2-135M and HuggingFaceTB/SmolLM2; <local path>"
    )
