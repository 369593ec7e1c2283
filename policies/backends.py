"""Pick the policy engine the settings name: regopy, OPA compiled to wasm, or an OPA server."""

from __future__ import annotations

import logging

from policies.core import EngineConfig, PolicySource
from policies.engine import PolicyEngine, RegoEngine

__all__ = ["make_engine"]

log = logging.getLogger(__name__)


def make_engine(source: PolicySource, config: EngineConfig) -> PolicyEngine:
    """The configured backend over `source`.

    `wasm` needs the `opa` binary to build its modules (deploy/local/install.sh and the image
    install it); without one the engine falls back to regopy and says so in the log, rather
    than denying every decision for a missing build tool.
    """
    if config.backend == "opa-server":
        from policies.opa import OpaEngine

        return OpaEngine(source, config.opa)
    if config.backend == "wasm":
        from policies.wasm import WasmEngine, find_opa

        if find_opa(config.wasm.opa_binary) is not None:
            return WasmEngine(source, config)
        log.warning("policy_engine.backend is wasm but no opa binary was found (set "
                    "NOVACRON_OPA or run deploy/local/install.sh): evaluating with regopy")
    return RegoEngine(source, config)
