#!/usr/bin/env bash
# The current Node.js LTS, the one the container image runs (Dockerfile: node:26-bookworm-slim) and the
# only runtime the project supports: the tests, the demo and CI run on it (scripts/lts-node.mjs),
# whatever Node the machine has to start npm. Node's release binaries
# are published on the npm registry as node-linux-<arch> packages; this installs the pinned one into
# a cache folder (reused when present) and prints its bin folder.
#
#   PATH="$(bash scripts/node-lts.sh):$PATH" node --version
set -euo pipefail

version=26.10.0 # keep the major in step with the Dockerfile's base image
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "node-lts: no Node.js package for $(uname -m)" >&2; exit 1 ;;
esac
dir="${XDG_CACHE_HOME:-$HOME/.cache}/sealpost/node/$version-$arch"
bin="$dir/node_modules/node-linux-$arch/bin"
if [ ! -x "$bin/node" ]; then
  mkdir -p "$dir"
  # --ignore-scripts: the package is the binary itself, nothing needs to run
  npm install --prefix "$dir" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
    --loglevel=error "node-linux-$arch@$version" >&2
fi
[ "$("$bin/node" --version)" = "v$version" ] || { echo "node-lts: $bin/node is not v$version" >&2; exit 1; }
echo "$bin"
