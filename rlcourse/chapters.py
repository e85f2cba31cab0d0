"""The chapter registry and the profiles.

Each chapter is one notebook. Its ``parameters`` cell sets ``profile = "quick"`` by default; the notebook then asks
:func:`settings` for the numbers that profile means (steps, episodes, seeds). Keeping the table here, not in the
notebooks, lets the command line reject a bad chapter or profile before papermill starts a kernel, and lets the
tests see every profile.

- ``quick``: CPU-only, minutes; what nbval, ``make test`` and the book build run. Shows real learning where that
  fits in minutes, and loads the committed reference runs for the full results.
- ``full``: produces the reference runs under ``checkpoints/`` (hours on a CPU for the later chapters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RLCourseError
from .paths import project_root

PROFILES = ("quick", "full")


@dataclass(frozen=True)
class Chapter:
    """One chapter: id, title, syllabus week, notebook file (None while unwritten) and its profile settings."""

    id: str
    title: str
    week: str
    notebook: str | None
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def written(self) -> bool:
        return self.notebook is not None

    def notebook_path(self) -> Path:
        if self.notebook is None:
            raise RLCourseError(f"{self.id} ({self.title}) is planned but not written yet; see the syllabus page")
        return project_root() / "notebooks" / self.notebook


CHAPTERS: dict[str, Chapter] = {
    c.id: c
    for c in [
        Chapter(
            "ch00", "Proof of life", "0", "ch00_proof_of_life.ipynb",
            profiles={
                "quick": {"env_id": "FetchReachDense-v4", "seed": 0, "total_steps": 4096, "n_envs": 8,
                          "ppo": {"n_steps": 64, "batch_size": 256, "n_epochs": 4},
                          "eval_episodes": 10, "repro_steps": 1024, "repro_episodes": 5},
                "full": {"env_id": "FetchReachDense-v4", "seed": 0, "total_steps": 50_000, "n_envs": 8,
                         "ppo": {"n_steps": 1024, "batch_size": 256, "n_epochs": 10},
                         "eval_episodes": 100, "repro_steps": 8192, "repro_episodes": 20},
            },
        ),
        Chapter(
            "ch01", "Environment anatomy", "1", "ch01_env_anatomy.ipynb",
            profiles={
                "quick": {"env_id": "FetchReachDense-v4", "seed": 0, "reward_check_steps": 500, "relabel_goals": 3,
                          "atol": 1e-10, "goal_resets": 100, "random_episodes": 30},
                "full": {"env_id": "FetchReachDense-v4", "seed": 0, "reward_check_steps": 2000, "relabel_goals": 5,
                         "atol": 1e-10, "goal_resets": 500, "random_episodes": 100},
            },
        ),
        Chapter("ch02", "PPO on dense Reach", "2", None),
        Chapter("ch03", "SAC on dense Reach", "3", None),
        Chapter("ch04", "HER on sparse Reach and Push", "4", None),
        Chapter("ch05", "PickAndPlace", "5", None),
        Chapter("ch06", "Policies as controllers", "6", None),
        Chapter("ch07", "Robustness", "7", None),
        Chapter("ch08", "Pixels I: visual Reach", "8", None),
        Chapter("ch09", "Pixels II: Push from pixels", "9", None),
        Chapter("ch10", "The reality gap", "10", None),
    ]
}


def get(chapter_id: str) -> Chapter:
    """The chapter with this id, or a one-line error listing the ids."""
    try:
        return CHAPTERS[chapter_id]
    except KeyError:
        raise RLCourseError(f"unknown chapter {chapter_id!r}; chapters are {', '.join(CHAPTERS)}") from None


def check_profile(profile: str) -> str:
    """``profile`` if it is a known profile, else a one-line error."""
    if profile not in PROFILES:
        raise RLCourseError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    return profile


def settings(chapter_id: str, profile: str) -> dict[str, Any]:
    """The settings a chapter uses in ``profile`` (a fresh copy; notebooks may adjust it)."""
    import copy

    ch = get(chapter_id)
    check_profile(profile)
    if profile not in ch.profiles:
        raise RLCourseError(f"{chapter_id} has no settings yet (it is not written)")
    return copy.deepcopy(ch.profiles[profile])
