#!/usr/bin/env bash
# Builds what the container image ships into OUT (default dist/app), the exact layout the Dockerfile
# copies to /app:
#   OUT/dist/bin/sealpost.js         the entry point (ENTRYPOINT ["node", "/app/dist/bin/sealpost.js"])
#   OUT/dist/{api,cli,operator,relay}/  compiled JavaScript (+ source maps)
#   OUT/package.json, package-lock.json
#   OUT/node_modules/                production dependencies only (npm ci --omit=dev), without their
#                                    type declarations, source maps and TypeScript sources
# Needs the repository's dev dependencies installed (tsc) and the npm registry (or npm's cache).
# Nothing in OUT is writable by group or others; the image runs it as a non-root user on a read-only
# root filesystem, so the code must not be writable by the user running it either (root owns it there).
set -euo pipefail
umask 022
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/dist/app}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
case "$out" in
  "$root" | /) echo "build-dist: refusing to build into $out" >&2; exit 2 ;;
esac

cd "$root"
rm -rf "$out/dist" "$out/node_modules"
# tsconfig.build.json compiles api/, cli/, operator/, relay/ and bin/ only (no tests, bench, scripts)
node_modules/.bin/tsc -p tsconfig.build.json --outDir "$out/dist"
# package.json carries "type": "module", which makes node load the .js files as ES modules
cp package.json package-lock.json "$out/"
# --ignore-scripts: no dependency's install script runs in the build (none needs one)
(cd "$out" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
# what node never loads from a dependency: type declarations, source maps and TypeScript sources
# (about 50 MB, most of it @kubernetes/client-node's .d.ts and .js.map). --enable-source-maps skips a
# missing map silently; the app's own maps in OUT/dist stay.
find "$out/node_modules" -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' \) -delete
chmod -R go-w "$out"

entry="$out/dist/bin/sealpost.js"
[[ -f "$entry" ]] || { echo "build-dist: $entry missing" >&2; exit 1; }
echo "build-dist: $out"
