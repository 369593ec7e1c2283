"""`novacron audit verify` and `audit keygen`: the audit chain against its signed heads."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from schemas.errors import NovacronError
from sinks.checkpoint import SignedHead, generate_key, latest_head, read_head_file, verify_anchored
from sinks.queries import iter_audit_rows
from streams.audithead import HEADS_TOPIC, read_heads, trusted_keys
from streams.cli.history import SQL_URL, audit_app, console, err, fail, open_history
from streams.settings import Settings

__all__ = ["audit_app"]


@audit_app.command("verify")
def audit_verify(
    sql_url: str | None = SQL_URL,
    kafka: bool = typer.Option(
        True, "--kafka/--no-kafka", help="Read signed heads from the audit-heads topic too."
    ),
    allow_unanchored: bool = typer.Option(
        False, "--allow-unanchored",
        help="Pass without any signed head (only links and seq continuity are then checked).",
    ),
) -> None:
    """Check the audit chain: seq continuity from 1, every hash link, and that the stored chain
    reaches the latest signed head with the same hash. Exit 1 on any problem."""
    settings = Settings()
    db = settings.clickhouse.database
    head, problems = latest_head(_heads(settings, kafka), db, trusted_keys(settings.audit))
    counted = _Counted()
    reader = open_history(settings, sql_url)
    try:
        rows = counted.each(iter_audit_rows(reader, db))
        problems += verify_anchored(rows, head, require_head=not allow_unanchored)
    except NovacronError as exc:
        raise fail(f"cannot read the audit log: {exc}") from exc
    finally:
        reader.close()
    for problem in problems:
        err.print(f"[red]{problem}[/]")
    anchor = f"signed head seq {head.head.seq} ({head.head.time})" if head else "no signed head"
    console.print(f"{counted.n} audit rows, {anchor}, {len(problems)} problems")
    raise typer.Exit(1 if problems else 0)


class _Counted:
    """Counts the rows of a stream as it goes by."""

    n = 0

    def each(self, rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            self.n += 1
            yield row


def _heads(settings: Settings, kafka: bool) -> list[SignedHead]:
    try:
        heads = read_head_file(settings.audit.head_file)
    except NovacronError as exc:
        raise fail(f"cannot read the head file {settings.audit.head_file}: {exc}") from exc
    if kafka:
        topic = settings.kafka.topic(HEADS_TOPIC)
        try:
            heads += asyncio.run(read_heads(settings.kafka, topic))
        except Exception as exc:  # the file may still anchor the chain; say what was missed
            err.print(f"[yellow]could not read {topic} at {settings.kafka.bootstrap}: {exc}[/]")
    return heads


@audit_app.command("keygen")
def audit_keygen(
    out: Path = typer.Argument(
        None, help="Secret key file to write (default: audit.signing_key_file)", show_default=False
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing key file."),
) -> None:
    """Create the ed25519 key the ingest worker signs chain heads with; prints the public key
    to pin in audit.trusted_keys (NOVACRON_AUDIT__TRUSTED_KEYS='["<hex>"]') for auditors."""
    from policies.signing import public_key_of

    path = out or Settings().audit.signing_key_file
    if path.exists() and not force:
        raise fail(f"{path} exists; pass --force to replace it (old heads then need the old key)")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    public = public_key_of(key)
    path.with_name(path.name + ".pub").write_text(public + "\n", encoding="utf-8")
    console.print(f"wrote {path} (secret) and {path.name}.pub; public key: {public}")
