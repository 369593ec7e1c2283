"""The deploy watch: a deploy opens a window on the resources it affects; an anomaly or an SLO
breach inside the window proposes a rollback of that deploy through the policy gate.

Deploys it sees: a GitOps sync of the config repository (the latest `gitops` record, followed:
baselines name their resources, policy and runbook changes watch `repo_resources`), a verified
commit of the `git` effector (a step outcome of the executor: the action's resource is watched,
the commit is remembered with the repository's configured name, never a URL from the event) and
an ArgoCD deployment (an `argocd_application` sample, from `novacron collect argocd`, whose
`history_id` changed). Breaches: an anomaly insight on a watched resource, or `breach_samples`
consecutive samples above `latency_slo_ms`. One proposal per window: a `run_runbook` decision
that needs approval — the ArgoCD rollback runbook for an application, the git revert runbook
(with the commit and the repository's configured name) for a commit.
The breach is recorded on the deploy's causal chain (an anomaly insight caused by the deploy),
so deploy → anomaly → decision → verdict → action → outcome is one `novacron audit chain`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson

from agents.collectors.argocd import APP_TYPE
from agents.contract import AgentBase, Examples, refuse
from agents.gitops.config import DeployWatchConfig
from agents.shared import SharedState
from schemas import Decision, Event, GitSync, Insight, MetricSample, Outcome
from schemas.errors import DecodeError

__all__ = ["DeployWatch", "Window"]

SOURCE = "novacron.deploy-watch"
_SHA = re.compile(r"[0-9a-f]{40}")


@dataclass
class Window:
    """A deploy being watched on one resource."""

    deploy_id: str
    """The event that recorded the deploy (a GitSync, or the application's sample)."""
    correlation_id: str
    """The deploy's causal chain: the breach and the proposal continue it."""
    kind: Literal["git", "argocd"]
    target: str
    """The commit (git) or the application (argocd) to roll back."""
    revision: str
    """What was deployed (commit sha or ArgoCD revision)."""
    opened_at: datetime
    until: datetime
    proposed: bool = False
    slow: int = 0
    """Consecutive samples above the latency SLO."""
    repository: str = ""
    """git: the configured name of the repository holding the commit."""

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "opened_at": self.opened_at.isoformat(),
                "until": self.until.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Window:
        return cls(**{**data, "opened_at": datetime.fromisoformat(data["opened_at"]),
                      "until": datetime.fromisoformat(data["until"])})


class DeployWatch(AgentBase):
    """Deploys in (followed sync records, application samples), rollback proposals out."""

    name = "deploy-watch"
    inputs = (MetricSample, Insight, Outcome)

    def __init__(self, config: DeployWatchConfig | None = None,
                 shared: SharedState | None = None) -> None:
        self.config = config or DeployWatchConfig()
        self.shared = shared
        self.windows: dict[str, list[Window]] = {}
        self.apps: dict[str, list[Any]] = {}  # application → [history_id, revision] last seen

    # --- deploys -------------------------------------------------------------------------------
    def tick(self, now: datetime) -> list[Event]:
        """Open windows for new GitOps syncs; close the windows that ran out."""
        for sync in (self.shared.gitsync.values() if self.shared is not None else ()):
            if sync.status == "applied" and now - sync.event_time < self._span:
                self._git_deploy(sync)
        for rid in list(self.windows):
            self.windows[rid] = [w for w in self.windows[rid] if w.until > now]
        return []

    @property
    def _span(self) -> timedelta:
        return timedelta(seconds=self.config.window_seconds)

    def _git_deploy(self, sync: GitSync) -> None:
        refs = [*sync.added, *sync.changed, *sync.pruned]
        resources = {r.split("/", 1)[1] for r in refs if r.startswith("baseline/")}
        if any(not r.startswith("baseline/") for r in refs):
            resources.update(self.config.repo_resources)
        for rid in sorted(resources):
            self._open(rid, Window(sync.event_id, sync.correlation_id, "git", sync.commit,
                                   sync.commit, sync.event_time, sync.event_time + self._span,
                                   repository=sync.repo))

    def _deployed(self, outcome: Outcome) -> str | None:
        """The commit, when the outcome is one the executor's `git` step made and read back;
        None for anything else (a revert, an unchanged file, another source: no deploy)."""
        out, sha = outcome.output, outcome.output.get("commit")
        if (outcome.source != self.config.executor_source or outcome.scope != "step"
                or outcome.status != "succeeded" or outcome.simulated or not outcome.resource_id
                or out.get("effector") != "git" or out.get("git_action") != "commit"
                or out.get("verified") is not True or out.get("unchanged")
                or not isinstance(sha, str) or not _SHA.fullmatch(sha)):
            return None
        return sha

    def _effector_commit(self, outcome: Outcome) -> list[Event]:
        """A commit the executor's `git` step made and read back opens a window on the action's
        resource."""
        sha = self._deployed(outcome)
        if sha is None:
            return []
        self._open(outcome.resource_id, Window(
            outcome.event_id, outcome.correlation_id, "git", sha, sha, outcome.event_time,
            outcome.event_time + self._span, repository=self.config.executor_repository))
        return []

    def _open(self, rid: str, window: Window) -> None:
        current = self.windows.setdefault(rid, [])
        if any(w.deploy_id == window.deploy_id or (w.kind == window.kind == "git" and
               w.target == window.target) for w in current):
            return  # already watched (a restored key, the same record or commit read again)
        # a newer deploy of the same target is the one to blame from now on
        current[:] = [w for w in current if (w.kind, w.target) != (window.kind, window.target)]
        current.append(window)

    def _app_status(self, sample: MetricSample) -> list[Event]:
        app = sample.resource_id
        seen = [sample.extra.get("history_id"), sample.labels.get("revision", "unknown")]
        before, self.apps[app] = self.apps.get(app), seen
        if before is None or before == seen or seen[0] is None:
            return []  # first sight, or nothing deployed since
        for rid in self.config.apps.get(app, [app]):
            self._open(rid, Window(sample.event_id, sample.correlation_id, "argocd", app,
                                   str(seen[1]), sample.event_time,
                                   sample.event_time + self._span))
        return []

    # --- breaches ------------------------------------------------------------------------------
    def handle(self, event: Event) -> list[Event]:
        if isinstance(event, MetricSample):
            if event.resource_type == APP_TYPE:
                return self._app_status(event)
            return self._latency(event)
        if isinstance(event, Insight):
            return self._anomaly(event)
        if isinstance(event, Outcome):
            return self._effector_commit(event)
        refuse(self, event)

    def _open_at(self, rid: str, at: datetime) -> list[Window]:
        return [w for w in self.windows.get(rid, []) if w.opened_at <= at < w.until
                and not w.proposed]

    def _anomaly(self, insight: Insight) -> list[Event]:
        if insight.kind != "anomaly" or insight.source == SOURCE or \
                (insight.score or 0.0) < self.config.min_anomaly_score:
            return []
        out: list[Event] = []
        for w in self._open_at(insight.resource_id, insight.event_time):
            out += self._propose(w, insight.resource_id, insight, "anomaly",
                                 insight.metric or "anomaly", insight.score, insight.value)
        return out

    def _latency(self, sample: MetricSample) -> list[Event]:
        slo, latency = self.config.latency_slo_ms, sample.network_latency_ms
        if slo is None or latency is None:
            return []
        out: list[Event] = []
        for w in self._open_at(sample.resource_id, sample.event_time):
            w.slow = w.slow + 1 if latency > slo else 0
            if w.slow >= self.config.breach_samples:
                out += self._propose(w, sample.resource_id, sample, "latency_slo",
                                     "network_latency_ms", 1.0, latency)
        return out

    def _propose(self, w: Window, rid: str, trigger: Event, breach: str, metric: str,
                 score: float | None, value: float | None) -> list[Event]:
        w.proposed = True
        after = int((trigger.event_time - w.opened_at).total_seconds())
        what = f"{w.target} at {w.revision[:12]}" if w.kind == "argocd" else \
            f"commit {w.target[:12]}"
        link = Insight(
            source=SOURCE, correlation_id=w.correlation_id, causation_id=w.deploy_id,
            resource_id=rid, kind="anomaly", metric=metric[:64], score=score, value=value,
            event_time=trigger.event_time,
            details={"breach": breach, "observed": trigger.event_id, "deploy": w.deploy_id,
                     "deploy_kind": w.kind, "target": w.target, "seconds_after": after})
        decision = Decision(
            source=SOURCE, correlation_id=w.correlation_id, causation_id=link.event_id,
            resource_id=w.target if w.kind == "argocd" else rid,
            decision_type="run_runbook", origin="gitops", requires_approval=True,
            severity="HIGH", confidence=1.0, params=self._params(w),
            reasoning=(f"{breach.replace('_', ' ')} on {rid} ({metric}) {after}s after deploying "
                       f"{what}: roll the deploy back")[:4096])
        return [link, decision]

    def _params(self, w: Window) -> dict[str, Any]:
        if w.kind == "argocd":  # the runbook acts on the action's resource: the application
            return {"runbook": self.config.argocd_runbook}
        return {"runbook": self.config.git_runbook, "commit": w.target,
                "repository": w.repository or self.config.executor_repository}

    # --- state ---------------------------------------------------------------------------------
    def state_key(self, event: Event) -> str | None:
        """The resource whose state the input can change, else None: the host then neither
        tracks nor saves a key for it. An executor's verified commit opens a window and an
        application's sample records its status; another sample or an anomaly changes state
        only where a window is open (a breach count, a proposal), and a sample only with a
        latency SLO set. Keying every sample saved each watched service once per sample (the
        default policy saves a touched key before each commit), unchanged: with every role at
        1,000 samples/s, 7,488 learn state records in 30 s against 3,039 (bench/README.md)."""
        rid = getattr(event, "resource_id", None) or None
        if rid is None:
            return None
        if isinstance(event, Outcome):  # the executor's verified commits, not its other records
            return rid if self._deployed(event) is not None else None
        if isinstance(event, MetricSample):
            if event.resource_type == APP_TYPE:
                return rid
            watched = bool(self.windows.get(rid))
            return rid if watched and self.config.latency_slo_ms is not None else None
        if isinstance(event, Insight):
            return rid if self.windows.get(rid) else None
        return None

    def snapshot(self, key: str) -> bytes | None:
        windows, app = self.windows.get(key), self.apps.get(key)
        if not windows and app is None:
            return None
        return orjson.dumps({"windows": [w.to_json() for w in windows or []], "app": app})

    def restore(self, key: str, blob: bytes) -> None:
        try:
            data = orjson.loads(blob)
            windows = [Window.from_json(w) for w in data["windows"]]
            app = data["app"]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DecodeError(f"deploy-watch state of {key} is unusable: {exc}") from exc
        if windows:
            self.windows[key] = windows
        if app is not None:
            self.apps[key] = list(app)

    def forget(self, key: str) -> None:
        self.windows.pop(key, None)
        self.apps.pop(key, None)

    @classmethod
    def examples(cls) -> Examples:
        """An application deployed twice, a verified executor commit; anomalies inside and
        outside the windows."""
        t0 = datetime(2030, 1, 1, tzinfo=UTC)

        def app(i: int, history: int, revision: str) -> MetricSample:
            return MetricSample(resource_id="shop", resource_type=APP_TYPE, event_id=f"s{i}",
                                event_time=t0 + timedelta(minutes=i),
                                extra={"history_id": float(history), "synced": 1.0},
                                labels={"revision": revision})

        def anomaly(i: int, rid: str = "shop") -> Insight:
            return Insight(resource_id=rid, kind="anomaly", metric="network_latency_ms",
                           score=0.97, event_id=f"a{i}", event_time=t0 + timedelta(minutes=i))

        commit = Outcome(source="novacron.executor", action_id="act-1", scope="step",
                         step_id="commit", status="succeeded", resource_id="cart", event_id="o1",
                         event_time=t0 + timedelta(minutes=44),
                         output={"effector": "git", "git_action": "commit", "verified": True,
                                 "commit": "c0ffee" + "0" * 34})
        return Examples(inputs=[
            app(0, 1, "aaa"), anomaly(1), app(2, 2, "bbb"), anomaly(3), anomaly(4),
            app(5, 3, "ccc"), anomaly(40), app(41, 4, "ddd"), anomaly(42), anomaly(43, "other"),
            commit, anomaly(45, "cart"), anomaly(46, "cart"),
        ])
