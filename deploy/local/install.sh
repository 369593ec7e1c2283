#!/usr/bin/env bash
# Creates (once) the cached Python environment outside the checkout and installs the project into
# it; installs the system tools the tests use (kcat, Java, Maven, git, Prometheus,
# node_exporter and Alertmanager from Debian for the collector tests, postgresql-client for the
# db-failover runbook) when missing. Idempotent.
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
# pg_isready and psql: the db-failover runbook runs them (and its tests, against stand-ins)
{ command -v pg_isready >/dev/null && command -v psql >/dev/null; } \
  || need_apt+=(postgresql-client)
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
# Terraform 1.5.7 (MPL-2.0; the executor's terraform steps and their tests) and OPA v1.22.4 (the
# govern role's default policy backend compiles Rego to WebAssembly with `opa build`, at start and
# on every policy change, so the binary must be where govern runs), built from source with the
# Go toolchain into a cache outside the checkout (~2.5 min each, once)
bin=${NOVACRON_BIN:-$HOME/.cache/novacron/bin}
go_tool() {  # module@version binary
  [ -x "$bin/$2" ] && return 0
  if ! command -v go >/dev/null; then
    echo "installing golang-go (apt) to build $2"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null
  fi
  echo "building $1 into $bin (a few minutes, once)"
  mkdir -p "$bin"
  GOBIN="$bin" GOFLAGS=-mod=mod go install "$1"
}
go_tool github.com/hashicorp/terraform@v1.5.7 terraform
go_tool github.com/open-policy-agent/opa@v1.22.4 opa
# the `novacron` Terraform provider's own virtualenv (PyPI `tf` pins protobuf < 6)
"$venv/bin/python" -m streams.cli.main terraform install-provider >/dev/null \
  || echo "warning: the Terraform provider was not installed (see \`novacron terraform install-provider\`)"
echo "environment ready: $venv (terraform and opa in $bin)"
