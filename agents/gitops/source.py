"""What a commit declares: the five folders of a config repository read from their text.

Input is the files of one commit as `{path: text}` (paths relative to the configured folder),
so reading is pure and every problem is collected, with its file, instead of stopping at the
first. YAML goes through the runbook loader's bounded parser (a repository is not trusted to be
small or sane).

    policies/**/*.rego        one module each (id = package); `*_test.rego` are its tests;
                              `<module>.rego.sig` holds an ed25519 signature of its content hash
    runbooks/**/*.yaml|yml    one runbook each
    baselines/**/*.yaml|json  baselines ({resource_id, resource_type, config} or a list), or
                              Terraform state/plan JSON
    ignores/**/*.yaml         `ignores:` list of drift ignore rules
    exceptions/**/*.yaml      `exceptions:` list of risk acceptances (control_id, resource_id,
                              reason, evidence_url, expires_at)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pydantic
import yaml

from agents.drift.baseline import parse_baseline_documents
from agents.drift.rules import IgnoreRule
from agents.drift.terraform import detect_format, terraform_baselines
from agents.gitops.objects import (
    GitObject,
    baseline_digest,
    exception_digest,
    exception_name,
    ignore_digest,
    policy_digest,
)
from policies.source import content_hash, metadata_of, package_of
from runbooks.loader import LIMITS, safe_yaml
from runbooks.loader import load_text as load_runbook
from runbooks.model import ValidationError as RunbookInvalid
from schemas import DesiredState, PolicyVersion
from schemas.attestations import ComplianceAttestation
from schemas.errors import RejectedError

__all__ = ["FOLDERS", "RepoContent", "read_repository"]

FOLDERS = ("policies", "runbooks", "baselines", "ignores", "exceptions")
"""The folders a config repository may hold (anything else in it is ignored)."""
SOURCE = "novacron.gitops"
_YAML = (".yaml", ".yml")


@dataclass
class RepoContent:
    """The objects of one commit by ref, the Rego test files, and every problem found."""

    objects: dict[str, GitObject] = field(default_factory=dict)
    tests: dict[str, str] = field(default_factory=dict)
    """`*_test.rego` files: path → text (run by the host helper with policies/testing.py)."""
    problems: list[str] = field(default_factory=list)

    def add(self, obj: GitObject) -> None:
        """Keep an object; a second object with the same ref is a problem, not a silent win."""
        first = self.objects.get(obj.ref)
        if first is not None:
            self.problems.append(f"{obj.source}: {obj.ref} is also declared in {first.source}")
            return
        self.objects[obj.ref] = obj

    def of_kind(self, kind: str) -> list[GitObject]:
        return [o for o in self.objects.values() if o.kind == kind]


def read_repository(files: Mapping[str, str], *, author: str = "unknown",
                    commit: str | None = None) -> RepoContent:
    """Every object the files declare, with problems collected per file."""
    content = RepoContent()
    for path in sorted(files):
        folder = path.split("/", 1)[0]
        try:
            _read_one(content, folder, path, files, author, commit)
        except RejectedError as exc:
            content.problems.append(str(exc))
    return content


def _read_one(content: RepoContent, folder: str, path: str, files: Mapping[str, str],
              author: str, commit: str | None) -> None:
    text = files[path]
    if folder == "policies" and path.endswith("_test.rego"):
        content.tests[path] = text
    elif folder == "policies" and path.endswith(".rego"):
        content.add(_policy(path, text, files.get(path + ".sig")))
    elif folder == "runbooks" and path.endswith(_YAML):
        content.add(_runbook(path, text))
    elif folder == "baselines" and path.endswith((*_YAML, ".json")):
        for obj in _baselines(path, text, author, commit):
            content.add(obj)
    elif folder == "ignores" and path.endswith(_YAML):
        for obj in _ignores(path, text, author):
            content.add(obj)
    elif folder == "exceptions" and path.endswith(_YAML):
        for obj in _exceptions(path, text, author):
            content.add(obj)


def _document(path: str, text: str) -> Any:
    try:
        return orjson.loads(text) if path.endswith(".json") else safe_yaml(text, LIMITS)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise RejectedError(f"{path}: not valid {'JSON' if path.endswith('.json') else 'YAML'}: "
                            f"{str(exc).splitlines()[0]}") from exc
    except Exception as exc:  # the bounded parser's refusals (too big, too deep, aliases)
        raise RejectedError(f"{path}: refused: {exc}") from exc


def _policy(path: str, rego: str, signature: str | None) -> GitObject:
    try:
        package = package_of(rego)
        meta = metadata_of(rego)
    except (RejectedError, yaml.YAMLError) as exc:
        raise RejectedError(f"{path}: {exc}") from exc
    custom: dict[str, Any] = meta["custom"] if isinstance(meta.get("custom"), dict) else {}
    name = str(meta.get("title") or path.rsplit("/", 1)[-1].removesuffix(".rego"))
    fields = {"policy_type": str(custom.get("policy_type", "access")),
              "enforcement": str(custom.get("enforcement", "block"))}
    try:
        draft = PolicyVersion(policy_id=package, name=name[:256], rego=rego, source=SOURCE,
                              content_hash=content_hash(rego), signature=_sig(signature),
                              **fields)  # type: ignore[arg-type]
    except pydantic.ValidationError as exc:
        raise RejectedError(f"{path}: {_first(exc)}") from exc
    digest = policy_digest(rego, draft.enforcement, draft.policy_type, draft.name)
    return GitObject("policy", package, digest, path, draft)


def _sig(text: str | None) -> str | None:
    return text.strip() or None if text is not None else None


def _runbook(path: str, text: str) -> GitObject:
    try:
        book = load_runbook(text, path)
    except RunbookInvalid as exc:
        raise RejectedError("; ".join(exc.problems[:5])) from exc
    return GitObject("runbook", book.id, book.content_hash, path, (book, text))


def _baselines(path: str, text: str, author: str, commit: str | None) -> Iterable[GitObject]:
    doc = _document(path, text)
    if isinstance(doc, dict) and detect_format(doc) is not None:
        states = terraform_baselines(doc, author=author, revision=commit)
    else:
        states = [DesiredState(resource_id=rid, resource_type=rtype, config=config, origin="git",
                               revision=commit, author=author[:256], source=SOURCE)
                  for rid, rtype, config, deleted in _parsed_baselines(doc, path) if not deleted]
    for s in states:
        yield GitObject("baseline", s.resource_id, baseline_digest(s.resource_type, s.config),
                        path, s)


def _parsed_baselines(doc: Any, path: str) -> list[tuple[str, str, dict[str, Any], bool]]:
    try:
        return parse_baseline_documents(doc, path)
    except pydantic.ValidationError as exc:
        raise RejectedError(f"{path}: {_first(exc)}") from exc


def _items(path: str, text: str, key: str) -> list[Any]:
    doc = _document(path, text) or []
    items = doc.get(key, []) if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise RejectedError(f"{path}: expected a list under `{key}:`")
    return items


def _ignores(path: str, text: str, author: str) -> Iterable[GitObject]:
    for n, item in enumerate(_items(path, text, "ignores")):
        try:
            rule = IgnoreRule.model_validate({"created_by": f"gitops:{author}"[:256],
                                              **(item if isinstance(item, dict) else {})})
        except pydantic.ValidationError as exc:
            raise RejectedError(f"{path}[{n}]: invalid ignore rule: {_first(exc)}") from exc
        yield GitObject("ignore", rule.rule_id, ignore_digest(rule), path, rule)


class _ExceptionFile(pydantic.BaseModel):
    """One entry of `exceptions:` (a risk acceptance)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    control_id: str
    resource_id: str = "*"
    reason: str
    evidence_url: str = ""
    expires_at: datetime


def _exceptions(path: str, text: str, author: str) -> Iterable[GitObject]:
    for n, item in enumerate(_items(path, text, "exceptions")):
        try:
            entry = _ExceptionFile.model_validate(item)
            record = ComplianceAttestation(
                kind="acceptance", control_id=entry.control_id, resource_id=entry.resource_id,
                by=author[:256] or "gitops", statement=entry.reason,
                evidence_url=entry.evidence_url, expires_at=entry.expires_at, source=SOURCE)
        except pydantic.ValidationError as exc:
            raise RejectedError(f"{path}[{n}]: invalid exception: {_first(exc)}") from exc
        digest = exception_digest(record.control_id, record.resource_id, record.statement,
                                  record.evidence_url, record.expires_at)
        yield GitObject("exception", exception_name(record.control_id, record.resource_id),
                        digest, path, record)


def _first(exc: pydantic.ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])
