"""What defines a training run: :class:`TrainConfig`, and the checks that need no environment and no training.

A config names an algorithm (a backend of :mod:`rlcourse.algos`), an environment spec (task id, constructor kwargs,
named wrappers; see :mod:`rlcourse.envs.spec`), the budget, the seed, and the algorithm's hyperparameters. Its
:meth:`~TrainConfig.identity` hashes what must not change when an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlcourse.core.errors import RLCourseError
from rlcourse.core.io import jsonable
from rlcourse.core.paths import checkpoints_dir
from rlcourse.contract.runs import check_run_id, default_run_id
from rlcourse.envs.spec import EnvSpec, WrapperSpec, parse_wrap

DEFAULT_EVAL_SEED = 1000  # evaluation episodes are seeded 1000, 1001, ...: far from the training seeds 0, 1, 2


@dataclass
class TrainConfig:
    """Everything that defines a training run."""

    algo: str
    """Backend name: ``ppo``, ``sac``, ``td3`` (stable-baselines3), ``fastsac`` (:mod:`rlcourse.algos.fastsac`) or
    ``pixelsac`` (:mod:`rlcourse.algos.pixelsac`, with the ``pixels`` wrapper)."""
    env_id: str
    """A registered Fetch task, e.g. ``FetchPush-v4``."""
    seed: int = 0
    """Seeds the networks, the replay sampling and environment ``i`` (reset with ``seed + i``)."""
    total_steps: int = 10_000
    """Environment steps, summed over the parallel environments."""
    n_envs: int = 1
    """Parallel environments, stepped in this process."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Constructor arguments of the task (part of the environment spec)."""
    wrappers: list[Any] = field(default_factory=list)
    """Named wrappers, innermost first: :class:`~rlcourse.envs.spec.WrapperSpec`, ``"name:k=v"`` text or dicts."""
    her: bool = False
    """Hindsight experience replay (off-policy backends)."""
    her_kwargs: dict[str, Any] = field(default_factory=dict)
    """``n_sampled_goal`` (k) and ``goal_selection_strategy``."""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    """The backend's own settings (any SB3 constructor argument; a fastsac config field)."""
    run_id: str | None = None
    """Run folder name; default ``{algo}[_her]_{EnvId}_seed{N}``."""
    out_dir: str = field(default_factory=lambda: str(checkpoints_dir()))
    """Parent folder of the run folder; default ``checkpoints/`` at the project root, wherever Python runs."""
    device: str = "auto"
    """stable-baselines3 backends: ``auto`` (CPU for PPO, CUDA if present otherwise), ``cpu`` or ``cuda``; fastsac's
    networks are small enough that it always runs on the CPU."""
    checkpoint_every: int = 0
    """Environment steps between resume checkpoints; 0 = ten per run."""
    curve_points: int = 100
    """About this many regular rows in curve.json (plus one per in-training evaluation)."""
    eval_every: int = 0
    """Environment steps between deterministic in-training evaluations (curve columns ``eval_*``); 0 = none."""
    curve_eval_episodes: int = 10
    """Episodes per in-training evaluation."""
    stop_at_success: float = 0.0
    """End at the first in-training evaluation with at least this success rate; 0 = never."""
    final_eval_episodes: int = 100
    """Episodes of the final evaluation written to eval.json; 0 = no eval.json."""
    eval_seed: int = DEFAULT_EVAL_SEED
    """Seed of the first evaluation episode (in training and final)."""
    overwrite: bool = False
    """Replace a finished run folder of the same id (the old one stays until the new one is complete)."""
    progress: bool = False
    """A progress bar; ``RLCOURSE_PROGRESS=0`` turns every bar off (book builds, CI)."""
    tensorboard: bool = True
    """TensorBoard logs under ``runs/tb/`` (stable-baselines3 backends)."""
    command: str | None = None
    """The command that recreates this run (default: the current command line)."""
    diagnostics: bool = False
    """Off-policy only: replay and critic diagnostics in every curve row."""
    normalize_obs: bool = False
    """stable-baselines3 only: running mean/std normalisation of every observation key (VecNormalize)."""
    torch_threads: int = 0
    """PyTorch intra-op threads while training; 0 = leave PyTorch's setting alone."""

    @property
    def spec(self) -> EnvSpec:
        """The environment spec this run trains on."""
        if not isinstance(self.wrappers, (list, tuple)):
            raise RLCourseError(f"wrappers must be a list, got {self.wrappers!r}")
        wrappers = tuple(w if isinstance(w, WrapperSpec) else parse_wrap(w) if isinstance(w, str)
                         else WrapperSpec.from_json(w) for w in self.wrappers)
        if not isinstance(self.env_kwargs, dict):
            raise RLCourseError(f"env_kwargs must be a dict, got {self.env_kwargs!r}")
        return EnvSpec(id=self.env_id, kwargs=dict(self.env_kwargs), wrappers=wrappers)

    def resolved_run_id(self) -> str:
        return check_run_id(self.run_id or default_run_id(self.algo, self.env_id, self.seed, self.her))

    def identity(self) -> str:
        """A hash of the fields that must not change when a run is resumed."""
        keys = ["algo", "env_id", "seed", "total_steps", "n_envs", "her", "her_kwargs", "hyperparameters",
                "diagnostics", "normalize_obs", "stop_at_success", "eval_every", "curve_eval_episodes", "eval_seed"]
        doc = {k: jsonable(getattr(self, k)) for k in keys}
        doc["spec"] = self.spec.validate().to_json()
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    def portable(self) -> dict[str, Any]:
        """The config as JSON, with ``out_dir`` relative to the project root when it lies inside it."""
        from rlcourse.core.paths import project_root

        doc = jsonable(asdict(self))
        doc["wrappers"] = [w.to_json() for w in self.spec.validate().wrappers]
        try:
            doc["out_dir"] = str(Path(self.out_dir).resolve().relative_to(project_root()))
        except ValueError:
            pass
        return doc


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int (not a bool, not a float; numpy integers accepted) within ``[low, high]``, or a
    one-line error."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise RLCourseError(f"{name} must be an integer, got {str(value)[:40]!r}")
    value = int(value)
    if low is not None and value < low:
        raise RLCourseError(f"{name} must be at least {low}, got {value}")
    if high is not None and value > high:
        raise RLCourseError(f"{name} must be at most {high:,}, got {str(value)[:40]}")
    return value


