#!/usr/bin/env bash
# Run any command inside the course's GPU container, as you, with the repository mounted at /workspace.
#
#   docker/dev.sh                                   interactive shell in the container
#   docker/dev.sh rlcourse run ch04 --profile full  one command; its arguments are passed on unchanged
#   nohup docker/dev.sh rlcourse run ch04 --profile full > ch04.log 2>&1 &    works: no TTY is needed
#
# Environment knobs (all optional):
#   RLCOURSE_IMAGE        image tag (default rlcourse-dgx:latest); built with docker/build.sh when missing
#   RLCOURSE_GPUS         "none" = no GPU; unset or "auto" = all GPUs if nvidia-smi works on this host;
#                         anything else is handed to --gpus as is (e.g. "all", "device=1")
#   MUJOCO_GL             egl (default) | osmesa | ...; PYOPENGL_PLATFORM follows it unless you set it yourself
#   RLCOURSE_DOCKER_ARGS  extra `docker run` options, split on spaces (e.g. "-p 8888:8888")
#   RLCOURSE_DOCKER       docker client to call (default docker); the tests point it at a fake
#   RLCOURSE_NVIDIA_SMI   GPU probe to call (default nvidia-smi)
#
# In the container the command runs inside /workspace/.venv-docker, a venv made with --system-site-packages so
# it sees the image's CUDA torch and pinned packages; `rlcourse` is installed there in editable mode (with any pin
# the image lacks), and again only when requirements.txt, constraints.txt or pyproject.toml change. HOME is
# /workspace/.home so that tools have somewhere to write.
set -euo pipefail

# Locate the repository from this file, not from the current directory.
SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=docker/common.sh
. "$SCRIPT_DIR/common.sh"
NVIDIA_SMI="${RLCOURSE_NVIDIA_SMI:-nvidia-smi}"
WORKDIR=/workspace

# What runs inside the container (bash -c): prepare .venv-docker, then hand over to the command.
read -r -d '' CONTAINER_SCRIPT <<'INNER' || true
set -euo pipefail
venv="$PWD/.venv-docker"
mkdir -p "$HOME"
# One setup at a time, e.g. when several nohup runs start together.
exec 9>"$HOME/.venv-docker.lock"
flock 9
if [ -e "$venv" ] && ! "$venv/bin/python" -c "" >/dev/null 2>&1; then
    echo "dev.sh: .venv-docker does not work with this image's Python; recreating it" >&2
    rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
    echo "dev.sh: creating .venv-docker (it inherits the image's CUDA torch)" >&2
    python3 -m venv --system-site-packages "$venv"
fi
pins=(requirements.txt pyproject.toml)
if [ -f constraints.txt ]; then pins+=(constraints.txt); fi
want="$(cat "${pins[@]}" | sha256sum | cut -d' ' -f1)"
stamp="$venv/.rlcourse-install.sha256"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "dev.sh: installing rlcourse (editable) and any missing pins into .venv-docker (torch stays the image's)" >&2
    exclude="${RLCOURSE_REQ_EXCLUDE:?is not set: this image was not built from docker/Dockerfile; run docker/build.sh}"
    { grep -viE "$exclude" requirements.txt || true; } > "$venv/requirements.container.txt"
    pip_args=(-r "$venv/requirements.container.txt" -e .)
    if [ -f constraints.txt ]; then
        { grep -viE "$exclude" constraints.txt || true; } > "$venv/constraints.container.txt"
        pip_args+=(-c "$venv/constraints.container.txt")
    fi
    "$venv/bin/python" -m pip install "${pip_args[@]}" 1>&2
    printf '%s\n' "$want" > "$stamp"
fi
exec 9>&-
export VIRTUAL_ENV="$venv"
export PATH="$venv/bin:$PATH"
if [ "$#" -eq 0 ]; then
    exec bash
fi
# Without a terminal this is a batch job (often under nohup): let it outlive the terminal that started it.
[ -t 0 ] || trap '' HUP
exec "$@"
INNER

gpu_available() {
    command -v -- "$NVIDIA_SMI" >/dev/null 2>&1 && "$NVIDIA_SMI" -L >/dev/null 2>&1
}

# Fill the global array DOCKER_RUN_ARGS with the full `docker run ...` argument list for the command "$@".
build_docker_args() {
    DOCKER_RUN_ARGS=(run --rm -i --init)
    if [ -t 0 ] && [ -t 1 ]; then
        DOCKER_RUN_ARGS+=(-t -e "TERM=${TERM:-xterm}")
    fi

    case "${RLCOURSE_GPUS:-auto}" in
        none) ;;
        auto) if gpu_available; then DOCKER_RUN_ARGS+=(--gpus all); fi ;;
        *) DOCKER_RUN_ARGS+=(--gpus "$RLCOURSE_GPUS") ;;
    esac

    # NGC's recommended settings for PyTorch: shared memory for DataLoader workers, unlimited locked memory, and a
    # 64 MiB stack.
    DOCKER_RUN_ARGS+=(--ipc=host --ulimit memlock=-1 --ulimit stack=67108864)

    DOCKER_RUN_ARGS+=(--user "$(id -u):$(id -g)" -e "HOME=$WORKDIR/.home")

    local gl="${MUJOCO_GL:-egl}"
    local pyopengl="${PYOPENGL_PLATFORM:-}"
    if [ -z "$pyopengl" ] && { [ "$gl" = egl ] || [ "$gl" = osmesa ]; }; then
        pyopengl="$gl"
    fi
    DOCKER_RUN_ARGS+=(-e "MUJOCO_GL=$gl" -e "PYOPENGL_PLATFORM=$pyopengl" -e PYTHONUNBUFFERED=1)

    DOCKER_RUN_ARGS+=(-v "$REPO_ROOT:$WORKDIR" -w "$WORKDIR")

    if [ -n "${RLCOURSE_DOCKER_ARGS:-}" ]; then
        local extra
        read -r -a extra <<<"$RLCOURSE_DOCKER_ARGS"
        DOCKER_RUN_ARGS+=("${extra[@]}")
    fi

    DOCKER_RUN_ARGS+=("$IMAGE" bash -c "$CONTAINER_SCRIPT" dev.sh "$@")
}

ensure_image() {
    if ! "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
        printf 'docker/dev.sh: image %s not found; building it with docker/build.sh\n' "$IMAGE" >&2
        RLCOURSE_DOCKER="$DOCKER" RLCOURSE_IMAGE="$IMAGE" "$SCRIPT_DIR/build.sh" >&2 \
            || die "building $IMAGE failed (see the output above)"
    fi
}

main() {
    command -v -- "$DOCKER" >/dev/null 2>&1 \
        || die "'$DOCKER' not found: install Docker (plus the NVIDIA Container Toolkit for GPUs) or use the CPU setup"
    ensure_image
    build_docker_args "$@"
    exec "$DOCKER" "${DOCKER_RUN_ARGS[@]}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
