"""Bearer tokens and Rego access control, shared by the control API and the history's /sql."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from pydantic import BaseModel

from policies.engine import PolicyEngine

__all__ = ["AccessDenied", "ApiSubject", "Authoriser", "hash_token"]


def hash_token(token: str) -> str:
    """SHA-256 hex of a bearer token: what the configuration stores instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ApiSubject(BaseModel):
    """Who a token belongs to."""

    user: str
    """User name recorded as author / approver."""
    role: str
    """Role the access-control policy decides on (admin, operator, viewer, …)."""


@dataclass(frozen=True)
class AccessDenied:
    """Why a call is refused: 401 (who are you?) or 403 (not allowed), with reasons."""

    status: int
    error: str
    reasons: tuple[str, ...] = ()

    def body(self) -> dict[str, object]:
        """The JSON body of the refusal."""
        return {"error": self.error, **({"reasons": list(self.reasons)} if self.reasons else {})}


class Authoriser:
    """Authenticates `Authorization: Bearer <token>` against hashed tokens, then asks the
    access-control policies (`policy_type: access`) whether the subject may act.

    Fails closed: no token, an unknown token, a policy error, or no access policy in force at
    all (nothing loaded yet, or every one disabled) is a refusal.
    """

    def __init__(
        self,
        engine: PolicyEngine,
        tokens: Mapping[str, ApiSubject],
        policy_types: Collection[str] = ("access",),
    ) -> None:
        self.engine, self.tokens, self.policy_types = engine, tokens, list(policy_types)

    def authenticate(self, headers: Mapping[str, str]) -> ApiSubject | None:
        """The subject of the bearer token, None when missing or unknown."""
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.tokens.get(hash_token(token.strip()))

    def authorise(
        self,
        subject: ApiSubject,
        action: str,
        resource: Mapping[str, str],
        method: str = "GET",
    ) -> AccessDenied | None:
        """None when the policies allow `action` on `resource` ({type, id, path})."""
        value = {
            "subject": subject.model_dump(),
            "action": action,
            "resource": {"type": "", "id": "", "path": "", **resource},
            "context": {"method": method},
        }
        result = self.engine.evaluate(value, types=self.policy_types)
        if not result.policy_versions:
            return AccessDenied(403, "forbidden", ("no access policy is in force",))
        if result.allowed and not result.needs_approval:
            return None
        return AccessDenied(403, "forbidden", tuple(result.reasons) or ("not allowed",))

    def check(
        self, headers: Mapping[str, str], action: str, resource: Mapping[str, str], method: str
    ) -> tuple[ApiSubject | None, AccessDenied | None]:
        """Authenticate, then authorise: the subject, and the refusal if any."""
        subject = self.authenticate(headers)
        if subject is None:
            return None, AccessDenied(401, "missing or unknown bearer token")
        return subject, self.authorise(subject, action, resource, method)
