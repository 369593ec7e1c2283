"""No shipped runbook or deployment file fakes its effects; every action type has a runbook that
acts through an effector; effector steps take event data only bounded and never as a target."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbooks.loader import Library
from runbooks.model import ValidationError
from runbooks.resolve import DEFAULT_RUNBOOKS
from schemas import ACTION_TYPES
from tests.unit.test_runbooks_support import book

ROOT = Path(__file__).parents[2]
SHIPPED = ("runbooks/library", "deploy/compose", "deploy/k8s")
EFFECTORS = {"git", "terraform", "kubernetes", "aws", "kafka", "argocd", "http", "command"}


def test_no_shipped_runbook_compose_file_or_manifest_references_fake_infra() -> None:
    files = [p for d in SHIPPED for p in (ROOT / d).rglob("*") if p.is_file()]
    assert len(files) > 20  # the folders are where we think they are
    offenders = [str(p.relative_to(ROOT)) for p in files
                 if "fake_infra" in p.read_text(errors="replace")]
    assert offenders == []


def test_every_action_type_maps_to_a_runbook_that_implements_it_with_an_effector() -> None:
    lib = Library()
    for action_type in ACTION_TYPES:
        if action_type in ("no_action", "run_runbook"):
            continue
        runbook = lib.get(DEFAULT_RUNBOOKS[action_type])
        assert action_type in runbook.metadata.implements, action_type
        kinds = {s.kind for s in runbook.steps}
        assert kinds & EFFECTORS - {"http", "command"}, (action_type, kinds)


def test_the_runbooks_table_in_the_docs_names_every_action_type() -> None:
    text = (ROOT / "docs" / "runbooks.md").read_text()
    table = text.split("## What each action type does", 1)[1].split("\n## ", 1)[0]
    for action_type in ACTION_TYPES:
        if action_type != "no_action":
            assert f"`{action_type}`" in table, action_type


@pytest.mark.parametrize(("step", "param", "message"), [
    ({"id": "g", "action_type": "git", "parameters": {
        "repo": "/r", "file": "x.yaml", "changes": [{"op": "set", "path": "/a", "value": "${v}"}]}},
     {"type": "string", "overridable": True}, "a string needs a pattern or an enum"),
    ({"id": "g", "action_type": "git", "parameters": {
        "repo": "/r", "file": "x.yaml", "message": "set ${v}",
        "changes": [{"op": "set", "path": "/a", "value": 1}]}},
     {"type": "integer", "minimum": 0, "overridable": True}, "needs a minimum and a maximum"),
    ({"id": "t", "action_type": "terraform", "parameters": {
        "dir": "/w", "variables": {"names": "${v}"}}},
     {"type": "list", "overridable": True}, "a list needs max_items"),
    ({"id": "a", "action_type": "aws", "action": "revoke_ingress", "parameters": {
        "group_id": "sg-12345678", "rules": "${v}"}},
     {"type": "list", "items": "object", "max_items": 3, "overridable": True},
     "structured items never reach a aws call"),
])
def test_event_data_reaching_an_effector_must_be_bounded(step: dict[str, object],
                                                         param: dict[str, object],
                                                         message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        book([step], id="x", parameters={"v": param})
    fixed = {k: v for k, v in param.items() if k != "overridable"}
    book([step], id="x", parameters={"v": {**fixed, "default": _default(param)}})  # file-fixed


def _default(param: dict[str, object]) -> object:
    return {"string": "a", "integer": 1, "list": []}[str(param["type"])]


@pytest.mark.parametrize(("step", "where"), [
    ({"id": "g", "action_type": "git", "parameters": {
        "repo": "${v}", "file": "x.yaml", "changes": [{"op": "set", "path": "/a", "value": 1}]}},
     "parameters.repo"),
    ({"id": "g", "action_type": "git", "parameters": {
        "repo": "/r", "file": "${v}.yaml", "changes": [{"op": "set", "path": "/a", "value": 1}]}},
     "parameters.file"),
    ({"id": "t", "action_type": "terraform", "parameters": {"dir": "/w", "targets": ["${v}"]}},
     "parameters.targets"),
    ({"id": "k", "action_type": "kubernetes", "action": "restart",
      "parameters": {"name": "x", "namespace": "${v}"}}, "parameters.namespace"),
    ({"id": "a", "action_type": "aws", "action": "put_bucket_encryption",
      "parameters": {"bucket": "${v}"}}, "parameters.bucket"),
])
def test_event_data_never_chooses_an_effector_target(step: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError, match=f"used as {where}"):
        book([step], id="x", parameters={"v": {"type": "string", "pattern": "^[a-z]+$",
                                               "overridable": True}})
