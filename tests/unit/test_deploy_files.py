"""Deployment files: compose and Kubernetes YAML parse, run every role, and only use real settings.

No Docker engine or cluster runs here, so these tests hold the files to the tested configuration:
every NOVACRON_* name is a field of `streams.settings.Settings` (which ignores unknown names, so a
typo would otherwise pass silently), the values build a valid Settings, and the ports, probes,
mounts and credentials of the pieces agree with each other.
"""

from __future__ import annotations

import json
import re
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from streams.kafka_local import DEFAULT_VERSION as KAFKA_VERSION
from streams.roles import ROLES, role_index
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
K8S_DIR = ROOT / "deploy" / "k8s"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
PREFIX = "NOVACRON_"


# ------------------------------------------------------------------ helpers

def setting_path(name: str) -> tuple[str, ...]:
    """`NOVACRON_KAFKA__BOOTSTRAP` → ("kafka", "bootstrap"); KeyError if there is no such field."""
    if not name.startswith(PREFIX):
        raise KeyError(f"{name} does not start with {PREFIX}")
    model: type[BaseModel] | None = Settings
    path = tuple(part.lower() for part in name[len(PREFIX):].split("__"))
    for i, part in enumerate(path):
        if model is None or part not in model.model_fields:
            raise KeyError(f"{name}: no setting {'.'.join(path[: i + 1])}")
        annotation = model.model_fields[part].annotation
        nested = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation if nested else None  # type: ignore[assignment]
    if model is not None:
        raise KeyError(f"{name} names a whole section, not a setting")
    return path


def settings_from_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Build Settings as a worker does from its environment; check that every name landed."""
    import os

    for key in list(os.environ):
        if key.startswith(PREFIX):
            monkeypatch.delenv(key)
    novacron = {k: v for k, v in env.items() if k.startswith(PREFIX)}
    for key, value in novacron.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    for key, value in novacron.items():
        attr: Any = settings
        for part in setting_path(key):
            attr = getattr(attr, part)
        if isinstance(attr, BaseModel | dict | list):
            dumped = attr.model_dump() if isinstance(attr, BaseModel) else attr
            assert dumped == json.loads(value), key
        else:
            assert str(attr) == value, f"{key}={value!r} became {attr!r}"
    return settings


_VAR = re.compile(r"\$\$|\$\{(\w+)(?:(:?-)([^}]*))?\}")


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}` and `$$` (empty environment)."""
    env = env or {}

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, default = m.group(1), m.group(2), m.group(3)
        if name in env and (env[name] or op != ":-"):
            return env[name]
        if op is None:
            raise KeyError(f"${{{name}}} has no default")
        return default

    return _VAR.sub(repl, value)


def _resolve(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _resolve(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v) for v in node]
    return interpolate(node) if isinstance(node, str) else node


def check_scale_out(deployments: dict[str, dict[str, Any]], settings: Settings) -> None:
    """SPEC §4.8: with chDB one process opens the folder, so ingest scales only on a server."""
    replicas = deployments["ingest"]["spec"].get("replicas", 1)
    if replicas > 1 and settings.clickhouse.backend != "server":
        raise ValueError("the ingest role may run more than one replica only with backend=server")


def test_setting_path_rejects_what_settings_would_silently_ignore() -> None:
    assert setting_path("NOVACRON_KAFKA__BOOTSTRAP") == ("kafka", "bootstrap")
    assert setting_path("NOVACRON_DATA_DIR") == ("data_dir",)
    for bad in ("NOVACRON_KAFKA__BOOTSTRAPS", "NOVACRON_KAFKA", "NOVACRON_WEB_PORT", "KAFKA__X"):
        with pytest.raises(KeyError):
            setting_path(bad)


def test_interpolate_follows_compose_rules() -> None:
    assert interpolate("a${X:-d}b") == "adb"
    assert interpolate("${X:-d}", {"X": ""}) == "d" and interpolate("${X-d}", {"X": ""}) == ""
    assert interpolate("$${X}") == "${X}"
    with pytest.raises(KeyError):
        interpolate("${X}")


# ------------------------------------------------------------------ docker compose

@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
    return dict(_resolve(doc))


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "write environment as a mapping"
    return {k: str(v) for k, v in env.items()}


