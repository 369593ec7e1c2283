"""Control API routes for runbooks, baselines, drift ignore rules and compliance exceptions.

Mounted on the ControlApi with `register_extension` (same bearer tokens, same Rego `access`
policies; resource types `runbook`, `baseline`, `ignore`, `exception`). Reads come from the
role's followed topics (agents/shared.py); a write is applied to that copy at once (so the next
read sees it) and returned for the host to publish: events through `drain_events`, the raw
records of the `runbooks` and `drift-ignores` topics through `drain_records`. The Terraform
provider (streams/terraform/) speaks exactly these routes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from agents.access import ApiSubject
from agents.api_routes import Route
from agents.drift.baseline import desired_state
from agents.drift.rules import IgnoreRule
from agents.gitops.checks import exception_problems, runbook_problems
from agents.gitops.objects import exception_name
from agents.shared import SharedState, ignore_record
from policies.compliance import ControlLibrary
from runbooks.loader import Library
from runbooks.model import Runbook
from runbooks.model import ValidationError as RunbookInvalid
from runbooks.registry import runbook_record
from schemas import Event
from schemas.attestations import ComplianceAttestation
from schemas.envelope import JsonObject, utc_now

__all__ = ["RegistryApi"]

Response = tuple[int, dict[str, Any]]
RawRecord = tuple[str, bytes, bytes | None]
SOURCE = "novacron.control-api"


class RunbookBody(BaseModel):
    """Body of POST /runbooks and PUT /runbooks/{id}."""

    yaml: str = Field(min_length=1, max_length=1_048_576)


class BaselineBody(BaseModel):
    """Body of PUT /baselines/{id}."""

    resource_type: str = Field(min_length=1, max_length=128)
    config: JsonObject = Field(default_factory=dict)


class IgnoreBody(BaseModel):
    """Body of POST /ignores."""

    path: str = Field(min_length=1, max_length=1024)
    resource_type: str = Field(default="*", min_length=1, max_length=128)
    reason: str = Field(default="", max_length=4096)
    expires_at: datetime | None = None


class IgnoreUpdate(BaseModel):
    """Body of PUT /ignores/{id} (path and type name the rule: a change is a new rule)."""

    reason: str = Field(default="", max_length=4096)
    expires_at: datetime | None = None


class ExceptionBody(BaseModel):
    """Body of POST /exceptions."""

    control_id: str = Field(min_length=3, max_length=128)
    resource_id: str = Field(default="*", min_length=1, max_length=512)
    reason: str = Field(min_length=3, max_length=4096)
    evidence_url: str = Field(default="", max_length=2048)
    expires_at: datetime


class ExceptionUpdate(BaseModel):
    """Body of PUT /exceptions/{id} (`control:resource`)."""

    reason: str = Field(min_length=3, max_length=4096)
    evidence_url: str = Field(default="", max_length=2048)
    expires_at: datetime


def _routes() -> tuple[Route, ...]:
    r = Route
    return (
        r("GET", "/runbooks", "read", "runbook", "_runbooks", "Runbooks of the registry topic"),
        r("POST", "/runbooks", "write", "runbook", "_runbook_create", "Publish a new runbook",
          RunbookBody),
        r("GET", "/runbooks/{id}", "read", "runbook", "_runbook_get", "A runbook (YAML, hash)"),
        r("PUT", "/runbooks/{id}", "write", "runbook", "_runbook_put", "Replace a runbook",
          RunbookBody),
        r("DELETE", "/runbooks/{id}", "write", "runbook", "_runbook_delete",
          "Withdraw a runbook (a shipped file of the same id serves again)"),
        r("GET", "/baselines", "read", "baseline", "_baselines", "Declared baselines"),
        r("GET", "/baselines/{id}", "read", "baseline", "_baseline_get", "One baseline"),
        r("PUT", "/baselines/{id}", "write", "baseline", "_baseline_put",
          "Declare a resource's baseline", BaselineBody),
        r("DELETE", "/baselines/{id}", "write", "baseline", "_baseline_delete",
          "Withdraw a baseline"),
        r("GET", "/ignores", "read", "ignore", "_ignores", "Drift ignore rules"),
        r("POST", "/ignores", "write", "ignore", "_ignore_create", "Add an ignore rule",
          IgnoreBody),
        r("GET", "/ignores/{id}", "read", "ignore", "_ignore_get", "One ignore rule"),
        r("PUT", "/ignores/{id}", "write", "ignore", "_ignore_put",
          "Change a rule's reason or expiry", IgnoreUpdate),
        r("DELETE", "/ignores/{id}", "write", "ignore", "_ignore_delete", "Remove a rule"),
        r("GET", "/exceptions", "read", "exception", "_exceptions",
          "Compliance exceptions (risk acceptances), active and not"),
        r("POST", "/exceptions", "approve", "exception", "_exception_create",
          "Accept a control's risk for a resource (or *) until a date", ExceptionBody),
        r("GET", "/exceptions/{id}", "read", "exception", "_exception_get",
          "One exception (`control:resource`)"),
        r("PUT", "/exceptions/{id}", "approve", "exception", "_exception_put",
          "Change an exception's reason, evidence or expiry", ExceptionUpdate),
        r("DELETE", "/exceptions/{id}", "approve", "exception", "_exception_delete",
          "Revoke an exception"),
    )


class RegistryApi:
    """CRUD over the followed registries of the role (see the module docstring)."""

    routes = _routes()

    def __init__(self, shared: SharedState, *, controls: ControlLibrary | None = None,
                 library: Library | None = None, clock: Callable[[], datetime] = utc_now) -> None:
        self.shared, self.controls, self.library, self.clock = shared, controls, library, clock
        self._events: list[Event] = []
        self._records: list[RawRecord] = []

    def drain_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def drain_records(self) -> list[RawRecord]:
        """Raw (logical topic, key, value) records to publish (None value: a tombstone)."""
        records, self._records = self._records, []
        return records

    def _record(self, topic: str, key: bytes, value: bytes | None) -> None:
        self.shared.apply(topic, key, value)  # read-your-writes before the topic folds back
        self._records.append((topic, key, value))

    # --- runbooks ------------------------------------------------------------------------------
    def _runbooks(self, **_: Any) -> Response:
        return 200, {"runbooks": [r.model_dump(mode="json", exclude={"yaml"})
                                  for r in self.shared.runbooks.records()]}

    def _runbook_get(self, id: str, **_: Any) -> Response:  # noqa: A002 - path parameter
        if self.shared.runbooks.get(id) is None:
            return 404, {"error": f"no runbook {id!r} in the registry"}
        return 200, self.shared.runbooks.summary(id)

    def _runbook_create(self, subject: ApiSubject, body: RunbookBody, **_: Any) -> Response:
        return self._runbook_write(subject, body, None)

    def _runbook_put(self, id: str, subject: ApiSubject, body: RunbookBody, **_: Any
                     ) -> Response:  # noqa: A002
        return self._runbook_write(subject, body, id)

    def _runbook_write(self, subject: ApiSubject, body: RunbookBody, rid: str | None
                       ) -> Response:
        try:
            record = runbook_record(body.yaml, author=subject.user, origin="api",
                                    source="request body")
        except RunbookInvalid as exc:
            return 400, {"error": "invalid runbook", "problems": exc.problems[:20]}
        if rid is None and self.shared.runbooks.get(record.runbook_id) is not None:
            return 409, {"error": f"runbook {record.runbook_id} exists; PUT to replace it"}
        if rid is not None and rid != record.runbook_id:
            return 400, {"error": f"the YAML declares runbook {record.runbook_id}, not {rid}"}
        _, book = _parsed(record.yaml)
        problems = runbook_problems(book, "request body", self._lookup)
        if problems:
            return 400, {"error": "invalid runbook", "problems": problems[:20]}
        self._record("runbooks", *record.encode())
        return (201 if rid is None else 200), record.model_dump(mode="json")

    def _lookup(self, runbook_id: str) -> Runbook:
        found = self.shared.runbooks.get(runbook_id)
        if found is not None:
            return found[1]
        if self.library is not None:
            return self.library.get(runbook_id)
        raise KeyError(runbook_id)

    def _runbook_delete(self, id: str, **_: Any) -> Response:  # noqa: A002
        if self.shared.runbooks.get(id) is None:
            return 404, {"error": f"no runbook {id!r} in the registry"}
        self._record("runbooks", id.encode(), None)
        return 200, {"runbook_id": id, "deleted": True}

    # --- baselines -----------------------------------------------------------------------------
    def _baselines(self, **_: Any) -> Response:
        return 200, {"baselines": [s.model_dump(mode="json") for s in self.shared.desired]}

    def _baseline_get(self, id: str, **_: Any) -> Response:  # noqa: A002
        state = self.shared.desired.get(id)
        if state is None:
            return 404, {"error": f"no baseline for {id!r}"}
        return 200, state.model_dump(mode="json")

    def _baseline_put(self, id: str, subject: ApiSubject, body: BaselineBody, **_: Any
                      ) -> Response:  # noqa: A002
        event = desired_state(id, body.resource_type, body.config, origin="api",
                              author=subject.user)
        self.shared.observe(event)
        self._events.append(event)
        return 200, event.model_dump(mode="json")

    def _baseline_delete(self, id: str, subject: ApiSubject, **_: Any) -> Response:  # noqa: A002
        state = self.shared.desired.get(id)
        if state is None:
            return 404, {"error": f"no baseline for {id!r}"}
        event = desired_state(id, state.resource_type, {}, origin="api", author=subject.user,
                              deleted=True)
        self.shared.observe(event)
        self._events.append(event)
        return 200, {"resource_id": id, "deleted": True}

    # --- ignore rules --------------------------------------------------------------------------
    def _rule(self, rule_id: str) -> IgnoreRule | None:
        return next((r for r in self.shared.ignores.rules if r.rule_id == rule_id), None)

    @staticmethod
    def _rule_view(rule: IgnoreRule) -> dict[str, Any]:
        return {"rule_id": rule.rule_id, **rule.model_dump(mode="json")}

    def _ignores(self, **_: Any) -> Response:
        return 200, {"ignores": [self._rule_view(r) for r in self.shared.ignores.rules]}

    def _ignore_get(self, id: str, **_: Any) -> Response:  # noqa: A002
        rule = self._rule(id)
        return (200, self._rule_view(rule)) if rule else (404, {"error": f"no ignore rule {id}"})

    def _ignore_create(self, subject: ApiSubject, body: IgnoreBody, **_: Any) -> Response:
        rule = IgnoreRule(path=body.path, resource_type=body.resource_type, reason=body.reason,
                          expires_at=body.expires_at, created_by=subject.user)
        if self._rule(rule.rule_id) is not None:
            return 409, {"error": f"rule {rule.rule_id} exists for {rule.resource_type} "
                                  f"{rule.path}; PUT to change it"}
        self._record("drift-ignores", *ignore_record(rule))
        return 201, self._rule_view(rule)

    def _ignore_put(self, id: str, subject: ApiSubject, body: IgnoreUpdate, **_: Any
                    ) -> Response:  # noqa: A002
        rule = self._rule(id)
        if rule is None:
            return 404, {"error": f"no ignore rule {id}"}
        new = rule.model_copy(update={"reason": body.reason, "expires_at": body.expires_at,
                                      "created_by": subject.user})
        new = IgnoreRule.model_validate(new.model_dump())  # expiry normalised to UTC
        self._record("drift-ignores", *ignore_record(new))
        return 200, self._rule_view(new)

    def _ignore_delete(self, id: str, **_: Any) -> Response:  # noqa: A002
        if self._rule(id) is None:
            return 404, {"error": f"no ignore rule {id}"}
        self._record("drift-ignores", id.encode(), None)
        return 200, {"rule_id": id, "deleted": True}

    # --- compliance exceptions -----------------------------------------------------------------
    def _acceptance(self, name: str) -> ComplianceAttestation | None:
        control_id, sep, resource_id = name.partition(":")
        if not sep:
            return None
        found = self.shared.attestations.latest("acceptance", control_id, resource_id)
        return None if found is None or found.revoked else found

    def _exception_view(self, r: ComplianceAttestation) -> dict[str, Any]:
        return {"id": exception_name(r.control_id, r.resource_id), "control_id": r.control_id,
                "resource_id": r.resource_id, "reason": r.statement,
                "evidence_url": r.evidence_url,
                "expires_at": r.model_dump(mode="json")["expires_at"],
                "by": r.by, "active": r.active(self.clock())}

    def _exceptions(self, **_: Any) -> Response:
        records = [r for r in self.shared.attestations.records()
                   if r.kind == "acceptance" and not r.revoked]
        return 200, {"exceptions": [self._exception_view(r) for r in records]}

    def _exception_get(self, id: str, **_: Any) -> Response:  # noqa: A002
        found = self._acceptance(id)
        if found is None:
            return 404, {"error": f"no exception {id}"}
        return 200, self._exception_view(found)

    def _exception_create(self, subject: ApiSubject, body: ExceptionBody, **_: Any) -> Response:
        name = exception_name(body.control_id, body.resource_id)
        if self._acceptance(name) is not None:
            return 409, {"error": f"exception {name} exists; PUT to change it"}
        return self._accept(subject, body.control_id, body.resource_id, body, 201)

    def _exception_put(self, id: str, subject: ApiSubject, body: ExceptionUpdate, **_: Any
                       ) -> Response:  # noqa: A002
        current = self._acceptance(id)
        if current is None:
            return 404, {"error": f"no exception {id}"}
        return self._accept(subject, current.control_id, current.resource_id, body, 200)

    def _accept(self, subject: ApiSubject, control_id: str, resource_id: str,
                body: ExceptionBody | ExceptionUpdate, status: int) -> Response:
        record = ComplianceAttestation(
            kind="acceptance", control_id=control_id, resource_id=resource_id, by=subject.user,
            statement=body.reason, evidence_url=body.evidence_url, expires_at=body.expires_at,
            source=SOURCE)
        problems = exception_problems(record, "request", self.controls, self.clock())
        if problems:
            return 400, {"error": "invalid exception", "problems": problems}
        self.shared.attestations.apply(record)
        self._events.append(record)
        return status, self._exception_view(record)

    def _exception_delete(self, id: str, subject: ApiSubject, **_: Any) -> Response:  # noqa: A002
        current = self._acceptance(id)
        if current is None:
            return 404, {"error": f"no exception {id}"}
        kept = current.model_dump(exclude={"event_id", "event_time", "source", "correlation_id",
                                           "causation_id", "revoked", "by", "statement"})
        record = ComplianceAttestation(**kept, revoked=True, by=subject.user,
                                       statement="revoked through the control API",
                                       source=SOURCE)
        self.shared.attestations.apply(record)
        self._events.append(record)
        return 200, {"id": id, "deleted": True}


def _parsed(text: str) -> tuple[str, Runbook]:
    from runbooks.loader import load_text

    book = load_text(text, "request body")
    return book.id, book
