#!/usr/bin/env bash
# Installs the Debian packages the tests use (real nginx, Prometheus, Chromium ...) when they
# are missing. Run by `make test`; needs root or sudo. Installed services are not started:
# tests start their own instances on free loopback ports.
set -euo pipefail

missing=()
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: installing ${missing[*]} needs root or sudo" >&2; exit 1; }
    as_root=(sudo)
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d 101: packages like nginx and prometheus must not start their services here.
# (POLICY_RC_D names another path for the tests of this script.)
policy=${POLICY_RC_D:-/usr/sbin/policy-rc.d}
created_policy=no
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod +x "$policy"
    created_policy=yes
fi
# An if, not `[ ... ] && ...`: under set -e a false test as the trap's last command would
# become the script's exit status, failing an install that succeeded.
cleanup() {
    if [ "$created_policy" = yes ]; then
        "${as_root[@]}" rm -f "$policy"
    fi
}
trap cleanup EXIT
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
