"""The control API as the Terraform provider sees it: JSON over HTTP with a bearer token."""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote

import httpx

__all__ = ["ApiError", "ClientHolder", "ControlApiClient"]


class ApiError(Exception):
    """A refused or failed call, with what the API said (shown as a Terraform diagnostic)."""

    def __init__(self, status: int, summary: str, detail: str = "") -> None:
        super().__init__(summary)
        self.status, self.summary, self.detail = status, summary, detail


class ControlApiClient:
    """`get`/`post`/`put`/`delete` of the control API; 404 on GET is None, not an error."""

    def __init__(self, endpoint: str, token: str, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._http = httpx.Client(timeout=timeout, transport=transport, headers={
            "Authorization": f"Bearer {token}", "User-Agent": "terraform-provider-novacron"})

    @staticmethod
    def path(*parts: str) -> str:
        """A path with each part escaped (ids never add path segments)."""
        return "/" + "/".join(quote(p, safe="") for p in parts)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            resp = self._http.request(method, self.endpoint + path, json=body)
        except httpx.HTTPError as exc:
            raise ApiError(0, f"cannot reach the NovaCron control API at {self.endpoint}",
                           f"{type(exc).__name__}: {exc}. Is the govern worker running, and is "
                           "the provider's endpoint (or NOVACRON_ENDPOINT) right?") from exc
        if resp.status_code >= 400:
            raise _error(method, path, resp)
        return resp.json() if resp.content else {}

    def get(self, path: str) -> Any:
        """The object, or None when the API says 404."""
        try:
            return self.call("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.call("POST", path, body)

    def put(self, path: str, body: dict[str, Any]) -> Any:
        return self.call("PUT", path, body)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)


def _error(method: str, path: str, resp: httpx.Response) -> ApiError:
    try:
        data = resp.json()
    except ValueError:
        data = {"error": resp.text[:500]}
    summary = str(data.get("error") or f"HTTP {resp.status_code}")
    details = [str(p) for p in data.get("problems") or data.get("reasons") or []]
    if data.get("detail"):
        details.append(str(data["detail"]))
    hint = {401: "the token is missing or unknown (provider `token` or NOVACRON_TOKEN)",
            403: "the access policies do not allow this token's role to do it"}.get(
        resp.status_code)
    if hint:
        details.append(hint)
    return ApiError(resp.status_code, f"{method} {path}: {summary}", "\n".join(details))


class ClientHolder(Protocol):
    """The provider as its resources see it (`provider.NovacronProvider` is one).

    A protocol, so the resources do not import the provider that lists them.
    """

    @property
    def client(self) -> ControlApiClient | None:
        """The API client once the provider block is configured, else None."""
