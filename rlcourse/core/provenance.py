"""Provenance: what produced a result (package versions, git commit, hardware, the command)."""

from __future__ import annotations

import os
import platform
import re
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from rlcourse.core.paths import project_root

PACKAGES = (
    "rlcourse",
    "torch",
    "gymnasium",
    "gymnasium-robotics",
    "mujoco",
    "stable-baselines3",
    "numpy",
)


def versions() -> dict[str, str | None]:
    """Installed versions of Python and the packages that determine a result (None where not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# What runs write: a full-profile run replaces reference runs and figures while it works, so changes there do not
# make the code that produced them "dirty".
ARTIFACT_PATHS = ("checkpoints", "figures", "benchmarks/results")


def git_info(root: Path | None = None) -> dict[str, Any]:
    """The commit of the course repository and whether its code had uncommitted changes: tracked files outside
    :data:`ARTIFACT_PATHS` (the outputs that runs themselves write) that differ from the commit."""
    root = root or project_root()
    excludes = [f":(exclude){p}" for p in ARTIFACT_PATHS]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *excludes], cwd=root,
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(dirty) if commit else None}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        return round(pages * size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def hardware() -> dict[str, Any]:
    """CPU, memory, torch threads and the CUDA device, if any."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
    }


def host_tag(hw: dict[str, Any]) -> str:
    """A folder name for a host, from :func:`hardware`'s record: its CPU model and count, e.g. ``amd-epyc-x2``
    (wall-clock is compared only between runs of one host tag)."""
    return re.sub(r"[^a-z0-9]+", "-", str(hw["cpu"]).lower()).strip("-") + f"-x{hw['cpu_count']}"


def command_line(argv: list[str] | None = None) -> str:
    """The command that is running, shell-quoted so it can be pasted back."""
    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith("ipykernel_launcher.py"):
        return "(a Jupyter kernel: pass command= to record how to reproduce this run)"
    if argv and argv[0].endswith(("/rlcourse", "rlcourse/cli.py", "rlcourse/__main__.py")):
        argv[0] = "rlcourse"
    return shlex.join(argv)


def utc_now() -> str:
    """The current time in UTC, ISO 8601, to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def snapshot() -> dict[str, Any]:
    """Everything above in one dict (what ``rlcourse versions`` prints)."""
    return {"versions": versions(), "git": git_info(), "hardware": hardware()}


def gpu_check() -> dict[str, Any]:
    """Is a CUDA GPU visible to PyTorch? Never fails: on a CPU-only machine it warns and says training uses the CPU."""
    import warnings

    import torch

    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        name = torch.cuda.get_device_name(0)
        return {"cuda": True, "device_count": n, "name": name,
                "message": f"OK: CUDA available -- {n} device(s), primary: {name}"}
    msg = "WARN: CUDA not available; training will use the CPU (expected on a laptop; state-based chapters are CPU-bound)"
    warnings.warn(msg, stacklevel=2)
    return {"cuda": False, "device_count": 0, "name": None, "message": msg}
