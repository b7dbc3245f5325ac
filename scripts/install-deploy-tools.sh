#!/usr/bin/env bash
# Installs the real tools the deploy/ checks run, from Debian, when they are missing:
#   systemd     -> systemd-analyze (verify and offline security review of deploy/systemd/*)
#   prometheus  -> promtool (check config, check rules, test rules) and prometheus (the scrape test)
# Idempotent: does nothing (and needs no root, no network) when both commands are on PATH.
# Installing Debian's prometheus may enable a prometheus.service; where systemd is not PID 1
# (containers, CI) nothing starts, and the tests never use the default port 9090 anyway.
# --no-install-recommends keeps out node-exporter and friends, which no check uses.
set -euo pipefail

say() { echo "install-deploy-tools: $*"; }

missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  missing+=(prometheus)
fi

if [ ${#missing[@]} -eq 0 ]; then
  say "systemd-analyze, promtool and prometheus present"
  exit 0
fi

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
say "installing Debian packages: ${missing[*]}"
$sudo_cmd apt-get update -q >/dev/null || { say "apt-get update failed" >&2; exit 1; }
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
  || { say "apt-get install ${missing[*]} failed" >&2; exit 1; }

for tool in systemd-analyze promtool prometheus; do
  command -v "$tool" >/dev/null 2>&1 || { say "$tool is not on PATH after installing ${missing[*]}" >&2; exit 1; }
done
say "ready: $(systemd-analyze --version | head -1); $(promtool --version 2>&1 | head -1)"
