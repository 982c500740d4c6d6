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
    # Offline is the local demo's default only: a deployment must be able to reach the Hub.
    dockerfile_code = [
        line for line in (DEPLOY / "Dockerfile").read_text().splitlines() if not line.startswith("#")
    ]
    for text in (yaml.safe_dump(values), yaml.safe_dump(compose), "\n".join(dockerfile_code)):
        assert "HF_HUB_OFFLINE" not in text


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
        assert k8s["container_config"]["resources"]["limits"] == {"memory": "16Gi", "nvidia.com/gpu": "1"}, (
            name
        )
    for name in ("cleansed_poems", "token_arrays"):  # data assets run anywhere, outside the pool
        assert defs.resolve_assets_def(name).op.pool is None


# ---------------------------------------------------------------------------------------------------
# Schemas, Kubernetes manifests, the image. Vendored schemas: fixtures/deploy_schemas/README.md.
SCHEMAS = Path(__file__).resolve().parent / "fixtures" / "deploy_schemas"
K8S_VERSION = "1.33.0"  # Kubernetes API version the manifests are validated against (kubernetes-validate)


def helm_merge(defaults, overrides):
    """Helm's values merge: maps merge key by key, anything else (lists included) is replaced."""
    if isinstance(defaults, dict) and isinstance(overrides, dict):
        merged = dict(defaults)
        for key, value in overrides.items():
            merged[key] = helm_merge(defaults.get(key), value) if key in defaults else value
        return merged
    return overrides


def chart_values_validator():
    """The chart schema excerpt, its Kubernetes ``$ref``s resolved offline from kubernetes-validate's data."""
    import json
    from importlib.resources import files

    import jsonschema
    from referencing import Registry, Resource

    k8s_definitions = json.loads(
        files("kubernetes_validate")
        .joinpath("kubernetes-json-schema/v1.25.0-local/_definitions.json")
        .read_text()
    )
    # kubernetes-validate's file keeps its definitions under "$defs" (JSON Schema 2020-12); the chart's
    # references point into "definitions" (the kubernetesjsonschema.dev layout): expose both names.
    k8s_definitions = {key: value for key, value in k8s_definitions.items() if key != "$id"}
    k8s_definitions["definitions"] = k8s_definitions["$defs"]
    registry = Registry().with_resource(
        "https://kubernetesjsonschema.dev/v1.18.0/_definitions.json", Resource.from_contents(k8s_definitions)
    )
    schema = json.loads((SCHEMAS / "dagster-chart-values.schema.excerpt.json").read_text())
    return jsonschema.Draft7Validator(schema, registry=registry)


def merged_helm_values() -> dict:
    defaults = yaml.safe_load((SCHEMAS / "dagster-chart-defaults.excerpt.yaml").read_text())
    return helm_merge(defaults, yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text()))


def test_helm_values_merged_over_the_chart_defaults_match_the_chart_schema():
    validator = chart_values_validator()
    values = merged_helm_values()
    assert list(validator.iter_errors(values)) == []
    # What the defects were: the chart renders `concurrency` only when enabled; its generated secret
    # (password "test") would clash with the one README's steps create.
    assert values["concurrency"]["enabled"] is True and values["concurrency"]["pools"]["defaultLimit"] == 1
    assert values["generatePostgresqlPasswordSecret"] is False
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["image"]["tag"] not in (None, "", "latest")
    assert deployment["envSecrets"] == [{"name": "genai-assets-hf-token", "optional": True}]
    # The schema really checks: a misspelt launcher key and a wrongly typed value are refused.
    broken = helm_merge(values, {"runLauncher": {"config": {"k8sRunLauncher": {"envSecret": []}}}})
    assert any("envSecret" in error.message for error in validator.iter_errors(broken))
    broken = helm_merge(values, {"concurrency": {"enabled": "yes"}})
    assert any("'yes' is not of type 'boolean'" in error.message for error in validator.iter_errors(broken))


