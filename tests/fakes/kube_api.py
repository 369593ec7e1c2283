"""A local HTTP server that follows the Kubernetes API for the calls the effector makes.

Documented endpoints (apps/v1, bearer-token auth, `Status` objects for errors):

    GET   /apis/apps/v1/namespaces/{ns}/{deployments|statefulsets}/{name}
    PATCH /apis/apps/v1/namespaces/{ns}/{deployments|statefulsets}/{name}
          application/strategic-merge-patch+json (lists of objects merged by `name`) or
          application/merge-patch+json (RFC 7386)
    GET   .../{name}/scale      → autoscaling/v1 Scale {spec.replicas, status.replicas}
    PATCH .../{name}/scale      merge or strategic merge of {"spec": {"replicas": n}}

`ignore_writes` makes it answer every PATCH with the object as if patched but keep its state: a
target that silently ignores changes.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__test__ = False

_PATCH_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")


def deployment(name: str, namespace: str = "default", replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1",
                     "generation": 1, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "app:1.0"}]}}},
        "status": {"replicas": replicas},
    }


def _merge(target: Any, patch: Any, strategic: bool) -> Any:
    if isinstance(patch, dict):
        out = dict(target) if isinstance(target, dict) else {}
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = _merge(out.get(key), value, strategic)
        return out
    if strategic and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i
                                                     for i in patch):
        merged = [copy.deepcopy(i) for i in target or []]
        for item in patch:
            found = next((m for m in merged if m.get("name") == item["name"]), None)
            if found is None:
                merged.append(item)
            else:
                merged[merged.index(found)] = _merge(found, item, strategic)
        return merged
    return copy.deepcopy(patch)


@dataclass
class KubeState:
    token: str = "kube-token"
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    """(plural, namespace, name) → object."""
    ignore_writes: bool = False
    requests: list[tuple[str, str, str, Any]] = field(default_factory=list)
    """(method, path, content type, body) of every request."""

    def add(self, obj: dict[str, Any], plural: str = "deployments") -> None:
        meta = obj["metadata"]
        self.objects[(plural, meta["namespace"], meta["name"])] = obj


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def _scale(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                         "resourceVersion": meta["resourceVersion"]},
            "spec": {"replicas": obj["spec"].get("replicas", 0)},
            "status": {"replicas": obj["status"].get("replicas", 0),
                       "selector": f"app={meta['name']}"}}


class _Handler(BaseHTTPRequestHandler):
    state: KubeState

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, code: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        body = json.loads(raw) if raw else None
        self.state.requests.append((self.command, self.path, ctype, body))
        if self.headers.get("Authorization") != f"Bearer {self.state.token}":
            return self._reply(401, _status(401, "Unauthorized", "Unauthorized"))
        parts = self.path.split("?")[0].strip("/").split("/")
        # apis apps v1 namespaces {ns} {plural} {name} [scale]
        if len(parts) < 7 or parts[:4] != ["apis", "apps", "v1", "namespaces"]:
            return self._reply(404, _status(404, "NotFound", "the server could not find it"))
        ns, plural, name = parts[4], parts[5], parts[6]
        sub = parts[7] if len(parts) > 7 else None
        obj = self.state.objects.get((plural, ns, name))
        if obj is None:
            return self._reply(404, _status(404, "NotFound",
                                            f'{plural}.apps "{name}" not found'))
        if self.command == "GET":
            return self._reply(200, _scale(obj) if sub == "scale" else obj)
        if self.command != "PATCH":
            return self._reply(405, _status(405, "MethodNotAllowed", "method not allowed"))
        if ctype not in _PATCH_TYPES:
            return self._reply(415, _status(415, "UnsupportedMediaType",
                                            f"the body of the request was in an unknown "
                                            f"format - accepted media types include: "
                                            f"{', '.join(_PATCH_TYPES)}"))
        strategic = ctype.startswith("application/strategic")
        if sub == "scale":
            wanted = _merge(_scale(obj), body, strategic)["spec"]["replicas"]
            patched = _merge(obj, {"spec": {"replicas": wanted}}, False)
        else:
            patched = _merge(obj, body, strategic)
        version = str(int(obj["metadata"]["resourceVersion"]) + 1)
        patched["metadata"]["resourceVersion"] = version
        if not self.state.ignore_writes:
            patched["status"]["replicas"] = patched["spec"].get("replicas", 0)
            self.state.objects[(plural, ns, name)] = patched
        return self._reply(200, _scale(patched) if sub == "scale" else patched)

    do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _handle


@contextmanager
def kube_api(tmp: Path) -> Iterator[tuple[Path, KubeState]]:
    """A running fake API server and a kubeconfig file for it (token auth)."""
    state = KubeState()
    handler = type("H", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    config = tmp / "kubeconfig"
    url = f"http://127.0.0.1:{server.server_address[1]}"
    config.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "local",
        "clusters": [{"name": "local", "cluster": {"server": url}}],
        "users": [{"name": "ci", "user": {"token": state.token}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "ci"}}],
    }))
    try:
        yield config, state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