MAX_SEED = 2**32 - 1  # what numpy's and the environments' seeding accept
MAX_STEPS = 10**10


def check_bool(name: str, value: Any) -> bool:
    """A real bool: ``"no"`` or ``1`` are refused rather than read as true."""
    if not isinstance(value, bool):
        raise RLCourseError(f"{name} must be True or False, got {value!r}")
    return value


def check_float(name: str, value: Any, low: float | None = None, high: float | None = None) -> float:
    """``value`` as a finite float within ``[low, high]``, or a one-line error."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RLCourseError(f"{name} must be a finite number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"[{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"
        raise RLCourseError(f"{name} must lie in {span}, got {value:g}")
    return float(value)


def validate_common(cfg: TrainConfig) -> None:
    """The checks every backend shares: numbers, the environment spec, the run id, the output folder's kind."""
    if cfg.run_id is not None and not cfg.run_id:
        raise RLCourseError("run_id is empty; leave it out for the default name")
    cfg.resolved_run_id()
    if not isinstance(cfg.out_dir, (str, Path)) or not str(cfg.out_dir):
        raise RLCourseError(f"out_dir must be a folder path, got {cfg.out_dir!r}")
    if cfg.command is not None and not isinstance(cfg.command, str):
        raise RLCourseError(f"command must be text, got {cfg.command!r}")
    for name in ("her", "overwrite", "progress", "tensorboard", "diagnostics", "normalize_obs"):
        check_bool(name, getattr(cfg, name))
    check_int("seed", cfg.seed, 0, MAX_SEED)
    check_int("total_steps", cfg.total_steps, 1, MAX_STEPS)
    check_int("n_envs", cfg.n_envs, 1, 1024)
    check_int("checkpoint_every", cfg.checkpoint_every, 0, MAX_STEPS)
    check_int("curve_points", cfg.curve_points, 1, 100_000)
    check_int("eval_every", cfg.eval_every, 0, MAX_STEPS)
    check_int("curve_eval_episodes", cfg.curve_eval_episodes, 1, 100_000)
    check_int("final_eval_episodes", cfg.final_eval_episodes, 0, 100_000)
    check_int("eval_seed", cfg.eval_seed, 0, MAX_SEED - 100_000)
    check_int("torch_threads", cfg.torch_threads, 0, 1024)
    check_float("stop_at_success", cfg.stop_at_success, 0.0, 1.0)
    if cfg.stop_at_success and cfg.eval_every < 1:
        raise RLCourseError("stop_at_success needs in-training evaluations: set eval_every (steps between them)")
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise RLCourseError(f"device must be auto, cpu or cuda, got {cfg.device!r}")
    if cfg.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise RLCourseError("device cuda was asked for, but PyTorch sees no CUDA device here; use auto or cpu")
    if not isinstance(cfg.hyperparameters, dict) or not isinstance(cfg.her_kwargs, dict):
        raise RLCourseError("hyperparameters and her_kwargs must be dicts")
    unknown_her = set(cfg.her_kwargs) - {"n_sampled_goal", "goal_selection_strategy"}
    if unknown_her:
        raise RLCourseError(f"unknown HER option(s) {sorted(unknown_her)}; valid: n_sampled_goal, goal_selection_strategy")
    if "n_sampled_goal" in cfg.her_kwargs:
        check_int("n_sampled_goal", cfg.her_kwargs["n_sampled_goal"], 1)
    if cfg.her_kwargs.get("goal_selection_strategy", "future") not in ("future", "final", "episode"):
        raise RLCourseError(f"goal_selection_strategy must be future, final or episode, "
                            f"got {cfg.her_kwargs['goal_selection_strategy']!r}")
    if cfg.her_kwargs and not cfg.her:
        raise RLCourseError("HER options were given but her is off")
    spec = cfg.spec.validate()
    check_task_kwargs(spec.kwargs)


def check_task_kwargs(kwargs: dict[str, Any]) -> None:
    """The constructor arguments of a Fetch task that the environment would accept but misread: a reward type
    other than sparse/dense (anything else silently means dense), an episode length that is not a positive
    integer (-1 never ends an episode)."""
    if "reward_type" in kwargs and kwargs["reward_type"] not in ("sparse", "dense"):
        raise RLCourseError(f"reward_type must be 'sparse' or 'dense', got {kwargs['reward_type']!r}")
    if "max_episode_steps" in kwargs:
        check_int("max_episode_steps", kwargs["max_episode_steps"], 1, 100_000)
