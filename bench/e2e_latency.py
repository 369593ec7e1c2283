"""Benchmark: end-to-end latency and maximum throughput with every role running on the real broker.

Each system runs as real processes on its own topic prefix and data folder:

- `before`: the four roles (ingest, learn, govern, execute) of another revision (`--before`,
  default `main`): Faust's fixed 1500 ms fetch wait and the gate's 200 ms batch window;
- `current`: the four roles of this tree, with the settings' defaults (`kafka.fetch_max_wait_ms`
  100 ms; the gate on the govern role's generic host, `host.batch_wait_ms`);
- `plain`: the ingest role plus plain aiokafka `getmany` loops doing the learn and govern roles'
  compute (bench/_e2e_plain.py): the baseline.

On each: an open-loop producer (a process of its own) sends `--rate` metric samples/s for
`--seconds` (100 services, every fifth overloaded; every `--sender-tick-ms` the samples then
due, in one request); latency
runs from each sample's scheduled send time (the tick's wait included) to the Kafka
CreateTime of the first decision, verdict, action and outcome of its chain (and per hop from the
events' `produced_at`, where the tree stamps it). Then the maximum sustained throughput of learn
(a backlog of `--backlog` samples: events/s until the group committed them) and govern (a backlog
of shadow decisions: decisions/s until the last verdict), and for `current` the latency again at
half the smaller maximum. CPU seconds per process (and of the processes each ran: `.children`),
of the broker, of this bench and of the whole machine (`machine`, busy cores) and the load
average come with every phase, and (`cpu_while_slowest_ran`) the cores each of them used while
the slowest 1 % of the chains ran, sampled every 100 ms, against the whole phase: the profile
of a tail, which a phase's average hides.

    python bench/e2e_latency.py [--rate 1000] [--seconds 30] [--backlog 20000]
        [--systems before,current,plain] [--before main] [--roles ingest,learn,govern,execute]
        [--no-drains] [--py-spy PATH] [--out FILE]           (needs `novacron kafka start`)
        [--instances learn=2] [--current-env NAME=VALUE ...] [--cooldown-seconds 3]

A setting or a worker count is compared alone with `--before HEAD`: both systems run this tree,
`current` with the `--current-env` settings and the `--instances` workers per role.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _e2e_load import (  # noqa: E402
    Pace,
    Seen,
    Tap,
    committed_all,
    drain_govern,
    drain_learn,
    latencies,
    open_loop,
    slowest_chains,
)
from _e2e_profile import Sampler  # noqa: E402
from _e2e_timeline import CpuTimeline  # noqa: E402
from _tree import ROOT, export_tree, resolve  # noqa: E402

from agents.simulator.gitops import seed_repository  # noqa: E402
from agents.simulator.world import SimConfig, World  # noqa: E402
from streams import kafka_clients  # noqa: E402
from streams.collect_kafka import PUBLISH_LINGER_MS  # noqa: E402
from streams.settings import KafkaConfig  # noqa: E402
from streams.topics import create_topics  # noqa: E402

RESULTS = Path(__file__).with_name("results")
SERVICES = 100
BENCH_ENV = {
    # a decision per overloaded service every few seconds instead of one per 2 minutes, so a
    # 30 s run has a few hundred chains to measure (the rate limit is lifted the same way)
    "NOVACRON_DECISION__SAFETY__COOLDOWN_SECONDS": "3",
    "NOVACRON_DECISION__SAFETY__MAX_ACTIONS_PER_WINDOW": "1000",
    "NOVACRON_SINK__BATCH_SECONDS": "1.0",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    """One process of a system: a worker role or a plain loop."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int | None
    log: Path

    def cpu_seconds(self) -> float:
        return _proc_cpu(self.popen.pid)

    def children_cpu_seconds(self) -> float:
        """CPU of the processes it ran and waited for (the executor's git and terraform)."""
        return _proc_cpu(self.popen.pid, children=True)


