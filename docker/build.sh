#!/usr/bin/env bash
# Build the course's GPU image from docker/Dockerfile, with the repository root as the build context.
#
#   docker/build.sh                                    build rlcourse-dgx:latest (or $RLCOURSE_IMAGE)
#   docker/build.sh --build-arg NGC_TAG=25.11-py3      any extra arguments go to `docker build` as they are
#   docker/build.sh --no-cache --pull                  rebuild from scratch
#
# /.dockerignore filters the context down to requirements.txt and constraints.txt, so it stays small however big
# runs/ and checkpoints/ get.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=docker/common.sh
. "$SCRIPT_DIR/common.sh"

command -v -- "$DOCKER" >/dev/null 2>&1 \
    || die "'$DOCKER' not found: install Docker (and the NVIDIA Container Toolkit for GPUs)"
for pins in requirements.txt constraints.txt; do
    [ -f "$REPO_ROOT/$pins" ] || die "$REPO_ROOT/$pins is missing; the image installs the course's pinned packages"
done

# Record which commit the image was built from (best effort; the build does not need git).
revision="$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"

printf 'docker/build.sh: building %s from %s\n' "$IMAGE" "$SCRIPT_DIR/Dockerfile" >&2
exec "$DOCKER" build \
    --file "$SCRIPT_DIR/Dockerfile" \
    --tag "$IMAGE" \
    --label "org.opencontainers.image.revision=$revision" \
    "$@" \
    "$REPO_ROOT"
