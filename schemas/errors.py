"""One exception tree for the whole product, classified by what the caller does next.

NovacronError
├── DeadLetterError      bad input: never retried, dead-lettered with the raw bytes and reason
│   ├── DecodeError          not decodable (UTF-8/JSON/Avro, unknown writer schema)
│   ├── SchemaViolation      decodable but wrong types, missing fields, out-of-range values
│   └── OversizedMessage     larger than the configured maximum
├── RejectedError        well-formed but refused (policy deny, bad request): not retried
├── RetryableError       transient (backend down, timeout): retry with backoff, lose nothing
│   └── BackendUnavailable
└── NonRetryableError    permanent failure of an operation: fail it, compensate, alert
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailable",
    "DeadLetterError",
    "DecodeError",
    "NonRetryableError",
    "NovacronError",
    "OversizedMessage",
    "RejectedError",
    "RetryableError",
    "SchemaViolation",
]


class NovacronError(Exception):
    """Root of every error this product raises on purpose."""


class DeadLetterError(NovacronError):
    """The input itself is bad: send it to the dead-letter topic with this reason."""

    kind = "invalid"

    @property
    def reason(self) -> str:
        return str(self)


class DecodeError(DeadLetterError):
    """The bytes are not a decodable event in any supported wire format."""

    kind = "decode"


class SchemaViolation(DeadLetterError):
    """The bytes decode, but the event breaks its schema (types, required fields, ranges)."""

    kind = "schema"


class OversizedMessage(DeadLetterError):
    """The message is larger than the configured maximum size."""

    kind = "oversized"


class RejectedError(NovacronError):
    """A well-formed request that is refused (policy, validation); reported, never retried."""


class RetryableError(NovacronError):
    """A transient failure: the same call may succeed later."""


class BackendUnavailable(RetryableError):
    """A storage or network backend did not answer; retry with backoff."""


class NonRetryableError(NovacronError):
    """A permanent failure of an operation: retrying cannot help."""
