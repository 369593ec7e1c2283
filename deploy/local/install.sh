#!/usr/bin/env bash
# Creates (once) the cached Python environment outside the checkout and installs the project into
# it; installs the system tools the tests use (kcat, Java, Maven, git, and Prometheus,
# node_exporter and Alertmanager from Debian for the collector tests) when missing. Idempotent.
# Debian's Prometheus packages do not start services here: tests and the demo run the binaries.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${NOVACRON_VENV:-$HOME/.cache/novacron/venv}

need_apt=()
command -v kcat >/dev/null || need_apt+=(kcat)
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
command -v git >/dev/null || need_apt+=(git)
# promtool (`make check` validates deploy/prometheus/) comes with Debian's prometheus package
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v prometheus-node-exporter >/dev/null || need_apt+=(prometheus-node-exporter)
command -v prometheus-alertmanager >/dev/null || need_apt+=(prometheus-alertmanager)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "creating the Python environment in $venv (torch, in the learn extra, is large: minutes)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
fi
# extras: dev (tests, linters) and learn (torch, for DQN training); a host that only runs the
# ingest, govern or execute role (or learn without training) needs none: NOVACRON_EXTRAS=
extras=${NOVACRON_EXTRAS-dev,learn}
stamp="$venv/.novacron-$(sha256sum "$root/pyproject.toml" | cut -c1-16)-${extras//,/-}"
if [ ! -f "$stamp" ]; then
  "$venv/bin/pip" install -q -e "$root${extras:+[$extras]}"
  touch "$stamp"
else
  # the dependencies are current; point the editable install at this checkout
  "$venv/bin/pip" install -q --no-deps --no-build-isolation -e "$root" >/dev/null 2>&1 \
    || "$venv/bin/pip" install -q --no-deps -e "$root"
fi
echo "environment ready: $venv"

# Terraform CLI 1.5.7 (MPL-2.0), built from source into the cache once (about 2.5 minutes): the
# provider tests, `collect terraform` and the terraform effector use it (Settings.terraform_bin)
tf_bin=${NOVACRON_TERRAFORM:-$HOME/.cache/novacron/bin/terraform}
if [ ! -x "$tf_bin" ] && command -v go >/dev/null; then
  echo "building Terraform 1.5.7 into $(dirname "$tf_bin") (go install)"
  mkdir -p "$(dirname "$tf_bin")"
  GOBIN=$(dirname "$tf_bin") go install github.com/hashicorp/terraform@v1.5.7
fi
# the `novacron` Terraform provider's own virtualenv (PyPI `tf` pins protobuf < 6)
"$venv/bin/python" -m streams.cli.main terraform install-provider >/dev/null \
  || echo "warning: the Terraform provider was not installed (see \`novacron terraform install-provider\`)"
