"""A local process standing in for a PostgreSQL server in runbook tests.

It speaks the start of the frontend/backend protocol v3 (SSL and GSS requests refused, trust
authentication, simple queries): enough for the real `pg_isready` and `psql --command`. It
answers `pg_is_in_recovery()` and a promotion (`pg_promote` in a query: a standby becomes a
primary), refuses everything else with an SQL error, and logs every query as a JSON line.

    python tests/pg_standin.py --role primary|standby|rejecting|stuck [--log FILE]

prints the port it listens on (127.0.0.1), then serves until killed. `rejecting` answers every
connection with SQLSTATE 57P03 (the database system is shutting down: pg_isready exits 1);
`stuck` is a standby whose promotion does not complete.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import sys
from pathlib import Path

SSL_REQUEST, GSS_REQUEST, CANCEL_REQUEST, PROTOCOL_3 = 80877103, 80877104, 80877102, 196608


def message(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def cstr(text: str) -> bytes:
    return text.encode() + b"\x00"


def error(code: str, text: str, severity: str = "ERROR") -> bytes:
    fields = [b"S" + cstr(severity), b"V" + cstr(severity), b"C" + cstr(code), b"M" + cstr(text)]
    return message(b"E", b"".join(fields) + b"\x00")


def ready() -> bytes:
    return message(b"Z", b"I")


def one_boolean(column: str, value: bool) -> bytes:
    # RowDescription: 1 field (name, table oid, attnum, type oid 16 = bool, size 1, mod, text)
    field = cstr(column) + struct.pack("!ihihih", 0, 0, 16, 1, -1, 0)
    row = struct.pack("!hi", 1, 1) + (b"t" if value else b"f")
    return (message(b"T", struct.pack("!h", 1) + field) + message(b"D", row)
            + message(b"C", cstr("SELECT 1")))


class Server:
    """One stand-in server: its role, whether it is in recovery, the queries it saw."""

    def __init__(self, role: str, log: Path | None) -> None:
        self.role = role
        self.in_recovery = role in ("standby", "stuck")
        self.log = log

    def record(self, **entry: object) -> None:
        if self.log is not None:
            with self.log.open("a") as f:
                f.write(json.dumps(entry) + "\n")

    async def startup(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                      ) -> dict[str, str] | None:
        while True:
            (length,) = struct.unpack("!i", await reader.readexactly(4))
            body = await reader.readexactly(length - 4)
            (code,) = struct.unpack("!i", body[:4])
            if code in (SSL_REQUEST, GSS_REQUEST):
                writer.write(b"N")  # no encryption here; the client goes on in clear text
                continue
            if code != PROTOCOL_3:
                return None
            parts = body[4:].split(b"\x00")[:-2]  # key, value, …, key, value, "", ""
            return {k.decode(): v.decode() for k, v in zip(parts[0::2], parts[1::2], strict=True)}

    def greet(self) -> bytes:
        out = message(b"R", struct.pack("!i", 0))  # AuthenticationOk
        for key, value in (("server_version", "15.0"), ("server_encoding", "UTF8"),
                           ("client_encoding", "UTF8"), ("DateStyle", "ISO, MDY"),
                           ("integer_datetimes", "on"), ("standard_conforming_strings", "on"),
                           ("in_hot_standby", "on" if self.in_recovery else "off")):
            out += message(b"S", cstr(key) + cstr(value))
        return out + message(b"K", struct.pack("!ii", 4242, 1)) + ready()

    def answer(self, query: str) -> bytes:
        if "pg_promote" in query:
            if self.role == "stuck":
                return error("P0001", "standby not promoted within 60 s")
            self.in_recovery = False  # a primary already: nothing to do
            return message(b"C", cstr("DO"))
        if query.strip().rstrip(";").lower() == "select pg_is_in_recovery()":
            return one_boolean("pg_is_in_recovery", self.in_recovery)
        return error("42601", "the stand-in answers only pg_is_in_recovery() and pg_promote")

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            params = await self.startup(reader, writer)
            if params is None:
                return
            self.record(connect=params.get("user"), database=params.get("database"))
            if self.role == "rejecting":
                writer.write(error("57P03", "the database system is shutting down", "FATAL"))
                return
            writer.write(self.greet())
            while True:
                kind = await reader.readexactly(1)
                (length,) = struct.unpack("!i", await reader.readexactly(4))
                body = await reader.readexactly(length - 4)
                if kind == b"X":
                    return
                if kind != b"Q":
                    writer.write(error("0A000", "only simple queries") + ready())
                    continue
                query = body.rstrip(b"\x00").decode()
                self.record(query=query, in_recovery_before=self.in_recovery)
                writer.write(self.answer(query) + ready())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", choices=["primary", "standby", "rejecting", "stuck"],
                        required=True)
    parser.add_argument("--log", type=Path)
    args = parser.parse_args()
    server = Server(args.role, args.log)
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    print(listener.sockets[0].getsockname()[1], flush=True)
    async with listener:
        await listener.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
