"""The playground in headless Chromium (Debian's package, as the Dagster UI test): generate from a
tiny model, compare two models, rate a blind pair, find the vote in SQLite and the sensor's run
request. ``GENAI_UPDATE_SCREENSHOT=1`` also writes the README's screenshot (docs/playground.png)."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from genai_assets_tests.test_playground import build_playground_lake
from genai_assets_tests.test_ui_dagster import CHROMIUM, CHROMIUM_ARGS, REPO_ROOT, free_port

pytestmark = [pytest.mark.ui, pytest.mark.slow]
DONE = re.compile(r"done: \d+ tokens in [\d.]+ s \([\d.]+ tokens/s\)")


@pytest.fixture
def playground_url(tmp_path, monkeypatch):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run must install Debian's chromium package")
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.delenv("GENAI_RATINGS_DB_URL", raising=False)
    from genai_assets.playground.app import build_app

    root = tmp_path / "lake"
    build_playground_lake(root)
    app = build_app(root)  # ratings in the lake's SQLite file, where the sensor looks
    port = free_port()
    app.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}", root
    finally:
        app.close()


def test_generate_compare_and_rate_in_the_browser(playground_url, tmp_path):
    import dagster as dg
    from playwright.sync_api import expect, sync_playwright

    from genai_assets.defs._resources import DataLake
    from genai_assets.defs.evaluation import new_ratings_sensor
    from genai_assets.evaluation.ratings_db import RatingsStore, ratings_db_url

    url, root = playground_url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(url, wait_until="domcontentloaded")
        expect(page.get_by_text("genai_assets poetry playground")).to_be_visible(timeout=60_000)

        # Generate (default model: the tiny fine-tuned GPT-2, course preset): streamed, with tokens/s.
        page.locator("#generate").click()
        expect(page.locator("#status")).to_contain_text(DONE, timeout=60_000)
        assert page.locator("#output textarea").input_value().startswith("The moon above the quiet sea")

        # Compare: the fine-tuned model and the scratch transformer on the same prompt and seed.
        page.get_by_role("tab", name="Compare", exact=True).click()
        page.locator("#compare").click()
        expect(page.locator("#compare_status_b")).to_contain_text(DONE, timeout=60_000)
        expect(page.locator("#compare_status_a")).to_contain_text(DONE)
        assert page.locator("#compare_output_a textarea").input_value().startswith("Shall I compare thee")
        screenshot = tmp_path / "playground.png"
        page.screenshot(path=str(screenshot))
        assert 0 < screenshot.stat().st_size < 300_000
        if os.environ.get("GENAI_UPDATE_SCREENSHOT"):
            shutil.copy(screenshot, REPO_ROOT / "docs" / "playground.png")

        # Rate: a blind pair, the vote, then the reveal.
        page.get_by_role("tab", name="Rate", exact=True).click()
        page.locator("#rater textarea, #rater input").first.fill("ann")
        page.locator("#next_pair").click()
        expect(page.locator("#left_poem textarea")).not_to_have_value("", timeout=30_000)
        left = page.locator("#left_poem textarea").input_value()
        page.locator("#vote_left").click()
        expect(page.locator("#rate_result")).to_contain_text("Vote saved", timeout=30_000)
        expect(page.locator("#rate_result")).to_contain_text("finetuned_lm")
        browser.close()

    rows = RatingsStore(ratings_db_url(root)).ratings()
    assert len(rows) == 1 and rows.at[0, "rater"] == "ann"
    sheet_poem = "poem_2" if rows.at[0, "swapped"] else "poem_1"  # the left poem in the sheet's numbering
    assert rows.at[0, "choice"] == sheet_poem[-1]
    assert left.endswith(tuple("012"))  # "<model> poem <n>": a real poem of the sheet was shown
    result = new_ratings_sensor(dg.build_sensor_context(resources={"lake": DataLake(root=str(root))}))
    assert [request.run_key for request in result.run_requests] == ["ratings-1"]
