#!/usr/bin/env bash
# Builds receiver/Dockerfile without a Docker engine: buildah with chroot isolation, the
# repository root as the context (its .dockerignore is the allow-list), Docker format so the
# HEALTHCHECK is kept. Layers are cached in buildah's storage, so a rebuild with unchanged
# dependencies only re-copies receiver/ and rules/.
#
# The base: BASE_IMAGE when set; else python:3.11-slim when Docker Hub answers; else the local
# debootstrap image that image/base.sh makes (once per machine).
#
# Environment: IMAGE (the tag, default localhost/dynamodb-metric-stream-receiver:dev),
# BASE_IMAGE, BUILD_CA_BUNDLE (the CA bundle pip trusts during the build, default the host's,
# for hosts behind a TLS-inspecting proxy; it is mounted for the build only, never copied in).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/dynamodb-metric-stream-receiver:dev}
REGISTRY_BASE=docker.io/library/python:3.11-slim
LOCAL_BASE=localhost/receiver-base:bookworm
BUILD_CA_BUNDLE=${BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

[ "$(id -u)" -eq 0 ] || { echo "error: image/build.sh needs root (buildah with chroot isolation, debootstrap)" >&2; exit 1; }
for tool in buildah debootstrap; do
    command -v "$tool" >/dev/null || { echo "error: $tool is not installed (scripts/debian-packages.sh buildah debootstrap)" >&2; exit 1; }
done

present() { buildah inspect --type image "$1" >/dev/null 2>&1; }

if [ -n "${BASE_IMAGE:-}" ]; then
    base=$BASE_IMAGE
    present "$base" || buildah pull --quiet "$base" >/dev/null
elif present "$REGISTRY_BASE" || timeout 60 buildah pull --quiet "$REGISTRY_BASE" >/dev/null 2>&1; then
    base=$REGISTRY_BASE
else
    echo "cannot pull $REGISTRY_BASE: building on the local Debian base $LOCAL_BASE" >&2
    RECEIVER_BASE_IMAGE=$LOCAL_BASE image/base.sh
    base=$LOCAL_BASE
fi

mounts=()
if [ -r "$BUILD_CA_BUNDLE" ]; then
    build_config=$(mktemp -d)
    trap 'rm -rf "$build_config"' EXIT
    cp "$BUILD_CA_BUNDLE" "$build_config/ca-certificates.crt"
    printf '[global]\ncert = /run/receiver-build/ca-certificates.crt\n' >"$build_config/pip.conf"
    chmod -R a+rX "$build_config"
    mounts=(--volume "$build_config:/run/receiver-build:ro" --volume "$build_config/pip.conf:/etc/pip.conf:ro")
fi

started=$(date +%s)
buildah build \
    --isolation chroot \
    --network host \
    --layers \
    --pull=never \
    --format docker \
    --build-arg "BASE_IMAGE=$base" \
    "${mounts[@]}" \
    --file receiver/Dockerfile \
    --tag "$IMAGE" \
    --quiet \
    . >/dev/null
echo "built $IMAGE on $base in $(( $(date +%s) - started ))s" >&2
