"""`novacron approve|reject ID`: a person's answer to a pending approval, on `approvals`."""

from __future__ import annotations

import asyncio
import getpass
import time
from datetime import timedelta
from typing import Literal

import typer
from rich.console import Console
from rich.markup import escape

from schemas import Approval
from schemas.codec import Codec
from schemas.envelope import utc_now
from schemas.errors import DeadLetterError
from streams.settings import Settings

__all__ = ["approve_app", "find_request", "reject_app"]

console = Console(stderr=True)
SOURCE = "novacron.cli"
Status = Literal["approved", "rejected"]

IdArg = typer.Argument(..., help="Request id: the id of the decision waiting for approval.")


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in minimal containers
        return "unknown"


ByOpt = typer.Option(_whoami(), "--by", help="Who decides (recorded in the history).")
ReasonOpt = typer.Option("", "--reason", help="Why (recorded in the history).")
WaitOpt = typer.Option(
    10.0, "--wait", min=0, help="Seconds to wait for the pending request to appear on the topic."
)
CheckOpt = typer.Option(
    True, "--check/--no-check",
    help="Look the pending request up first (continues its correlation chain, refuses requests "
    "that are already decided or expired). --no-check publishes blindly.",
)


async def find_request(settings: Settings, request_id: str) -> Approval | None:
    """The latest Approval event of a request on the approvals topic (None when absent).

    Only the last approval TTL is read (an older request has expired), from every partition.
    """
    from aiokafka import ConsumerRecord

    from streams.reader import TopicReader

    since = utc_now() - timedelta(seconds=settings.gate.approval_ttl_seconds + 60)
    key, codec = request_id.encode(), Codec()
    found: list[Approval] = []

    async def scan(records: list[ConsumerRecord]) -> None:
        for rec in records:
            if rec.key == key:
                try:
                    found.append(codec.decode(rec.value, Approval))
                except DeadLetterError:
                    continue

    reader = TopicReader(settings.kafka, settings.kafka.topic("approvals"),
                         since_ms=int(since.timestamp() * 1000))
    await reader.start()
    try:
        await reader.catch_up(scan)
    finally:
        await reader.stop()
    return found[-1] if found else None


def _decide(request_id: str, status: Status, by: str, reason: str, check: bool, wait: float
            ) -> None:
    settings = Settings()
    from streams.publish import publish  # imports aiokafka: only when used

    try:
        previous = _lookup(settings, request_id, wait) if check else None
        if check and previous is None:
            console.print(f"[red]no pending approval {request_id!r}[/] on "
                          f"{settings.kafka.topic('approvals')} (the last "
                          f"{settings.gate.approval_ttl_seconds:g} s); check the id, or publish "
                          "anyway with --no-check")
            raise typer.Exit(1)
        if previous is not None and previous.status != "pending":
            console.print(f"[yellow]request {escape(request_id)} is already {previous.status}"
                          + (f" by {escape(previous.by)}" if previous.by else "") + "[/]")
            raise typer.Exit(1)
        approval = _approval(previous, request_id, status, by, reason)
        publish([approval], settings)
    except typer.Exit:
        raise
    except Exception as exc:  # aiokafka raises several unrelated types when no broker answers
        where = escape(settings.kafka.bootstrap)
        console.print(f"[red]could not reach Kafka at {where}:[/] {escape(str(exc))}. "
                      "Start it with `novacron kafka start` or set NOVACRON_KAFKA__BOOTSTRAP.")
        raise typer.Exit(2) from exc
    console.print(f"[green]{status}[/] {escape(request_id)} by {escape(by)}"
                  + (f" ({escape(approval.resource_id)})" if approval.resource_id else ""))


def _lookup(settings: Settings, request_id: str, wait: float) -> Approval | None:
    # the gate publishes the pending item moments after the decision: a prompt CLI may wait
    deadline = time.monotonic() + wait
    with console.status(f"looking up {request_id} …"):
        while True:
            found = asyncio.run(find_request(settings, request_id))
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(0.5)


def _approval(previous: Approval | None, request_id: str, status: Status, by: str, reason: str
              ) -> Approval:
    fields = {"request_id": request_id, "status": status, "by": by, "reason": reason,
              "source": SOURCE}
    if previous is None:
        return Approval(**fields)
    return Approval.caused_by(previous, resource_id=previous.resource_id, **fields)


def approve_app(
    request_id: str = IdArg, by: str = ByOpt, reason: str = ReasonOpt, check: bool = CheckOpt,
    wait: float = WaitOpt,
) -> None:
    """Approve a pending decision: the gate that holds it releases its action."""
    _decide(request_id, "approved", by, reason, check, wait)


def reject_app(
    request_id: str = IdArg, by: str = ByOpt, reason: str = ReasonOpt, check: bool = CheckOpt,
    wait: float = WaitOpt,
) -> None:
    """Reject a pending decision: the gate drops it and nothing is executed."""
    _decide(request_id, "rejected", by, reason, check, wait)
