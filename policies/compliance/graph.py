"""The resource graph: companion resources joined to the parent an auditor names.

With AWS provider 4+ a bucket's encryption, versioning, logging, ACL, policy and public-access
block are separate resources; security groups, NACLs and NSGs take their rules from separate
resources too. The scanner judges the parent (the bucket, the security group) on the union of
its inline attributes and its companions, rendered in the inline (provider v3) shape, so a v3
plan and a v4 plan of the same intent get the same verdicts. A companion whose parent is not in
the document is judged on its own.

Links come from the plan's configuration references (`bucket = aws_s3_bucket.logs.id`) and,
where values are known (states, literal names), from matching values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.compliance.resources import UNKNOWN, Resource, is_unknown

__all__ = ["COMPANIONS", "Companion", "Subject", "build_subjects"]

Merge = Callable[[dict[str, Any], dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Companion:
    """A resource type that configures part of a parent resource."""

    type: str
    parents: tuple[str, ...]
    link: str | None
    """Companion attribute naming the parent (None: applies to every parent, account-wide)."""
    parent_keys: tuple[str, ...]
    """Parent attributes the link's value may equal (id, bucket name, ARN, ...)."""
    merge: Merge
    """Renders the companion into the parent config in the inline shape."""
    keys: tuple[str, ...]
    """Parent attributes the companion supersedes (dropped when only provider-computed)."""


@dataclass(frozen=True, slots=True)
class Subject:
    """What one verdict is about: a resource, with the companions merged into it."""

    resource: Resource
    members: dict[str, list[str]] = field(default_factory=dict)
    """Parent attribute → addresses of the companion resources that supplied it (evidence)."""


def _first(obj: Any, key: str) -> Any:
    value = obj.get(key) if isinstance(obj, dict) else None
    if is_unknown(value):
        return value
    return value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else {}


def _flag(value: Any, on: str = "Enabled") -> Any:
    return value if is_unknown(value) else value == on


def _sse(cfg: dict[str, Any], c: dict[str, Any]) -> None:
    cfg["server_side_encryption_configuration"] = [{"rule": c.get("rule", [])}]


def _versioning(cfg: dict[str, Any], c: dict[str, Any]) -> None:
    vc = _first(c, "versioning_configuration")
    if is_unknown(vc):
        cfg["versioning"] = [{"enabled": vc, "mfa_delete": vc}]
        return
    cfg["versioning"] = [{"enabled": _flag(vc.get("status")),
                          "mfa_delete": _flag(vc.get("mfa_delete"))}]


def _logging(cfg: dict[str, Any], c: dict[str, Any]) -> None:
    cfg["logging"] = [{"target_bucket": c.get("target_bucket"),
                       "target_prefix": c.get("target_prefix")}]


def _acl(cfg: dict[str, Any], c: dict[str, Any]) -> None:
    if "acl" in c:
        cfg["acl"] = c["acl"]
    grants = list(cfg.get("grant") or []) if isinstance(cfg.get("grant"), list) else []
    for policy in c.get("access_control_policy") or []:
        for g in (policy.get("grant") or []) if isinstance(policy, dict) else []:
            grantee = _first(g, "grantee")
            grants.append({"type": grantee.get("type"), "uri": grantee.get("uri"),
                           "permissions": [g.get("permission")]}
                          if isinstance(grantee, dict) and not is_unknown(grantee)
                          else dict(UNKNOWN))
    cfg["grant"] = grants


def _policy(cfg: dict[str, Any], c: dict[str, Any]) -> None:
    cfg["policy"] = c.get("policy")


_PAB_FLAGS = ("block_public_acls", "block_public_policy", "ignore_public_acls",
              "restrict_public_buckets")


def _pab(cfg: dict[str, Any], c: dict[str, Any]) -> None:
    current = cfg.get("public_access_block") or {}
    cfg["public_access_block"] = {f: _either(current.get(f), c.get(f)) for f in _PAB_FLAGS}


def _either(a: Any, b: Any) -> Any:
    # A flag set at bucket or account level holds; unknown only when neither is known true.
    if a is True or b is True:
        return True
    return a if is_unknown(a) else b if is_unknown(b) else bool(a or b)