def test_compose_files_match_the_compose_specification():
    import json

    import jsonschema

    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    for name in ("docker-compose.yml", "docker-compose.gpu.yml"):
        document = yaml.safe_load((DEPLOY / name).read_text())
        assert list(jsonschema.Draft7Validator(schema).iter_errors(document)) == [], name
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["code"]["healthcheck"]["test"] == [
        "CMD",
        "dagster",
        "api",
        "grpc-health-check",
        "-p",
        "4000",
    ]
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"]["code"] == {"condition": "service_healthy"}, name
    assert all(service["restart"] == "unless-stopped" for service in services.values())
    assert services["webserver"]["ports"] == ["${DAGSTER_UI_BIND:-127.0.0.1}:3000:3000"]
    gpu = yaml.safe_load((DEPLOY / "docker-compose.gpu.yml").read_text())
    assert gpu["services"]["code"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == [
        "gpu"
    ]
    assert "devices" not in yaml.safe_dump(compose)  # GPUs only through the optional override


def test_deploy_env_file_is_git_ignored():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/.env"], cwd=DEPLOY.parent, capture_output=True, timeout=30
    )
    assert ignored.returncode == 0
    assert "deploy/.env" in (DEPLOY.parent / ".dockerignore").read_text().splitlines()


def _launcher_from_values(values: dict):
    """The K8sRunLauncher fields dagster-k8s reads, as the chart passes them from the Helm values."""
    import types

    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    run_k8s_config = launcher.get("runK8sConfig") or {}
    return types.SimpleNamespace(
        image_pull_policy=launcher["imagePullPolicy"], image_pull_secrets=None, service_account_name=None,
        env_config_maps=[item["name"] if isinstance(item, dict) else item for item in launcher["envConfigMaps"]],
        env_secrets=[item["name"] if isinstance(item, dict) else item for item in launcher["envSecrets"]],
        env_vars=launcher["envVars"], volume_mounts=launcher["volumeMounts"], volumes=launcher["volumes"],
        labels=launcher.get("labels") or {}, job_namespace="genai", resources=launcher.get("resources") or {},
        scheduler_name=None, security_context=None,
        run_k8s_config={
            "container_config": run_k8s_config.get("containerConfig") or {},
            "pod_spec_config": run_k8s_config.get("podSpecConfig") or {},
        },
        only_allow_user_defined_k8s_config_fields=None, only_allow_user_defined_env_vars=None,
    )  # fmt: skip


def _code_server_container_context(deployment: dict) -> dict | None:
    """What the chart forwards from a code server to its runs (DAGSTER_CLI_API_GRPC_CONTAINER_CONTEXT).

    Modelled on the chart's user-deployment template: with ``includeConfigInLaunchedRuns`` on (its
    default) the deployment's env, secrets, volumes and ``resources`` go to every launched run.
    """
    if not deployment.get("includeConfigInLaunchedRuns", {"enabled": True})["enabled"]:
        return None
    return {
        "k8s": {
            "env_vars": [f"{item['name']}={item['value']}" for item in deployment.get("env", [])],
            "env_secrets": [item["name"] for item in deployment.get("envSecrets", [])],
            "volumes": deployment.get("volumes", []),
            "volume_mounts": deployment.get("volumeMounts", []),
            "resources": deployment.get("resources", {}),
        }
    }


def _run_container_config(values: dict) -> dict:
    """The run pod's container config, computed by dagster-k8s's own K8sContainerContext.create_for_run."""
    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster_k8s.container_context import K8sContainerContext

    [deployment] = values["dagster-user-deployments"]["deployments"]
    repository = RepositoryPythonOrigin(
        executable_path="python", code_pointer=ModuleCodePointer("genai_assets.definitions", "defs", None),
        container_image="registry.example.com/genai-assets:0.1.0-cuda", entry_point=["dagster"],
        container_context=_code_server_container_context(deployment),
    )  # fmt: skip
    run = dg.DagsterRun(
        job_name="__ASSET_JOB", run_id="r1", job_code_origin=JobPythonOrigin("__ASSET_JOB", repository)
    )
    context = K8sContainerContext.create_for_run(run, _launcher_from_values(values), include_run_tags=True)
    return context, context.run_k8s_config.container_config


