"""The rating path on a real PostgreSQL server (Debian's, started like the deploy storage test):
schema migration, blind votes through the Rate session, many raters at once with no lost or
duplicated vote, and human_eval_results + the sensor reading GENAI_RATINGS_DB_URL."""

from __future__ import annotations

import pytest

from genai_assets.evaluation.ratings_db import RatingsStore
from genai_assets.playground.core import RatingSession
from genai_assets_tests.helpers import vote_concurrently
from genai_assets_tests.test_deploy import postgres_server  # noqa: F401  (the fixture)
from genai_assets_tests.test_playground import write_playground_sheet

pytestmark = pytest.mark.slow


@pytest.fixture
def postgres_url(postgres_server):  # noqa: F811
    return f"postgresql+psycopg2://postgres@127.0.0.1:{postgres_server}/postgres"


def test_rating_flow_concurrency_and_results_on_postgres(postgres_url, tmp_path, monkeypatch):
    import dagster as dg

    from genai_assets.defs._resources import DataLake
    from genai_assets.defs.evaluation import human_eval_results, new_ratings_sensor

    # An earlier release's schema (version 1) with a vote in it: opening migrates, the vote stays.
    old = RatingsStore(postgres_url, migrate=False)
    old.migrate(target=1)
    with old.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO ratings (sheet_id, item_id, rater, choice) VALUES ('old', 'q01', 'zed', 'tie')"
        )
    old.close()

    root = tmp_path / "lake"
    sheet = write_playground_sheet(root)
    store = RatingsStore(postgres_url)
    assert store.schema_version() == 2 and store.count() == 1
    session = RatingSession(root, store)
    pair = session.next_pair("ann")
    assert session.submit("ann", pair, "left")[0] and not session.submit("ann", pair, "right")[0]

    # 6 raters, 2 threads each (two browser tabs), every item voted at once: one row per rater and item.
    outcomes = vote_concurrently(
        postgres_url, sheet.sheet_id, list(sheet.key["item_id"]), raters=6, threads=12
    )
    assert len(outcomes) == 36 and sum(outcomes) == 18
    rows = store.ratings()
    assert len(rows) == 1 + 1 + 18 and not rows.duplicated(["rater", "sheet_id", "item_id"]).any()

    monkeypatch.setenv("GENAI_RATINGS_DB_URL", postgres_url)
    lake = DataLake(root=str(root))
    result = new_ratings_sensor(dg.build_sensor_context(resources={"lake": lake}))
    assert [request.run_key for request in result.run_requests] == ["ratings-20"]
    run = dg.materialize([human_eval_results], resources={"lake": lake})
    metadata = run.asset_materializations_for_node("human_eval_results")[0].metadata
    assert metadata["judgements"].value == 19  # the old sheet's vote has no key here: not counted
    assert metadata["raters"].value == 7 and metadata["ratings_unmatched"].value == 1
    assert metadata["database"].value.startswith("postgresql+psycopg2://postgres@127.0.0.1")
    store.close()