def _sg_rule(cfg: dict[str, Any], c: dict[str, Any]) -> None:
    direction = c.get("type", "ingress")
    if direction not in ("ingress", "egress"):
        direction = "ingress"
    _append(cfg, direction, {k: c.get(k) for k in (
        "cidr_blocks", "ipv6_cidr_blocks", "from_port", "to_port", "protocol",
        "source_security_group_id", "self", "prefix_list_ids")})


def _vpc_rule(direction: str) -> Merge:
    def merge(cfg: dict[str, Any], c: dict[str, Any]) -> None:
        v4, v6 = c.get("cidr_ipv4"), c.get("cidr_ipv6")
        _append(cfg, direction, {
            "cidr_blocks": [v4] if v4 is not None else [],
            "ipv6_cidr_blocks": [v6] if v6 is not None else [],
            "from_port": c.get("from_port"), "to_port": c.get("to_port"),
            "protocol": c.get("ip_protocol"),
            "source_security_group_id": c.get("referenced_security_group_id")})
    return merge


def _nacl_rule(cfg: dict[str, Any], c: dict[str, Any]) -> None:
    egress = c.get("egress")
    direction = "egress" if egress is True else "ingress"
    _append(cfg, direction, {
        "action": c.get("rule_action"), "cidr_block": c.get("cidr_block"),
        "ipv6_cidr_block": c.get("ipv6_cidr_block"), "from_port": c.get("from_port"),
        "to_port": c.get("to_port"), "protocol": c.get("protocol"),
        "rule_no": c.get("rule_number")})


def _nsg_rule(cfg: dict[str, Any], c: dict[str, Any]) -> None:
    _append(cfg, "security_rule", dict(c))


def _network_rules(cfg: dict[str, Any], c: dict[str, Any]) -> None:
    cfg["network_rules"] = [{k: v for k, v in c.items() if k != "storage_account_id"}]


def _append(cfg: dict[str, Any], key: str, item: dict[str, Any]) -> None:
    current = cfg.get(key)
    cfg[key] = ([*current] if isinstance(current, list) else []) + [item]


_BUCKET = ("aws_s3_bucket",)
_SGS = ("aws_security_group", "aws_default_security_group")
COMPANIONS: tuple[Companion, ...] = (
    Companion("aws_s3_bucket_server_side_encryption_configuration", _BUCKET, "bucket",
              ("bucket", "id"), _sse, ("server_side_encryption_configuration",)),
    Companion("aws_s3_bucket_versioning", _BUCKET, "bucket", ("bucket", "id"), _versioning,
              ("versioning",)),
    Companion("aws_s3_bucket_logging", _BUCKET, "bucket", ("bucket", "id"), _logging,
              ("logging",)),
    Companion("aws_s3_bucket_acl", _BUCKET, "bucket", ("bucket", "id"), _acl, ("acl", "grant")),
    Companion("aws_s3_bucket_policy", _BUCKET, "bucket", ("bucket", "id"), _policy, ("policy",)),
    Companion("aws_s3_bucket_public_access_block", _BUCKET, "bucket", ("bucket", "id"), _pab,
              ("public_access_block",)),
    Companion("aws_s3_account_public_access_block", _BUCKET, None, (), _pab,
              ("public_access_block",)),
    Companion("aws_security_group_rule", _SGS, "security_group_id", ("id",), _sg_rule,
              ("ingress", "egress")),
    Companion("aws_vpc_security_group_ingress_rule", _SGS, "security_group_id", ("id",),
              _vpc_rule("ingress"), ("ingress",)),
    Companion("aws_vpc_security_group_egress_rule", _SGS, "security_group_id", ("id",),
              _vpc_rule("egress"), ("egress",)),
    Companion("aws_network_acl_rule", ("aws_network_acl",), "network_acl_id", ("id",),
              _nacl_rule, ("ingress", "egress")),
    Companion("azurerm_network_security_rule", ("azurerm_network_security_group",),
              "network_security_group_name", ("name",), _nsg_rule, ("security_rule",)),
    Companion("azurerm_storage_account_network_rules", ("azurerm_storage_account",),
              "storage_account_id", ("id",), _network_rules, ("network_rules",)),
    Companion("aws_kms_key_policy", ("aws_kms_key",), "key_id", ("id", "key_id", "arn"),
              _policy, ("policy",)),
)
_BY_TYPE = {c.type: c for c in COMPANIONS}


