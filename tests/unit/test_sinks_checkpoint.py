"""Signed audit-chain heads: each tamper class is detected, and the writer never reuses a seq.

The tampering runs as SQL on the real engine (chDB), the way someone with write access to the
history would do it; verification reads through the history reader, as `audit verify` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from schemas import Decision
from sinks.audit import GENESIS, AuditChain, row_hash
from sinks.backend import ChdbBackend
from sinks.checkpoint import (
    ChainHead,
    SignedHead,
    generate_key,
    latest_head,
    read_head_file,
    resume_point,
    sign_head,
    verify_anchored,
    write_head_file,
)
from sinks.config import ClickHouseConfig
from sinks.ddl import apply_ddl
from sinks.queries import audit_rows, audit_tail, iter_audit_rows
from sinks.reader import open_reader
from sinks.writer import BatchingSink
from streams.cli import audit as audit_cli

KEY = generate_key()
OTHER_KEY = generate_key()


def _public(key: str) -> str:
    from policies.signing import public_key_of

    return public_key_of(key)


TRUSTED = [_public(KEY)]


def _chain(n: int) -> list[dict]:
    chain = AuditChain()
    return [
        chain.append(actor="gate", kind="Decision", subject_id=f"vm-{i}").as_dict()
        for i in range(n)
    ]


def _head(rows: list[dict], key: str = KEY, chain: str = "novacron") -> SignedHead:
    return sign_head(ChainHead.of_row(chain, rows[-1]), key)


# --- the pure checks ---------------------------------------------------------------------------


def test_a_signed_head_verifies_and_any_change_breaks_it() -> None:
    head = _head(_chain(3))
    assert head.verifies(TRUSTED)
    assert not head.verifies([_public(OTHER_KEY)])
    for change in ({"seq": 4}, {"hash": "0" * 64}, {"time": "2000-01-01 00:00:00.000"},
                   {"chain": "other"}):
        forged = SignedHead(ChainHead(**{**head.head.__dict__, **change}), head.key,
                            head.signature)
        assert not forged.verifies(TRUSTED), change
    assert SignedHead.from_json(head.to_json()) == head


def test_an_intact_chain_reaching_its_head_passes() -> None:
    rows = _chain(7)
    assert verify_anchored(rows, _head(rows)) == []
    assert verify_anchored(rows, _head(rows[:5])) == []  # the head may lag the stored tail


def test_deleting_the_last_rows_is_truncation() -> None:
    rows = _chain(5)
    problems = verify_anchored(rows[:3], _head(rows))
    assert problems and "truncated" in problems[0] and "rows 4..5 were removed" in problems[0]


def test_emptying_the_table_is_truncation() -> None:
    rows = _chain(5)
    assert any("ends at seq 0" in p for p in verify_anchored([], _head(rows)))


def test_editing_a_row_and_rehashing_the_rest_is_detected() -> None:
    rows = _chain(5)
    head = _head(rows)
    forged, prev = [], GENESIS
    for row in rows:  # change row 2's actor and recompute every hash from there
        fields = {**row, "prev_hash": prev}
        if row["seq"] == 2:
            fields["actor"] = "someone-else"
        fields["hash"] = row_hash(fields)
        forged.append(fields)
        prev = fields["hash"]
    assert [p for p in verify_anchored(forged, None, require_head=False)] == []  # links hold
    problems = verify_anchored(forged, head)
    assert len(problems) == 1 and "re-hashed" in problems[0]


def test_removing_the_first_rows_or_one_in_the_middle_is_detected() -> None:
    rows = _chain(5)
    assert any("starts at seq 3" in p for p in verify_anchored(rows[2:], _head(rows)))
    assert any("expected seq 3" in p for p in verify_anchored(rows[:2] + rows[3:], _head(rows)))


def test_no_head_fails_unless_explicitly_allowed() -> None:
    rows = _chain(2)
    assert any("no signed chain head" in p for p in verify_anchored(rows, None))
    assert verify_anchored(rows, None, require_head=False) == []


def test_the_latest_trusted_head_wins_and_untrusted_ones_are_reported() -> None:
    rows = _chain(6)
    old, new = _head(rows[:3]), _head(rows)
    forged = _head(rows + _chain(9)[6:], OTHER_KEY)
    best, problems = latest_head([new, old, forged], "novacron", TRUSTED)
    assert best == new
    assert len(problems) == 1 and "not signed by a trusted key" in problems[0]
    assert latest_head([new], "another-chain", TRUSTED) == (None, [])


def test_the_writer_resumes_after_the_signed_head_and_never_reuses_a_seq() -> None:
    rows = _chain(5)
    head = _head(rows)
    assert resume_point(rows[2], head) == (5, rows[4]["hash"])  # rows 4, 5 deleted
    assert resume_point(None, head) == (5, rows[4]["hash"])  # table emptied
    assert resume_point(rows[4], _head(rows[:2])) == (5, rows[4]["hash"])  # the head lags
    assert resume_point(None, None) == (0, GENESIS)
    chain = AuditChain(*resume_point(rows[2], head))
    assert chain.append(actor="a", kind="k", subject_id="s").seq == 6


def test_the_head_file_round_trips(tmp_path: Path) -> None:
    head = _head(_chain(2))
    write_head_file(tmp_path / "a" / "head.json", head)
    assert read_head_file(tmp_path / "a" / "head.json") == [head]
    assert read_head_file(tmp_path / "missing.json") == []


# --- each tamper class on the engine, through `novacron audit verify` ---------------------------


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ClickHouseConfig, Path]]:
    root = tmp_path_factory.mktemp("audit")
    cfg = ClickHouseConfig(path=root / "chdb")
    key_file = root / "audit.key"
    key_file.write_text(KEY)
    yield cfg, key_file


def _write(cfg: ClickHouseConfig, n: int) -> None:
    backend = ChdbBackend(cfg.path)
    try:
        apply_ddl(backend, cfg)
        tail = audit_tail(backend, cfg.database)
        sink = BatchingSink(backend, cfg.database, audit=AuditChain.resume(tail),
                            sleep=lambda s: None)
        for i in range(n):
            decision = Decision(resource_id=f"vm-{i}", decision_type="scale_up")
            sink.add(decision, "novacron.decisions", 0, i)
        sink.flush()
    finally:
        backend.close()


def _sql(cfg: ClickHouseConfig, *statements: str) -> None:
    backend = ChdbBackend(cfg.path)
    try:
        for sql in statements:
            backend.execute(sql)
    finally:
        backend.close()


def _sign_current(cfg: ClickHouseConfig, head_file: Path) -> SignedHead:
    reader = open_reader(cfg, sql_url="http://127.0.0.1:9")
    try:
        rows = audit_rows(reader, cfg.database)
    finally:
        reader.close()
    signed = _head(rows, chain=cfg.database)
    write_head_file(head_file, signed)
    return signed


def _verify(monkeypatch: pytest.MonkeyPatch, cfg: ClickHouseConfig, key_file: Path,
            head_file: Path) -> tuple[int, str]:
    monkeypatch.setenv("NOVACRON_CLICKHOUSE__PATH", str(cfg.path))
    monkeypatch.setenv("NOVACRON_CLICKHOUSE__DATABASE", cfg.database)
    monkeypatch.setenv("NOVACRON_AUDIT__SIGNING_KEY_FILE", str(key_file))
    monkeypatch.setenv("NOVACRON_AUDIT__HEAD_FILE", str(head_file))
    result = CliRunner().invoke(audit_cli.audit_app, ["verify", "--no-kafka"])
    return result.exit_code, result.output


@pytest.fixture
def anchored(history, tmp_path) -> tuple[ClickHouseConfig, Path, Path]:
    cfg, key_file = history
    cfg = cfg.model_copy(update={"database": f"a{tmp_path.name[-8:].replace('-', '_')}"})
    _write(cfg, 6)
    head_file = tmp_path / "head.json"
    _sign_current(cfg, head_file)
    return cfg, key_file, head_file


def _db(cfg: ClickHouseConfig) -> str:
    return f"`{cfg.database}`.audit_log"


def test_verify_passes_an_intact_anchored_chain(anchored, monkeypatch) -> None:
    code, out = _verify(monkeypatch, *anchored)
    assert code == 0, out
    assert "6 audit rows, signed head seq 6" in out and "0 problems" in out


def test_verify_reads_the_chain_a_page_at_a_time(anchored) -> None:
    cfg = anchored[0]
    reader = open_reader(cfg, sql_url="http://127.0.0.1:9")
    try:
        paged = list(iter_audit_rows(reader, cfg.database, page=4))  # pages of 4, 2, (none)
        assert [r["seq"] for r in paged] == [1, 2, 3, 4, 5, 6]
        assert paged == audit_rows(reader, cfg.database)
    finally:
        reader.close()


def test_verify_fails_after_deleting_the_last_rows(anchored, monkeypatch) -> None:
    cfg = anchored[0]
    _sql(cfg, f"ALTER TABLE {_db(cfg)} DELETE WHERE seq > 4 SETTINGS mutations_sync = 2")
    code, out = _verify(monkeypatch, *anchored)
    assert code == 1 and "truncated" in out and "rows 5..6 were removed" in out


def test_verify_fails_after_truncate(anchored, monkeypatch) -> None:
    cfg = anchored[0]
    _sql(cfg, f"TRUNCATE TABLE {_db(cfg)}")
    code, out = _verify(monkeypatch, *anchored)
    assert code == 1 and "truncated" in out


def test_verify_fails_after_an_edit_with_every_later_hash_recomputed(anchored, monkeypatch):
    cfg = anchored[0]
    reader = open_reader(cfg, sql_url="http://127.0.0.1:9")
    rows = audit_rows(reader, cfg.database)
    reader.close()
    prev, statements = GENESIS, []
    for row in rows:
        fields = {**row, "prev_hash": prev, **({"actor": "mallory"} if row["seq"] == 3 else {})}
        fields["hash"] = row_hash(fields)
        prev = fields["hash"]
        statements.append(
            f"ALTER TABLE {_db(cfg)} UPDATE actor = '{fields['actor']}', "
            f"prev_hash = '{fields['prev_hash']}', hash = '{fields['hash']}' "
            f"WHERE seq = {row['seq']} SETTINGS mutations_sync = 2"
        )
    _sql(cfg, *statements)
    code, out = _verify(monkeypatch, *anchored)
    assert code == 1 and "re-hashed" in out


def test_verify_fails_on_a_head_signed_by_an_unknown_key(anchored, monkeypatch) -> None:
    cfg, key_file, head_file = anchored
    head = SignedHead.from_json(head_file.read_bytes())
    write_head_file(head_file, sign_head(head.head, OTHER_KEY))
    code, out = _verify(monkeypatch, cfg, key_file, head_file)
    assert code == 1 and "not signed by a trusted key" in out


def test_a_resumed_writer_continues_after_the_head(anchored, monkeypatch) -> None:
    cfg, key_file, head_file = anchored
    _sql(cfg, f"ALTER TABLE {_db(cfg)} DELETE WHERE seq > 4 SETTINGS mutations_sync = 2")
    head = read_head_file(head_file)[0]
    backend = ChdbBackend(cfg.path)
    try:
        chain = AuditChain(*resume_point(audit_tail(backend, cfg.database), head))
        sink = BatchingSink(backend, cfg.database, audit=chain, sleep=lambda s: None)
        sink.add(Decision(resource_id="vm-9", decision_type="scale_up"), "d", 0, 99)
        sink.flush()
        seqs = [r["seq"] for r in backend.query(
            f"SELECT seq FROM {_db(cfg)} FINAL ORDER BY seq")]
    finally:
        backend.close()
    assert seqs == [1, 2, 3, 4, 7]  # 5 and 6 stay missing: never written again
    code, out = _verify(monkeypatch, cfg, key_file, head_file)
    assert code == 1 and "expected seq 5" in out


def test_keygen_writes_a_private_key_file(tmp_path: Path) -> None:
    out = tmp_path / "k" / "audit.key"
    result = CliRunner().invoke(audit_cli.audit_app, ["keygen", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    public = _public(out.read_text().strip())
    assert public in result.output.replace("\n", "")
    assert (out.parent / "audit.key.pub").read_text().strip() == public
    again = CliRunner().invoke(audit_cli.audit_app, ["keygen", str(out)])
    assert again.exit_code == 1 and "exists" in again.output
