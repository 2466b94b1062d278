#!/usr/bin/env bash
# Installs Joinery's pinned development servers into ./bin (git-ignored).
# Idempotent: every step checks for its result first, so a second run takes
# seconds. Called by `make tools`; safe to run by hand.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/bin"
TEMPORAL_CLI_VERSION="${TEMPORAL_CLI_VERSION:-v1.5.1}"
VAULT_VERSION="${VAULT_VERSION:-v1.21.0}"
MAILPIT_VERSION="${MAILPIT_VERSION:-v1.33.1}"
TEMPORAL_SERVER_VERSION="${TEMPORAL_SERVER_VERSION:-v1.31.2}"
mkdir -p "$BIN"

log() { printf '[tools] %s\n' "$*" >&2; }

install_temporal() {
  local stamp="$BIN/.temporal-$TEMPORAL_CLI_VERSION"
  if [[ -x "$BIN/temporal" && -f "$stamp" ]]; then
    log "temporal $TEMPORAL_CLI_VERSION present"
    return
  fi
  log "building temporal CLI $TEMPORAL_CLI_VERSION (about 3 minutes)"
  GOBIN="$BIN" GOFLAGS= go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION"
  touch "$stamp"
}

install_vault() {
  local stamp="$BIN/.vault-$VAULT_VERSION"
  if [[ -x "$BIN/vault" && -f "$stamp" ]]; then
    log "vault $VAULT_VERSION present"
    return
  fi
  # Vault is not packaged by Debian and no prebuilt binary can be fetched here,
  # so build the server from its Go module. The module zip lacks the nested
  # ./api and ./sdk modules its go.mod replaces onto, so the replace lines go
  # and the published versions are used instead.
  log "building vault $VAULT_VERSION from its Go module (long; cached afterwards)"
  local dir src work
  dir="$(cd /tmp && GOFLAGS= go mod download -json "github.com/hashicorp/vault@$VAULT_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$dir" ]] || { log "vault module not found in module cache"; exit 1; }
  work="$ROOT/.cache/vault-src"
  rm -rf "$work"; mkdir -p "$(dirname "$work")"
  cp -r "$dir" "$work"
  chmod -R u+w "$work"
  sed -i -E '/^replace[[:space:]]+github\.com\/hashicorp\/vault\/(api|sdk)([^[:space:]]*)?[[:space:]]+=>[[:space:]]+\.\//d' "$work/go.mod"
  # Multi-line replace blocks: drop entries pointing at ./api or ./sdk.
  sed -i -E '/^[[:space:]]+github\.com\/hashicorp\/vault\/(api|sdk)[^[:space:]]*[[:space:]]+=>[[:space:]]+\.\//d' "$work/go.mod"
  (cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -o "$BIN/vault" .)
  rm -rf "$work"
  touch "$stamp"
}

install_slapd() {
  if command -v slapd >/dev/null 2>&1 || [[ -x /usr/sbin/slapd ]]; then
    if command -v ldapsearch >/dev/null 2>&1; then
      log "slapd and ldap-utils present"
      return
    fi
  fi
  log "installing slapd and ldap-utils from Debian"
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq slapd ldap-utils >/dev/null
  # The package starts a system slapd on :389; Joinery runs its own on a
  # loopback port, so the system one is not needed (and is left alone if it
  # was there before).
}

install_mailpit() {
  local stamp="$BIN/.mailpit-$MAILPIT_VERSION"
  if [[ -x "$BIN/mailpit" && -f "$stamp" ]]; then
    log "mailpit $MAILPIT_VERSION present"
    return
  fi
  # Mailpit is the dev stack's SMTP server: notifications land in it and
  # tests read them back through its HTTP API. The go-installed binary lacks
  # the web UI's built assets, which nothing here needs.
  # Measured: 1m30s wall (1m01s user) on 2 shared cores with a cold
  # module cache, while the Vault build ran beside it.
  log "building mailpit $MAILPIT_VERSION (about 2 minutes)"
  GOBIN="$BIN" GOFLAGS= go install "github.com/axllent/mailpit@$MAILPIT_VERSION"
  touch "$stamp"
}

install_chromium() {
  if command -v chromium >/dev/null 2>&1 || [[ -x /usr/bin/chromium ]]; then
    log "chromium present"
    return
  fi
  # Debian's chromium, for the headless browser test of the approval inbox.
  # Measured: 33s to download and install (package lists already fresh;
  # an apt-get update adds its own time on a fresh container).
  log "installing chromium from Debian"
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # A fresh container has empty package lists; refresh them only then, so a
  # second machine set-up does not pay for a needless update.
  if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    $sudo apt-get update -qq
  fi
  $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
}

install_temporal_server() {
  local stamp="$BIN/.temporal-server-$TEMPORAL_SERVER_VERSION"
  if [[ -x "$BIN/temporal-server" && -x "$BIN/temporal-sql-tool" && -f "$stamp" ]]; then
    log "temporal-server and temporal-sql-tool $TEMPORAL_SERVER_VERSION present"
    return
  fi
  # The Temporal server and its sql tool for `make cluster` (the cluster on
  # PostgreSQL; internal/stack/cluster.go). No release binary can be fetched
  # here, so both are built from the server module; v1.32 needs a newer Go.
  # Installed under their own names: `server` and `sql` would say nothing.
  log "building temporal-server and temporal-sql-tool $TEMPORAL_SERVER_VERSION (long; cached afterwards)"
  local tmp
  tmp="$(mktemp -d)"
  GOBIN="$tmp" GOFLAGS= go install "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" \
    "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION"
  mv "$tmp/server" "$BIN/temporal-server"
  mv "$tmp/sql" "$BIN/temporal-sql-tool"
  rm -rf "$tmp"
  touch "$stamp"
}

install_postgresql() {
  if compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
    log "postgresql present"
    return
  fi
  # Debian's PostgreSQL for the cluster. `make cluster` runs its own instance
  # (data in .state/cluster/pg, port 5439), so the package must not start
  # Debian's cluster on 5432: a policy-rc.d answering 101 stops the service
  # from starting during the install (only if there is none already), and
  # the cluster the package creates is set to manual start.
  log "installing postgresql from Debian"
  local sudo="" rcd=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 755 /usr/sbin/policy-rc.d
    rcd=1
  fi
  if ! apt-cache policy postgresql 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    $sudo apt-get update -qq
  fi
  $sudo apt-get install -y -qq postgresql >/dev/null
  [[ -z "$rcd" ]] || $sudo rm -f /usr/sbin/policy-rc.d
  local conf
  for conf in /etc/postgresql/*/main/start.conf; do
    if [[ -f "$conf" ]]; then echo manual | $sudo tee "$conf" >/dev/null; fi
  done
}

case "${1:-all}" in
  temporal) install_temporal ;;
  vault) install_vault ;;
  slapd) install_slapd ;;
  mailpit) install_mailpit ;;
  chromium) install_chromium ;;
  cluster) install_postgresql; install_temporal_server ;;
  all) install_slapd; install_chromium; install_temporal; install_mailpit; install_vault; install_postgresql; install_temporal_server ;;
  *) echo "usage: $0 [all|temporal|vault|slapd|mailpit|chromium|cluster]" >&2; exit 2 ;;
esac
