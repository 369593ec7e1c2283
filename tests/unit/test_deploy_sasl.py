"""The SASL deployment files: the compose override and the Kubernetes overlay give every role its
own Kafka user with the password from a secret, the admin creates topics and ACLs, and the
broker settings are those of the tested local SCRAM broker.

No Docker engine or cluster runs here: the files are parsed and merged as compose and kustomize
would, the settings are built from them, and the broker's environment is rendered to the
properties the apache/kafka image writes (tests/integration/test_compose_sasl_broker.py starts
a real broker from those properties).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.acls import PRINCIPAL_ROLES, kafka_user
from streams.kafka_local import SASL_PROPERTIES
from streams.roles import ROLES
from tests.unit.test_deploy_files import settings_from_env

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
OVERLAY = ROOT / "deploy" / "k8s-sasl"
ADMIN_PASSWORD = "test-admin-password"
_VAR = re.compile(r"\$\$|\$\{(\w+)(?::?([-?])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR:?error}` and `$$`."""
    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op == "-":
            return arg
        raise KeyError(f"${{{name}}}: {arg or 'unset'}")
    return _VAR.sub(repl, value)


def _resolve(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: _resolve(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, env) for v in node]
    return interpolate(node, env) if isinstance(node, str) else node


def merge(base: Any, override: Any) -> Any:
    """Compose's merge of an override file: mappings deep-merge, sequences of secrets and ports
    append, scalars and commands replace."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    if isinstance(base, list) and isinstance(override, list):
        return base + [v for v in override if v not in base]
    return override


def compose_env(env: dict[str, str] | None = None) -> dict[str, Any]:
    env = {"KAFKA_ADMIN_PASSWORD": ADMIN_PASSWORD, **(env or {})}
    base = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
    sasl = yaml.safe_load((COMPOSE_DIR / "docker-compose.sasl.yml").read_text())
    return dict(_resolve(merge(base, sasl), env))


def image_properties(env: dict[str, str]) -> dict[str, str]:
    """What the apache/kafka image renders from KAFKA_* variables: `_` → `.`, `__` → `_`,
    `___` → `-`, lower case (docker/resources/ub in the Kafka repository)."""
    out = {}
    for key, value in env.items():
        if not key.startswith("KAFKA_") or key in ("KAFKA_VERSION",):
            continue
        name = re.sub(r"(?<!_)_(?!_)", ".", key[len("KAFKA_"):])
        out[name.replace("___", "-").replace("__", "_").lower()] = str(value)
    return out


def _props(text: str) -> dict[str, str]:
    joined = text.replace("\\\n", "")
    return dict(line.split("=", 1) for line in joined.splitlines() if "=" in line)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return compose_env()


def _password_file(tmp_path: Path) -> str:
    path = tmp_path / "password"
    path.write_text("from-a-secret\n")
    return str(path)


def test_compose_needs_the_admin_password() -> None:
    with pytest.raises(KeyError, match="KAFKA_ADMIN_PASSWORD"):
        compose_env({"KAFKA_ADMIN_PASSWORD": ""})


@pytest.mark.parametrize("role", [*ROLES, "simulator"])
def test_compose_gives_every_role_its_user_and_a_secret_password(
        compose, role, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    svc = compose["services"][role]
    user = kafka_user("operator" if role == "simulator" else role)
    env = {k: str(v) for k, v in svc["environment"].items()}
    assert env["NOVACRON_KAFKA__USERNAME"] == user and "NOVACRON_KAFKA__PASSWORD" not in env
    (secret,) = [s for s in svc["secrets"] if s.startswith("kafka-")]
    assert env["NOVACRON_KAFKA__PASSWORD_FILE"] == f"/run/secrets/{secret}"
    assert compose["secrets"][secret]["file"] == f"./secrets/{secret}.password"
    assert svc["depends_on"]["acls"]["condition"] == "service_completed_successfully"
    env["NOVACRON_KAFKA__PASSWORD_FILE"] = _password_file(tmp_path)
    kafka = settings_from_env(env, monkeypatch).kafka
    assert (kafka.security_protocol, kafka.sasl_mechanism) == ("SASL_PLAINTEXT", "SCRAM-SHA-256")
    assert kafka.password is not None and kafka.password.get_secret_value() == "from-a-secret"


def test_compose_formats_a_scram_user_per_principal_from_the_same_secrets(compose) -> None:
    fmt = compose["services"]["kafka-format"]
    script = fmt["command"][0]
    assert "kafka-storage.sh format --ignore-formatted" in script
    roles = re.search(r"for role in ([\w ]+); do", script)
    assert roles and roles.group(1).split() == list(PRINCIPAL_ROLES)
    assert "name=novacron-$role,password=$(cat /run/secrets/kafka-$role)" in script
    assert set(fmt["secrets"]) == {f"kafka-{r}" for r in PRINCIPAL_ROLES}
    assert "name=admin,password=$BROKER_ADMIN_PASSWORD" in script
    assert fmt["environment"]["BROKER_ADMIN_PASSWORD"] == ADMIN_PASSWORD
    kafka = compose["services"]["kafka"]
    assert kafka["depends_on"]["kafka-format"]["condition"] == "service_completed_successfully"
    assert fmt["volumes"] == kafka["volumes"]  # the same storage
    assert fmt["environment"]["CLUSTER_ID"] == kafka["environment"]["CLUSTER_ID"]


def test_compose_broker_has_the_settings_of_the_tested_scram_broker(compose) -> None:
    props = image_properties(compose["services"]["kafka"]["environment"])
    tested = _props(SASL_PROPERTIES)
    for key in ("sasl.enabled.mechanisms", "sasl.mechanism.inter.broker.protocol",
                "sasl.mechanism.controller.protocol", "authorizer.class.name",
                "allow.everyone.if.no.acl.found",
                "listener.name.controller.sasl.enabled.mechanisms"):
        assert props[key] == tested[key], key
    assert props["super.users"] == "User:admin"
    listeners = dict(x.split(":") for x in props["listener.security.protocol.map"].split(","))
    assert set(listeners.values()) == {"SASL_PLAINTEXT"}  # nothing unauthenticated
    for name in listeners:  # a login context per SASL listener
        mechanism = "plain" if name == "CONTROLLER" else "scram-sha-256"
        assert f"listener.name.{name.lower()}.{mechanism}.sasl.jaas.config" in props
    jaas = props["listener.name.internal.scram-sha-256.sasl.jaas.config"]
    assert f'password="{ADMIN_PASSWORD}"' in jaas
    assert not [k for k in props if "password" in k and "jaas" not in k]  # no stray secret keys


def test_compose_admin_creates_topics_then_acls_for_the_workers_prefix(
        compose, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    services = compose["services"]
    worker = settings_from_env({k: str(v) for k, v in services["govern"]["environment"].items()
                                if "PASSWORD" not in k and "USERNAME" not in k}
                               | {"NOVACRON_KAFKA__SECURITY_PROTOCOL": "PLAINTEXT"}, monkeypatch)
    for name in ("topics", "acls"):
        env = {k: str(v) for k, v in services[name]["environment"].items()}
        assert env.pop("NOVACRON_KAFKA__PASSWORD") == ADMIN_PASSWORD  # from .env, not a role's
        env["NOVACRON_KAFKA__PASSWORD_FILE"] = _password_file(tmp_path)
        admin = settings_from_env(env, monkeypatch).kafka
        assert admin.username == "admin" and admin.password is not None
        assert (admin.bootstrap, admin.topic_prefix) == (worker.kafka.bootstrap,
                                                         worker.kafka.topic_prefix)
    assert services["acls"]["command"] == ["kafka", "acls", "--apply"]
    assert services["acls"]["depends_on"]["topics"]["condition"] == (
        "service_completed_successfully")


# ------------------------------------------------------------------ kubernetes overlay


def _overlay() -> dict[str, Any]:
    return yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())


def _patch(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((OVERLAY / name).read_text()))


def _pod_secret_files(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """Mounted file path → the Secret it comes from."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    out = {}
    for mount in container["volumeMounts"]:
        secret = volumes[mount["name"]].get("secret")
        for item in (secret or {}).get("items", []):
            out[f"{mount['mountPath']}/{item['path']}"] = secret["secretName"]
    return out


