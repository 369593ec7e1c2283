"""moto in server mode (the usual local AWS API), and a proxy in front of it that can swallow
chosen calls: it answers them as AWS would on success but never forwards them (a target that
silently ignores the change)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx

__test__ = False

_CANNED = {
    "SetDesiredCapacity": (
        '<SetDesiredCapacityResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">'
        "<ResponseMetadata><RequestId>swallowed</RequestId></ResponseMetadata>"
        "</SetDesiredCapacityResponse>"),
    "RevokeSecurityGroupIngress": (
        '<RevokeSecurityGroupIngressResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        "<requestId>swallowed</requestId><return>true</return>"
        "</RevokeSecurityGroupIngressResponse>"),
    "PutBucketEncryption": "",
}


@dataclass
class ProxyState:
    upstream: str
    swallow: set[str] = field(default_factory=set)
    """Action names answered with a canned success and not forwarded."""
    seen: list[str] = field(default_factory=list)


def _action(method: str, path: str, body: bytes) -> str:
    if method == "PUT" and "encryption" in parse_qs(path.partition("?")[2],
                                                    keep_blank_values=True):
        return "PutBucketEncryption"
    form = parse_qs(body.decode(errors="replace"))
    return (form.get("Action") or [""])[0]


class _Proxy(BaseHTTPRequestHandler):
    state: ProxyState

    def log_message(self, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        action = _action(self.command, self.path, body)
        self.state.seen.append(action)
        if action in self.state.swallow:
            raw = _CANNED[action].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        resp = httpx.request(self.command, self.state.upstream + self.path, content=body,
                             headers=headers, timeout=30)
        self.send_response(resp.status_code)
        for key, value in resp.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection",
                                   "content-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(resp.content)))
        self.end_headers()
        self.wfile.write(resp.content)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


@contextmanager
def moto_behind_proxy() -> Iterator[tuple[str, ProxyState]]:
    """(endpoint URL of the proxy, its state) with a moto server behind it."""
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    state = ProxyState(f"http://{host}:{port}")
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("P", (_Proxy,), {"state": state}))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        moto.stop()
