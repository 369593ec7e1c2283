"""The GitOps reconciler's host-side helper (govern role): git fetches, Rego checks, one Kafka
transaction per sync, the push webhook and /gitops/status.

The reconciler (agents/gitops/reconciler.py) runs in the generic host and asks for a poll from
its tick; this helper — its companion — does the I/O off the event loop and hands the fetched
commit back. A valid commit's plan is published by a transactional producer: every object
record and the `GitSync` record commit together or not at all (readers use read_committed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge

from agents.gitops import GitopsReconciler, PolicyChecks, RegoChecks, SyncPlan
from agents.gitops.webhook import pushed_branch, verify_webhook
from schemas import Event, GitSync
from schemas.codec import Codec
from schemas.gitops import GitCommit
from streams import kafka_clients
from streams.gitops_git import GitMirror
from streams.metrics import REGISTRY
from streams.settings import Settings

if TYPE_CHECKING:
    import faust

    from streams.app import WorkerContext

__all__ = ["HELPERS", "GitopsHelper", "PlanPublisher", "register"]

log = logging.getLogger(__name__)
SYNCS = Counter("novacron_gitops_syncs_total", "GitOps syncs recorded, by repository and status "
                "(applied, rejected)", ["repo", "status"], registry=REGISTRY)
FETCH_FAILURES = Counter("novacron_gitops_fetch_failures_total", "Polls whose git fetch or "
                         "read failed (retried at the next poll)", ["repo"], registry=REGISTRY)
REJECTED = Gauge("novacron_gitops_head_rejected", "1 while the branch head is a rejected commit "
                 "(the last good commit keeps serving): alert on it", ["repo"], registry=REGISTRY)
HELPERS: dict[str, GitopsHelper] = {}
"""The process's helpers by repository (the webhook and status pages find them here)."""
MAX_WEBHOOK_BYTES = 1_048_576