def test_compose_runs_every_role_with_a_server_backend(compose, monkeypatch) -> None:
    services = compose["services"]
    for role in ROLES:
        svc = services[role]
        assert svc["command"] == ["worker", "--role", role]
        settings = settings_from_env(_env(svc), monkeypatch)
        assert settings.clickhouse.backend == "server" and settings.web.host == "0.0.0.0"
        port = settings.web.port + role_index(role)
        assert svc["ports"] == [f"127.0.0.1:{port}:{port}"]  # loopback unless configured
        assert _env(svc)["WEB_PORT"] == str(port)  # what its healthcheck probes
        assert svc["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert services["topics"]["command"] == ["topics", "create"]


def test_compose_kafka_is_kraft_4x_and_matches_the_worker_bootstrap(compose, monkeypatch) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"  # the version the tests run
    env = _env(kafka)
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "ZOOKEEPER" not in " ".join(env)
    internal = dict(x.split("://") for x in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    settings = settings_from_env(_env(compose["services"]["ingest"]), monkeypatch)
    assert settings.kafka.bootstrap == internal[env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    assert env["KAFKA_NUM_PARTITIONS"] == str(settings.kafka.partitions)


def test_compose_clickhouse_credentials_agree(compose, monkeypatch) -> None:
    services = compose["services"]
    ch, grafana = _env(services["clickhouse"]), _env(services["grafana"])
    settings = settings_from_env(_env(services["ingest"]), monkeypatch)
    assert settings.clickhouse.url is not None
    url = urllib.parse.urlsplit(settings.clickhouse.url)
    assert (url.hostname, url.port) == ("clickhouse", 8123)
    assert (url.username, url.password) == (ch["CLICKHOUSE_USER"], ch["CLICKHOUSE_PASSWORD"])
    assert ch["NOVACRON_DATABASE"] == settings.clickhouse.database == ch["CLICKHOUSE_DB"]
    for key in ("GRAFANA_CLICKHOUSE_USER", "GRAFANA_CLICKHOUSE_PASSWORD"):
        assert grafana[key] == ch[key]
    # every ${VAR} of the provisioned data source is in Grafana's environment
    datasource = (GRAFANA_DIR / "datasources" / "clickhouse.yaml").read_text()
    assert set(re.findall(r"\$\{(\w+)\}", datasource)) <= set(grafana)
    assert yaml.safe_load(datasource)["datasources"][0]["jsonData"]["defaultDatabase"] == "novacron"


def test_compose_grafana_provisions_the_repo_dashboards(compose) -> None:
    grafana = compose["services"]["grafana"]
    assert "grafana-clickhouse-datasource" in _env(grafana)["GF_INSTALL_PLUGINS"]
    binds = [m.split(":") for m in grafana["volumes"] if m.startswith(".")]
    mounts = {target: COMPOSE_DIR / source for source, target, *_ in binds}
    provider = yaml.safe_load((GRAFANA_DIR / "dashboards" / "dashboards.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    mount = next(t for t in mounts if path.startswith(t + "/"))
    folder = (mounts[mount] / path[len(mount) + 1:]).resolve()
    assert sorted(p.stem for p in folder.glob("*.json")) == [
        "compliance", "decisions", "drift", "pipeline", "self_optimisation", "workflows",
    ]
    home = _env(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (folder / Path(home).name).exists() and home.startswith(path)
    initdb = compose["services"]["clickhouse"]["volumes"][1].split(":")[0]
    assert (COMPOSE_DIR / initdb / "grafana-user.sh").exists()


def test_dockerfile_installs_every_package_of_the_project(compose) -> None:
    build = compose["services"]["ingest"]["build"]
    context = (COMPOSE_DIR / build["context"]).resolve()
    dockerfile = (context / build["dockerfile"]).read_text()
    assert context == ROOT and "pip install ." in dockerfile
    assert 'pip install ".[$EXTRAS]"' in dockerfile  # the learn image: --build-arg EXTRAS=learn
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in include}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, re.M))
    assert packages == copied
    assert 'ENTRYPOINT ["novacron"]' in dockerfile


def test_only_the_learn_role_gets_the_image_with_torch(compose, k8s) -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("torch") for d in extras["dependencies"])
    assert any(d.startswith("torch") for d in extras["optional-dependencies"]["learn"])
    for role in ROLES:
        service = compose["services"][role]
        (container,) = _deployments(k8s)[role]["spec"]["template"]["spec"]["containers"]
        learn = role == "learn"
        assert service["image"].startswith("novacron-learn:" if learn else "novacron:")
        assert service["build"].get("args", {}) == ({"EXTRAS": "learn"} if learn else {})
        assert container["image"] == ("novacron-learn:latest" if learn else "novacron:latest")


# ------------------------------------------------------------------ kubernetes

def _k8s_docs() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict[str, Any]]:
    objects = {(d["kind"], d["metadata"]["name"]): d for d in _k8s_docs()}
    return objects


def _k8s_env(k8s) -> dict[str, str]:
    data = dict(k8s[("ConfigMap", "novacron-config")]["data"])
    data.update(k8s[("Secret", "novacron-secrets")]["stringData"])
    return {k: str(v) for k, v in data.items()}


def _deployments(k8s) -> dict[str, dict[str, Any]]:
    return {role: k8s[("Deployment", f"novacron-{role}")] for role in ROLES}


def test_every_k8s_object_is_well_formed_and_in_the_namespace() -> None:
    for doc in _k8s_docs():
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]
        assert doc["metadata"].get("namespace", doc["metadata"]["name"]) == "novacron"


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    files = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_k8s_settings_build_a_valid_server_configuration(k8s, monkeypatch) -> None:
    settings = settings_from_env(_k8s_env(k8s), monkeypatch)
    assert settings.clickhouse.backend == "server" and settings.clickhouse.url
    assert settings.web.host == "0.0.0.0"
    check_scale_out(_deployments(k8s), settings)


