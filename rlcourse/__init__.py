"""rlcourse: the machinery behind the goal-conditioned robot-RL curriculum.

The notebooks tell the story; this package does the work and is tested on its own. Its layers, each importing only
from the layers above it in this list (``tests/test_layers.py`` checks it):

- :mod:`rlcourse.core` — errors, paths, strict JSON and atomic files, statistics, provenance, torch threads
- :mod:`rlcourse.envs` — headless GL, the Fetch registry, environment specs and the wrapper registry
- :mod:`rlcourse.contract` — run folders and their schema, the training config, the policy protocol, the one
  evaluation loop, the run writer
- :mod:`rlcourse.algos` — training backends: stable-baselines3 (PPO, SAC, TD3, HER) and ``fastsac``
- :mod:`rlcourse.training` — the entry points: ``train``, ``train_many``, ``evaluate_run``, recipes, repro
- :mod:`rlcourse.analysis` — tables and curves across seeds, comparisons, throughput
- :mod:`rlcourse.labs` — what the chapters build from scratch (anatomy, PPO, SAC, HER); never imported by the rest
- :mod:`rlcourse.chapters`, :mod:`rlcourse.notebooks`, :mod:`rlcourse.cli` — the chapter registry, papermill runs,
  the ``rlcourse`` command

The names below are the public API, importable as ``from rlcourse import train, TrainConfig, ...``. They are
loaded on first use, so ``import rlcourse`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.2.0"

_PUBLIC = {
    "RLCourseError": "rlcourse.core.errors",
    "EnvSpec": "rlcourse.envs.spec",
    "WrapperSpec": "rlcourse.envs.spec",
    "make_env": "rlcourse.envs.fetch",
    "TrainConfig": "rlcourse.contract.config",
    "Run": "rlcourse.contract.runs",
    "load_run": "rlcourse.contract.runs",
    "evaluate": "rlcourse.contract.evaluate",
    "summarize": "rlcourse.contract.evaluate",
    "FunctionPolicy": "rlcourse.contract.policies",
    "load_policy": "rlcourse.algos.base",
    "train": "rlcourse.training.train",
    "train_many": "rlcourse.training.train",
    "random_run": "rlcourse.training.train",
    "evaluate_run": "rlcourse.training.evaluation",
    "recipe_config": "rlcourse.training.recipes",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'rlcourse' has no attribute {name!r}")