def _proc_cpu(pid: int, *, children: bool = False) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    first = 13 if children else 11  # utime, stime / cutime, cstime
    return (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")


def _machine_cpu() -> dict[str, float]:
    """CPU seconds the whole machine spent busy, this bench process (and, in `bench.children`,
    the processes it ran that ended: a phase's sender), and the Kafka broker."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
    out = {"machine": busy, "bench": _proc_cpu(os.getpid()),
           "bench.children": _proc_cpu(os.getpid(), children=True)}
    if (broker := _broker_pid()) is not None:
        out["broker"] = _proc_cpu(broker)
    return out


def _broker_pid() -> int | None:
    found = subprocess.run(["pgrep", "-f", "kafka.Kafka"], capture_output=True, text=True)
    pids = found.stdout.split()
    return int(pids[0]) if pids else None


@dataclass
class System:
    """A set of processes on one topic prefix, started from one source tree."""

    name: str
    tree: Path
    kafka: KafkaConfig
    workdir: Path
    roles: tuple[str, ...]
    plain: tuple[str, ...] = ()
    instances: dict[str, int] = field(default_factory=dict)
    """Workers per role (more than one: the role's consumer group splits the partitions)."""
    env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)

    def _env(self, port: int | None) -> dict[str, str]:
        repo = self.workdir / "config.git"
        return {**os.environ, **BENCH_ENV, **self.env,
                "PYTHONPATH": str(self.tree), "NOVACRON_KAFKA__BOOTSTRAP": self.kafka.bootstrap,
                "NOVACRON_KAFKA__TOPIC_PREFIX": self.kafka.topic_prefix,
                "NOVACRON_DATA_DIR": str(self.workdir / "var"),
                "NOVACRON_CLICKHOUSE__PATH": str(self.workdir / "var" / "chdb"),
                "NOVACRON_EXECUTOR__DEFAULTS": json.dumps({"config_repo": str(repo)}),
                **({"NOVACRON_WEB__PORT": str(port)} if port else {})}

    def start(self) -> None:
        seed_repository(World(SimConfig(services=SERVICES, seed=1)), self.workdir / "config.git")
        for role in self.roles:
            for i in range(self.instances.get(role, 1)):
                port = free_port()
                self._spawn(role if i == 0 else f"{role}-{i + 1}",
                            ["-m", "streams.cli.main", "worker", "--role", role,
                             "--web-port", str(port), "--loglevel", "warning"], port)
        for role in self.plain:
            self._spawn(f"plain-{role}", [str(ROOT / "bench" / "_e2e_plain.py"), role], None)
        for p in self.procs:
            self._wait_ready(p)

    def _spawn(self, name: str, args: list[str], port: int | None) -> None:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as fh:
            popen = subprocess.Popen([sys.executable, *args], env=self._env(port),
                                     cwd=self.workdir, stdout=fh, stderr=subprocess.STDOUT)
        self.procs.append(Proc(name, popen, port, log))

    def _wait_ready(self, p: Proc, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if p.popen.poll() is not None:
                raise RuntimeError(f"{self.name}/{p.name} exited:\n{p.log.read_text()[-3000:]}")
            if _ready(p):
                return
            time.sleep(0.5)
        raise TimeoutError(f"{self.name}/{p.name} not ready:\n{p.log.read_text()[-3000:]}")

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: each role, what each role ran (`role.children`), the machine."""
        out = {p.name: p.cpu_seconds() for p in self.procs}
        out |= {f"{p.name}.children": p.children_cpu_seconds() for p in self.procs}
        return out | _machine_cpu()

    def pids(self) -> dict[str, int]:
        """Each process of the system, the broker and this bench (the tap), by name."""
        pids = {p.name: p.popen.pid for p in self.procs} | {"bench": os.getpid()}
        if (broker := _broker_pid()) is not None:
            pids["broker"] = broker
        return pids

    def stop(self) -> None:
        for p in self.procs:
            p.popen.terminate()
        for p in self.procs:
            try:
                p.popen.wait(30)
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait(10)


def _ready(p: Proc) -> bool:
    if p.port is None:
        return b"ready" in p.log.read_bytes()
    try:
        status = httpx.get(f"http://127.0.0.1:{p.port}/status", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return False
    agents = status.get("agents", {})
    want = {"learn": "learn", "govern": "gate"}.get(status.get("role", ""))
    return want is None or agents.get(want) == "ready"


def _learn_group(system: System) -> str:
    return f"{system.kafka.topic_prefix}{'plain-learn' if system.plain else 'learn'}"


async def _lag(system: System) -> int:
    done, end = await committed_all(system.kafka, _learn_group(system),
                                    system.kafka.topic("metrics"))
    return end - done


async def _settle(system: System, timeout: float = 120) -> float:
    """Wait until learn has committed every sample (the next phase starts clean)."""
    t0 = time.monotonic()
    while await _lag(system) > 0 and time.monotonic() - t0 < timeout:
        await asyncio.sleep(0.5)
    return round(time.monotonic() - t0, 1)


async def _phase(system: System, rate: float, seconds: float, tap: Tap, pace: Pace,
                 py_spy: str | None = None) -> dict[str, Any]:
    """Latency at a fixed rate, with the CPU each process used and the load average; learn's
    backlog when the sender stops says whether the rate was sustained."""
    await _settle(system)
    cpu0, load0 = system.cpu(), os.getloadavg()[0]
    tap.seen.clear()
    samplers = {p.name: Sampler(py_spy, p.popen.pid, seconds, system.workdir / f"{p.name}.spy")
                for p in system.procs if py_spy and p.name in ("ingest", "learn", "govern")}
    timeline = CpuTimeline(system.pids())
    timeline.start()
    try:
        scheduled, sent = await open_loop(system.kafka, rate, seconds, SERVICES, pace)
    finally:
        timeline.stop()
    late = max((sent[k] - at for k, at in scheduled.items()), default=0.0)
    lag = await _lag(system)
    drained = await _settle(system)
    await asyncio.sleep(2)  # the last verdicts and actions land
    wall = seconds + drained + 2
    cpu1 = system.cpu()
    return {"rate": rate, "seconds": seconds, "producer_late_ms_max": round(late, 1),
            "learn_backlog_at_end": lag, "seconds_to_drain_after_end": drained,
            **latencies(scheduled, tap.seen, sent),
            "cpu_while_slowest_ran": _tail_cpu(timeline, scheduled, tap.seen),
            "cpu_share": {k: round((cpu1[k] - cpu0[k]) / wall, 2) for k in cpu1},
            "load_average": [round(load0, 2), round(os.getloadavg()[0], 2)],
            **({"cpu_profile": {k: v.summary() for k, v in samplers.items()}} if samplers else {})}


def _tail_cpu(timeline: CpuTimeline, scheduled: dict[str, float], seen: list[Seen]
              ) -> dict[str, Any]:
    """Cores per process while the slowest 1 % of the chains (sample to action) ran, against
    the whole phase (`rest`: what no named process used, e.g. the sender)."""
    spans = slowest_chains(scheduled, seen)
    return {"chains": len(spans), "cores": timeline.during(spans),
            "cores_whole_phase": timeline.overall()}


async def _drains(system: System, backlog: int, tap: Tap) -> dict[str, Any]:
    await _settle(system)
    cpu0 = system.cpu()
    learn = await drain_learn(system.kafka, _learn_group(system), backlog, SERVICES)
    await asyncio.sleep(3)
    govern = await drain_govern(system.kafka, tap, backlog // 4, SERVICES)
    cpu1 = system.cpu()
    return {"learn": learn, "govern": govern, "load_average": round(os.getloadavg()[0], 2),
            "cpu_seconds": {k: round(cpu1[k] - cpu0[k], 1) for k in cpu1}}


async def measure(system: System, args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, then latency at --rate, drains, and (current) latency at half the maximum."""
    tap = Tap(system.kafka)
    await tap.start()
    try:
        await open_loop(system.kafka, min(args.rate, 200), 5, SERVICES)  # warm-up
        await asyncio.sleep(3)
        spy = args.py_spy if system.name == "current" else None
        pace = Pace(tick_ms=args.sender_tick_ms, linger_ms=args.sender_linger_ms)
        out: dict[str, Any] = {"at_rate": await _phase(system, args.rate, args.seconds, tap,
                                                       pace, spy)}
        if not args.no_drains and system.name != "before":
            out["max_throughput"] = await _drains(system, args.backlog, tap)
            if system.name == "current":
                best = out["max_throughput"]["learn"]["events_per_s"]  # metrics feed learn
                out["at_half_max"] = await _phase(system, max(10, best // 2), args.seconds, tap,
                                                  pace)
        return out
    finally:
        await tap.stop()


def run_system(name: str, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    kafka = KafkaConfig(bootstrap=args.bootstrap, topic_prefix=f"e2e{uuid.uuid4().hex[:8]}.")
    asyncio.run(create_topics(kafka))
    tree = ROOT
    if name == "before":
        (scratch / "before-src").mkdir()
        tree = export_tree(args.before, scratch / "before-src")
    workdir = scratch / name
    workdir.mkdir(parents=True)
    system = System(name, tree, kafka, workdir,
                    roles=("ingest",) if name == "plain" else tuple(args.roles.split(",")),
                    plain=("learn", "govern") if name == "plain" else (),
                    instances=_instances(args.instances) if name == "current" else {},
                    env=dict(kv.split("=", 1) for kv in args.current_env) if name == "current"
                    else {})
    try:
        system.start()
        print(f"{name}: ready", flush=True)
        result = asyncio.run(measure(system, args))
    finally:
        system.stop()
        asyncio.run(_delete_topics(kafka))
        if args.keep_logs:
            shutil.copytree(workdir, Path(args.keep_logs) / name, ignore=_no_data,
                            dirs_exist_ok=True)
    print(json.dumps({name: result}, indent=1), flush=True)
    return result


def _instances(spec: str) -> dict[str, int]:
    """`learn=2,govern=1` → {"learn": 2, "govern": 1}."""
    out = {}
    for part in filter(None, spec.split(",")):
        role, _, count = part.partition("=")
        out[role.strip()] = int(count)
    return out


def _no_data(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if n in ("var", "config.git")]


async def _delete_topics(kafka: KafkaConfig) -> None:
    admin = kafka_clients.admin(kafka)
    await admin.start()
    try:
        prefixes = (kafka.topic_prefix, kafka.topic_prefix.rstrip(".") + "-")
        mine = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--systems", default="before,current,plain")
    parser.add_argument("--before", default="main")
    parser.add_argument("--roles", default="ingest,learn,govern,execute",
                        help="roles of `before` and `current` (e.g. learn,govern to isolate them)")
    parser.add_argument("--instances", default="",
                        help="workers per role of `current`, e.g. learn=2 (with --before HEAD: "
                             "the same tree with one worker each as the comparison)")
    parser.add_argument("--current-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for `current` only, e.g. NOVACRON_KAFKA__LINGER_MS=0 "
                             "(with --before HEAD: the same tree with the default as comparison)")
    parser.add_argument("--sender-tick-ms", type=float, default=Pace.tick_ms,
                        help="the sender wakes this often and hands over every sample then due, "
                             "in one request (the wait is in the latencies); 0: a wake-up per "
                             f"sample (with --sender-linger-ms {PUBLISH_LINGER_MS}: the rows "
                             "before 7 Dec, seventh session)")
    parser.add_argument("--sender-linger-ms", type=int, default=Pace.linger_ms,
                        help="the samples' producer waits this long to fill a request (the "
                             f"collect role's publisher lingers {PUBLISH_LINGER_MS} ms)")
    parser.add_argument("--cooldown-seconds", type=float, default=3.0,
                        help="the decision engine's per-service cooldown in every system (the "
                             "product's default is 120 s; 3 s makes ~50 actions/s, more than "
                             "the executor gets through on 2 cores, so it is always behind)")
    parser.add_argument("--no-drains", action="store_true")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--py-spy", default=shutil.which("py-spy"),
                        help="py-spy binary: CPU profile of learn and govern at --rate (current)")
    parser.add_argument("--keep-logs", default=None, help="copy each system's logs here")
    parser.add_argument("--out", default=str(RESULTS / "e2e_latency.json"))
    args = parser.parse_args()
    BENCH_ENV["NOVACRON_DECISION__SAFETY__COOLDOWN_SECONDS"] = f"{args.cooldown_seconds:g}"
    result: dict[str, Any] = {
        "rate": args.rate, "seconds": args.seconds, "backlog": args.backlog, "roles": args.roles,
        "instances_current": _instances(args.instances), "env_current": args.current_env,
        "sender_linger_ms": args.sender_linger_ms, "sender_tick_ms": args.sender_tick_ms,
        "services": SERVICES, "before_rev": resolve(args.before), "tree": resolve("HEAD"),
        "bench_env": BENCH_ENV, "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "systems": {}}
    with tempfile.TemporaryDirectory(prefix="novacron-e2e-") as tmp:
        for name in args.systems.split(","):
            result["systems"][name] = run_system(name, args, Path(tmp))
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
