#!/usr/bin/env bash
# Bootstrap: installs everything doltgate and its tests need on a fresh Debian machine, and is
# cheap to run again. Called by the README's commands (npm test, npm run sandbox) and by .ci/run.
#
# Steps: Debian packages -> npm packages -> a real `dolt` binary (built from Dolt's Go module at a
# pinned commit, cached outside the repo, reused when present) -> a build of the TypeScript.
# Every failure names its step. Writes the dolt path to .doltgate-dolt-path for the tests.
set -euo pipefail

repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_root="${DOLTGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/doltgate}"
step=""

fail() {
  echo "bootstrap: FAILED at step '$step': $*" >&2
  exit 1
}
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "bootstrap: FAILED at step \"$step\" (exit $rc)" >&2; fi' EXIT

say() { echo "bootstrap: $*"; }

# --- Debian packages ---------------------------------------------------------------------------
step="debian packages"
debian_packages=(etcd-server etcd-client gcc g++ make python3 libicu-dev mariadb-client sysbench iptables)
missing=()
for pkg in "${debian_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -q >/dev/null || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]} failed"
else
  say "Debian packages present"
fi
# The Debian etcd package starts a system etcd on 2379; the tests start their own on free ports,
# so the system one is only in the way of people who expect the default port free. Leave it.
for tool in etcd etcdctl mysql sysbench gcc g++ iptables; do
  command -v "$tool" >/dev/null || fail "$tool is not on PATH after installing Debian packages"
done
# The deploy/ checks run real tools: systemd-analyze, promtool and prometheus.
step="deploy tools"; bash "$repo_dir/scripts/install-deploy-tools.sh" || fail "installing systemd-analyze, promtool and prometheus failed"

# --- npm packages ------------------------------------------------------------------------------
step="npm packages"
cd "$repo_dir"
lock_hash="$(sha256sum package-lock.json | cut -c1-16)"
if [ -f node_modules/.doltgate-lock-hash ] && [ "$(cat node_modules/.doltgate-lock-hash)" = "$lock_hash" ]; then
  say "npm packages up to date"
else
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --ignore-scripts >/dev/null || fail "npm ci failed"
  # raw-socket (net-ping's ICMP) is a native addon: build it explicitly since scripts were skipped.
  npm rebuild raw-socket >/dev/null || fail "building raw-socket (net-ping's native addon) failed"
  echo "$lock_hash" > node_modules/.doltgate-lock-hash
fi

# --- Dolt --------------------------------------------------------------------------------------
step="dolt"
# Candidates in order of preference. The first is the commit ../shared/dolt.md pins (v2.3.1), then
# its neighbouring releases (v2.3.0, v2.2.4). The Go module proxy reachable here refuses all three
# (403 "This module version is not available"), so the last candidate is the newest Dolt commit it
# does serve; see README "Which Dolt".
dolt_candidates=(
  "b15770fe588268027d799c11356af0ce24ba882a"
  "b1ff0accf4b1d0026a02fd8a709ba858cb9b08af"
  "b81fedf22d040f459c522067eec9710e25e97589"
  "v0.40.5-0.20260424001550-011a27ff4303"
)
dolt_bin=""
for candidate in "${dolt_candidates[@]}"; do
  cached="$cache_root/dolt-${candidate}/dolt"
  if [ -x "$cached" ]; then dolt_bin="$cached"; break; fi
done
if [ -z "$dolt_bin" ] && command -v dolt >/dev/null && dolt version 2>/dev/null | grep -q "dolt version 2.3.1"; then
  dolt_bin="$(command -v dolt)"
fi
if [ -n "$dolt_bin" ]; then
  say "using cached dolt: $dolt_bin"
else
  command -v go >/dev/null || fail "Go is needed to build dolt and is not on PATH"
  errors=""
  for candidate in "${dolt_candidates[@]}"; do
    target="$cache_root/dolt-${candidate}"
    mkdir -p "$target.partial"
    say "building dolt from github.com/dolthub/dolt/go@${candidate} (a large cgo build: 10-25 minutes on 2 cores)"
    log="$target.partial/build.log"
    set +e
    CGO_ENABLED=1 GOBIN="$target.partial" GOFLAGS=-buildvcs=false \
      go install -v "github.com/dolthub/dolt/go/cmd/dolt@${candidate}" >"$log" 2>&1 &
    build_pid=$!
    # Progress: the number of packages compiled so far, every 30 s; a refused version ends at once.
    waited=0
    while kill -0 "$build_pid" 2>/dev/null; do
      sleep 1; waited=$((waited + 1))
      if [ $((waited % 30)) -eq 0 ] && kill -0 "$build_pid" 2>/dev/null; then
        say "  still building dolt (${waited}s): $(wc -l <"$log") packages compiled, last: $(tail -1 "$log" | cut -c1-100)"
      fi
    done
    wait "$build_pid"; rc=$?
    set -e
    if [ $rc -eq 0 ] && [ -x "$target.partial/dolt" ]; then
      rm -rf "$target"; mv "$target.partial" "$target"
      dolt_bin="$target/dolt"
      say "built dolt at $dolt_bin"
      break
    fi
    errors+="  ${candidate}: $(grep -m1 -E 'invalid version|error|403|404' "$log" || tail -1 "$log")"$'\n'
    say "dolt candidate ${candidate} failed: $(tail -1 "$log")"
  done
  [ -n "$dolt_bin" ] || fail "no Dolt commit could be built; errors:"$'\n'"$errors"
fi
"$dolt_bin" version >/dev/null 2>&1 || fail "$dolt_bin does not run (is libicu installed?)"
say "$("$dolt_bin" version | head -1)"
echo "$dolt_bin" > "$repo_dir/.doltgate-dolt-path"

# --- TypeScript build --------------------------------------------------------------------------
step="typescript build"
npx tsc -p tsconfig.json || fail "tsc failed"
chmod +x dist/bin/doltgate.js
say "ready"