def test_run_and_step_pods_get_the_resources_the_values_intend():
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import get_user_defined_k8s_config

    from genai_assets.definitions import defs

    values = merged_helm_values()
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    run_context, run_container = _run_container_config(values)
    assert run_container["resources"] == launcher["resources"]  # the launcher's, not the code server's
    assert {"name": "GENAI_DATA_LAKE", "value": "/lake"} in run_container["env"]
    assert run_container["volume_mounts"] == [{"name": "lake", "mount_path": "/lake"}]
    # Run pods run as the image's non-root user, with the lake writable for its group.
    assert run_context.run_k8s_config.pod_spec_config["security_context"] == {
        "run_as_user": 10001,
        "run_as_group": 10001,
        "fs_group": 10001,
    }
    # The HF token secret reaches run pods once, and stays optional (envSecrets would drop "optional").
    assert run_container["env_from"] == [{"secret_ref": {"name": "genai-assets-hf-token", "optional": True}}]
    # The defect, reproduced: with the chart's default (config forwarded to runs), the code server's
    # 250m CPU request silently replaces the launcher's for every run pod.
    [deployment] = values["dagster-user-deployments"]["deployments"]
    forwarded = helm_merge(values, {})
    forwarded["dagster-user-deployments"]["deployments"] = [
        {**deployment, "includeConfigInLaunchedRuns": {"enabled": True}}
    ]
    assert (
        _run_container_config(forwarded)[1]["resources"] == deployment["resources"] != launcher["resources"]
    )
    # A training step pod (k8s_job_executor): the run's config, then the op's dagster-k8s/config tag.
    op_tags = defs.resolve_assets_def("scratch_transformer").op.tags
    step = run_context.merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(op_tags)))
    step_container = step.run_k8s_config.container_config
    # dagster-k8s merges key by key: the op's requests and limits over the run pod's. Kubernetes refuses a
    # pod whose memory limit is below its request, so the merged pair must stay consistent.
    assert step_container["resources"]["requests"] == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
    assert step_container["resources"]["limits"] == {"memory": "16Gi", "nvidia.com/gpu": "1"}
    assert step_container["volume_mounts"] == run_container["volume_mounts"]  # the lake is still mounted


def test_lake_pvc_and_training_job_manifests_are_valid_kubernetes_objects():
    import kubernetes_validate

    from genai_assets.training.distributed import DistributedConfig
    from genai_assets.training.k8s_job import TrainingPodSettings, job_name, training_manifests

    pvc = yaml.safe_load((DEPLOY / "helm" / "lake-pvc.yaml").read_text())
    kubernetes_validate.validate(pvc, K8S_VERSION, strict=True)
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    role, binding = yaml.safe_load_all((DEPLOY / "helm" / "training-rbac.yaml").read_text())
    for manifest in (role, binding):
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    granted = {resource for rule in role["rules"] for resource in rule["resources"]}
    assert {"jobs", "services", "pods", "pods/log"} <= granted  # what _k8s_training.py calls
    name = job_name("3f2a9c1e-0000-4000-8000-000000000000", "scratch_transformer")
    config = DistributedConfig(nproc_per_node=4, nnodes=3, rdzv_endpoint="ignored:29500")
    settings = TrainingPodSettings(image="registry.example.com/genai-assets:0.1.0-cuda", gpus_per_node=4,
                                   env={"DAGSTER_PIPES_CONTEXT": "e30="})  # fmt: skip
    service, job = training_manifests(name, config, settings, ["--spec", "/lake/checkpoints/x/spec.json"])
    for manifest in (service, job):
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    assert name == "train-scratch-transformer-3f2a9c1e" and len(f"{name}-2") <= 63
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == job["spec"]["template"]["metadata"]["labels"]
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (
        "Indexed",
        3,
        3,
        0,
    )
    pod = spec["template"]["spec"]
    assert pod["subdomain"] == service["metadata"]["name"] == name  # pod i resolves as <name>-<i>.<name>
    [container] = pod["containers"]
    command = container["command"]
    assert command[:3] == ["python", "-m", "torch.distributed.run"]
    assert f"--rdzv_endpoint={name}-0.{name}:29500" in command and "--rdzv_backend=c10d" in command
    assert "--nnodes=3" in command and "--nproc_per_node=4" in command and "--max_restarts=0" in command
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert {"name": "DAGSTER_PIPES_CONTEXT", "value": "e30="} in container["env"]
    assert {"name": "lake", "persistentVolumeClaim": {"claimName": "genai-assets-lake"}} in pod["volumes"]
    # The validator really checks: a string where Kubernetes wants an integer is refused.
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**job, "spec": {**spec, "completions": "3"}}, K8S_VERSION, strict=True)
    with pytest.raises(ValueError, match="nnodes >= 2"):
        training_manifests(name, DistributedConfig(nproc_per_node=2), settings, [])


