"""GitOps events: the record of one sync (commit, author, changes or refusal), a fetched commit."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.edge import Identifier, StrMap, TextList
from schemas.envelope import Event

__all__ = ["GitCommit", "GitSync"]


class GitSync(Event):
    """One reconciliation of a config repository (compacted topic `gitops`, keyed by repo).

    `applied`: the commit's objects were published in one Kafka transaction with this record;
    `rejected`: validation failed, nothing was published, `serving` keeps the last good commit.
    The latest record per repo says what is serving: `manifest` maps every object the repository
    manages (`policy/<id>`, `runbook/<id>`, `baseline/<resource>`, `ignore/<rule>`,
    `exception/<control>:<resource>`) to the content hash it was applied with.
    """

    event_type = "GitSync"
    topic = "gitops"
    latest_wins = True  # compacted: the latest record per repo says what serves, however old

    repo: Identifier = Field(min_length=1, max_length=128)
    """The configured repository name (the Kafka key)."""
    branch: str = Field(default="main", max_length=256)
    """The branch followed."""
    commit: Identifier = Field(max_length=64)
    """The commit this sync looked at (its full sha)."""
    author: str = Field(default="", max_length=256)
    """The commit's author (`Name <email>`)."""
    message: str = Field(default="", max_length=512)
    """The commit's subject line."""
    status: Literal["applied", "rejected"]
    """applied: published atomically; rejected: nothing published (the reasons say why)."""
    serving: str = Field(default="", max_length=64)
    """The commit whose objects are live after this sync (the last good one when rejected)."""
    added: TextList = Field(default_factory=list)
    """Objects created by this sync."""
    changed: TextList = Field(default_factory=list)
    """Objects whose content this sync replaced."""
    pruned: TextList = Field(default_factory=list)
    """Objects removed (disabled, withdrawn, revoked) because their files were deleted."""
    reasons: TextList = Field(default_factory=list)
    """Why a commit was rejected, one problem per entry (file and rule named)."""
    manifest: StrMap = Field(default_factory=dict)
    """Object → content hash of everything `serving` manages (the basis of `gitops status`)."""

    @property
    def key(self) -> str:
        return self.repo


class GitCommit(Event):
    """One fetched commit of a config repository, handed to the reconciler in-process.

    Not published (no topic): the host-side helper fetches the branch head, reads the files of
    the five folders and runs the checks that need an engine or a child process (Rego tests and
    compilation); the reconciler does the rest.
    """

    event_type = "GitCommit"

    repo: Identifier = Field(min_length=1, max_length=128)
    """The configured repository name."""
    branch: str = Field(default="main", max_length=256)
    """The branch followed."""
    commit: Identifier = Field(max_length=64)
    """The commit's full sha."""
    author: str = Field(default="", max_length=256)
    """The commit's author."""
    message: str = Field(default="", max_length=512)
    """The commit's subject line."""
    files: dict[str, str] = Field(default_factory=dict)
    """Text of every file under the five folders, by path relative to the configured folder."""
    problems: list[str] = Field(default_factory=list)
    """What the helper found: unreadable or oversized files, failing Rego tests, compile errors."""

    @property
    def key(self) -> str:
        return self.repo