class PlanPublisher:
    """Publishes a sync plan in one Kafka transaction (records, events, then the sync record)."""

    def __init__(self, settings: Settings, repo: str, codec: Codec | None = None) -> None:
        self.settings, self.codec = settings, codec or Codec(settings.max_message_bytes)
        self.transactional_id = f"{settings.kafka.topic_prefix}gitops-{repo}"
        self._producer: AIOKafkaProducer | None = None

    async def publish(self, plan: SyncPlan) -> None:
        """All or nothing; raises (after aborting) when the broker refuses any record."""
        assert plan.sync is not None
        producer = await self._ensure()
        topic = self.settings.kafka.topic
        try:
            async with producer.transaction():
                for r in plan.records:
                    await producer.send(topic(r.topic), r.value, key=r.key)
                for e in [*plan.events, plan.sync]:
                    await producer.send(topic(e.topic), self.codec.encode(e.stamped()),
                                        key=e.key.encode())
        except BaseException:
            await self.close()  # a fenced or broken producer is rebuilt for the next attempt
            raise

    async def _ensure(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = kafka_clients.producer(
                self.settings.kafka, acks="all",
                enable_idempotence=True, transactional_id=self.transactional_id,
                max_request_size=16 * 2**20)
            await producer.start()
            self._producer = producer
        return self._producer

    async def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()


class GitopsHelper:
    """The reconciler's companion: polls when asked, publishes what it planned."""

    def __init__(self, agent: GitopsReconciler, settings: Settings, *,
                 mirror: GitMirror | None = None, checks: PolicyChecks | None = None,
                 publisher: PlanPublisher | None = None) -> None:
        self.agent, self.settings = agent, settings
        self.config = agent.config
        self.mirror = mirror or GitMirror(self.config, settings.data_dir)
        self.checks = checks or RegoChecks()
        self.publisher = publisher or PlanPublisher(settings, self.config.repo)
        self.head: str | None = None
        """The branch head seen by the last successful fetch."""
        self.last_error = ""
        """Why the last poll or publish failed (empty when it worked)."""
        self._poll: asyncio.Task[GitCommit | None] | None = None
        self._publish: asyncio.Task[None] | None = None
        self._queue: list[SyncPlan] = []
        HELPERS[self.config.repo] = self

    # --- Companion -----------------------------------------------------------------------------
    def observe(self, events: Sequence[Event]) -> None:
        for e in events:
            if isinstance(e, GitSync):
                self._count(e)

    def forgotten(self, key: str) -> None:
        return None

    def tick(self) -> None:
        """Start a poll the agent asked for, and publish the plans it made (both off-loop)."""
        if self.agent.poll_requested and (self._poll is None or self._poll.done()):
            self.agent.poll_requested = False
            self._poll = asyncio.get_running_loop().create_task(self.poll())
        self._queue += self.agent.take_plans()
        if self._queue and (self._publish is None or self._publish.done()):
            self._publish = asyncio.get_running_loop().create_task(self._drain())

    # --- I/O -----------------------------------------------------------------------------------
    async def poll(self) -> GitCommit | None:
        """Fetch the branch; offer its head to the agent when the agent wants it."""
        try:
            head = await asyncio.to_thread(self.mirror.fetch)
            self.head = head
            if not self.agent.wants(head):
                self.last_error = ""
                return None
            commit = await asyncio.to_thread(self.read, head)
        except Exception as exc:  # the network, the remote, the disk: say so and retry later
            FETCH_FAILURES.labels(self.config.repo).inc()
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("gitops %s: poll failed: %s", self.config.repo, self.last_error)
            return None
        self.last_error = ""
        self.agent.offer(commit)
        return commit

    def read(self, sha: str) -> GitCommit:
        """The commit's files and the problems the Rego checks find (blocking: run in a thread)."""
        found = self.mirror.read(sha)
        modules = {p: t for p, t in found.files.items()
                   if p.startswith("policies/") and p.endswith(".rego")
                   and not p.endswith("_test.rego")}
        tests = {p: t for p, t in found.files.items() if p.endswith("_test.rego")}
        problems = found.problems + self.checks.check(modules, tests)
        return GitCommit(repo=self.config.repo, branch=self.config.branch, commit=sha,
                         author=found.author[:256], message=found.message[:512],
                         files=found.files, problems=problems, source="novacron.gitops")

    async def _drain(self) -> None:
        while self._queue:
            plan = self._queue.pop(0)
            try:
                await self.publisher.publish(plan)
            except Exception as exc:  # nothing of the plan is visible: serve the last good one
                self.last_error = f"publish failed: {type(exc).__name__}: {exc}"
                log.warning("gitops %s: %s; retried at the next poll", self.config.repo,
                            self.last_error)
                self.agent.failed(plan)
                self._queue.clear()  # later plans were built on this one
                return
            assert plan.sync is not None
            self._count(plan.sync)
            log.info("gitops %s: applied %s (%d added, %d changed, %d pruned)", self.config.repo,
                     plan.sync.commit[:12], len(plan.sync.added), len(plan.sync.changed),
                     len(plan.sync.pruned))

    def _count(self, sync: GitSync) -> None:
        SYNCS.labels(sync.repo, sync.status).inc()
        REJECTED.labels(sync.repo).set(1 if sync.status == "rejected" else 0)

    def status(self) -> dict[str, Any]:
        """What /gitops/status shows."""
        serving = self.agent.serving()
        return {"repo": self.config.repo, "enabled": self.config.enabled,
                "branch": self.config.branch, "head": self.head,
                "serving": serving.serving if serving else None,
                "last_sync": serving.model_dump(mode="json", exclude={"manifest"})
                if serving else None,
                "objects": len(serving.manifest) if serving else 0,
                "last_error": self.last_error}


def webhook(body: bytes, headers: dict[str, str], repo: str | None) -> tuple[int, dict[str, Any]]:
    """Handle a push webhook: (status, JSON). Authenticated by the repository's secret."""
    helper = HELPERS.get(repo or "") or (next(iter(HELPERS.values())) if len(HELPERS) == 1
                                        and not repo else None)
    if helper is None or not helper.config.enabled:
        return 404, {"error": "the GitOps reconciler is not enabled in this worker "
                              "(NOVACRON_GITOPS__ENABLED)" if helper is None or not repo else
                     f"no GitOps repository {repo!r} here"}
    if len(body) > MAX_WEBHOOK_BYTES:
        return 413, {"error": "body too large"}
    if not verify_webhook(helper.config.secret(), headers, body):
        return 401, {"error": "missing or wrong webhook signature (gitops.webhook_secret)"}
    branch = pushed_branch(body)
    if branch is not None and branch != helper.config.branch:
        return 202, {"status": "ignored", "reason": f"push to {branch}, not {helper.config.branch}"}
    helper.agent.trigger()
    helper.agent.poll_requested = True
    helper.tick()  # start the fetch now, not at the next tick
    return 202, {"status": "poll started", "repo": helper.config.repo}


def register(app: faust.App, ctx: WorkerContext) -> None:
    """The push webhook and the status page on the govern web port; the registry API routes."""
    import faust

    from agents.api_routes import register_extension
    from agents.registry_api import RegistryApi

    if ctx.shared is not None:  # the reconciler's compliance controls and shipped runbooks
        agent = next(iter(HELPERS.values())).agent if HELPERS else None
        register_extension(RegistryApi(ctx.shared, controls=agent.controls if agent else None,
                                       library=agent.library if agent else None))

    @app.page("/gitops/webhook")
    class Webhook(faust.web.View):  # type: ignore[misc]
        async def post(self, request: faust.web.Request) -> Any:
            body = await request.read()
            status, data = webhook(body, dict(request.headers), request.query.get("repo"))
            return self.json(data, status=status)

    @app.page("/gitops/status")
    async def gitops_status(view: faust.web.View, request: faust.web.Request) -> Any:
        return view.json({"repositories": [h.status() for h in HELPERS.values()]})
