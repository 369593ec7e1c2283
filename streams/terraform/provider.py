"""`terraform-provider-novacron`: the Terraform provider for NovaCron's own objects (PyPI `tf`).

Why `tf` and not `pyvider`: `tf` is one small package (grpcio, msgpack, cryptography) whose
resource model is plain create/read/update/delete/import methods, and it was measured working with
Terraform 1.5.7 here (PERFORMANCE-NOTES.md); `pyvider` brings a framework of its own (structlog,
attrs-based components, a telemetry layer and more) for the same protocol. `tf` pins protobuf
below 6 while the project needs 7 (the remote-write decoder), so the provider runs in a small
virtualenv of its own that `novacron terraform install-provider` builds.

Configuration: `endpoint` (or NOVACRON_API_URL, default http://127.0.0.1:6068/api, the govern
worker's control API) and `token` (or NOVACRON_API_TOKEN, or a file named by
NOVACRON_API_TOKEN_FILE): the same bearer tokens and Rego access policies as every API call.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tf.iface import DataSource, Provider, ReadDataContext  # type: ignore[import-not-found]
from tf.schema import Attribute, Schema  # type: ignore[import-not-found]
from tf.types import List, Map, Number, String  # type: ignore[import-not-found]

from streams.terraform.attrs import known
from streams.terraform.client import ApiError, ControlApiClient
from streams.terraform.resources import RESOURCES

__all__ = ["NovacronProvider", "main"]

DEFAULT_ENDPOINT = "http://127.0.0.1:6068/api"


class _Data(DataSource):  # type: ignore[misc]
    name = ""
    schema: Schema

    def __init__(self, provider: NovacronProvider) -> None:
        self.provider = provider

    @classmethod
    def get_name(cls) -> str:
        return cls.name

    @classmethod
    def get_schema(cls) -> Schema:
        return cls.schema

    def read(self, ctx: ReadDataContext, config: dict[str, Any]) -> dict[str, Any] | None:
        client = self.provider.client
        if client is None:
            ctx.diagnostics.add_error("The novacron provider is not configured",
                                      "set endpoint and token, or NOVACRON_API_URL and "
                                      "NOVACRON_API_TOKEN")
            return None
        try:
            return self._read(client, config)
        except ApiError as exc:
            ctx.diagnostics.add_error(f"Cannot read {ctx.type_name}: {exc.summary}", exc.detail)
        except Exception as exc:  # never a stack trace in Terraform's output
            ctx.diagnostics.add_error(f"Cannot read {ctx.type_name}",
                                      f"unexpected {type(exc).__name__}: {exc}")
        return None

    def _read(self, client: ControlApiClient, config: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class ComplianceScore(_Data):
    """The compliance score of the latest result per resource and control."""

    name = "compliance_score"
    schema = Schema(attributes=[
        Attribute("standard", String(), optional=True,
                  description="cis, pci-dss, hipaa, soc2, gdpr or iso27001 (default: all)."),
        Attribute("score", Number(), computed=True, description="Passed share, percent."),
        Attribute("passed", Number(), computed=True, description="Passing checks."),
        Attribute("failed", Number(), computed=True, description="Failing checks."),
        Attribute("scores", Map(Number()), computed=True, description="Score per standard."),
    ])

    def _read(self, client: ControlApiClient, config: dict[str, Any]) -> dict[str, Any]:
        data = client.call("GET", "/compliance/score")
        standard = config.get("standard") if known(config.get("standard")) else None
        if standard is not None and standard not in data["standards"]:
            raise ApiError(404, f"no results for standard {standard!r}",
                           f"standards with results: {', '.join(data['standards']) or 'none'}")
        pick = data["standards"][standard] if standard else data
        return {"standard": standard, "score": pick["score"], "passed": pick["passed"],
                "failed": pick["failed"],
                "scores": {k: v["score"] for k, v in data["standards"].items()}}


class DriftFindings(_Data):
    """Open drift findings (one per drifted resource)."""

    name = "drift_findings"
    schema = Schema(attributes=[
        Attribute("severity", String(), optional=True, description="Only this severity."),
        Attribute("resource_ids", List(String()), computed=True, description="Drifted ids."),
        Attribute("count", Number(), computed=True, description="How many."),
        Attribute("findings_json", String(), computed=True,
                  description="JSON list of {resource_id, severity}."),
    ])

    def _read(self, client: ControlApiClient, config: dict[str, Any]) -> dict[str, Any]:
        severity = config.get("severity") if known(config.get("severity")) else None
        found = [f for f in client.call("GET", "/drift/findings")["findings"]
                 if severity is None or f["severity"] == severity]
        return {"severity": severity, "resource_ids": [f["resource_id"] for f in found],
                "count": len(found), "findings_json": json.dumps(found, sort_keys=True)}


class NovacronProvider(Provider):  # type: ignore[misc]
    """The provider: its configuration, resources and data sources."""

    def __init__(self) -> None:
        self.client: ControlApiClient | None = None

    def get_model_prefix(self) -> str:
        return "novacron_"

    def full_name(self) -> str:
        return "registry.terraform.io/novacron/novacron"

    def get_provider_schema(self, diags: Any) -> Schema:
        return Schema(attributes=[
            Attribute("endpoint", String(), optional=True,
                      description=f"Control API base URL (NOVACRON_API_URL; {DEFAULT_ENDPOINT})."),
            Attribute("token", String(), optional=True, sensitive=True,
                      description="Bearer token (NOVACRON_API_TOKEN or NOVACRON_API_TOKEN_FILE)."),
            Attribute("timeout", Number(), optional=True, description="Seconds per call (30)."),
        ])

    def validate_config(self, diags: Any, config: dict[str, Any]) -> None:
        endpoint = config.get("endpoint")
        if known(endpoint) and not str(endpoint).startswith(("http://", "https://")):
            diags.add_error("Invalid endpoint", "an http:// or https:// URL of the control API, "
                            "e.g. http://127.0.0.1:6068/api", path=["endpoint"])

    def configure_provider(self, diags: Any, config: dict[str, Any]) -> None:
        endpoint = config.get("endpoint") or os.environ.get("NOVACRON_API_URL") or DEFAULT_ENDPOINT
        token = config.get("token") or os.environ.get("NOVACRON_API_TOKEN") or _token_file()
        if not token:
            diags.add_error("No token for the NovaCron control API",
                            "set `token` in the provider block, NOVACRON_API_TOKEN, or "
                            "NOVACRON_API_TOKEN_FILE")
            return
        timeout = float(config.get("timeout") or 30.0)
        self.client = ControlApiClient(str(endpoint), str(token), timeout)

    def get_resources(self) -> list[Any]:
        return list(RESOURCES)

    def get_data_sources(self) -> list[Any]:
        return [ComplianceScore, DriftFindings]


def _token_file() -> str | None:
    path = os.environ.get("NOVACRON_API_TOKEN_FILE")
    if path and Path(path).is_file():
        return Path(path).read_text(encoding="utf-8").strip() or None
    return None


def main() -> None:
    """Entry point of the provider executable (Terraform starts it and speaks gRPC to it)."""
    from tf.runner import run_provider  # type: ignore[import-not-found]

    run_provider(NovacronProvider())


if __name__ == "__main__":
    main()
