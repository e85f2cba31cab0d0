# Shared by build.sh and dev.sh (sourced, not run): where the repository is, which docker and image to use.
# shellcheck shell=bash disable=SC2034
# SCRIPT_DIR is set by the caller (the folder of the calling script).
REPO_ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
DOCKER="${RLCOURSE_DOCKER:-docker}"
IMAGE="${RLCOURSE_IMAGE:-rlcourse-dgx:latest}"

die() {
    printf 'docker/%s: %s\n' "${0##*/}" "$*" >&2
    exit 1
}
