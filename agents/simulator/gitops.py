"""The simulated cluster's GitOps controller: it reads its desired state from a git repository.

As ArgoCD or Flux would, `GitOpsReconciler.reconcile()` fetches the config repository and makes
the world match it; the executor's `git` steps are the only way actions change the world.

    services/<svc>.yaml     replicas, features.cache, resources.memory_mb, and the one-shot
                            requests rate_limit.throttle, load_balancer.rebalance and
                            placement.migrate (a new value triggers one throttle period /
                            rebalance / migration, like `kubectl rollout restart`'s annotation)
    resources/<id>.yaml     {resource_id, resource_type, config}: the declared configuration of
                            a VM or network (the baseline format of `novacron baseline sync`)

Replicas and the cache are enforced every tick (a controller's loop); a resource
file is applied when a new commit changes it, and the world then reports the resource's config
(change_source `gitops`). Effects go through `agents.simulator.actions`, the same physics every
other controller uses.
"""

from __future__ import annotations

import copy
import logging
import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agents.simulator import actions
from agents.simulator.world import World
from schemas import Action
from schemas.errors import RejectedError

__all__ = ["GitOpsReconciler", "Reconciled", "seed_repository", "service_document"]

_TRIGGERS = (("rate_limit", "throttle", "adjust_policy"),
             ("load_balancer", "rebalance", "rebalance_load"),
             ("placement", "migrate", "migrate_vm"))
"""One-shot requests: (section, key, the world's action) run once per new value."""

