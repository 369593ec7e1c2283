"""Signed audit-chain heads: what anchors the hash chain outside ClickHouse.

The ingest worker signs (ed25519) the `(seq, hash, time)` of the last audit row it inserted and
publishes it to a compacted Kafka topic (and a file). Whoever can rewrite the table cannot sign,
so `verify_anchored` detects a truncated chain (the stored chain ends before the signed head)
and a re-hashed one (the stored hash at the head's seq differs), and the writer resumes after the
signed head, never reusing a deleted seq.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from policies.signing import generate_key, public_key_of, sign_hash, verify_hash
from schemas.errors import NonRetryableError, RejectedError
from sinks.audit import GENESIS, verify_chain

__all__ = [
    "ChainHead",
    "SignedHead",
    "generate_key",
    "latest_head",
    "load_signing_key",
    "read_head_file",
    "resume_point",
    "sign_head",
    "verify_anchored",
    "write_head_file",
]

_DOMAIN = "novacron-audit-head/v1"  # a policy signature can never pass as a head signature


@dataclass(frozen=True)
class ChainHead:
    """The last row of a chain: its seq, hash and time, and which chain (the database)."""

    chain: str
    seq: int
    hash: str
    time: str

    def message(self) -> str:
        """The exact text that is signed."""
        return "\n".join((_DOMAIN, self.chain, str(self.seq), self.hash, self.time))

    @classmethod
    def of_row(cls, chain: str, row: Mapping[str, Any]) -> ChainHead:
        """The head made by an audit row."""
        return cls(chain, int(row["seq"]), str(row["hash"]), str(row["time"]))


@dataclass(frozen=True)
class SignedHead:
    """A head with the signer's public key and the detached signature (both hex)."""

    head: ChainHead
    key: str
    signature: str

    def to_json(self) -> bytes:
        """The wire form (topic value and head file)."""
        return orjson.dumps({**asdict(self.head), "key": self.key, "signature": self.signature})

    @classmethod
    def from_json(cls, raw: bytes | str) -> SignedHead:
        """Parse the wire form; RejectedError when it is not one."""
        try:
            d = orjson.loads(raw)
            head = ChainHead(str(d["chain"]), int(d["seq"]), str(d["hash"]), str(d["time"]))
            return cls(head, str(d["key"]), str(d["signature"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RejectedError(f"not a signed audit head: {exc}") from exc

    def verifies(self, trusted_keys: Iterable[str]) -> bool:
        """True when a trusted key signed exactly this head."""
        return verify_hash(self.head.message(), self.signature, list(trusted_keys))


def sign_head(head: ChainHead, signing_key_hex: str) -> SignedHead:
    """Sign a head with a hex ed25519 key."""
    signature = sign_hash(head.message(), signing_key_hex)
    return SignedHead(head, public_key_of(signing_key_hex), signature)


def load_signing_key(path: Path) -> str | None:
    """The hex key in `path`; None when the file does not exist; NonRetryableError when it is
    not a key (a worker must not run with a key it cannot use)."""
    if not path.exists():
        return None
    key = path.read_text(encoding="utf-8").strip()
    try:
        public_key_of(key)
    except Exception as exc:
        raise NonRetryableError(f"{path} does not hold a hex ed25519 signing key: {exc}") from exc
    return key


def latest_head(
    heads: Iterable[SignedHead], chain: str, trusted_keys: Sequence[str]
) -> tuple[SignedHead | None, list[str]]:
    """The highest-seq head of `chain` that a trusted key signed, and the problems found
    (heads of the chain whose signature no trusted key verifies)."""
    best: SignedHead | None = None
    problems: list[str] = []
    for h in heads:
        if h.head.chain != chain:
            continue
        if not h.verifies(trusted_keys):
            problems.append(
                f"a head for seq {h.head.seq} is not signed by a trusted key (forged, or the "
                "signing key changed: add its public key to audit.trusted_keys)"
            )
        elif best is None or h.head.seq > best.head.seq:
            best = h
    return best, problems


def resume_point(tail: Mapping[str, Any] | None, head: SignedHead | None) -> tuple[int, str]:
    """`(last_seq, last_hash)` the writer continues from: the later of the stored tail and the
    signed head, so a seq whose row was deleted is never written again."""
    tail_seq, tail_hash = (int(tail["seq"]), str(tail["hash"])) if tail else (0, GENESIS)
    if head is not None and head.head.seq > tail_seq:
        return head.head.seq, head.head.hash
    return tail_seq, tail_hash


def verify_anchored(
    rows: Iterable[Mapping[str, Any]], head: SignedHead | None, *, require_head: bool = True
) -> list[str]:
    """Problems of a stored chain (rows in seq order, read once) against its latest signed head."""
    seen = _Seen(head.head.seq if head else None)
    problems = verify_chain(seen.track(rows))
    if seen.first not in (None, 1):
        problems.insert(0, f"the chain starts at seq {seen.first}, not 1 (rows removed)")
    if head is None:
        if require_head:
            problems.append(
                "no signed chain head found: truncation cannot be ruled out (give the ingest "
                "worker audit.signing_key_file; `novacron audit keygen` makes one)"
            )
        return problems
    return problems + _against_head(seen, head.head)


class _Seen:
    """What a single pass over the rows remembers: first and last seq, the hash at the head."""

    def __init__(self, head_seq: int | None) -> None:
        self.head_seq = head_seq
        self.first: int | None = None
        self.last = 0
        self.count = 0
        self.hash_at_head: str | None = None

    def track(self, rows: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        for row in rows:
            seq = int(row["seq"])
            self.first = seq if self.first is None else self.first
            self.last, self.count = seq, self.count + 1
            if seq == self.head_seq:
                self.hash_at_head = str(row["hash"])
            yield row


def _against_head(seen: _Seen, head: ChainHead) -> list[str]:
    if seen.last < head.seq:
        return [
            f"truncated: the stored chain ends at seq {seen.last} but the signed head of "
            f"{head.time} is at seq {head.seq} (rows {seen.last + 1}..{head.seq} were removed)"
        ]
    if seen.hash_at_head is None:
        return [f"the row at the signed head's seq {head.seq} is missing"]
    if seen.hash_at_head != head.hash:
        return [
            f"seq {head.seq}: stored hash {seen.hash_at_head[:16]}… differs from the signed "
            f"head's {head.hash[:16]}… (rows were altered and the chain re-hashed)"
        ]
    return []


def write_head_file(path: Path, signed: SignedHead) -> None:
    """Replace the head file atomically (a reader never sees half a head)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(signed.to_json())
    os.replace(tmp, path)


def read_head_file(path: Path | None) -> list[SignedHead]:
    """The head in the file (empty when there is none); RejectedError when it is unreadable."""
    if path is None or not path.exists():
        return []
    return [SignedHead.from_json(path.read_bytes())]
