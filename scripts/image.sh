#!/usr/bin/env bash
# Builds the doltgate container image, doltgate/doltgate:<package.json version>, from Debian
# packages and this checkout. `npm run image` runs it after scripts/bootstrap.sh (which provides
# dist/ and the dolt binary). No container daemon is involved:
#
#   mmdebstrap  a Debian bookworm root file system (minbase plus nodejs, etcd-client,
#               ca-certificates, libicu72 for dolt) from the Debian mirror, with a user
#               doltgate (uid/gid 10001, as the Kubernetes manifests' runAsUser); cached as a tar
#               under ${XDG_CACHE_HOME:-~/.cache}/doltgate/image/base-<key>/, the key being a hash
#               of everything that goes into it (suite, mirrors, package list, options)
#   npm         the production node_modules (npm ci --omit=dev), with net-ping's native addon
#               raw-socket compiled by the host's compiler against the headers of the image's own
#               Node (libnode-dev of the same version, fetched with the image's apt sources)
#   umoci       packs the file system as one layer of an OCI image layout and sets the config
#               (entrypoint, user, env). umoci rather than buildah: it is one static tool that
#               writes an OCI layout straight from a directory, with no storage driver, no
#               containers.conf and no user namespaces to set up; buildah needs all three.
#   skopeo      copies the layout into an oci-archive tar that `podman load`, `skopeo copy` or
#               `ctr images import` take, named docker.io/doltgate/doltgate:<version> inside (the
#               name Kubernetes resolves the manifests' doltgate/doltgate:<version> to).
#
# Node: the image runs Debian bookworm's nodejs (18.20). package.json asks for Node >= 20 (the
# version the project is developed and tested on), but nothing doltgate runs uses a Node 20
# feature; test/integration/image.test.ts runs `doltgate --help` and a real agent on the image's
# Node, which is what holds this claim.
#
# Output, all under build/image/ (gitignored):
#   oci/                          the OCI image layout, tag <version>
#   doltgate-<version>.oci.tar    the oci-archive
#   image-name                    doltgate/doltgate:<version>, the name the manifests must use
#
# `bash scripts/image.sh --name` prints the image name and does nothing else. Idempotent: a run
# with nothing changed since the last build says so and stops; otherwise build/image is rebuilt
# from the cached base (under a minute; `--force` rebuilds regardless); removing the cache dir
# rebuilds the base from the mirror, which is how Debian's updates get in. Needs root (the root file system holds files of several owners; mmdebstrap
# runs in root mode). Every failure names its step.
set -euo pipefail

repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/doltgate/image"
out_dir="$repo_dir/build/image"
step="start"

say() { echo "image: $*"; }
fail() {
  echo "image: FAILED at step '$step': $*" >&2
  exit 1
}
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "image: FAILED at step \"$step\" (exit $rc)" >&2; fi' EXIT

version="$(sed -n 's/^  "version": "\([^"]*\)",$/\1/p' "$repo_dir/package.json")"
[ -n "$version" ] || fail "no \"version\" in package.json"
image_name="doltgate/doltgate:$version"
case "${1:-}" in
  --name) echo "$image_name"; exit 0 ;;
  "" | --force) ;;
  *) fail "usage: scripts/image.sh [--force | --name]" ;;
esac
# One build at a time per checkout (`npm test` runs this too).
mkdir -p "$out_dir"
exec 9>"$out_dir/.lock"
flock 9 || fail "could not lock $out_dir/.lock"
started=$(date +%s)
elapsed() { echo "$(($(date +%s) - started))s"; }

# --- Inputs: the built project and the dolt binary ---------------------------------------------
step="inputs"
[ -f "$repo_dir/dist/bin/doltgate.js" ] || fail "dist/bin/doltgate.js is missing: run \`npm run build\` (or \`bash scripts/bootstrap.sh\`) first"
[ -f "$repo_dir/.doltgate-dolt-path" ] || fail ".doltgate-dolt-path is missing: run \`bash scripts/bootstrap.sh\` first (it builds dolt and records its path)"
dolt_bin="$(cat "$repo_dir/.doltgate-dolt-path")"
[ -x "$dolt_bin" ] || fail "the dolt binary recorded in .doltgate-dolt-path ($dolt_bin) is not an executable file: run \`bash scripts/bootstrap.sh\`"

