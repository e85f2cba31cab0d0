"""rlcourse: the machinery behind the goal-conditioned robot-RL curriculum.

The notebooks tell the story; this package does the work and is tested on its own. One module per concept:

- :mod:`rlcourse.envs` — headless GL backend, Fetch registry, ``make_env``
- :mod:`rlcourse.train` — the one training entry point (stable-baselines3 PPO/SAC/TD3, optional HER)
- :mod:`rlcourse.evaluate` — the one evaluation loop and its per-episode metrics
- :mod:`rlcourse.runs` — run folders, the JSON schema, atomic writes, loading reference runs
- :mod:`rlcourse.stats` — Wilson and t intervals
- :mod:`rlcourse.provenance` — versions, git commit, hardware
- :mod:`rlcourse.repro` — the same-seed reproducibility check
- :mod:`rlcourse.report` — tables across seeds, learning-curve bands, figures, TensorBoard scalars
- :mod:`rlcourse.chapters` — chapter registry and profiles; :mod:`rlcourse.notebooks` — papermill runs
- :mod:`rlcourse.cli` — the ``rlcourse`` command
- :mod:`rlcourse.diagnostics` — replay-buffer and critic diagnostics of off-policy runs
- :mod:`rlcourse.throughput` — steps/s against the number of parallel environments

Chapter labs (built from scratch, checked against stable-baselines3): :mod:`rlcourse.anatomy` (ch01),
:mod:`rlcourse.ppo` (ch02), :mod:`rlcourse.sac` (ch03).
"""

__version__ = "0.1.0"

from .errors import RLCourseError  # noqa: E402

__all__ = ["RLCourseError", "__version__"]
