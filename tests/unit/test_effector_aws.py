"""The aws effector (boto3) against moto in server mode: Auto Scaling desired capacity, security
group ingress revoke and S3 default encryption, each read back with its describe call; a proxy
that swallows the change (answers success, forwards nothing) makes the step fail."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from agents.executor import Executor, ExecutorConfig, InMemoryJournal
from runbooks.effectors import AwsConfig, EffectorsConfig
from runbooks.loader import Library
from runbooks.runtime import EngineConfig
from schemas import Event, Outcome
from tests.fakes.aws_proxy import ProxyState, moto_behind_proxy
from tests.unit.test_runbooks_support import approved

ASG = {"scale_up": "asg-scale-up", "scale_down": "asg-scale-down"}
REGION = "eu-west-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, ProxyState]]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(key, value)
    with moto_behind_proxy() as found:
        yield found


def client(url: str, service: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=url)


def run(url: str, action_type: str, params: dict[str, Any], resource_id: str
        ) -> tuple[Any, list[Event]]:
    events: list[Event] = []
    runbooks = {**ExecutorConfig().runbooks, **ASG}
    engine = EngineConfig(effectors=EffectorsConfig(aws=AwsConfig(region=REGION,
                                                                  endpoint_url=url)))
    ex = Executor(ExecutorConfig(runbooks=runbooks, engine=engine), journal=InMemoryJournal(),
                  emit=events.append)
    action = approved(Library(), action_type, params, runbooks=runbooks, resource_id=resource_id)
    return asyncio.run(ex.handle(action)), events


def failed_step(events: list[Event]) -> Outcome:
    return [e for e in events if isinstance(e, Outcome) and e.scope == "step"
            and e.status == "failed"][-1]


def auto_scaling_group(url: str) -> None:
    ec2 = client(url, "ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    asg = client(url, "autoscaling")
    asg.create_launch_configuration(LaunchConfigurationName="lc", ImageId=image,
                                    InstanceType="t3.micro")
    asg.create_auto_scaling_group(AutoScalingGroupName="web-asg", LaunchConfigurationName="lc",
                                  MinSize=1, MaxSize=10, DesiredCapacity=2,
                                  AvailabilityZones=[f"{REGION}a"])


def desired(url: str) -> int:
    groups = client(url, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["web-asg"])["AutoScalingGroups"]
    return int(groups[0]["DesiredCapacity"])


def test_auto_scaling_desired_capacity_up_down_and_bounds(aws: tuple[str, ProxyState]) -> None:
    url, _ = aws
    auto_scaling_group(url)
    result, events = run(url, "scale_up", {"delta": 3}, "web-asg")
    assert result.status == "succeeded", result.error
    assert desired(url) == 5
    [step] = [e for e in events if isinstance(e, Outcome) and e.step_id == "capacity"
              and e.status == "succeeded"]
    assert step.output["observed"] == {"DesiredCapacity": 5} and step.output["verified"]
    assert run(url, "scale_down", {"delta": 4}, "web-asg")[0].status == "succeeded"
    assert desired(url) == 1
    result, _ = run(url, "scale_down", {"delta": 1}, "web-asg")  # below MinSize
    assert result.status == "failed" and "outside [1, 10]" in (result.error or "")
    assert desired(url) == 1


def test_a_swallowed_capacity_change_gives_failed(aws: tuple[str, ProxyState]) -> None:
    url, proxy = aws
    auto_scaling_group(url)
    proxy.swallow.add("SetDesiredCapacity")
    result, events = run(url, "scale_up", {"delta": 1}, "web-asg")
    assert result.status == "failed"
    assert "SetDesiredCapacity" in proxy.seen and desired(url) == 2
    assert "DesiredCapacity is 2 after the call, expected 3" in (failed_step(events).error or "")


def open_group(url: str) -> str:
    ec2 = client(url, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return str(group)


def ingress(url: str, group: str) -> set[tuple[int, str]]:
    perms = client(url, "ec2").describe_security_groups(GroupIds=[group])["SecurityGroups"][0][
        "IpPermissions"]
    return {(p["FromPort"], r["CidrIp"]) for p in perms for r in p.get("IpRanges", [])}


def test_public_ssh_is_revoked_and_https_stays(aws: tuple[str, ProxyState]) -> None:
    url, _ = aws
    group = open_group(url)
    result, _ = run(url, "run_runbook", {"runbook": "aws-revoke-public-ssh"}, group)
    assert result.status == "succeeded", result.error
    assert ingress(url, group) == {(443, "0.0.0.0/0")}
    assert run(url, "run_runbook", {"runbook": "aws-revoke-public-ssh"}, group)[0].ok  # no-op


def test_a_swallowed_revoke_gives_failed(aws: tuple[str, ProxyState]) -> None:
    url, proxy = aws
    group = open_group(url)
    proxy.swallow.add("RevokeSecurityGroupIngress")
    result, events = run(url, "run_runbook", {"runbook": "aws-revoke-public-ssh"}, group)
    assert result.status == "failed" and (22, "0.0.0.0/0") in ingress(url, group)
    assert "still allows" in (failed_step(events).error or "")


def test_bucket_default_encryption_is_set_and_checked(aws: tuple[str, ProxyState]) -> None:
    url, proxy = aws
    s3 = client(url, "s3")
    s3.create_bucket(Bucket="audit-logs", CreateBucketConfiguration={
        "LocationConstraint": REGION})
    s3.create_bucket(Bucket="other-logs", CreateBucketConfiguration={
        "LocationConstraint": REGION})
    s3.delete_bucket_encryption(Bucket="other-logs")  # moto defaults new buckets to AES256
    result, _ = run(url, "run_runbook", {"runbook": "aws-s3-encrypt"}, "audit-logs")
    assert result.status == "succeeded", result.error
    rule = s3.get_bucket_encryption(Bucket="audit-logs")["ServerSideEncryptionConfiguration"]
    assert rule["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    proxy.swallow.add("PutBucketEncryption")
    result, events = run(url, "run_runbook", {"runbook": "aws-s3-encrypt"}, "other-logs")
    assert result.status == "failed"
    assert "default encryption is unset after the call" in (failed_step(events).error or "")


@pytest.mark.parametrize("resource_id", ["sg-../../x", "web; rm -rf /", "SG-12345678"])
def test_ids_are_checked_before_any_call(aws: tuple[str, ProxyState], resource_id: str) -> None:
    url, proxy = aws
    result, events = run(url, "run_runbook", {"runbook": "aws-revoke-public-ssh"}, resource_id)
    assert result.status == "failed" and proxy.seen == []
    assert "is not a valid security group id" in (failed_step(events).error or "")
