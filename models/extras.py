"""Optional dependencies (pip extras): a clear error naming the extra when one is missing.

`pip install novacron` runs the ingest, govern and execute roles and the decision path of the
learn role (numpy inference); `pip install 'novacron[learn]'` adds torch for DQN training.
"""

from __future__ import annotations

import importlib.util

from schemas.errors import NonRetryableError

__all__ = ["EXTRAS", "MissingExtra", "missing_extra", "require"]

EXTRAS = {"torch": "learn"}
"""Optional module → the extra that installs it."""


class MissingExtra(NonRetryableError, ImportError):
    """An optional dependency is not installed; the message says which extra installs it."""


def missing_extra(module: str, purpose: str) -> MissingExtra:
    """The error for `purpose` needing `module` (raise it `from` the original ImportError)."""
    extra = EXTRAS[module]
    return MissingExtra(f"{purpose} needs {module}, which is not installed here; install the "
                        f"'{extra}' extra: pip install 'novacron[{extra}]'")


def require(module: str, purpose: str) -> None:
    """Fail now, with the extra to install, when `module` is missing (nothing is imported)."""
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a finder that knows it is absent
        found = False
    if not found:
        raise missing_extra(module, purpose)
