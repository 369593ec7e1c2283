"""`aws` steps (boto3): Auto Scaling desired capacity, security-group ingress revoke, S3 default
encryption; each call is followed by the matching describe call (the post-condition).

    action: set_desired_capacity
      parameters: {group: ${resource_id}, capacity: ${n} | add: ${d} | remove: ${d}, minimum,
                   maximum}
    action: revoke_ingress
      parameters: {group_id: ${group_id}, rules: [{protocol: tcp, port: 22, cidr: 0.0.0.0/0}]}
    action: put_bucket_encryption
      parameters: {bucket: ${resource_id}, algorithm: AES256 | aws:kms, kms_key_id: …}

Region, endpoint (a moto server, LocalStack) and timeouts come from `effectors.aws`; credentials
from boto3's default chain (environment, shared files, the pod's role), never from events.
Names, ids, ports and CIDRs are checked before any call.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

from runbooks.effectors import AwsConfig
from runbooks.runtime import StepContext
from runbooks.steps.gitrepo import PostConditionFailed
from runbooks.steps.kubernetes import wanted_count
from schemas.errors import BackendUnavailable, NonRetryableError, RetryableError

__all__ = ["AWS_ACTIONS", "aws_client", "run_aws"]

AWS_ACTIONS = frozenset({"set_desired_capacity", "revoke_ingress", "put_bucket_encryption"})
"""What an aws step can do (its `action`)."""
_ASG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@+=,-]{0,254}")
_SG = re.compile(r"sg-[0-9a-f]{8,17}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_KMS = re.compile(r"[A-Za-z0-9:/_-]{1,2048}")
_RETRY_CODES = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "SlowDown",
                "ServiceUnavailable", "InternalError", "InternalFailure"}


def aws_client(config: AwsConfig, service: str) -> Any:
    """A boto3 client for one service with the configured region, endpoint and timeouts."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service, region_name=config.region, endpoint_url=config.endpoint_url,
        config=Config(connect_timeout=config.timeout, read_timeout=config.timeout,
                      retries={"max_attempts": 2, "mode": "standard"}))


async def _call(ctx: StepContext, fn: Callable[[], Any]) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    try:
        return await asyncio.to_thread(fn)
    except ClientError as exc:
        err = exc.response.get("Error", {})
        what = f"step {ctx.step.id}: AWS {err.get('Code')}: {ctx.clip(str(err.get('Message')))}"
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if err.get("Code") in _RETRY_CODES or status >= 500:
            raise RetryableError(what) from exc
        raise NonRetryableError(what) from exc
    except EndpointConnectionError as exc:
        raise BackendUnavailable(f"step {ctx.step.id}: AWS endpoint unreachable") from exc
    except BotoCoreError as exc:  # no credentials, bad region, …
        raise NonRetryableError(f"step {ctx.step.id}: AWS client error: {exc}") from exc


def _checked(value: Any, pattern: re.Pattern[str], what: str, ctx: StepContext) -> str:
    text = str(value or "")
    if not pattern.fullmatch(text):
        raise NonRetryableError(f"step {ctx.step.id}: {ctx.redactor.text(text)[:80]!r} is not a "
                                f"valid {what}")
    return text


def _int(value: Any, what: str, ctx: StepContext) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise NonRetryableError(f"step {ctx.step.id}: {what} must be an integer, not {value!r}")
    return value


async def _desired_capacity(ctx: StepContext) -> dict[str, Any]:
    group = _checked(ctx.param("group"), _ASG, "Auto Scaling group name", ctx)
    asg = aws_client(ctx.config.effectors.aws, "autoscaling")

    async def describe() -> dict[str, Any]:
        found = await _call(ctx, lambda: asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=[group])["AutoScalingGroups"])
        if not found:
            raise NonRetryableError(f"step {ctx.step.id}: no Auto Scaling group {group!r}")
        return dict(found[0])

    before = await describe()
    current = int(before["DesiredCapacity"])
    wanted = wanted_count(ctx, current, "capacity")
    low = max(int(before["MinSize"]), int(ctx.param("minimum", 0)))
    high = min(int(before["MaxSize"]), int(ctx.param("maximum", before["MaxSize"])))
    if not low <= wanted <= high:
        raise NonRetryableError(f"step {ctx.step.id}: {group} desired capacity {wanted} is "
                                f"outside [{low}, {high}]")
    await _call(ctx, lambda: asg.set_desired_capacity(AutoScalingGroupName=group,
                                                      DesiredCapacity=wanted, HonorCooldown=False))
    observed = int((await describe())["DesiredCapacity"])
    if observed != wanted:
        raise PostConditionFailed(f"step {ctx.step.id}: {group} DesiredCapacity is {observed} "
                                  f"after the call, expected {wanted}")
    return {"operation": "set_desired_capacity", "group": group, "from": current, "to": wanted,
            "observed": {"DesiredCapacity": observed}, "verified": True}


