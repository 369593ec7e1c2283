"""`novacron policy`: Rego tests, local evaluation, and the registry over the control API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    help="Rego policies: test, evaluate, register, update, enable/disable, roll back, history."
)
console = Console()
err = Console(stderr=True)

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "policies" / "rego"
ApiOpt = typer.Option(
    "http://127.0.0.1:6068/api", "--api", envvar="NOVACRON_API_URL", help="Control API base URL."
)
TokenOpt = typer.Option(
    "", "--token", envvar="NOVACRON_API_TOKEN", help="Bearer token for the control API."
)


def _call(api: str, token: str, method: str, path: str, body: Any = None) -> Any:
    if not token:
        err.print("[red]No API token.[/] Pass --token or set NOVACRON_API_TOKEN.")
        raise typer.Exit(2)
    try:
        resp = httpx.request(
            method,
            api.rstrip("/") + path,
            json=body,
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        )
    except httpx.HTTPError as exc:
        err.print(
            f"[red]Cannot reach the control API at {api}:[/] {exc}. Is a `govern` worker running?"
        )
        raise typer.Exit(2) from exc
    data = resp.json() if resp.content else {}
    if resp.status_code >= 400:
        detail = data.get("detail") or "; ".join(data.get("reasons", [])) or ""
        err.print(f"[red]{resp.status_code} {data.get('error', resp.reason_phrase)}[/] {detail}")
        raise typer.Exit(1)
    return data


@app.command("test")
def test_cmd(
    path: Path = typer.Argument(
        DEFAULT_DIR, help="Folder (searched recursively) or one *_test.rego file."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print passing tests too."),
) -> None:
    """Run Rego unit tests like `opa test`: every `test_*` rule in every *_test.rego file."""
    from policies.testing import discover, run_file

    files = discover(path)
    if not files:
        err.print(f"[yellow]No *_test.rego files under {path}.[/]")
        raise typer.Exit(1)
    cases = []
    with console.status("running Rego tests…"):
        for f in files:
            cases.extend(run_file(f))
    for c in cases:
        if verbose or c.status != "PASS" or len(cases) <= 50:
            colour = {"PASS": "green", "FAIL": "red", "ERROR": "magenta"}[c.status]
            console.print(f"[{colour}]{c.status}[/] {c.name} ({c.duration_ms:.2f} ms) {c.detail}")
    passed = sum(c.status == "PASS" for c in cases)
    failed, errors = sum(c.status == "FAIL" for c in cases), sum(c.status == "ERROR" for c in cases)
    console.print(
        f"{'-' * 40}\n{passed} passed, {failed} failed, {errors} errors ({len(files)} files)"
    )
    raise typer.Exit(0 if failed == errors == 0 else 1)


@app.command("eval")
def eval_cmd(
    input_json: str = typer.Argument(..., help="Input JSON, or @file.json, or - for stdin."),
    path: Path = typer.Option(DEFAULT_DIR, "--dir", help="Policy folder to evaluate."),
    policy_type: list[str] = typer.Option(
        [], "--type", help="Only policies of this type (repeatable)."
    ),
) -> None:
    """Evaluate an input (subject / action / resource / context) against local policy files."""
    from dataclasses import asdict

    from policies.engine import RegoEngine, StaticSource
    from policies.source import load_directory

    raw = (
        sys.stdin.read()
        if input_json == "-"
        else (Path(input_json[1:]).read_text() if input_json.startswith("@") else input_json)
    )
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        err.print(f"[red]The input is not JSON:[/] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    result = RegoEngine(StaticSource(load_directory(path))).evaluate(
        value, types=policy_type or None
    )
    console.print_json(json.dumps(asdict(result)))
    raise typer.Exit(0 if result.allowed else 1)


@app.command("list")
def list_cmd(api: str = ApiOpt, token: str = TokenOpt) -> None:
    """List registered policies."""
    table = Table("id", "version", "type", "enforcement", "enabled", "author", "change")
    for p in _call(api, token, "GET", "/policies")["policies"]:
        table.add_row(
            p["policy_id"],
            str(p["version"]),
            p["policy_type"],
            p["enforcement"],
            str(p["enabled"]),
            p["author"],
            p["change"],
        )
    console.print(table)


@app.command("register")
def register_cmd(
    file: Path = typer.Argument(..., exists=True, help="The .rego module."),
    policy_id: str = typer.Option("", "--id", help="Policy id (default: the package name)."),
    policy_type: str = typer.Option("", "--type", help="Policy type (default: from # METADATA)."),
    enforcement: str = typer.Option(
        "", "--enforcement", help="block, warn or audit (default: from # METADATA)."
    ),
    sign_key: Path | None = typer.Option(
        None, "--sign-key", help="File with a hex ed25519 signing key."
    ),
    api: str = ApiOpt,
    token: str = TokenOpt,
) -> None:
    """Register a new policy from a .rego file."""
    from policies.source import metadata_of, package_of

    rego = file.read_text(encoding="utf-8")
    custom = metadata_of(rego).get("custom") or {}
    body = {
        "policy_id": policy_id or package_of(rego),
        "rego": rego,
        "name": file.stem,
        "policy_type": policy_type or custom.get("policy_type", "access"),
        "enforcement": enforcement or custom.get("enforcement", "block"),
        "signature": _sign(rego, sign_key),
    }
    p = _call(api, token, "POST", "/policies", body)
    console.print(f"registered {p['policy_id']} v{p['version']} ({p['content_hash'][:12]})")


@app.command("update")
def update_cmd(
    policy_id: str = typer.Argument(..., help="Policy id."),
    file: Path | None = typer.Option(None, "--file", exists=True, help="New .rego source."),
    enforcement: str | None = typer.Option(
        None, "--enforcement", help="New mode: block, warn or audit."
    ),
    sign_key: Path | None = typer.Option(
        None, "--sign-key", help="File with a hex ed25519 signing key."
    ),
    api: str = ApiOpt,
    token: str = TokenOpt,
) -> None:
    """Create a new version of a policy (new source and/or enforcement mode)."""
    rego = file.read_text(encoding="utf-8") if file else None
    body = {
        "rego": rego,
        "enforcement": enforcement,
        "signature": _sign(rego, sign_key) if rego else None,
    }
    p = _call(api, token, "PUT", f"/policies/{policy_id}", body)
    console.print(f"{p['policy_id']} is now v{p['version']}")


@app.command("enable")
def enable_cmd(policy_id: str, api: str = ApiOpt, token: str = TokenOpt) -> None:
    """Evaluate a disabled policy again."""
    _call(api, token, "POST", f"/policies/{policy_id}/enable")
    console.print(f"{policy_id} enabled")


@app.command("disable")
def disable_cmd(policy_id: str, api: str = ApiOpt, token: str = TokenOpt) -> None:
    """Stop evaluating a policy (it stays in the registry and its history)."""
    _call(api, token, "POST", f"/policies/{policy_id}/disable")
    console.print(f"{policy_id} disabled")


@app.command("rollback")
def rollback_cmd(
    policy_id: str,
    version: int = typer.Option(..., "--to", help="Version to restore."),
    api: str = ApiOpt,
    token: str = TokenOpt,
) -> None:
    """Restore an earlier version (as a new version)."""
    p = _call(api, token, "POST", f"/policies/{policy_id}/rollback", {"version": version})
    console.print(f"{policy_id} rolled back to the content of v{version}, now v{p['version']}")


@app.command("history")
def history_cmd(policy_id: str, api: str = ApiOpt, token: str = TokenOpt) -> None:
    """Every version and change of a policy."""
    table = Table("version", "change", "enforcement", "enabled", "author", "time", "hash", "signed")
    for p in _call(api, token, "GET", f"/policies/{policy_id}/history")["versions"]:
        table.add_row(
            str(p["version"]),
            p["change"],
            p["enforcement"],
            str(p["enabled"]),
            p["author"],
            p["event_time"],
            p["content_hash"][:12],
            "yes" if p["signature"] else "no",
        )
    console.print(table)


@app.command("keygen")
def keygen_cmd(
    out: Path = typer.Argument(..., help="Where to write the secret signing key."),
) -> None:
    """Create an ed25519 signing key; prints the public key to add to the trusted keys."""
    from policies.signing import generate_key, public_key_of

    key = generate_key()
    out.write_text(key + "\n", encoding="utf-8")
    out.chmod(0o600)
    console.print(f"public key: {public_key_of(key)}")


def _sign(rego: str | None, key_file: Path | None) -> str | None:
    if rego is None or key_file is None:
        return None
    from policies.signing import sign_hash
    from policies.source import content_hash

    return sign_hash(content_hash(rego), key_file.read_text(encoding="utf-8").strip())
