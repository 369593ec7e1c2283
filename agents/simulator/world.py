"""The simulated world: services on VMs and hosts, demand from traces, metrics and config events."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np

from agents.simulator import actions
from agents.simulator.configs import ConfigBook, network_baseline, vm_baseline
from agents.simulator.demand import load_csv_trace, scale_trace, synthetic_trace
from agents.simulator.service import VM, Measurement, Physics, ServiceState, measure
from agents.simulator.simconfig import SimConfig
from schemas import Action, ConfigChange, MetricSample, Outcome
from schemas.errors import RejectedError

__all__ = ["SimConfig", "Tick", "World"]

SOURCE = "novacron.simulator"


@dataclass(frozen=True)
class Tick:
    """What one tick of the world produced."""

    time: datetime
    metrics: list[MetricSample]
    configs: list[ConfigChange]


def _physics(config: SimConfig) -> Physics:
    return Physics(config.vm_capacity_rps, config.base_latency_ms, config.max_latency_ms,
                   config.hot_efficiency, config.migration_efficiency,
                   config.cache_load_reduction, config.cache_warmup_ticks,
                   config.throttle_utilisation, config.cost_per_vm_hour,
                   config.cache_cost_per_hour)


class World:
    """A deterministic simulated cluster: call `step()` per tick and `apply()` per action."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.physics = _physics(config)
        seeds = np.random.SeedSequence(config.seed).spawn(4)
        # Separate streams: what controllers do never changes the demand or the hot hosts.
        self._demand_rng, self._host_rng, self._lb_rng = (
            np.random.default_rng(s) for s in seeds[:3])
        self._config_rng = random.Random(int(seeds[3].generate_state(1)[0]))
        self._id_rng = random.Random(config.seed * 7919 + 17)
        self._tick = 0
        self._now = config.start_time
        self.hot_left = np.zeros(config.hosts, dtype=np.int64)
        self.book = ConfigBook()
        self.pending_configs: list[ConfigChange] = []
        self.services: dict[str, ServiceState] = {}
        self._build_services()

    # --- public API ------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        """Simulated UTC time of the latest tick (the start time before the first)."""
        return self._now

    @property
    def tick_index(self) -> int:
        """Number of ticks stepped so far."""
        return self._tick

    def step(self) -> Tick:
        """Advance one tick: evolve hosts and balancers, serve demand, emit metrics and configs."""
        t = self._tick
        served = self._begin_tick()
        metrics = [self._sample(self.services[name], m) for name, m in served.items()]
        configs = self._config_events(t)
        self._end_tick()
        return Tick(self._now, metrics, configs)

    def serve(self) -> dict[str, Measurement]:
        """Advance one tick like `step()` but return only each service's measurement: no events
        (the same world, tick for tick; for offline scoring where nobody reads the metrics)."""
        served = self._begin_tick()
        self._end_tick()
        return served

    def _begin_tick(self) -> dict[str, Measurement]:
        t = self._tick
        self._now = self.config.start_time + timedelta(seconds=t * self.config.interval_seconds)
        self._evolve_hosts()
        hot = (self.hot_left > 0).tolist()
        return {name: self._serve(state, t, hot) for name, state in self.services.items()}

    def _end_tick(self) -> None:
        for state in self.services.values():
            self._advance(state)
        self.hot_left = np.maximum(0, self.hot_left - 1)
        self._tick += 1

    def apply(self, action: Action) -> Outcome:
        """Carry out an action (see `agents.simulator.actions` for each effect) and report it."""
        status, output, error = actions.apply(self, action)
        return Outcome.caused_by(
            action, event_id=self.new_id(), event_time=self._now, source=SOURCE,
            action_id=action.action_id, status=status, output=output, error=error,
            resource_id=action.resource_id, action_type=action.action_type)

    def inject_anomaly(self, service: str, kind: Literal["load", "cost"], magnitude: float,
                       ticks: int) -> None:
        """Multiply a service's demand ("load") or cost rate ("cost") by `magnitude` for `ticks`."""
        state = self.service(service)
        if kind == "load":
            state.load_boost, state.load_boost_left = magnitude, ticks
        elif kind == "cost":
            state.cost_boost, state.cost_boost_left = magnitude, ticks
        else:
            raise RejectedError(f"unknown anomaly kind {kind!r} (use 'load' or 'cost')")

    # --- helpers used by actions -------------------------------------------------------------
    def service(self, resource_id: str) -> ServiceState:
        """The service a resource id names (`svc-1` or one of its VMs `svc-1/vm-3`)."""
        state = self.services.get(resource_id.split("/", 1)[0])
        if state is None:
            raise RejectedError(f"unknown service {resource_id!r}; known: {sorted(self.services)}")
        return state

    def new_id(self) -> str:
        return str(uuid.UUID(int=self._id_rng.getrandbits(128), version=4))

    def add_vm(self, state: ServiceState, boot_ticks: int) -> VM:
        """Place a new VM on the host with the fewest of the service's VMs (a spread scheduler)."""
        counts = np.bincount([vm.host for vm in state.vms], minlength=self.config.hosts)
        vm = VM(f"{state.name}/vm-{state.next_vm}", int(np.argmin(counts)), boot_left=boot_ticks)
        state.next_vm += 1
        state.vms.append(vm)
        self.book.create(vm.vm_id, "novacron_vm", vm_baseline(state.name, vm.vm_id, vm.host))
        self.queue_config(vm.vm_id, "create", "agent")
        return vm

    def queue_config(self, resource_id: str, op: Literal["create", "update", "delete"],
                     change_source: str, actor: str = SOURCE) -> None:
        """Emit the resource's configuration on the next tick."""
        resource_type, config = self.book.current.get(resource_id, ("novacron_vm", {}))
        self.pending_configs.append(ConfigChange(
            event_id=self.new_id(), event_time=self._now, source=SOURCE, resource_id=resource_id,
            resource_type=resource_type, op=op, change_source=change_source, actor=actor,
            config=dict(config)))

    # --- internals ---------------------------------------------------------------------------
    def _build_services(self) -> None:
        cfg = self.config
        peak = cfg.peak_demand_fraction * cfg.max_vms * cfg.vm_capacity_rps
        ticks_per_day = max(1, int(86400 / cfg.interval_seconds))
        csv_values = (None if cfg.trace == "synthetic"
                      else load_csv_trace(cfg.trace, cfg.interval_seconds, cfg.trace_max_gap))
        for i in range(cfg.services):
            name = f"svc-{i}"
            if csv_values is None:
                raw = synthetic_trace(self._demand_rng, ticks_per_day * cfg.synthetic_days,
                                      ticks_per_day)
                offset = cfg.trace_offset
            else:
                raw = csv_values
                offset = cfg.trace_offset + i * len(raw) // cfg.services
            scale = 1.0 - 0.15 * (i % 4)  # services differ in size
            state = ServiceState(name, scale_trace(raw, peak * scale), offset)
            self.services[name] = state
            self.book.create(f"{name}/network", "novacron_network", network_baseline(name))
            self.queue_config(f"{name}/network", "create", "terraform")
            for _ in range(max(cfg.initial_vms, cfg.min_vms)):
                self.add_vm(state, boot_ticks=0)

    def _evolve_hosts(self) -> None:
        starts = self._host_rng.random(self.config.hosts) < self.config.hot_host_probability
        lengths = self._host_rng.integers(30, 120, size=self.config.hosts)
        self.hot_left = np.where((self.hot_left == 0) & starts, lengths, self.hot_left)

    def _serve(self, state: ServiceState, t: int, hot: list[bool]) -> Measurement:
        noise = self._lb_rng.normal(0.0, self.config.imbalance_drift, self.config.max_vms + 8)
        if state.rebalance_pending:
            actions.even_weights(self, state)
            state.rebalance_pending = False
        for vm, eps in zip(state.vms, noise.tolist(), strict=False):
            vm.log_weight = 0.99 * vm.log_weight + eps  # mean-reverting drift
        return measure(state, t, hot, self.physics)

    def _sample(self, state: ServiceState, m: Measurement) -> MetricSample:
        extra = {
            "demand_rps": round(m.demand_rps, 3),
            "booting_vms": float(sum(not vm.ready for vm in state.vms)),
            "billed_vms": float(m.billed_vms),
            "cache_enabled": 1.0 if state.cache_on else 0.0,
            "throttle_active": 1.0 if state.throttle_left > 0 else 0.0,
            "hot_vms": float(m.hot_vms),
            "imbalance": round(m.imbalance, 4),
        }
        return MetricSample(
            event_id=self.new_id(), event_time=self._now, source=SOURCE, resource_id=state.name,
            resource_type="service", cluster="sim", cpu_usage=round(m.cpu, 4),
            memory_usage=round(m.memory, 4), network_latency_ms=round(m.latency_ms, 3),
            request_rate=round(m.demand_rps, 3), error_rate=round(m.error_rate, 6),
            active_vms=m.ready_vms, cost_per_hour=round(m.cost_per_hour, 6),
            labels={"simulated": "true"}, extra=extra)

    def _config_events(self, t: int) -> list[ConfigChange]:
        cfg = self.config
        for name in self.services:
            self._maybe_inject(name, cfg.drift_probability, self.book.drift, "console",
                               "ops@example.com")
            self._maybe_inject(name, cfg.violation_probability, self.book.violate, "api",
                               "ci-bot")
        if cfg.config_every_ticks and t % cfg.config_every_ticks == 0 and t > 0:
            for resource_id in sorted(self.book.current):
                self.queue_config(resource_id, "update", "sim")
        events, self.pending_configs = self.pending_configs, []
        return events

    def _maybe_inject(self, service: str, probability: float, inject: Any, source: str,
                      actor: str) -> None:
        if self._config_rng.random() >= probability:
            return
        hit = inject(self._config_rng, service)
        if hit is not None:
            self.queue_config(hit[0], "update", source, actor)

    def _advance(self, state: ServiceState) -> None:
        for vm in state.vms:
            vm.boot_left = max(0, vm.boot_left - 1)
            if vm.migrate_left > 0:
                vm.migrate_left -= 1
                if vm.migrate_left == 0:
                    vm.host = vm.target_host
        state.cache_age = state.cache_age + 1 if state.cache_on else 0
        state.throttle_left = max(0, state.throttle_left - 1)
        state.load_boost_left = max(0, state.load_boost_left - 1)
        state.cost_boost_left = max(0, state.cost_boost_left - 1)
