"""deploy/: the shared-deployment files parse, and deploy/dagster.yaml runs a real PostgreSQL-backed instance.

The PostgreSQL test starts Debian's server (``initdb`` + ``pg_ctl`` from the ``postgresql``
package, which ``make test`` and CI install) on a temporary folder and a loopback port, as an
unprivileged user when the tests run as root (the server refuses to run as root).
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import dagster as dg
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
POSTGRES_ENV = {
    "DAGSTER_POSTGRES_HOST": "127.0.0.1",
    "DAGSTER_POSTGRES_USER": "postgres",
    "DAGSTER_POSTGRES_PASSWORD": "unused-with-trust-auth",
    "DAGSTER_POSTGRES_DB": "postgres",
}


def test_compose_and_helm_values_parse_and_wire_the_services():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"postgres", "code", "webserver", "daemon"}
    for name in ("webserver", "daemon"):
        assert "/opt/dagster/home/workspace.yaml" in compose["services"][name]["command"]
        assert compose["services"][name]["environment"]["DAGSTER_POSTGRES_HOST"] == "postgres"
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"] == {
        "host": "code",
        "port": 4000,
        "location_name": "genai_assets",
    }
    assert (
        'CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000"'
        in (DEPLOY / "Dockerfile").read_text()
    )
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False and values["global"]["postgresqlSecretName"]
    assert values["concurrency"]["pools"] == {"defaultLimit": 1, "granularity": "op"}
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "genai_assets.definitions"]
    assert {"name": "GENAI_ASSETS_EXECUTOR", "value": "k8s"} in deployment["env"]


def test_deploy_dagster_yaml_matches_the_instance_schema(tmp_path, monkeypatch):
    from dagster._core.instance.config import dagster_instance_config

    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    for name, value in {**POSTGRES_ENV, "DAGSTER_POSTGRES_PORT": "5432"}.items():
        monkeypatch.setenv(name, value)
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_POSTGRES_PASSWORD"}
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"


def _postgres_bin() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    found = candidates[0] if candidates else shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def postgres_server():
    """A throwaway PostgreSQL on 127.0.0.1:<free port> with trust auth; yields the port."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("No PostgreSQL server binaries (install Debian's 'postgresql' package; make test does).")
    prefix: list[str] = []
    # Not under pytest's tmp_path: its parents are private to root, so "nobody" could not reach it.
    folder = Path(tempfile.mkdtemp(prefix="genai-assets-pg-"))
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as an unprivileged account
        runuser = shutil.which("runuser")
        if runuser is None:
            shutil.rmtree(folder)
            pytest.skip("Running as root without 'runuser': cannot start PostgreSQL as an unprivileged user.")
        user = pwd.getpwnam("nobody")
        os.chown(folder, user.pw_uid, user.pw_gid)
        prefix = [runuser, "-u", "nobody", "--"]
    data, port = folder / "data", _free_port()
    subprocess.run(
        [*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    try:
        yield port
    finally:
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True, timeout=60,
        )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def test_materialize_through_an_instance_on_a_real_postgres_server(postgres_server, tmp_path, monkeypatch):
    for name, value in {**POSTGRES_ENV, "DAGSTER_POSTGRES_PORT": str(postgres_server)}.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")

    @dg.asset(pool="training")
    def tiny_count() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"rows": 3, "source": "postgres test"})

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        result = dg.materialize([tiny_count], instance=instance)
        assert result.success
        run_id = result.run_id

    # A second instance (a new connection) reads the run and its materialization back from the server.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        [record] = instance.fetch_materializations(dg.AssetKey("tiny_count"), limit=1).records
        assert record.run_id == run_id
        metadata = record.asset_materialization.metadata
        assert metadata["rows"].value == 3 and metadata["source"].value == "postgres test"


def test_executor_is_chosen_by_environment(monkeypatch):
    from genai_assets.definitions import deployment_executor

    monkeypatch.delenv("GENAI_ASSETS_EXECUTOR", raising=False)
    assert deployment_executor() is None
    monkeypatch.setenv("GENAI_ASSETS_EXECUTOR", "celery")
    with pytest.raises(ValueError, match="must be unset or 'k8s'"):
        deployment_executor()


def test_local_instance_config_limits_runs_and_the_training_pool(tmp_path):
    from dagster._core.instance.config import dagster_instance_config

    shutil.copy(DEPLOY.parent / "dagster.yaml", tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["concurrency"] == {"runs": {"max_concurrent_runs": 1}, "pools": {"default_limit": 1}}


def test_cli_materialize_says_it_runs_in_process_outside_the_run_queue(lake_root, monkeypatch, capsys):
    from genai_assets.cli import main

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["materialize", "--select", "raw_poems", "--sites", "shakespeare", "--preset", "tiny"]) == 0
    err = capsys.readouterr().err
    assert "runs execute here, in this process" in err and "do not wait in the instance's run queue" in err
    assert "a temporary instance" in err


def test_training_assets_share_the_training_pool_and_ask_kubernetes_for_a_gpu():
    import json

    from genai_assets.definitions import defs

    for name in ("scratch_transformer", "next_line_transformer", "rnn_baselines", "finetuned_lm"):
        op = defs.resolve_assets_def(name).op
        assert op.pool == "training", name
        k8s = json.loads(op.tags["dagster-k8s/config"])
        assert k8s["container_config"]["resources"]["limits"] == {"nvidia.com/gpu": "1"}, name
    for name in ("cleansed_poems", "token_arrays"):  # data assets run anywhere, outside the pool
        assert defs.resolve_assets_def(name).op.pool is None