# --- Base root file system: what goes into it -----------------------------------------------
suite=bookworm
mirrors=(
  "deb http://deb.debian.org/debian $suite main"
  "deb http://deb.debian.org/debian $suite-updates main"
  "deb http://deb.debian.org/debian-security $suite-security main"
)
packages=(nodejs etcd-client ca-certificates libicu72)
# Docs, man pages and translations are left out; each package's copyright file stays.
dpkg_opts=(
  'path-exclude=/usr/share/doc/*'
  'path-include=/usr/share/doc/*/copyright'
  'path-exclude=/usr/share/man/*'
  'path-exclude=/usr/share/info/*'
  'path-exclude=/usr/share/locale/*'
)
# Runs on the host after the packages are installed, with the chroot in $1: the doltgate user and
# its home, then the headers of the image's own Node (libnode-dev and libuv1-dev at the installed
# versions, fetched with the chroot's apt sources) for compiling native addons.
customize='set -e
chroot "$1" groupadd --system --gid 10001 doltgate
chroot "$1" useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/doltgate --shell /usr/sbin/nologin doltgate
install -d -o 10001 -g 10001 -m 0750 "$1/var/lib/doltgate"
node_version=$(dpkg-query --admindir="$1/var/lib/dpkg" -W -f="\${Version}" nodejs)
uv_version=$(dpkg-query --admindir="$1/var/lib/dpkg" -W -f="\${Version}" libuv1)
cd "$DOLTGATE_HEADERS_DEBS"
APT_CONFIG="$MMDEBSTRAP_APT_CONFIG" apt-get download -q -o APT::Sandbox::User=root "libnode-dev=$node_version" "libuv1-dev=$uv_version" >/dev/null'
base_key="$( (echo "$suite"; printf '%s\n' "${mirrors[@]}" "${packages[@]}" "${dpkg_opts[@]}"; echo "$customize") | sha256sum | cut -c1-16)"
base_dir="$cache_root/base-$base_key"

# --- Up to date? ------------------------------------------------------------------------------
# The image is rebuilt when anything that goes into it changed: the base's key, the built project
# (by content: tsc rewrites unchanged files), the lock file, this script, the dolt binary.
step="up-to-date check"
source_key="$(
  cd "$repo_dir"
  echo "$base_key"
  find dist proto -path dist/test -prune -o -type f -print | LC_ALL=C sort | xargs -d '\n' sha256sum
  sha256sum package.json package-lock.json scripts/image.sh
  echo "$dolt_bin $(stat -c '%s %Y' "$dolt_bin")"
)"
source_key="$(sha256sum <<<"$source_key" | cut -c1-16)"
archive="$out_dir/doltgate-$version.oci.tar"
if [ "${1:-}" != "--force" ] && [ -f "$out_dir/oci/index.json" ] && [ -f "$archive" ] \
  && [ "$(cat "$out_dir/source-key" 2>/dev/null)" = "$source_key" ]; then
  say "$image_name is up to date (build/image/oci, build/image/$(basename "$archive")); --force rebuilds it"
  exit 0
fi
rm -f "$out_dir/source-key"

# --- Tools -------------------------------------------------------------------------------------
step="tools"
[ "$(id -u)" -eq 0 ] || fail "run as root: mmdebstrap's root mode and a root file system with files of several owners need it"
missing=()
for pair in mmdebstrap:mmdebstrap umoci:umoci skopeo:skopeo g++:g++ make:make python3:python3; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  apt-get update -q >/dev/null || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]} failed"
else
  say "mmdebstrap, umoci, skopeo and a C++ compiler present"
fi
node_gyp="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$node_gyp" ] || fail "npm's node-gyp is not at $node_gyp"

# --- Base root file system (cached) ------------------------------------------------------------
step="base root file system"
if [ -f "$base_dir/rootfs.tar" ] && [ -d "$base_dir/node-headers" ]; then
  say "using cached Debian $suite base ($base_dir)"
