#!/usr/bin/env bash
# One-time (and idempotent) machine setup for the test suite: the real mail peers the tests start
# (Postfix, swaks, Cyrus SASL tools, openssl), the npm dependencies, and the Go-built control plane.
# Warm runs do nothing expensive: apt is skipped when every package is installed, npm ci when
# node_modules matches package-lock.json, and build.sh reuses its cache.
#
#   bash scripts/setup.sh && npm test
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

log() { printf '[setup] %s\n' "$*"; }

# Tests start private Postfix instances (own config and queue folders, see test/support/postfix.ts);
# they need the binaries only. postfix-pcre is absent on purpose: static and hash maps are enough.
# libnet-ssleay-perl: swaks' STARTTLS (without it swaks says "TLS not available").
# lua5.4: runs the chart's Argo CD health check (charts/sealpost/files/argocd-health.lua) in a test.
# python3-dkim: dkimpy, the independent DKIM verifier of test/mail/relay-dkim.test.ts.
# gnupg: decrypts and verifies the relay's PGP/MIME (OpenPGP gateway encryption) in the mail tests.
packages=(postfix swaks libnet-ssleay-perl openssl sasl2-bin libsasl2-modules ca-certificates nsd unbound ldnsutils lua5.4 python3-dkim gnupg)

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

installed() { # true when dpkg says the package is fully installed
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then
  log "system packages: already installed"
else
  log "system packages: installing ${missing[*]}"
  # Without the preseed, Postfix's installer asks what kind of mail system this is, and a
  # "Internet Site" answer would configure (and start) a system MTA we do not want.
  echo "postfix postfix/main_mailer_type select No configuration" | sudo_if_needed debconf-set-selections
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${packages[@]}" >/dev/null
fi

# The system Postfix instance must not run: tests start their own, and a system one listening on
# port 25 of every address is the opposite of "only loopback, only what the test started".
# `postfix status` exits 0 when the default instance's master is running; without a main.cf (the
# "No configuration" install) there is no system instance, and postfix would only sleep and fail.
if [ -f /etc/postfix/main.cf ] && sudo_if_needed postfix status >/dev/null 2>&1; then
  log "stopping the system Postfix instance"
  sudo_if_needed postfix stop >/dev/null 2>&1 || true
fi
# Likewise the system unbound and nsd that Debian's packages start under systemd: the DANE tests run
# private instances on loopback, and a system unbound would also take over /etc/resolv.conf.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  sudo_if_needed systemctl disable --now postfix unbound nsd >/dev/null 2>&1 || true
fi

# npm ci only when node_modules does not match package-lock.json. npm records what it installed in
# node_modules/.package-lock.json: up to date means every entry there equals the lockfile's, and the
# lockfile's entries missing there are optional ones (other platforms' binaries). No stamp of our own
# to go stale, and a tree someone else installed from the same lockfile counts as up to date.
if node -e '
  const fs = require("node:fs");
  const want = JSON.parse(fs.readFileSync("package-lock.json", "utf8")).packages;
  const have = JSON.parse(fs.readFileSync("node_modules/.package-lock.json", "utf8")).packages;
  const same = (k) => JSON.stringify(want[k]) === JSON.stringify(have[k]);
  const ok = Object.keys(have).every(same) &&
    Object.keys(want).every((k) => k === "" || k in have || want[k].optional);
  process.exit(ok ? 0 : 1);
' 2>/dev/null; then
  log "npm dependencies: up to date"
else
  log "npm dependencies: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The Node the image runs (current LTS), for the tests that run the code on it as well
log "node LTS: scripts/node-lts.sh"
bash scripts/node-lts.sh >/dev/null
log "toolchain: scripts/toolchain/build.sh"
bash scripts/toolchain/build.sh >/dev/null
log "done"
