"""Control API routes for compliance attestations and risk acceptances."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from agents.compliance_api import ComplianceApi
from agents.control_api import ApiConfig, ApiSubject, ControlApi, hash_token
from agents.gate import PolicyGate
from policies.compliance import AttestationStore, load_library
from policies.engine import RegoEngine
from policies.registry import PolicyRegistry
from policies.source import load_directory
from schemas.attestations import ComplianceAttestation

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies" / "rego"
TOKENS = {"op-token": ("olu", "operator"), "view-token": ("vi", "viewer")}
LIBRARY = load_library()


@pytest.fixture
def store() -> AttestationStore:
    return AttestationStore()


@pytest.fixture
def api(store: AttestationStore) -> ControlApi:
    registry = PolicyRegistry()
    registry.seed(load_directory(POLICY_DIR))
    engine = RegoEngine(registry)
    config = ApiConfig(tokens={hash_token(t): ApiSubject(user=u, role=r)
                               for t, (u, r) in TOKENS.items()})
    return ControlApi(engine, registry, PolicyGate(engine), config,
                      extensions=[ComplianceApi(LIBRARY, store)])


def call(api: ControlApi, method: str, path: str, token: str, body: object = None
         ) -> tuple[int, dict]:
    return api.handle(method, path, {"Authorization": f"Bearer {token}"},
                      orjson.dumps(body) if body is not None else None)


ATTEST = {"control_id": "org-incident-response-plan", "statement": "plan v3, tested in May",
          "evidence_url": "https://wiki.example.com/irp", "days": 365}


def test_an_operator_attests_and_the_record_goes_to_the_topic(api: ControlApi) -> None:
    status, body = call(api, "POST", "/compliance/attestations", "op-token", ATTEST)
    assert status == 201, body
    assert body["by"] == "olu" and body["kind"] == "attestation"
    (event,) = api.drain_events()
    assert isinstance(event, ComplianceAttestation)
    assert event.topic == "compliance-attestations"
    assert event.key == "attestation/org-incident-response-plan/*"


def test_a_viewer_may_read_but_not_attest(api: ControlApi, store: AttestationStore) -> None:
    assert call(api, "POST", "/compliance/attestations", "view-token", ATTEST)[0] == 403
    assert api.drain_events() == []
    status, body = call(api, "GET", "/compliance/attestations", "view-token")
    assert status == 200 and body == {"records": []}


def test_bad_attestations_are_refused(api: ControlApi) -> None:
    forever = {k: v for k, v in ATTEST.items() if k != "days"}
    assert call(api, "POST", "/compliance/attestations", "op-token", forever)[0] == 400
    no_link = {**ATTEST, "evidence_url": "file:///etc/passwd"}
    assert call(api, "POST", "/compliance/attestations", "op-token", no_link)[0] == 400
    automated = {**ATTEST, "control_id": "aws-ebs-encrypted"}
    assert call(api, "POST", "/compliance/attestations", "op-token", automated)[0] == 404
    assert call(api, "POST", "/compliance/attestations", "op-token", {**ATTEST, "days": 5000}
                )[0] == 400
    assert api.drain_events() == []


def test_accept_then_revoke(api: ControlApi, store: AttestationStore) -> None:
    status, body = call(api, "POST", "/compliance/acceptances", "op-token", {
        "control_id": "aws-s3-mfa-delete", "resource_id": "aws_s3_bucket.data",
        "reason": "object lock instead", "days": 30})
    assert status == 201, body
    (record,) = api.drain_events()
    assert isinstance(record, ComplianceAttestation)
    store.apply(record)  # what the host does when the record comes back from the topic
    listed = call(api, "GET", "/compliance/attestations", "op-token")[1]["records"]
    assert [(r["control_id"], r["active"]) for r in listed] == [("aws-s3-mfa-delete", True)]
    status, body = call(api, "POST", "/compliance/revocations", "op-token", {
        "kind": "acceptance", "control_id": "aws-s3-mfa-delete",
        "resource_id": "aws_s3_bucket.data", "reason": "object lock removed"})
    assert status == 201 and body["revoked"] is True
    (revoked,) = api.drain_events()
    assert isinstance(revoked, ComplianceAttestation)
    assert revoked.key == record.key and revoked.event_id != record.event_id


def test_routes_are_in_the_openapi_document(api: ControlApi) -> None:
    status, doc = api.handle("GET", "/openapi.json", {})
    assert status == 200
    assert {"get", "post"} <= set(doc["paths"]["/compliance/attestations"])