def _rule(raw: Any, ctx: StepContext) -> tuple[str, int, int, str]:
    if not isinstance(raw, Mapping):
        raise NonRetryableError(f"step {ctx.step.id}: each rule is {{protocol, port, cidr}}")
    protocol = str(raw.get("protocol", "tcp")).lower()
    if protocol not in ("tcp", "udp", "icmp", "-1"):
        raise NonRetryableError(f"step {ctx.step.id}: protocol {protocol!r} is not tcp/udp/icmp/-1")
    low = _int(raw.get("port", raw.get("from_port", -1)), "port", ctx)
    high = _int(raw.get("to_port", low), "to_port", ctx)
    if not (-1 <= low <= high <= 65535):
        raise NonRetryableError(f"step {ctx.step.id}: port range {low}-{high} is invalid")
    try:
        cidr = str(ipaddress.ip_network(str(raw.get("cidr", "")), strict=False))
    except ValueError as exc:
        raise NonRetryableError(f"step {ctx.step.id}: {exc}") from exc
    return protocol, low, high, cidr


def _permission(rule: tuple[str, int, int, str]) -> dict[str, Any]:
    protocol, low, high, cidr = rule
    key = "Ipv6Ranges" if ":" in cidr else "IpRanges"
    inner = "CidrIpv6" if ":" in cidr else "CidrIp"
    return {"IpProtocol": protocol, "FromPort": low, "ToPort": high, key: [{inner: cidr}]}


def _present(group: Mapping[str, Any], rule: tuple[str, int, int, str]) -> bool:
    protocol, low, high, cidr = rule
    for perm in group.get("IpPermissions") or []:
        if (perm.get("IpProtocol"), perm.get("FromPort", -1), perm.get("ToPort", -1)) != (
                protocol, low, high):
            continue
        cidrs = [r.get("CidrIp") for r in perm.get("IpRanges") or []]
        cidrs += [r.get("CidrIpv6") for r in perm.get("Ipv6Ranges") or []]
        if cidr in cidrs:
            return True
    return False


async def _revoke_ingress(ctx: StepContext) -> dict[str, Any]:
    group_id = _checked(ctx.param("group_id"), _SG, "security group id", ctx)
    rules = [_rule(r, ctx) for r in ctx.param("rules") or []]
    if not rules:
        raise NonRetryableError(f"step {ctx.step.id}: revoke_ingress needs parameters.rules")
    ec2 = aws_client(ctx.config.effectors.aws, "ec2")

    async def describe() -> dict[str, Any]:
        groups = await _call(ctx, lambda: ec2.describe_security_groups(GroupIds=[group_id]))
        return dict(groups["SecurityGroups"][0])

    present = [r for r in rules if _present(await describe(), r)]
    if present:
        await _call(ctx, lambda: ec2.revoke_security_group_ingress(
            GroupId=group_id, IpPermissions=[_permission(r) for r in present]))
    left = [r for r in rules if _present(await describe(), r)]
    if left:
        raise PostConditionFailed(f"step {ctx.step.id}: {group_id} still allows {left} after "
                                  "the revoke")
    return {"operation": "revoke_ingress", "group_id": group_id,
            "revoked": [list(r) for r in present], "verified": True}


async def _bucket_default(ctx: StepContext, s3: Any, bucket: str) -> dict[str, Any]:
    """The bucket's default encryption ({} when it has none: S3 answers 404 for that)."""
    from botocore.exceptions import ClientError

    def read() -> dict[str, Any]:
        try:
            got = s3.get_bucket_encryption(Bucket=bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == \
                    "ServerSideEncryptionConfigurationNotFoundError":
                return {}
            raise
        rules = got.get("ServerSideEncryptionConfiguration", {}).get("Rules") or [{}]
        return dict(rules[0].get("ApplyServerSideEncryptionByDefault", {}))

    return dict(await _call(ctx, read))


async def _bucket_encryption(ctx: StepContext) -> dict[str, Any]:
    bucket = _checked(ctx.param("bucket"), _BUCKET, "bucket name", ctx)
    algorithm = str(ctx.param("algorithm") or "AES256")
    if algorithm not in ("AES256", "aws:kms", "aws:kms:dsse"):
        raise NonRetryableError(f"step {ctx.step.id}: algorithm {algorithm!r} is not AES256 or "
                                "aws:kms")
    default: dict[str, Any] = {"SSEAlgorithm": algorithm}
    if algorithm != "AES256" and ctx.param("kms_key_id"):
        default["KMSMasterKeyID"] = _checked(ctx.param("kms_key_id"), _KMS, "KMS key id", ctx)
    s3 = aws_client(ctx.config.effectors.aws, "s3")
    config = {"Rules": [{"ApplyServerSideEncryptionByDefault": default}]}
    await _call(ctx, lambda: s3.put_bucket_encryption(
        Bucket=bucket, ServerSideEncryptionConfiguration=config))
    observed = await _bucket_default(ctx, s3, bucket)
    if observed.get("SSEAlgorithm") != algorithm:
        raise PostConditionFailed(f"step {ctx.step.id}: bucket {bucket} default encryption is "
                                  f"{observed or 'unset'} after the call, expected {algorithm}")
    return {"operation": "put_bucket_encryption", "bucket": bucket, "observed": observed,
            "verified": True}


async def run_aws(ctx: StepContext) -> dict[str, Any]:
    """One AWS change and its describe call."""
    op = str(ctx.step.action or "")
    runner = {"set_desired_capacity": _desired_capacity, "revoke_ingress": _revoke_ingress,
              "put_bucket_encryption": _bucket_encryption}.get(op)
    if runner is None:
        raise NonRetryableError(f"step {ctx.step.id}: unknown aws action {op!r} "
                                f"(known: {', '.join(sorted(AWS_ACTIONS))})")
    return await runner(ctx)
