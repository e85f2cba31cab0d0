"""Where things live: the project root, reference runs, scratch runs, figures.

Notebooks execute with their own folder as the working directory (JupyterLab, papermill, nbval and the book build
all do this), so every path is resolved from the project root rather than from the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path



def _is_root(folder: Path) -> bool:
    return (folder / "_toc.yml").is_file() or ((folder / "pyproject.toml").is_file() and (folder / "rlcourse").is_dir())


def project_root() -> Path:
    """The course repository root: ``$RLCOURSE_ROOT``, else the nearest parent of the cwd or of this package that
    holds ``_toc.yml`` (or ``pyproject.toml`` next to ``rlcourse/``), else the current directory."""
    env = os.environ.get("RLCOURSE_ROOT")
    if env:
        return Path(env).resolve()
    candidates = [Path.cwd().resolve(), Path(__file__).resolve().parent]
    for start in candidates:
        for folder in (start, *start.parents):
            if _is_root(folder):
                return folder
    return Path.cwd().resolve()


def checkpoints_dir() -> Path:
    """Committed reference runs (the checkpoint track)."""
    return project_root() / "checkpoints"


def scratch_dir() -> Path:
    """Runs made by the quick profile, tests and readers' experiments; git-ignored."""
    return project_root() / "runs"


def figures_dir() -> Path:
    """Generated figures that the book embeds."""
    return project_root() / "figures"


def runs_dir(profile: str) -> Path:
    """Where a profile's runs go: ``full`` writes the reference runs under ``checkpoints/``, anything else under
    the git-ignored ``runs/<profile>/``."""
    return checkpoints_dir() if profile == "full" else scratch_dir() / profile
