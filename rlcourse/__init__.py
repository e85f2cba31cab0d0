"""rlcourse: the machinery behind the goal-conditioned robot-RL curriculum.

The notebooks tell the story; this package does the work and is tested on its own. One module per concept:

- :mod:`rlcourse.envs` — headless GL backend, Fetch registry, ``make_env``
- :mod:`rlcourse.training.train` — the one training entry point (stable-baselines3 PPO/SAC/TD3, optional HER)
- :mod:`rlcourse.contract.evaluate` — the one evaluation loop and its per-episode metrics
- :mod:`rlcourse.contract.runs` — run folders, the JSON schema, atomic writes, loading reference runs
- :mod:`rlcourse.core.stats` — Wilson and t intervals
- :mod:`rlcourse.core.provenance` — versions, git commit, hardware
- :mod:`rlcourse.training.repro` — the same-seed reproducibility check
- :mod:`rlcourse.analysis.report` — tables across seeds, learning-curve bands, figures, TensorBoard scalars
- :mod:`rlcourse.chapters` — chapter registry and profiles; :mod:`rlcourse.notebooks` — papermill runs
- :mod:`rlcourse.cli` — the ``rlcourse`` command
- :mod:`rlcourse.algos.diagnostics` — replay-buffer and critic diagnostics of off-policy runs
- :mod:`rlcourse.analysis.throughput` — steps/s against the number of parallel environments

Chapter labs (built from scratch, checked against stable-baselines3): :mod:`rlcourse.labs.anatomy` (ch01),
:mod:`rlcourse.labs.ppo` (ch02), :mod:`rlcourse.labs.sac` (ch03).
"""

__version__ = "0.1.0"

from rlcourse.core.errors import RLCourseError  # noqa: E402

__all__ = ["RLCourseError", "__version__"]