def test_overlay_lists_its_files_and_builds_on_the_base() -> None:
    overlay = _overlay()
    assert overlay["resources"][0] == "../k8s"
    files = {p.name for p in OVERLAY.glob("*.yaml")} - {"kustomization.yaml"}
    listed = {p["path"] for p in overlay["patches"]} | set(overlay["resources"][1:])
    assert listed == files


@pytest.mark.parametrize("role", list(ROLES))
def test_overlay_gives_every_role_its_user_and_a_secret_password(role, tmp_path,  # type: ignore[no-untyped-def]
                                                                 monkeypatch) -> None:
    patch = _patch(f"{role}.yaml")
    manifest = (ROOT / "deploy" / "k8s" / f"{role}.yaml").read_text()
    base = next(d for d in yaml.safe_load_all(manifest) if d and d["kind"] == "Deployment")
    assert patch["metadata"]["name"] == base["metadata"]["name"] == f"novacron-{role}"
    pod = patch["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["name"] == base["spec"]["template"]["spec"]["containers"][0]["name"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["NOVACRON_KAFKA__USERNAME"] == kafka_user(role)
    files = _pod_secret_files(pod, container)
    assert files[env["NOVACRON_KAFKA__PASSWORD_FILE"]] == f"novacron-kafka-{role}"
    config = _patch("kafka-config.yaml")["data"]
    assert files[config["NOVACRON_KAFKA__SSL_CAFILE"]] == "novacron-kafka-cluster-ca-cert"
    assert base["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == 10001  # 0440 files
    ca = tmp_path / "ca.crt"
    ca.write_text("placeholder")
    local = {**config, **env, "NOVACRON_KAFKA__PASSWORD_FILE": _password_file(tmp_path),
             "NOVACRON_KAFKA__SSL_CAFILE": str(ca)}
    kafka = settings_from_env(local, monkeypatch).kafka
    assert (kafka.security_protocol, kafka.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")


def test_overlay_runs_topics_and_acls_as_the_admin() -> None:
    for name, args in (("topics-job.yaml", None), ("acls-job.yaml", ["kafka", "acls", "--apply"])):
        job = _patch(name)
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["NOVACRON_KAFKA__USERNAME"] == "novacron-kafka-admin"
        files = _pod_secret_files(pod, container)
        assert files[env["NOVACRON_KAFKA__PASSWORD_FILE"]] == "novacron-kafka-admin"
        assert pod["securityContext"]["fsGroup"] == 10001
        if args:
            assert container["args"] == args
    assert not [k for k in _patch("kafka-config.yaml")["data"] if "PASSWORD" in k]


@pytest.mark.skipif(shutil.which("kubectl") is None,
                    reason="kubectl not installed; the file checks above still ran")
def test_overlay_builds_with_kustomize() -> None:
    built = subprocess.run(["kubectl", "kustomize", str(OVERLAY)], capture_output=True,
                           text=True, timeout=60, check=True).stdout
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(built) if d}
    assert ("Job", "novacron-acls") in docs
    for role in ROLES:
        pod = docs[("Deployment", f"novacron-{role}")]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        assert env["NOVACRON_KAFKA__USERNAME"] == kafka_user(role)
        assert _pod_secret_files(pod, container)[env["NOVACRON_KAFKA__PASSWORD_FILE"]] == (
            f"novacron-kafka-{role}")
        assert {"configMapRef": {"name": "novacron-config"}} in container["envFrom"]
    config = docs[("ConfigMap", "novacron-config")]["data"]
    assert config["NOVACRON_KAFKA__SECURITY_PROTOCOL"] == "SASL_SSL"