else
  say "building a Debian $suite base with ${packages[*]} (mmdebstrap, a minute or two; cached afterwards in $base_dir)"
  rm -rf "$base_dir.partial"
  mkdir -p "$base_dir.partial/debs"
  mm_args=(--variant=minbase --mode=root --format=tar --include="$(IFS=,; echo "${packages[*]}")")
  for opt in "${dpkg_opts[@]}"; do mm_args+=(--dpkgopt="$opt"); done
  DOLTGATE_HEADERS_DEBS="$base_dir.partial/debs" mmdebstrap "${mm_args[@]}" --customize-hook="$customize" \
    "$suite" "$base_dir.partial/rootfs.tar" "${mirrors[@]}" >"$base_dir.partial/mmdebstrap.log" 2>&1 \
    || fail "mmdebstrap failed; its log: $base_dir.partial/mmdebstrap.log: $(tail -3 "$base_dir.partial/mmdebstrap.log")"
  # Node's headers as node-gyp expects a --nodedir: Debian's /usr/include/nodejs, with libuv's
  # headers put where its (absolute, here dangling) symlinks point.
  step="node headers"
  x="$base_dir.partial/x"
  for deb in "$base_dir.partial"/debs/*.deb; do dpkg-deb -x "$deb" "$x" || fail "dpkg-deb -x $deb failed"; done
  [ -f "$x/usr/include/nodejs/src/node.h" ] && [ -f "$x/usr/include/uv.h" ] || fail "libnode-dev/libuv1-dev did not hold node.h and uv.h"
  rm -rf "$x/usr/include/nodejs/deps/uv/include"
  mkdir -p "$x/usr/include/nodejs/deps/uv/include"
  cp -r "$x/usr/include/uv.h" "$x/usr/include/uv" "$x/usr/include/nodejs/deps/uv/include/"
  mv "$x/usr/include/nodejs" "$base_dir.partial/node-headers"
  rm -rf "$x" "$base_dir.partial/debs"
  rm -rf "$base_dir"
  mv "$base_dir.partial" "$base_dir"
  say "base ready: $(du -sh "$base_dir/rootfs.tar" | cut -f1) tar ($(elapsed))"
fi
step="base root file system"

# --- Production node_modules for the image's Node ---------------------------------------------
step="node_modules"
staging="$out_dir/work/app"
rm -rf "$out_dir/work"
mkdir -p "$staging"
cp "$repo_dir/package.json" "$repo_dir/package-lock.json" "$staging/"
say "installing production npm packages (npm ci --omit=dev)"
(cd "$staging" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >"$out_dir/work/npm-ci.log" 2>&1) \
  || fail "npm ci --omit=dev failed: $(tail -3 "$out_dir/work/npm-ci.log")"
node_abi="$(sed -n 's/^#define NODE_MODULE_VERSION \([0-9]*\).*/\1/p' "$base_dir/node-headers/src/node_version.h")"
say "compiling raw-socket (net-ping's native addon) for the image's Node (module version $node_abi)"
# Under `npm run`, npm's own config is in the environment (npm_config_nodedir=/usr, the host
# Node's headers, among it), and node-gyp takes it over its command line: run it without.
npm_config_unset=()
for var in $(compgen -e); do case "$var" in npm_config_*) npm_config_unset+=(-u "$var") ;; esac; done
(cd "$staging/node_modules/raw-socket" && env "${npm_config_unset[@]}" node "$node_gyp" rebuild --nodedir="$base_dir/node-headers" >"$out_dir/work/raw-socket.log" 2>&1) \
  || fail "compiling raw-socket failed: $(tail -3 "$out_dir/work/raw-socket.log")"
rm -rf "$staging/node_modules/raw-socket/build/Release/obj.target" "$staging/node_modules/raw-socket/build/Release/.deps"

# --- The image's root file system --------------------------------------------------------------
step="oci layout"
layout="$out_dir/work/oci"
bundle="$out_dir/work/bundle"
umoci init --layout "$layout" || fail "umoci init failed"
umoci new --image "$layout:$version" || fail "umoci new failed"
umoci unpack --image "$layout:$version" "$bundle" >/dev/null || fail "umoci unpack of the empty image failed"
rootfs="$bundle/rootfs"

