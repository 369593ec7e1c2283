"""Noise test: 10,000 config events with only computed/ignored changes plus 100 real drifts."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.drift import DriftConfig, DriftDetector, IgnoreRule, IgnoreSet, desired_state
from schemas import ConfigChange, Decision, DriftFinding

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SEED = 20260301
N_RESOURCES = 300
N_NOISE = 10_000
N_DRIFT = 100


def instance(i: int) -> dict[str, Any]:
    return {
        "id": f"i-{i:05d}",
        "arn": f"arn:aws:ec2:eu-west-1:1:instance/i-{i:05d}",
        "instance_type": "t3.medium",
        "ami": "ami-1",
        "monitoring": True,
        "ebs_optimized": False,
        "root_block_device": [{"volume_size": 40, "volume_type": "gp3", "iops": 3000}],
        "tags": {"Name": f"app-{i}", "team": "core", "owner": "ana"},
        "tags_all": {"Name": f"app-{i}"},
        "instance_state": "running",
        "private_ip": f"10.0.{i // 250}.{i % 250}",
        "vpc_security_group_ids": ["sg-1", "sg-2"],
        "last_modified": "2026-01-01T00:00:00Z",
    }


def deployment(i: int) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"svc-{i}",
            "namespace": "prod",
            "uid": f"u-{i}",
            "resourceVersion": "1",
            "generation": 1,
            "labels": {"app": f"svc-{i}"},
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {
            "replicas": 3,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": f"registry/svc-{i}:1.0",
                            "env": [{"name": "MODE", "value": "prod"}],
                            "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}},
                        },
                        {
                            "name": "proxy",
                            "image": "envoy:1.30",
                            "ports": [{"containerPort": 9901}],
                        },
                    ]
                }
            },
        },
        "status": {"readyReplicas": 3, "conditions": [{"type": "Available", "status": "True"}]},
    }


def security_group(i: int) -> dict[str, Any]:
    return {
        "id": f"sg-{i}",
        "arn": f"arn:sg-{i}",
        "name": f"web-{i}",
        "description": "web tier",
        "ingress": [
            {
                "from_port": 443,
                "to_port": 443,
                "protocol": "tcp",
                "cidr_blocks": ["0.0.0.0/0"],
                "description": "https",
            },
            {
                "from_port": 22,
                "to_port": 22,
                "protocol": "tcp",
                "cidr_blocks": ["10.0.0.0/8", "192.168.0.0/16"],
                "description": "ssh",
            },
        ],
        "egress": [{"from_port": 0, "to_port": 0, "protocol": "-1", "cidr_blocks": ["0.0.0.0/0"]}],
        "tags": {"Name": f"web-{i}"},
        "owner_id": "1",
    }


KINDS = [
    ("aws_instance", instance),
    ("kubernetes_deployment", deployment),
    ("aws_security_group", security_group),
]


def noise(cfg: dict[str, Any], rtype: str, rng: random.Random) -> dict[str, Any]:
    """Only computed fields, ignored paths, re-ordered unordered lists, number/empty forms."""
    c = copy.deepcopy(cfg)
    stamp = f"2026-03-01T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z"
    if rtype == "aws_instance":
        c["last_modified"] = stamp
        c["instance_state"] = rng.choice(["running", "stopping", "pending"])  # ignored per type
        c["tags_all"] = {"Name": c["tags"]["Name"], "x": str(rng.random())}
        c["tags"]["owner"] = rng.choice(["ana", "bob"])  # temporarily ignored (expires tomorrow)
        c["vpc_security_group_ids"].reverse()  # set mode
        c["root_block_device"][0]["volume_size"] = 40.0  # 40 == 40.0
        c["user_data"] = rng.choice(["", None, [], {}])  # empty == absent
    elif rtype == "kubernetes_deployment":
        m = c["metadata"]
        m["resourceVersion"] = str(rng.randrange(10**6))
        m["generation"] = rng.randrange(1, 9)
        m["uid"] = f"u-{rng.random()}"
        m["managedFields"] = [{"manager": "kubectl", "time": stamp}]
        c["status"]["readyReplicas"] = rng.randrange(4)
        c["spec"]["template"]["spec"]["containers"].reverse()  # key mode by name
    else:
        c["arn"] = f"arn:sg-{rng.random()}"
        rng.shuffle(c["ingress"])  # set mode
        for rule in c["ingress"]:
            rule["description"] = rng.choice(["https", "HTTPS", "managed by x"])  # ignored
            rng.shuffle(rule["cidr_blocks"])  # set mode
        c["tags"]["LastScan"] = stamp  # /tags/LastScan ignored for this type
    return c


def drift(cfg: dict[str, Any], rtype: str, rng: random.Random) -> tuple[dict[str, Any], str]:
    """One real, non-ignored change; returns the config and the expected changed pointer."""
    c = copy.deepcopy(cfg)
    if rtype == "aws_instance":
        field = rng.choice(["instance_type", "monitoring", "team"])
        if field == "team":
            c["tags"]["team"] = "other"
            return c, "/tags/team"
        c[field] = "t3.large" if field == "instance_type" else False
        return c, f"/{field}"
    if rtype == "kubernetes_deployment":
        app = next(x for x in c["spec"]["template"]["spec"]["containers"] if x["name"] == "app")
        app["image"] = app["image"].replace("1.0", "1.1")
        idx = c["spec"]["template"]["spec"]["containers"].index(app)
        return c, f"/spec/template/spec/containers/{idx}/image"
    c["ingress"].append(
        {
            "from_port": 3389,
            "to_port": 3389,
            "protocol": "tcp",
            "cidr_blocks": ["0.0.0.0/0"],
            "description": "rdp",
        }
    )
    return c, f"/ingress/{len(c['ingress']) - 1}"


def test_noise_is_not_drift_and_no_drift_is_missed() -> None:
    rng = random.Random(SEED)
    ignores = IgnoreSet(
        [
            IgnoreRule(path="/instance_state", resource_type="aws_instance", reason="observed"),
            IgnoreRule(
                path="/tags/owner",
                resource_type="aws_instance",
                reason="handover",
                expires_at=T0 + timedelta(days=1),
            ),
            IgnoreRule(path="/ingress/*/description", resource_type="aws_security_group"),
            IgnoreRule(path="/tags/LastScan", resource_type="aws_security_group"),
        ]
    )
    det = DriftDetector(DriftConfig(), ignores, clock=lambda: T0)
    resources = {}
    for i in range(N_RESOURCES):
        rtype, build = KINDS[i % 3]
        rid = f"{rtype}.r{i}"
        resources[rid] = (rtype, build(i))
        det.on_baseline(
            desired_state(rid, rtype, resources[rid][1], origin="git", revision="c0ffee")
        )

    # Each drift is injected at a random point of the stream; later noise on that resource
    # keeps the drift (noise is applied on top of the drifted config).
    drift_at = dict(
        zip(
            sorted(rng.sample(range(N_NOISE + N_DRIFT), N_DRIFT)),
            rng.sample(sorted(resources), N_DRIFT),
            strict=True,
        )
    )
    current = {rid: cfg for rid, (_, cfg) in resources.items()}
    rids = sorted(resources)
    expected: dict[str, str] = {}
    findings: list[DriftFinding] = []
    decisions: list[Decision] = []
    false_positives = 0
    for step in range(N_NOISE + N_DRIFT):
        if step in drift_at:
            rid = drift_at[step]
            rtype = resources[rid][0]
            current[rid], expected[rid] = drift(current[rid], rtype, rng)
            cfg = current[rid]
        else:
            rid = rng.choice(rids)
            rtype = resources[rid][0]
            cfg = noise(current[rid], rtype, rng)
        out = det.on_config(ConfigChange(resource_id=rid, resource_type=rtype, config=cfg))
        if step not in drift_at and out:
            false_positives += 1
        findings += [e for e in out if isinstance(e, DriftFinding)]
        decisions += [e for e in out if isinstance(e, Decision)]

    found = {f.resource_id: f for f in findings}
    missed = [
        rid
        for rid, path in expected.items()
        if rid not in found or path not in found[rid].changed_fields
    ]
    extra_fields = [f.resource_id for f in findings if len(f.changed_fields) != 1]
    print(
        f"noise events={N_NOISE} drift events={N_DRIFT} findings={len(findings)} "
        f"false_positives={false_positives} missed={len(missed)}"
    )
    assert false_positives == 0
    assert missed == []
    assert extra_fields == []
    assert len(findings) == N_DRIFT and len(decisions) == N_DRIFT
    assert all(
        f.severity == "CRITICAL" for f in findings if f.resource_type == "aws_security_group"
    )
    assert all(d.requires_approval for d in decisions)  # nothing is configured to auto-remediate
    assert {d.params["finding_id"] for d in decisions} == {f.event_id for f in findings}


def test_expired_ignore_turns_the_same_noise_into_drift() -> None:
    rule = IgnoreRule(
        path="/tags/owner", resource_type="aws_instance", expires_at=T0 + timedelta(days=1)
    )
    now = [T0]
    det = DriftDetector(DriftConfig(), IgnoreSet([rule]), clock=lambda: now[0])
    base = instance(1)
    det.on_baseline(desired_state("i1", "aws_instance", base))
    cfg = copy.deepcopy(base)
    cfg["tags"]["owner"] = "bob"
    assert (
        det.on_config(ConfigChange(resource_id="i1", resource_type="aws_instance", config=cfg))
        == []
    )
    now[0] = T0 + timedelta(days=2)
    finding, _ = det.on_config(
        ConfigChange(resource_id="i1", resource_type="aws_instance", config=cfg)
    )
    assert finding.changed_fields == ["/tags/owner"]  # type: ignore[attr-defined]
