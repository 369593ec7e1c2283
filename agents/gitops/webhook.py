"""Push webhooks from git hosts: is the request signed with our secret, and is it our branch."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

import orjson

__all__ = ["pushed_branch", "verify_webhook"]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def verify_webhook(secret: str | None, headers: Mapping[str, str], body: bytes) -> bool:
    """True when the request proves it knows the secret: GitHub/Gitea/Forgejo
    `X-Hub-Signature-256: sha256=<HMAC>` or Gitea's `X-Gitea-Signature: <HMAC>` over the body,
    or GitLab's `X-Gitlab-Token: <secret>`. No secret configured: nothing is accepted."""
    if not secret:
        return False
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    signed = _header(headers, "X-Hub-Signature-256")
    if signed is not None:
        return hmac.compare_digest(signed.strip(), f"sha256={digest}")
    gitea = _header(headers, "X-Gitea-Signature")
    if gitea is not None:
        return hmac.compare_digest(gitea.strip(), digest)
    token = _header(headers, "X-Gitlab-Token")
    return token is not None and hmac.compare_digest(token.strip(), secret)


def pushed_branch(body: bytes) -> str | None:
    """The branch a push event names (`ref: refs/heads/main`), None when it names none."""
    try:
        ref = orjson.loads(body).get("ref") if body else None
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if isinstance(ref, str) and ref.startswith("refs/heads/"):
        return ref.removeprefix("refs/heads/")
    return None