def test_scale_out_check_refuses_ingest_replicas_on_chdb(k8s, monkeypatch) -> None:
    env = {**_k8s_env(k8s), "NOVACRON_CLICKHOUSE__BACKEND": "chdb"}
    chdb = settings_from_env(env, monkeypatch)
    deployments = _deployments(k8s)
    check_scale_out(deployments, chdb)  # one replica on chDB is fine
    scaled = {**deployments, "ingest": {"spec": {"replicas": 2}}}
    with pytest.raises(ValueError, match="backend=server"):
        check_scale_out(scaled, chdb)


@pytest.mark.parametrize("role", list(ROLES))
def test_k8s_deployment_per_role(k8s, role, monkeypatch) -> None:
    settings = settings_from_env(_k8s_env(k8s), monkeypatch)
    port = settings.web.port + role_index(role)
    dep = k8s[("Deployment", f"novacron-{role}")]
    pod = dep["spec"]["template"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    assert container["args"] == ["worker", "--role", role]
    assert {"configMapRef": {"name": "novacron-config"}} in container["envFrom"]
    assert {"secretRef": {"name": "novacron-secrets"}} in container["envFrom"]
    assert container["ports"] == [{"name": "web", "containerPort": port, "protocol": "TCP"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "web"}
    assert pod["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]
    service = k8s[("Service", f"novacron-{role}")]
    assert service["spec"]["selector"] == pod["metadata"]["labels"]
    (service_port,) = service["spec"]["ports"]
    assert service_port["port"] == port and service_port["targetPort"] == "web"


def test_k8s_exposes_no_web_port_outside_the_cluster(k8s) -> None:
    kinds = {kind for kind, _ in k8s}
    assert not kinds & {"Ingress", "Route", "Gateway", "HTTPRoute"}
    for (kind, name), doc in k8s.items():
        if kind == "Service":
            assert doc["spec"].get("type", "ClusterIP") == "ClusterIP", name
            assert "externalIPs" not in doc["spec"], name


def test_the_ingest_pod_mounts_the_audit_signing_key_read_only(k8s, monkeypatch) -> None:
    settings = settings_from_env(_k8s_env(k8s), monkeypatch)
    pod = k8s[("Deployment", "novacron-ingest")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["audit-key"]["readOnly"] is True
    key_dir = Path(mounts["audit-key"]["mountPath"])
    assert settings.audit.signing_key_file.parent == key_dir
    volume = next(v for v in pod["volumes"] if v["name"] == "audit-key")
    assert volume["secret"]["optional"] is True
    assert str(settings.audit.head_file).startswith(mounts["data"]["mountPath"])


def _mebibytes(quantity: str) -> float:
    units = {"Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]


def test_k8s_requests_follow_the_measured_costs(k8s) -> None:
    mem = {}
    for role, dep in _deployments(k8s).items():
        (container,) = dep["spec"]["template"]["spec"]["containers"]
        mem[role] = _mebibytes(container["resources"]["requests"]["memory"])
    # learn may load torch for training (~0.5 GB on its own); execute mostly waits on I/O
    assert mem["learn"] == max(mem.values()) and mem["learn"] >= 1024
    assert mem["execute"] == min(mem.values())


def test_k8s_topics_job_creates_the_catalogue(k8s) -> None:
    job = k8s[("Job", "novacron-topics")]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["topics", "create"]
