"""What each action does to the simulated world, with its delay (documented in docs/decisions.md).

- no_action: nothing.
- scale_up: `params.delta` (default 1) new VMs, billed at once, serving after vm_boot_ticks.
- scale_down: removes `params.delta` VMs (booting ones first, then the newest), at once.
- migrate_vm: live-migrates one VM off the hottest host to the coolest one; the VM is degraded
  and billed twice for migration_ticks.
- rebalance_load: from the next tick, balancer weights follow each VM's capacity.
- adjust_policy: throttles for throttle_ticks: requests above throttle_utilisation of capacity
  are rejected fast (errors, but bounded latency).
- enable_feature: the cache cuts demand by cache_load_reduction (warming up over
  cache_warmup_ticks) at cache_cost_per_hour.
- disable_feature: the cache is off from the next tick, its cost stops.

Config actions for the drift/compliance demo: revert_drift / remediate_compliance restore the
declared configuration, accept_drift makes the current one the baseline.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import numpy as np

from agents.simulator.configs import ConfigBook
from agents.simulator.service import VM, ServiceState
from agents.simulator.simconfig import SimConfig
from schemas import Action
from schemas.errors import RejectedError

__all__ = ["WorldView", "apply", "even_weights"]

Status = Literal["succeeded", "failed", "skipped"]
Result = tuple[Status, dict[str, Any], str | None]


class WorldView(Protocol):
    """What an action may touch in the world (`agents.simulator.world.World` is one).

    A protocol, so the world can dispatch here without the two modules importing each other.
    """

    @property
    def config(self) -> SimConfig: ...
    @property
    def book(self) -> ConfigBook: ...
    @property
    def hot_left(self) -> np.ndarray: ...

    def service(self, resource_id: str) -> ServiceState:
        """The service a resource id names."""
        ...

    def add_vm(self, state: ServiceState, boot_ticks: int) -> VM:
        """Place a new VM for the service."""
        ...

    def queue_config(self, resource_id: str, op: Literal["create", "update", "delete"],
                     change_source: str) -> None:
        """Emit the resource's configuration on the next tick."""
        ...


def apply(world: WorldView, action: Action) -> Result:
    """Dispatch an action to its effect; failures are outcomes, never exceptions."""
    handler = _HANDLERS.get(action.action_type)
    if handler is None:
        return "skipped", {}, f"the simulator does not model {action.action_type!r}"
    try:
        return handler(world, action)
    except RejectedError as exc:
        return "failed", {}, str(exc)


def _delta(action: Action) -> int:
    try:
        delta = int(action.params.get("delta", 1))
    except (TypeError, ValueError) as exc:
        raise RejectedError(
            f"params.delta must be an integer, got {action.params['delta']!r}") from exc
    if delta < 1:
        raise RejectedError(f"params.delta must be at least 1, got {delta}")
    return delta


def _no_action(world: WorldView, action: Action) -> Result:
    return "succeeded", {"vms": len(world.service(action.resource_id).vms)}, None


def _scale_up(world: WorldView, action: Action) -> Result:
    state, delta = world.service(action.resource_id), _delta(action)
    room = world.config.max_vms - len(state.vms)
    if room <= 0:
        return "failed", {"vms": len(state.vms)}, f"already at max_vms={world.config.max_vms}"
    added = [world.add_vm(state, world.config.vm_boot_ticks).vm_id for _ in range(min(delta, room))]
    return "succeeded", {"vms": len(state.vms), "added": added,
                         "effective_in_ticks": world.config.vm_boot_ticks}, None


def _scale_down(world: WorldView, action: Action) -> Result:
    state, delta = world.service(action.resource_id), _delta(action)
    room = len(state.vms) - world.config.min_vms
    if room <= 0:
        return "failed", {"vms": len(state.vms)}, f"already at min_vms={world.config.min_vms}"
    # Booting VMs go first (cancelling a launch), then the newest ready ones.
    order = sorted(state.vms, key=lambda vm: (vm.ready, -int(vm.vm_id.rsplit("-", 1)[1])))
    removed = [vm.vm_id for vm in order[: min(delta, room)]]
    state.vms = [vm for vm in state.vms if vm.vm_id not in removed]
    for vm_id in removed:
        world.queue_config(vm_id, "delete", "agent")
        world.book.delete(vm_id)
    return "succeeded", {"vms": len(state.vms), "removed": removed, "effective_in_ticks": 0}, None


def _migrate(world: WorldView, action: Action) -> Result:
    state = world.service(action.resource_id)
    movable = [vm for vm in state.vms if vm.ready and vm.migrate_left == 0]
    if not movable:
        return "failed", {}, "no ready VM to migrate"
    heat = world.hot_left > 0
    counts = np.bincount([vm.host for vm in state.vms], minlength=world.config.hosts)
    # The VM on the hottest host (hot first, then most crowded) moves to the coolest host.
    vm = max(movable, key=lambda v: (bool(heat[v.host]), counts[v.host], v.vm_id))
    target = int(np.lexsort((counts, heat))[0])
    if target == vm.host:
        return "skipped", {"vm": vm.vm_id}, "no cooler host to migrate to"
    vm.migrate_left, vm.target_host = world.config.migration_ticks, target
    return "succeeded", {"vm": vm.vm_id, "from": f"host-{vm.host}", "to": f"host-{target}",
                         "effective_in_ticks": world.config.migration_ticks}, None


def even_weights(world: WorldView, state: ServiceState) -> None:
    """Reset the drift of every VM's balancer weight (the balancer already follows capacity)."""
    for vm in state.vms:
        vm.log_weight = 0.0


def _rebalance(world: WorldView, action: Action) -> Result:
    world.service(action.resource_id).rebalance_pending = True
    return "succeeded", {"effective_in_ticks": 1}, None


def _adjust_policy(world: WorldView, action: Action) -> Result:
    state = world.service(action.resource_id)
    state.throttle_left = world.config.throttle_ticks
    return "succeeded", {"throttle_utilisation": world.config.throttle_utilisation,
                         "ticks": world.config.throttle_ticks}, None


def _enable_feature(world: WorldView, action: Action) -> Result:
    state = world.service(action.resource_id)
    if state.cache_on:
        return "skipped", {"cache": True}, "the cache is already enabled"
    state.cache_on, state.cache_age = True, 0
    return "succeeded", {"cache": True, "warmup_ticks": world.config.cache_warmup_ticks}, None


def _disable_feature(world: WorldView, action: Action) -> Result:
    state = world.service(action.resource_id)
    if not state.cache_on:
        return "skipped", {"cache": False}, "the cache is already disabled"
    state.cache_on = False
    return "succeeded", {"cache": False}, None


def _restore(world: WorldView, action: Action) -> Result:
    if not world.book.restore(action.resource_id):
        return "failed", {}, f"unknown resource {action.resource_id!r}"
    world.queue_config(action.resource_id, "update", "agent")
    return "succeeded", {"restored": action.resource_id}, None


def _accept(world: WorldView, action: Action) -> Result:
    if not world.book.accept(action.resource_id):
        return "failed", {}, f"unknown resource {action.resource_id!r}"
    return "succeeded", {"accepted": action.resource_id}, None


_HANDLERS = {
    "no_action": _no_action, "scale_up": _scale_up, "scale_down": _scale_down,
    "migrate_vm": _migrate, "rebalance_load": _rebalance, "adjust_policy": _adjust_policy,
    "enable_feature": _enable_feature, "disable_feature": _disable_feature,
    "revert_drift": _restore, "remediate_compliance": _restore, "accept_drift": _accept,
}