def test_training_launcher_is_chosen_by_environment(monkeypatch):
    from genai_assets.defs._k8s_training import launches_on_kubernetes
    from genai_assets.training.distributed import DistributedConfig

    multi = DistributedConfig(nproc_per_node=1, nnodes=2, rdzv_endpoint="head:29400")
    monkeypatch.delenv("GENAI_ASSETS_TRAINING_LAUNCHER", raising=False)
    assert launches_on_kubernetes(multi) is False  # locally: torchrun through PipesSubprocessClient
    monkeypatch.setenv("GENAI_ASSETS_TRAINING_LAUNCHER", "k8s")
    assert launches_on_kubernetes(multi) is True
    assert launches_on_kubernetes(DistributedConfig(nproc_per_node=2)) is False  # one node: in the step pod
    monkeypatch.setenv("GENAI_ASSETS_TRAINING_LAUNCHER", "slurm")
    with pytest.raises(ValueError, match="must be unset, 'local' or 'k8s'"):
        launches_on_kubernetes(multi)


def test_dockerfile_installs_locked_dependencies_before_the_source_as_a_non_root_user():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    code = [line.strip() for line in dockerfile.splitlines() if line.strip() and not line.startswith("#")]
    first_source_copy = next(i for i, line in enumerate(code) if line.startswith("COPY genai_assets"))
    lock_install = next(
        i for i, line in enumerate(code) if "--require-hashes" in line and "image.lock.txt" in line
    )
    assert lock_install < first_source_copy  # a code edit never reinstalls torch or the dependencies
    assert "ARG TORCH_VARIANT=cpu" in code and "download.pytorch.org/whl/cpu" in dockerfile
    assert "download.pytorch.org/whl/cu130" in dockerfile
    assert any(line.startswith("USER genai") for line in code)
    assert any(line.startswith("HEALTHCHECK") for line in code)
    for entry in (".git", "data_lake", ".venv"):
        assert entry in (DEPLOY.parent / ".dockerignore").read_text().splitlines()


def test_image_lock_pins_every_dependency_with_hashes_within_pyproject_ranges():
    import tomllib

    from packaging.requirements import Requirement

    lock_text = (DEPLOY / "requirements" / "image.lock.txt").read_text()
    pins = {}
    for block in lock_text.split("\n"):
        if block and not block.startswith((" ", "#")):
            name, _, version = block.split(" ")[0].partition("==")
            pins[name.lower().replace("_", "-")] = version
    assert len(pins) > 100 and lock_text.count("--hash=sha256:") >= len(pins)
    assert "torch" not in pins and not any(name.startswith("nvidia-") for name in pins)  # the build arg's
    project = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["project"]
    for spec in [*project["dependencies"], *project["optional-dependencies"]["k8s"]]:
        requirement = Requirement(spec)
        name = requirement.name.lower().replace("_", "-")
        if name == "torch":
            continue
        assert name in pins, f"{name} missing from the lock: run deploy/requirements/compile.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])


# A fake Kubernetes API for the launch path of genai_assets/defs/_k8s_training.py: creating the Job
# "runs" its pods as local processes with the pod's own environment (Dagster Pipes' bootstrap variables
# included); pod 0 plays rank 0 and reports through dagster-pipes on stderr, as the real worker does.
FAKE_RANK_ZERO = """
from dagster_pipes import open_dagster_pipes
with open_dagster_pipes() as pipes:
    pipes.log.info("[rank 0] step 12/12 train loss 1.2500")
    pipes.report_asset_materialization(metadata={"world_size": 4, "backend": "nccl"})
"""


class FakeKubernetes:
    def __init__(self, outcome: str = "succeeded"):  # "succeeded", "failed" or "pending" (never scheduled)
        self.outcome, self.created, self.deleted, self.logs = outcome, [], [], {}

    def create_namespaced_service(self, namespace, body):
        self.created.append(body)

    def create_namespaced_job(self, namespace, body):
        import sys
        import types

        self.created.append(body)
        container = body["spec"]["template"]["spec"]["containers"][0]
        env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
        for index in range(body["spec"]["completions"]):
            pod = f"{body['metadata']['name']}-{index}-x7k2p"
            if index == 0:
                done = subprocess.run([sys.executable, "-c", FAKE_RANK_ZERO], env={**os.environ, **env},
                                      capture_output=True, text=True, timeout=120)  # fmt: skip
                assert done.returncode == 0, done.stderr
                lines = done.stderr.splitlines()
            else:
                lines = [f"[rank {index}] joined the rendezvous"]
            stamped = [f"2026-01-01T00:00:{second:02d}.000000Z {line}\n" for second, line in enumerate(lines)]
            self.logs[pod] = [line.encode() for line in stamped]
        self.pods = [
            types.SimpleNamespace(
                metadata=types.SimpleNamespace(name=name),
                status=types.SimpleNamespace(phase="Pending" if self.outcome == "pending" else "Running"),
            )
            for name in self.logs
        ]  # fmt: skip

    def list_namespaced_pod(self, namespace, label_selector):
        import types

        return types.SimpleNamespace(items=self.pods)

    def read_namespaced_pod_log(self, name, namespace, **_):
        return iter(self.logs[name])

    def read_namespaced_job_status(self, name, namespace):
        import types

        count = len(self.pods)
        succeeded = count if self.outcome == "succeeded" else 0
        status = types.SimpleNamespace(succeeded=succeeded, failed=1 if self.outcome == "failed" else None)
        return types.SimpleNamespace(status=status)

    def delete_namespaced_job(self, name, namespace, **_):
        self.deleted.append(("Job", name))

    def delete_namespaced_service(self, name, namespace):
        self.deleted.append(("Service", name))