log = logging.getLogger(__name__)
SOURCE = "novacron.simulator.gitops"
_AUTHOR = {"GIT_AUTHOR_NAME": "novacron-simulator", "GIT_AUTHOR_EMAIL": "simulator@localhost",
           "GIT_COMMITTER_NAME": "novacron-simulator",
           "GIT_COMMITTER_EMAIL": "simulator@localhost"}


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", **_AUTHOR})
    done = subprocess.run(["git", "-c", "protocol.ext.allow=never", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RejectedError(f"git {args[0]}: {done.stderr.strip()[-500:]}")
    return done.stdout


def service_document(world: World, name: str) -> dict[str, Any]:
    """The declared state of one service, as it is in the world now."""
    state = world.service(name)
    return {"service": name, "replicas": len(state.vms), "features": {"cache": state.cache_on},
            "rate_limit": {"throttle": ""},
            "resources": {"memory_mb": 2048},
            "load_balancer": {"rebalance": ""}, "placement": {"migrate": ""}}


def _dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def seed_repository(world: World, remote: Path, branch: str = "main") -> str:
    """A bare repository at `remote` holding the world's current declared state (made once;
    an existing repository is left as it is). Returns the branch head."""
    if (remote / "HEAD").exists():
        return _git("rev-parse", branch, cwd=remote).strip()
    remote.mkdir(parents=True, exist_ok=True)
    _git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(remote))
    with tempfile.TemporaryDirectory(prefix="novacron-seed-") as tmp:
        work = Path(tmp)
        _git("init", "--quiet", f"--initial-branch={branch}", cwd=work)
        for name in sorted(world.services):
            _write(work / "services" / f"{name}.yaml", _dump(service_document(world, name)))
        for rid, (rtype, config) in sorted(world.book.current.items()):
            doc = {"resource_id": rid, "resource_type": rtype, "config": config}
            _write(work / "resources" / f"{rid}.yaml", _dump(doc))
        _git("add", "--all", cwd=work)
        _git("commit", "--quiet", "-m", "declared state of the simulated cluster", cwd=work)
        _git("push", "--quiet", str(remote), f"HEAD:refs/heads/{branch}", cwd=work)
    return _git("rev-parse", branch, cwd=remote).strip()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@dataclass
class Reconciled:
    """What one reconcile pass did."""

    revision: str
    new_commit: bool = False
    applied: list[str] = field(default_factory=list)
    """Effects, e.g. `svc-0: scale_up 2` or `svc-0/vm-1: config`."""
    errors: list[str] = field(default_factory=list)


class GitOpsReconciler:
    """Keeps a World equal to a git repository's desired state (pull, compare, apply)."""

    def __init__(self, world: World, remote: str, workdir: Path, branch: str = "main") -> None:
        self.world, self.remote, self.branch = world, remote, branch
        self.work = workdir
        self.revision = ""
        self.services: dict[str, dict[str, Any]] = {}
        self._triggers: dict[tuple[str, str], Any] = {}
        if not (self.work / ".git").exists():
            self.work.parent.mkdir(parents=True, exist_ok=True)
            _git("clone", "--quiet", "--branch", branch, "--", remote, str(self.work))

    def reconcile(self) -> Reconciled:
        """Fetch; apply changed resource files of new commits; enforce every service's state."""
        _git("fetch", "--quiet", "origin", cwd=self.work)
        head = _git("rev-parse", f"origin/{self.branch}", cwd=self.work).strip()
        done = Reconciled(head, new_commit=head != self.revision)
        if done.new_commit:
            changed = self._changed_files(head)
            _git("reset", "--quiet", "--hard", head, cwd=self.work)
            self._load_services()
            for path in changed:
                self._apply_resource(path, head, done)
            self.revision = head
        for name, doc in self.services.items():
            self._enforce(name, doc, done)
        return done

    def _changed_files(self, head: str) -> list[str]:
        if not self.revision:  # first pass: everything is new to us
            out = _git("ls-tree", "-r", "--name-only", head, cwd=self.work)
        else:
            out = _git("diff", "--name-only", self.revision, head, cwd=self.work)
        return [p for p in out.splitlines() if p.startswith("resources/")]

    def _load_services(self) -> None:
        self.services = {}
        for path in sorted((self.work / "services").glob("*.yaml")):
            doc = yaml.safe_load(path.read_text()) or {}
            if isinstance(doc, Mapping) and doc.get("service") in self.world.services:
                self.services[str(doc["service"])] = dict(doc)

    def _apply_resource(self, path: str, head: str, done: Reconciled) -> None:
        file = self.work / path
        if not file.is_file():
            return  # deleted from git: the simulator does not prune live resources
        doc = yaml.safe_load(file.read_text()) or {}
        rid, config = doc.get("resource_id"), doc.get("config")
        if not isinstance(config, Mapping) or rid not in self.world.book.current:
            done.errors.append(f"{path}: not a known resource with a config")
            return
        rtype = self.world.book.current[rid][0]
        self.world.book.current[rid] = (rtype, copy.deepcopy(dict(config)))
        # reported even when live already matched: a sync at this revision is news (it closes
        # findings against a baseline the commit accepted)
        self.world.queue_config(rid, "update", "gitops", actor=f"git:{head[:12]}")
        done.applied.append(f"{rid}: config")

    def _enforce(self, name: str, doc: Mapping[str, Any], done: Reconciled) -> None:
        state = self.world.service(name)
        wanted = doc.get("replicas")
        if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted != len(state.vms):
            kind = "scale_up" if wanted > len(state.vms) else "scale_down"
            self._act(name, kind, {"delta": abs(wanted - len(state.vms))}, done)
        cache = bool((doc.get("features") or {}).get("cache", False))
        if cache != state.cache_on:
            self._act(name, "enable_feature" if cache else "disable_feature", {}, done)
        for key, item, kind in _TRIGGERS:
            value = (doc.get(key) or {}).get(item)
            seen = self._triggers.setdefault((name, key), value)
            if value != seen:
                self._triggers[(name, key)] = value
                self._act(name, kind, {}, done)

    def _act(self, name: str, kind: str, params: dict[str, Any], done: Reconciled) -> None:
        action = Action(action_id=f"gitops:{self.revision[:12]}:{name}:{kind}",
                        resource_id=name, action_type=kind, params=params, source=SOURCE)
        status, _, error = actions.apply(self.world, action)
        note = f"{name}: {kind}" + (f" {params['delta']}" if "delta" in params else "")
        if status == "failed":
            done.errors.append(f"{note}: {error}")
            log.warning("gitops: %s failed: %s", note, error)
        else:
            done.applied.append(note)