step="root file system"
say "assembling the root file system"
tar -xf "$base_dir/rootfs.tar" -C "$rootfs" || fail "extracting $base_dir/rootfs.tar failed"
# Container runtimes provide /dev; the device nodes mmdebstrap made do not belong in a layer.
find "$rootfs/dev" -mindepth 1 -delete
install -m 0755 "$dolt_bin" "$rootfs/usr/local/bin/dolt"
app="$rootfs/opt/doltgate"
mkdir -p "$app"
cp "$repo_dir/package.json" "$app/"
cp -r "$repo_dir/proto" "$app/proto"
# dist/ without the compiled tests: the image runs the commands, not the test suite.
(cd "$repo_dir" && tar --exclude=./dist/test -cf - ./dist) | tar -xf - -C "$app" || fail "copying dist/ failed"
mv "$staging/node_modules" "$app/node_modules"
chown -R root:root "$app"
cat >"$rootfs/usr/local/bin/doltgate" <<'EOF'
#!/bin/sh
# The doltgate command of the image: its Node running the built project.
exec /usr/bin/node /opt/doltgate/dist/bin/doltgate.js "$@"
EOF
chmod 0755 "$rootfs/usr/local/bin/doltgate"

# What the manifests' containers run must work in this file system, before it is packed.
step="smoke check"
chroot "$rootfs" /usr/local/bin/doltgate --help >"$out_dir/work/help.txt" 2>&1 \
  || fail "\`doltgate --help\` in the root file system failed: $(head -5 "$out_dir/work/help.txt")"
chroot "$rootfs" /usr/bin/node -e "require('/opt/doltgate/node_modules/raw-socket')" 2>"$out_dir/work/addon.txt" \
  || fail "the image's Node cannot load raw-socket: $(head -3 "$out_dir/work/addon.txt")"
dolt_output="$(chroot --userspec=10001:10001 "$rootfs" env HOME=/tmp /usr/local/bin/dolt version 2>&1)" \
  || fail "dolt does not run in the root file system: $dolt_output"
dolt_version="$(grep -m1 '^dolt version' <<<"$dolt_output")" || fail "\`dolt version\` printed no version: $dolt_output"
node_version="$(chroot "$rootfs" /usr/bin/node --version)"
etcdctl_output="$(chroot "$rootfs" env ETCDCTL_API=3 /usr/bin/etcdctl version 2>&1)" || fail "etcdctl does not run: $etcdctl_output"
etcdctl_version="${etcdctl_output%%$'\n'*}"
rm -rf "$rootfs/tmp"/* "$rootfs/tmp"/.[!.]* 2>/dev/null || true
say "node $node_version, $dolt_version, $etcdctl_version"

# --- Pack --------------------------------------------------------------------------------------
step="pack"
say "packing the layer (umoci repack)"
umoci repack --image "$layout:$version" --history.created_by="scripts/image.sh: Debian $suite (mmdebstrap: ${packages[*]}), dolt, doltgate $version" "$bundle" >/dev/null \
  || fail "umoci repack failed"
umoci config --no-history --image "$layout:$version" \
  --config.entrypoint=/usr/local/bin/doltgate --config.cmd=--help \
  --config.user=10001:10001 --config.workingdir=/var/lib/doltgate \
  --config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.env=NODE_ENV=production \
  --config.label=org.opencontainers.image.title=doltgate \
  --config.label=org.opencontainers.image.version="$version" \
  --config.label=org.opencontainers.image.licenses=Apache-2.0 \
  || fail "umoci config failed"
umoci gc --layout "$layout" || fail "umoci gc failed"
rm -rf "$bundle"

step="oci-archive"
rm -f "$archive"
skopeo copy --quiet "oci:$layout:$version" "oci-archive:$archive.partial:docker.io/$image_name" || fail "skopeo copy to an oci-archive failed"
mv "$archive.partial" "$archive"

step="publish"
rm -rf "$out_dir/oci"
mv "$layout" "$out_dir/oci"
echo "$image_name" >"$out_dir/image-name"
echo "$source_key" >"$out_dir/source-key"
rm -rf "$out_dir/work"
say "built $image_name in $(elapsed)"
say "  OCI layout:  build/image/oci (tag $version)"
say "  oci-archive: build/image/$(basename "$archive") ($(du -h "$archive" | cut -f1); \`podman load -i\` it)"
