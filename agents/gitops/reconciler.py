"""The GitOps reconciler: keeps policies, runbooks, baselines, ignores and exceptions equal to a
config repository's branch head.

Polling is driven by `tick`: when a poll is due it raises `poll_requested`, which the host-side
helper (streams/gitops.py) turns into a `git fetch` off the event loop; the helper reads the new
head's files, runs the Rego tests, and `offer`s the resulting `GitCommit`; the next tick hands it
to `handle`. A commit with any problem is rejected: `handle` returns the `GitSync(rejected)`
alert and nothing is applied, the last good commit keeps serving. A valid commit becomes a
`SyncPlan` that the helper publishes in one Kafka transaction — every object and the
`GitSync(applied)` record, or none of them — so a plan is taken, not returned.

State lives in the followed topics (agents/shared.py): what is serving is the latest `gitops`
record of the repository, and the live objects are the folded `policies`, `runbooks`, `desired`,
`drift-ignores` and `compliance-attestations` topics. The agent keeps no per-key state.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.contract import AgentBase, Examples, refuse
from agents.gitops.checks import exception_problems, runbook_problems
from agents.gitops.config import GitopsConfig
from agents.gitops.objects import live_digests
from agents.gitops.plan import Commit, SyncPlan, build_plan, sync_id
from agents.gitops.source import RepoContent, read_repository
from agents.shared import SharedState
from policies.compliance import ControlLibrary
from runbooks.loader import Library
from runbooks.model import Runbook
from schemas import Event, GitSync
from schemas.attestations import ComplianceAttestation
from schemas.envelope import utc_now
from schemas.gitops import GitCommit

__all__ = ["GitopsReconciler"]

SOURCE = "novacron.gitops"


class GitopsReconciler(AgentBase):
    """Commits in (from the helper), rejections out, plans for the helper to publish."""

    name = "gitops"
    inputs = (GitCommit,)

    def __init__(self, config: GitopsConfig, shared: SharedState, *,
                 controls: ControlLibrary | None = None, library: Library | None = None) -> None:
        self.config, self.shared = config, shared
        self.controls = controls
        """Compliance controls an exception may name (None: not checked)."""
        self.library = library
        """Shipped runbooks a repository runbook's sub-workflows may call."""
        self.poll_requested = False
        """Set by `tick` when a fetch is due; the helper clears it when it starts one."""
        self._next_poll: datetime | None = None
        self._inbox: deque[GitCommit] = deque()
        self._plans: deque[SyncPlan] = deque()
        self._inflight: GitSync | None = None  # handed to the helper, not yet folded back

    # --- the helper's side ---------------------------------------------------------------------
    def trigger(self) -> None:
        """Poll at the next tick (a push webhook arrived)."""
        self._next_poll = None

    def offer(self, commit: GitCommit) -> None:
        """A fetched commit, handled at the next tick."""
        self._inbox.append(commit)

    def take_plans(self) -> list[SyncPlan]:
        """Plans to publish, each in one transaction, in order."""
        plans, self._plans = list(self._plans), deque()
        return plans

    def failed(self, plan: SyncPlan) -> None:
        """The plan's transaction was aborted: serve what served before (the next poll retries)."""
        if self._inflight is not None and plan.sync is not None and \
                self._inflight.event_id == plan.sync.event_id:
            self._inflight = None

    def serving(self) -> GitSync | None:
        """The latest sync record: what the helper published last, else the folded topic's."""
        folded = self.shared.gitsync.get(self.config.repo)
        if self._inflight is not None and folded is not None and \
                folded.event_id == self._inflight.event_id:
            self._inflight = None  # the topic caught up with the transaction
        return self._inflight or folded

    def wants(self, head: str) -> bool:
        """Whether a fetched head is worth reading: new, or the serving one when self-healing;
        a head already rejected is not read again until a new commit arrives."""
        basis = self.serving()
        if basis is None:
            return True
        if head == basis.commit and basis.status == "rejected":
            return False
        return head != basis.serving or self.config.self_heal

    # --- the contract --------------------------------------------------------------------------
    def tick(self, now: datetime) -> list[Event]:
        if self.config.enabled and (self._next_poll is None or now >= self._next_poll):
            self.poll_requested = True
            self._next_poll = now + timedelta(seconds=self.config.poll_seconds)
        out: list[Event] = []
        while self._inbox:
            out += self.handle(self._inbox.popleft())
        return out

    def handle(self, event: Event) -> list[Event]:
        if not isinstance(event, GitCommit) or event.repo != self.config.repo:
            refuse(self, event)
        now = utc_now()
        commit = Commit(event.repo, event.branch, event.commit, event.author, event.message)
        content = read_repository(event.files, author=event.author, commit=event.commit)
        problems = [*event.problems, *content.problems, *self._checks(content, now)]
        basis = self.serving()
        if not problems:
            plan = build_plan(commit, content.objects, basis.manifest if basis else {},
                              live_digests(self.shared, now), self.shared.policies,
                              self_heal=self.config.self_heal, now=now)
            problems = plan.problems
        if problems:
            return self._rejected(commit, problems, basis, now)
        if basis is not None and basis.serving == commit.sha and not (plan.events or plan.records):
            return []  # a self-heal poll that found nothing to heal
        self._plans.append(plan)
        self._inflight = plan.sync
        return []

    def _checks(self, content: RepoContent, now: datetime) -> list[str]:
        problems: list[str] = []
        for obj in content.of_kind("runbook"):
            assert isinstance(obj.payload, tuple)
            problems += runbook_problems(obj.payload[0], obj.source, self._runbook_lookup(content))
        for obj in content.of_kind("exception"):
            assert isinstance(obj.payload, ComplianceAttestation)
            problems += exception_problems(obj.payload, obj.source, self.controls, now)
        return problems

    def _runbook_lookup(self, content: RepoContent) -> Any:
        def lookup(runbook_id: str) -> Runbook:
            obj = content.objects.get(f"runbook/{runbook_id}")
            if obj is not None:
                return obj.payload[0]  # type: ignore[index,no-any-return]
            found = self.shared.runbooks.get(runbook_id)
            if found is not None:
                return found[1]
            if self.library is not None:
                return self.library.get(runbook_id)
            raise KeyError(runbook_id)
        return lookup

    def _rejected(self, commit: Commit, problems: list[str], basis: GitSync | None,
                  now: datetime) -> list[Event]:
        if basis is not None and basis.status == "rejected" and basis.commit == commit.sha:
            return []  # already alerted on this commit
        record = GitSync(
            event_id=sync_id(commit, "rejected"), event_time=now, source=SOURCE,
            repo=commit.repo, branch=commit.branch, commit=commit.sha,
            author=commit.author[:256], message=commit.message[:512], status="rejected",
            serving=basis.serving if basis else "", reasons=[p[:1000] for p in problems[:50]],
            manifest=dict(basis.manifest) if basis else {})
        self._inflight = record
        return [record]

    @classmethod
    def examples(cls) -> Examples:
        """Two bad commits, a good one, then a bad one judged against the good one."""
        t0 = datetime(2030, 1, 1, tzinfo=UTC)
        baseline = "resource_id: vm-1\nresource_type: novacron_vm\nconfig: {cpu: 2}\n"
        ignores = "ignores:\n  - path: /tags/build\n    reason: set by CI\n"
        bad_runbook = "metadata: {id: broken}\nsteps: []\n"
        bad_exception = ("exceptions:\n  - control_id: no-such-control\n    reason: legacy box\n"
                         "    expires_at: 2040-06-01T00:00:00Z\n")

        def commit(i: int, files: dict[str, str], problems: tuple[str, ...] = ()) -> GitCommit:
            return GitCommit(repo="config", commit=f"{i:040x}", author="Ada <ada@example.com>",
                             message=f"change {i}", files=files, problems=list(problems),
                             event_id=f"commit-{i}", event_time=t0 + timedelta(minutes=i))

        return Examples(inputs=[
            commit(1, {"runbooks/broken.yaml": bad_runbook}),
            commit(2, {"baselines/vm.yaml": baseline},
                   ("policies/quota_test.rego: novacron.quota_test.test_x FAIL",)),
            commit(3, {"baselines/vm.yaml": baseline, "ignores/ci.yaml": ignores}),
            commit(4, {"baselines/vm.yaml": baseline, "exceptions/x.yaml": bad_exception}),
        ], rejected=[GitCommit(repo="other", commit="f" * 40)])
