"""`novacron terraform install-provider`: the provider's virtualenv, its executable and the
Terraform CLI configuration (`dev_overrides`) that makes Terraform use it.

The provider needs PyPI `tf`, which pins protobuf < 6; the project needs protobuf 7. So the
provider gets a virtualenv of its own (tf + httpx), and its executable runs this checkout's
`streams.terraform.provider` with that interpreter. Terraform finds it through `dev_overrides`
in a CLI configuration file: export TF_CLI_CONFIG_FILE to use it (no registry, no `init` needed
for the provider).
"""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_DIR", "PROVIDER_SOURCE", "PROVIDER_VERSION", "REQUIREMENTS", "Installed",
           "install_provider"]

DEFAULT_DIR = Path.home() / ".cache" / "novacron" / "terraform-provider"
"""Where the provider's virtualenv, executable and CLI configuration go by default."""
PROVIDER_SOURCE = "novacron/novacron"
"""The provider's source address in `required_providers`."""
PROVIDER_VERSION = "1.0.0"
"""The version `terraform init` records in the lock file (the provider is this checkout's)."""
REQUIREMENTS = ("tf==1.2.0", "httpx>=0.27,<1")
"""What the provider's virtualenv holds (PyPI)."""
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Installed:
    """What `install_provider` made."""

    executable: Path
    """terraform-provider-novacron."""
    cli_config: Path
    """The Terraform CLI configuration file (set TF_CLI_CONFIG_FILE to it)."""
    venv: Path
    """The provider's virtualenv."""


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"{' '.join(argv[:4])} … failed:\n" + "\n".join(tail))


def _venv(target: Path, python: str, upgrade: bool) -> Path:
    venv = target / "venv"
    py = venv / "bin" / "python"
    if not py.exists():
        _run([python, "-m", "venv", str(venv)])
    ready = subprocess.run([str(py), "-c", "import tf.runner, httpx"],  # noqa: S603
                           capture_output=True, check=False).returncode == 0
    if upgrade or not ready:
        _run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              *REQUIREMENTS])
    return py


def launcher_script(python: Path, root: Path = PROJECT_ROOT) -> str:
    """The provider executable: this checkout's provider module on the provider's interpreter."""
    return ("#!/bin/sh\n# terraform-provider-novacron (written by `novacron terraform "
            "install-provider`)\n"
            f"PYTHONPATH={shlex.quote(str(root))} exec {shlex.quote(str(python))} "
            "-m streams.terraform.provider \"$@\"\n")


def cli_config(folder: Path) -> str:
    """A Terraform CLI configuration: dev_overrides point plan/apply at the provider's folder;
    `terraform init` (which ignores dev_overrides and would ask the public registry) installs it
    from a filesystem mirror instead; every other provider installs as usual."""
    address = f"registry.terraform.io/{PROVIDER_SOURCE}"
    return ("provider_installation {\n"
            f"  dev_overrides {{\n    \"{PROVIDER_SOURCE}\" = \"{folder}\"\n  }}\n"
            f"  filesystem_mirror {{\n    path    = \"{folder / 'mirror'}\"\n"
            f"    include = [\"{address}\"]\n  }}\n"
            f"  direct {{\n    exclude = [\"{address}\"]\n  }}\n}}\n")


def mirror(executable: Path, folder: Path) -> Path:
    """The provider packed for a filesystem mirror (zip of the executable, per platform)."""
    target = folder / "mirror" / "registry.terraform.io" / PROVIDER_SOURCE
    target.mkdir(parents=True, exist_ok=True)
    package = target / f"terraform-provider-novacron_{PROVIDER_VERSION}_{_platform()}.zip"
    info = zipfile.ZipInfo(f"terraform-provider-novacron_v{PROVIDER_VERSION}")
    info.external_attr = 0o755 << 16  # executable once Terraform unpacks it
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr(info, executable.read_bytes())
    return package


def _platform() -> str:
    machine = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower())
    return f"{sys.platform}_{machine}"


def install_provider(target: Path = DEFAULT_DIR, *, python: str = sys.executable,
                     upgrade: bool = False) -> Installed:
    """Build (or reuse) the provider's virtualenv and write its executable and CLI config."""
    target = target.resolve()
    target.mkdir(parents=True, exist_ok=True)
    py = _venv(target, python, upgrade)
    executable = target / "terraform-provider-novacron"
    executable.write_text(launcher_script(py))
    executable.chmod(0o755)
    mirror(executable, target)
    config = target / "terraform.rc"
    config.write_text(cli_config(target))
    return Installed(executable, config, py.parent.parent)
