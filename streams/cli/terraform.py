"""`novacron terraform install-provider`: make Terraform find the `novacron` provider."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer
from rich.console import Console

from streams.settings import Settings

app = typer.Typer(help="Terraform: the `novacron` provider for policies, runbooks, baselines, "
                  "drift ignore rules and compliance exceptions.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


@app.command("install-provider")
def install_provider_cmd(
    folder: Path | None = typer.Option(None, "--dir", help="Where the provider's virtualenv, "
                                       "executable and CLI config go (default "
                                       "~/.cache/novacron/terraform-provider)."),
    upgrade: bool = typer.Option(False, help="Reinstall the provider's Python packages."),
) -> None:
    """Build the provider (its own virtualenv with PyPI `tf`) and a Terraform CLI config whose
    dev_overrides point at it; then `export TF_CLI_CONFIG_FILE=...` as printed."""
    from streams.terraform.install import DEFAULT_DIR, PROVIDER_SOURCE, install_provider

    try:
        with err.status("installing the provider's virtualenv (tf, httpx) …"):
            done = install_provider(folder or DEFAULT_DIR, upgrade=upgrade)
    except (OSError, RuntimeError) as exc:
        err.print(f"[red]could not install the provider:[/] {exc}")
        raise typer.Exit(2) from exc
    typer.echo(f"provider:   {done.executable}\nCLI config: {done.cli_config}\n")
    typer.echo("Use it in this shell:\n"
                  f"  export TF_CLI_CONFIG_FILE={done.cli_config}\n"
                  "  export NOVACRON_API_URL=http://127.0.0.1:6068/api   # the govern worker\n"
                  "  export NOVACRON_API_TOKEN=...                       # a control-API token\n"
                  "and in HCL:\n"
                  "  terraform {\n    required_providers {\n"
                  f"      novacron = {{ source = \"{PROVIDER_SOURCE}\" }}\n    }}\n  }}")
    terraform = Settings().terraform_bin
    if not terraform.exists() and shutil.which("terraform") is None:
        err.print(f"[yellow]no Terraform CLI at {terraform}: build 1.5.7 with "
                  "`go install github.com/hashicorp/terraform@v1.5.7` (deploy/local/install.sh)[/]")