class _Index:
    """Parents by address, by index-less address and by identifying values."""

    def __init__(self, parents: Iterable[Resource]) -> None:
        self.by_address: dict[str, Resource] = {}
        self.by_base: dict[str, list[Resource]] = {}
        for p in parents:
            self.by_address[p.address] = p
            self.by_base.setdefault(p.base_address, []).append(p)

    def by_reference(self, companion: Resource, spec: Companion) -> Resource | None:
        for ref in companion.references.get(spec.link or "", ()):
            for candidate in _prefixes(ref):
                if candidate in self.by_address:
                    return self.by_address[candidate]
                found = self.by_base.get(candidate, [])
                if len(found) == 1:
                    return found[0]
                same = [p for p in found if p.address[len(p.base_address):]
                        == companion.address[len(companion.base_address):]]
                if len(same) == 1:  # count/for_each pairs: bucket[k] with its config[k]
                    return same[0]
        return None

    def by_value(self, companion: Resource, spec: Companion) -> Resource | None:
        value = companion.config.get(spec.link or "")
        if not isinstance(value, str) or not value:
            return None
        found = [p for p in self.by_address.values() if p.type in spec.parents
                 and any(p.config.get(k) == value for k in spec.parent_keys)
                 and _same_group(p, companion)]
        return found[0] if len(found) == 1 else None


def _same_group(parent: Resource, companion: Resource) -> bool:
    # Azure names are unique per resource group only.
    rg_p, rg_c = parent.config.get("resource_group_name"), companion.config.get(
        "resource_group_name")
    return not (isinstance(rg_p, str) and isinstance(rg_c, str) and rg_p != rg_c)


def _prefixes(ref: str) -> list[str]:
    """`module.m.aws_s3_bucket.b.id` → itself, `module.m.aws_s3_bucket.b`, ... (attribute cut)."""
    parts = ref.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 1, -1)]


def build_subjects(resources: Sequence[Resource]) -> list[Subject]:
    """Parents with their companions merged in, then every other resource as it is."""
    parent_types = {t for c in COMPANIONS for t in c.parents}
    index = _Index(r for r in resources if r.type in parent_types)
    linked: dict[str, list[tuple[Companion, Resource]]] = {}
    absorbed: set[str] = set()
    for r in resources:
        spec = _BY_TYPE.get(r.type)
        if spec is None:
            continue
        if spec.link is None:  # account-wide: joins every parent, and is judged itself too
            for p in index.by_address.values():
                if p.type in spec.parents:
                    linked.setdefault(p.address, []).append((spec, r))
            continue
        parent = index.by_reference(r, spec) or index.by_value(r, spec)
        if parent is not None and parent.type in spec.parents:
            linked.setdefault(parent.address, []).append((spec, r))
            absorbed.add(r.address)
    return [_subject(r, linked.get(r.address, [])) if r.type in parent_types else Subject(r)
            for r in resources if r.address not in absorbed]


def _subject(parent: Resource, companions: list[tuple[Companion, Resource]]) -> Subject:
    cfg = dict(parent.config)
    members: dict[str, list[str]] = {}
    supplied = {k for spec, _ in companions for k in spec.keys}
    for spec in COMPANIONS:
        if parent.type not in spec.parents:
            continue
        for key in spec.keys:
            # A provider-computed inline value (unknown, not set in the configuration) is
            # superseded by the companion resources: absent them, nothing will set it.
            if (key not in supplied and is_unknown(cfg.get(key))
                    and parent.configured is not None and key not in parent.configured):
                del cfg[key]
    for spec, companion in companions:
        before = dict(cfg)
        spec.merge(cfg, companion.config)
        for key in spec.keys:
            if key in cfg and cfg[key] is not before.get(key):
                members.setdefault(key, []).append(companion.address)
    resource = Resource(parent.address, parent.type, cfg, parent.configured, parent.references)
    return Subject(resource, members)
