#!/usr/bin/env bash
# `make image-test`: the container image test on its own. Installs buildah and debootstrap when
# missing, then runs tests/image, which builds the image (image/build.sh) and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/debian-packages.sh buildah debootstrap
exec .venv/bin/pytest tests/image -q "$@"
