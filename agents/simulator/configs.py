"""Configuration of the simulated resources: baselines, injected drift and compliance violations."""

from __future__ import annotations

import copy
import random
from typing import Any

__all__ = ["DRIFTS", "VIOLATIONS", "ConfigBook", "network_baseline", "vm_baseline"]


def vm_baseline(service: str, vm_id: str, host: int) -> dict[str, Any]:
    """The declared configuration of a service's VM."""
    return {
        "service": service,
        "name": vm_id,
        "size": "m5.large",
        "image": "novacron/app:1.4.2",
        "host": f"host-{host}",
        "security_groups": [{"port": 443, "cidr": "10.0.0.0/8", "protocol": "tcp"}],
        "disk_encrypted": True,
        "public_ip": False,
        "monitoring": True,
        "tags": {"service": service, "owner": "platform", "env": "sim"},
    }


def network_baseline(service: str) -> dict[str, Any]:
    """The declared configuration of a service's network (load balancer and ingress)."""
    return {
        "service": service,
        "ingress": [{"port": 443, "cidr": "0.0.0.0/0", "protocol": "tcp"}],
        "tls": True,
        "min_tls_version": "1.2",
        "public_access": False,
        "flow_logs": True,
    }


def _open_ssh(config: dict[str, Any]) -> None:
    config.setdefault("security_groups", []).append(
        {"port": 22, "cidr": "0.0.0.0/0", "protocol": "tcp"})


def _resize(config: dict[str, Any]) -> None:
    config["size"] = "m5.2xlarge"


def _hotfix_image(config: dict[str, Any]) -> None:
    config["image"] = "novacron/app:1.4.3-hotfix"


def _drop_monitoring(config: dict[str, Any]) -> None:
    config["monitoring"] = False


DRIFTS = {"open_ssh": _open_ssh, "resize": _resize, "hotfix_image": _hotfix_image,
          "monitoring_off": _drop_monitoring}
"""Drift a person makes by hand (console), by name."""

VIOLATIONS = {
    "encryption_off": ("novacron_vm", "disk_encrypted", False),
    "public_ip_on": ("novacron_vm", "public_ip", True),
    "tls_off": ("novacron_network", "tls", False),
    "public_access_on": ("novacron_network", "public_access", True),
    "flow_logs_off": ("novacron_network", "flow_logs", False),
}
"""Compliance violations by name: (resource type, field, bad value)."""


class ConfigBook:
    """Current and declared configuration of every simulated resource (id → type, config)."""

    def __init__(self) -> None:
        self.current: dict[str, tuple[str, dict[str, Any]]] = {}
        self.baseline: dict[str, dict[str, Any]] = {}

    def create(self, resource_id: str, resource_type: str, config: dict[str, Any]) -> None:
        self.current[resource_id] = (resource_type, config)
        self.baseline[resource_id] = copy.deepcopy(config)

    def delete(self, resource_id: str) -> None:
        self.current.pop(resource_id, None)
        self.baseline.pop(resource_id, None)

    def drift(self, rng: random.Random, service: str) -> tuple[str, str] | None:
        """Apply a random hand-made drift to one of the service's VMs: (resource id, kind)."""
        vms = self._of(service, "novacron_vm")
        if not vms:
            return None
        resource_id = rng.choice(vms)
        kind = rng.choice(sorted(DRIFTS))
        DRIFTS[kind](self.current[resource_id][1])
        return resource_id, kind

    def violate(self, rng: random.Random, service: str) -> tuple[str, str] | None:
        """Inject a random compliance violation into one of the service's resources."""
        kind = rng.choice(sorted(VIOLATIONS))
        resource_type, key, value = VIOLATIONS[kind]
        candidates = self._of(service, resource_type)
        if not candidates:
            return None
        resource_id = rng.choice(candidates)
        self.current[resource_id][1][key] = value
        return resource_id, kind

    def restore(self, resource_id: str) -> bool:
        """Put a resource back to its declared configuration (revert / remediate)."""
        if resource_id not in self.current:
            return False
        resource_type, _ = self.current[resource_id]
        self.current[resource_id] = (resource_type, copy.deepcopy(self.baseline[resource_id]))
        return True

    def accept(self, resource_id: str) -> bool:
        """Make the current configuration the new baseline (accept drift)."""
        if resource_id not in self.current:
            return False
        self.baseline[resource_id] = copy.deepcopy(self.current[resource_id][1])
        return True

    def of_service(self, service: str) -> list[str]:
        return sorted(r for r, (_, c) in self.current.items() if c.get("service") == service)

    def _of(self, service: str, resource_type: str) -> list[str]:
        return [r for r in self.of_service(service) if self.current[r][0] == resource_type]
