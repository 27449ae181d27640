#!/usr/bin/env bash
# Setup for the end-to-end suite (test/e2e/, a real kubelet on this machine), on top of scripts/setup.sh:
# the system packages the node needs, the node components built from pinned Go modules (kubelet,
# kube-proxy, kube-scheduler, containerd, runc; cached like the control plane), and the Sealpost image
# built from the Dockerfile plus the pod sandbox image (cached, rebuilt when the sources change).
# Idempotent; warm runs do nothing expensive.
#
#   bash scripts/setup.sh && bash scripts/node-setup.sh && node scripts/run-tests.mjs e2e
#
# Separate from setup.sh because only the end-to-end suite needs any of it, and it needs root (network
# namespaces, mounts, iptables, cgroups) where the rest of the suite does not.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

log() { printf '[node-setup] %s\n' "$*"; }
sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

# containernetworking-plugins: bridge, host-local, loopback, portmap (pods' network)
# libseccomp-dev, pkg-config: runc's seccomp support (cgo)
# buildah, debootstrap: the image from the Dockerfile over a locally made base (no registry here)
# binutils: strip, for the local base's node binary
# iptables, conntrack: kube-proxy's iptables mode; ipset: the NetworkPolicy enforcer (kube-router)
packages=(containernetworking-plugins libseccomp-dev pkg-config buildah debootstrap binutils iptables ipset conntrack libatomic1)
missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then
  log "system packages: already installed"
else
  log "system packages: installing ${missing[*]}"
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

start=$SECONDS
log "node components: scripts/toolchain/build.sh --node"
bash scripts/toolchain/build.sh --node >/dev/null
log "node components: $((SECONDS - start))s"
log "images: scripts/build-image.sh"
sudo_if_needed bash scripts/build-image.sh >/dev/null
log "done in $((SECONDS - start))s"
