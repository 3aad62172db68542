#!/usr/bin/env bash
# Makes the local stand-in for python:3.11-slim, for hosts that cannot pull from Docker Hub:
# a minimal Debian bookworm (Python 3.11) made with debootstrap, committed to buildah's own
# storage as localhost/receiver-base:bookworm. Built once per machine: it is rebuilt only when
# missing or when this script changes (its hash is the image's label). Needs root, buildah,
# debootstrap and access to deb.debian.org (or DEBIAN_MIRROR).
#
# It gives the receiver's Dockerfile what python:3.11-slim gives it: `python` on PATH
# (python-is-python3), `python -m venv` with pip (python3-venv), groupadd/useradd (passwd),
# CA certificates and LANG=C.UTF-8.
set -euo pipefail

BASE_IMAGE=${RECEIVER_BASE_IMAGE:-localhost/receiver-base:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-venv,python-is-python3,ca-certificates
RECIPE_LABEL=org.dynamodb-metric-stream-receiver.base-recipe
recipe=$(sha256sum "$0" | cut -c1-16)

# One builder at a time: parallel test runs must not debootstrap twice into one image name.
exec 9>/run/receiver-base-image.lock
flock 9

current=$(buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$RECIPE_LABEL\"}}" "$BASE_IMAGE" 2>/dev/null || true)
if [ "$current" = "$recipe" ]; then
    exit 0
fi

echo "building the base image $BASE_IMAGE with debootstrap (once per machine; a few minutes)" >&2
started=$(date +%s)
container=$(buildah from scratch)
cleanup() { buildah umount "$container" >/dev/null 2>&1 || true; buildah rm "$container" >/dev/null 2>&1 || true; }
trap cleanup EXIT
root=$(buildah mount "$container")
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$root" "$MIRROR" >/dev/null
# An image needs none of the package downloads, indexes or documentation.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
       "$root"/var/log/*.log "$root"/var/log/apt/*
buildah umount "$container" >/dev/null
buildah config \
    --env LANG=C.UTF-8 \
    --cmd python3 \
    --label "$RECIPE_LABEL=$recipe" \
    "$container"
buildah commit --quiet --rm "$container" "$BASE_IMAGE" >/dev/null
trap - EXIT
echo "built $BASE_IMAGE in $(( $(date +%s) - started ))s" >&2
