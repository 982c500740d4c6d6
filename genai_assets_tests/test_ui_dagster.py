"""The Dagster UI, driven like a person would: start the webserver on a free port, open the
asset graph in headless Chromium (Debian's package; Playwright cannot fetch its own browser
here) and see the data-stage assets and their checks."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from genai_assets.definitions import build_definitions

pytestmark = [pytest.mark.ui, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dagster_ui(tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run must install Debian's chromium package")
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "GENAI_DATA_LAKE": str(tmp_path / "lake")}
    webserver = Path(sys.executable).with_name("dagster-webserver")
    log = (tmp_path / "webserver.log").open("w")
    process = subprocess.Popen(
        [str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/server_info", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(
                        f"dagster-webserver did not start:\n{(tmp_path / 'webserver.log').read_text()}"
                    )
                time.sleep(0.5)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_asset_graph_shows_data_stage_assets_and_checks(dagster_ui):
    from playwright.sync_api import expect, sync_playwright

    graph = build_definitions().resolve_asset_graph()
    check_names = {
        asset: sorted(key.name for key in graph.get(graph_key(asset)).check_keys)
        for asset in ("raw_poems", "cleansed_poems")
    }
    assert all(check_names.values()), f"both data-stage assets must have checks: {check_names}"

    # The Launchpad of demo_cpu shows the scratch GPT's n_layer with the description and default
    # declared once on GPTArchitecture (Annotated data, derived with Dagster's public config API).
    n_layer = launchpad_fields(dagster_ui, "demo_cpu", "n_layer")
    assert {"name": "n_layer", "description": "number of decoder layers (N in the paper); must be >= 1",
            "defaultValueAsJson": "4", "isRequired": False} in n_layer, n_layer  # fmt: skip

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            # The `data` group's lineage graph: each asset is a node labelled with its name and
            # a row summarising its asset checks.
            page.goto(f"{dagster_ui}/locations/genai_assets/asset-groups/data", wait_until="domcontentloaded")
            dismiss_welcome_dialog(page)
            for asset in ("raw_poems", "cleansed_poems"):
                expect(page.get_by_text(asset, exact=True).first).to_be_visible(timeout=90_000)
            expect(page.get_by_text("Asset checks").first).to_be_visible()
            # Each asset's Checks tab lists its asset checks by name.
            for asset, names in check_names.items():
                page.goto(f"{dagster_ui}/assets/{asset}?view=checks", wait_until="domcontentloaded")
                dismiss_welcome_dialog(page)
                expect(page.get_by_text(f"Checks ({len(names)})")).to_be_visible(timeout=60_000)
                for name in names:
                    expect(page.get_by_text(name, exact=True).first).to_be_visible()
        finally:
            browser.close()


LAUNCHPAD_SCHEMA_QUERY = """
query LaunchpadSchema($selector: PipelineSelector!) {
  runConfigSchemaOrError(selector: $selector) {
    __typename
    ... on RunConfigSchema {
      allConfigTypes {
        ... on CompositeConfigType { fields { name description defaultValueAsJson isRequired } }
      }
    }
  }
}
"""


def launchpad_fields(base_url: str, job: str, field_name: str) -> list[dict]:
    """Every config field called ``field_name`` in ``job``'s run-config schema, as the webserver
    serves it to the Launchpad (its form, descriptions and scaffolded defaults come from this)."""
    import json

    selector = {
        "repositoryLocationName": "genai_assets",
        "repositoryName": "__repository__",
        "pipelineName": job,
    }
    body = json.dumps({"query": LAUNCHPAD_SCHEMA_QUERY, "variables": {"selector": selector}}).encode()
    request = urllib.request.Request(f"{base_url}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        schema = json.loads(response.read())["data"]["runConfigSchemaOrError"]
    assert schema["__typename"] == "RunConfigSchema", schema
    return [
        field
        for config_type in schema["allConfigTypes"]
        for field in config_type.get("fields") or []
        if field["name"] == field_name
    ]


def graph_key(name: str):
    import dagster as dg

    return dg.AssetKey(name)


def dismiss_welcome_dialog(page) -> None:
    """A fresh Dagster home greets the first visit with a newsletter dialog; skip it if shown."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=5_000)
    except Exception:
        return
    skip.click()