@pytest.mark.parametrize("outcome", ["succeeded", "failed", "pending"])
def test_multi_node_training_job_is_launched_and_followed_through_pipes(monkeypatch, outcome):
    import kubernetes

    from genai_assets.defs import _k8s_training
    from genai_assets.training.distributed import DistributedConfig

    fake = FakeKubernetes(outcome)
    monkeypatch.setenv("GENAI_ASSETS_TRAINING_START_TIMEOUT_S", "0" if outcome == "pending" else "60")
    monkeypatch.setattr(kubernetes.config, "load_incluster_config", lambda: None)
    monkeypatch.setattr(kubernetes.client, "CoreV1Api", lambda: fake)
    monkeypatch.setattr(kubernetes.client, "BatchV1Api", lambda: fake)
    monkeypatch.setattr(_k8s_training, "POLL_SECONDS", 0.01)
    monkeypatch.setenv("GENAI_ASSETS_TRAINING_IMAGE", "registry.example.com/genai-assets:0.1.0-cuda")
    config = DistributedConfig(nproc_per_node=2, nnodes=2, rdzv_endpoint="any:29400")

    @dg.asset
    def trained(context: dg.AssetExecutionContext):
        invocation = _k8s_training.run_torchrun_on_kubernetes(context, config, ["--spec", "/lake/spec.json"])
        return invocation.get_materialize_result()

    with dg.instance_for_test() as instance:
        result = dg.materialize([trained], instance=instance, raise_on_error=False)
        messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    service, job = fake.created
    name = job["metadata"]["name"]
    assert service["kind"] == "Service" and job["spec"]["completions"] == 2
    assert fake.deleted == [("Job", name), ("Service", name)]  # cleaned up either way
    env_names = {item["name"] for item in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"} <= env_names
    error = "" if result.success else result.failure_data_for_node("trained").error.to_string()
    if (
        outcome == "failed"
    ):  # a failed pod fails the step with the Job's name (run_torchrun adds the resume hint)
        assert f"TrainingJobFailed: Training Job {name} failed" in error
        return
    if outcome == "pending":  # pods that never start do not hold the step forever
        assert f"Training Job {name}: only 0 of 2 pods started" in error
        return
    assert result.success
    [materialization] = result.asset_materializations_for_node("trained")
    assert materialization.metadata["world_size"].value == 4
    assert materialization.metadata["backend"].value == "nccl"
    assert "[rank 0] step 12/12 train loss 1.2500" in messages  # rank 0's Pipes log line, in the run


def test_code_server_answers_the_grpc_health_check_the_healthchecks_run(tmp_path):
    """compose's and the Dockerfile's healthcheck command against a real `dagster code-server start`."""
    import signal
    import sys
    import time

    (tmp_path / "tiny_defs.py").write_text(
        "import dagster as dg\n\n@dg.asset\ndef one():\n    return 1\n\ndefs = dg.Definitions(assets=[one])\n"
    )
    port = _free_port()
    dagster = [sys.executable, "-m", "dagster"]
    server = subprocess.Popen(
        [*dagster, "code-server", "start", "-h", "127.0.0.1", "-p", str(port), "-f", "tiny_defs.py"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        check = [*dagster, "api", "grpc-health-check", "-p", str(port)]
        deadline, healthy = time.monotonic() + 120, None
        while time.monotonic() < deadline and server.poll() is None:
            healthy = subprocess.run(check, capture_output=True, text=True, timeout=60)
            if healthy.returncode == 0:
                break
            time.sleep(1)
        assert healthy is not None and healthy.returncode == 0, healthy and healthy.stdout + healthy.stderr
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # the server and the gRPC process it spawned
        server.wait(timeout=30)
