"""HTTP and notification (Slack-compatible webhook) steps over httpx."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from runbooks import urls
from runbooks.runtime import StepContext
from schemas.errors import BackendUnavailable, NonRetryableError, RetryableError

__all__ = ["request", "run_http", "run_notification", "render_url", "slack_escape"]


def _header_ok(value: str) -> bool:
    # visible ASCII and spaces only: no CR/LF (header splitting), no NUL, no other controls
    return value.isascii() and all(32 <= ord(c) < 127 for c in value)


def slack_escape(text: str) -> str:
    """Escape the three characters Slack treats as control sequences (`<!channel>`, links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_url(ctx: StepContext, template: str) -> str:
    """A URL (runbooks.urls): the base from the text or an endpoint variable at the start, every
    other value encoded for its part (a path value is one segment and never `.`/`..`)."""
    try:
        url = urls.render_url(ctx.interp, template, ctx.interp.url_bases)
    except NonRetryableError as exc:
        raise NonRetryableError(f"step {ctx.step.id}: {ctx.redactor.text(str(exc))}") from None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise NonRetryableError(
            f"step {ctx.step.id}: not an http(s) URL: {ctx.redactor.text(url)!r}"
        )
    return url


def _headers(ctx: StepContext) -> dict[str, str]:
    # spaces around a field value are not part of it (RFC 9110 5.5), and h11 refuses them
    headers = {
        str(k): ctx.interp.text(str(v)).strip(" ")
        for k, v in (ctx.step.parameters.get("headers") or {}).items()
    }
    for name, value in headers.items():
        if not _header_ok(value):
            raise NonRetryableError(
                f"step {ctx.step.id}: header {name} has control or non-ASCII characters"
            )
    return headers


def _expected(ctx: StepContext) -> set[int] | None:
    raw = ctx.step.parameters.get("expected_status")
    if raw is None:
        return None
    return {int(s) for s in (raw if isinstance(raw, list) else [raw])}


async def request(
    ctx: StepContext,
    method: str,
    url: str,
    *,
    json: Any = None,
    headers: dict[str, str] | None = None,
    expected: set[int] | None = None,
) -> httpx.Response:
    """Send one request; 5xx/429/transport errors are retryable, other unexpected codes are not."""
    timeout = ctx.step.timeout or ctx.config.http_timeout
    try:
        resp = await ctx.http.request(method, url, json=json, headers=headers, timeout=timeout)
    except httpx.LocalProtocolError as exc:  # our request is malformed: a retry cannot help
        raise NonRetryableError(
            f"{method} {ctx.redactor.text(url)}: refused by the HTTP client ({exc})"
        ) from exc
    except httpx.TransportError as exc:
        raise BackendUnavailable(
            f"{method} {ctx.redactor.text(url)}: {type(exc).__name__}"
        ) from exc
    ok = resp.status_code in expected if expected else resp.is_success
    if ok:
        return resp
    message = f"{method} {ctx.redactor.text(url)} → {resp.status_code}: {ctx.clip(resp.text[:512])}"
    if resp.status_code >= 500 or resp.status_code == 429:
        raise RetryableError(message)
    raise NonRetryableError(message)


def _body(resp: httpx.Response, ctx: StepContext) -> Any:
    try:
        return ctx.redactor.value(resp.json())
    except ValueError:
        return ctx.clip(resp.text)


async def run_http(ctx: StepContext) -> dict[str, Any]:
    """`action` (or parameters.url) with method, headers, json/data body, expected_status."""
    url = render_url(ctx, str(ctx.step.action or ctx.step.parameters.get("url", "")))
    method = str(ctx.param("method", "GET")).upper()
    body = ctx.param("json", ctx.param("data"))
    resp = await request(
        ctx, method, url, json=body, headers=_headers(ctx), expected=_expected(ctx)
    )
    return {"status": resp.status_code, "body": _body(resp, ctx)}


async def run_notification(ctx: StepContext) -> dict[str, Any]:
    """POST `{"text": message}` to a webhook (Slack incoming-webhook compatible)."""
    template = str(ctx.step.action or ctx.step.parameters.get("text", ""))
    text = ctx.interp.text(template, escape=slack_escape)
    hook = ctx.step.parameters.get("webhook_url") or ctx.config.default_webhook_url
    if not hook:
        raise NonRetryableError(f"step {ctx.step.id}: no webhook_url and no default webhook")
    resp = await request(ctx, "POST", render_url(ctx, str(hook)), json={"text": text})
    return {"status": resp.status_code, "text": ctx.redactor.text(text)}
