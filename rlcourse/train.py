"""The one training entry point: stable-baselines3 PPO, SAC or TD3 (optionally with HER) on a Fetch task.

:func:`train` turns a :class:`TrainConfig` into a complete run folder (see :mod:`rlcourse.runs`). Every
hyperparameter of the algorithm's constructor can be set; the effective values (ours and SB3's defaults) are all
recorded in ``meta.json``. Training writes periodic checkpoints into ``<run_id>.partial/resume/``; running the same
command again after a kill resumes from the last one. Bad input is rejected before any file is created.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import RLCourseError
from .runs import MODEL_FILE, NORMALIZER_FILE, Run, check_run_id, default_run_id, load_run, read_json, sha256, write_json

ALGOS = ("ppo", "sac", "td3")  # stable-baselines3
OWN_ALGOS = ("fastsac",)  # rlcourse.fastsac: SAC + HER written for speed on a CPU (chapter 4)
OFF_POLICY = ("sac", "td3", "fastsac")
# Constructor arguments that the contract sets itself; users set them through TrainConfig fields instead.
_RESERVED = {"policy", "env", "seed", "device", "tensorboard_log", "verbose", "_init_setup_model",
             "stats_window_size"}
CURVE_COLUMNS = ["timesteps", "wall_s", "ep_return_mean", "ep_length_mean", "success_rate", "fps",
                 "eval_success_rate", "eval_return_mean"]


def progress_enabled(requested: bool) -> bool:
    """Show a progress bar if asked for, unless ``RLCOURSE_PROGRESS=0`` (set by the book build and CI)."""
    import os

    return requested and os.environ.get("RLCOURSE_PROGRESS", "1") != "0"


def algo_class(algo: str) -> type:
    """The stable-baselines3 class for ``algo`` ("ppo", "sac", "td3")."""
    import stable_baselines3 as sb3

    if algo not in ALGOS:
        raise RLCourseError(f"unknown algorithm {algo!r}; choose one of {', '.join(ALGOS)}")
    return {"ppo": sb3.PPO, "sac": sb3.SAC, "td3": sb3.TD3}[algo]


def hyperparameter_defaults(algo: str) -> dict[str, Any]:
    """SB3's constructor defaults for ``algo``, minus the arguments the contract sets itself."""
    sig = inspect.signature(algo_class(algo).__init__)
    return {
        name: p.default
        for name, p in sig.parameters.items()
        if name != "self" and name not in _RESERVED and p.kind is p.POSITIONAL_OR_KEYWORD
        and p.default is not inspect.Parameter.empty
    }


def _jsonable(value: Any) -> Any:
    """Hyperparameter values as JSON: classes and callables by qualified name, tuples as lists."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, type) or callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
    return repr(value)


def check_hyperparameters(algo: str, hp: dict[str, Any]) -> None:
    """Reject unknown hyperparameter names and obviously mistyped values, in one line."""
    defaults = hyperparameter_defaults(algo)
    for name, value in hp.items():
        if name not in defaults:
            raise RLCourseError(
                f"unknown hyperparameter {name!r} for {algo}; valid: {', '.join(sorted(defaults))}"
            )
        d = defaults[name]
        numeric = isinstance(d, (int, float)) and not isinstance(d, bool)
        if numeric and not (isinstance(value, (int, float)) and not isinstance(value, bool)) and not callable(value):
            raise RLCourseError(f"hyperparameter {name} expects a number, got {value!r}")
        if isinstance(d, bool) and not isinstance(value, bool):
            raise RLCourseError(f"hyperparameter {name} expects true/false, got {value!r}")


@dataclass
class TrainConfig:
    """Everything that defines a training run. Defaults are stable-baselines3's, except where noted."""

    algo: str
    env_id: str
    seed: int = 0
    total_steps: int = 10_000
    n_envs: int = 1
    her: bool = False
    her_kwargs: dict[str, Any] = field(default_factory=dict)  # n_sampled_goal, goal_selection_strategy
    hyperparameters: dict[str, Any] = field(default_factory=dict)  # any SB3 constructor argument
    run_id: str | None = None  # default: {algo}[_her]_{EnvId}_seed{N}
    out_dir: str = "checkpoints"
    device: str = "auto"  # PPO with an MLP runs best on the CPU; "auto" means cpu for PPO, cuda if present otherwise
    checkpoint_every: int = 0  # steps between resume checkpoints; 0 = ten per run
    curve_points: int = 100  # rows in curve.json
    eval_every: int = 0  # steps between deterministic evaluations recorded in the curve; 0 = none
    eval_episodes: int = 10  # episodes per in-training evaluation
    stop_at_success: float = 0.0  # end early at the first in-training evaluation with at least this success; 0 = never
    final_eval_episodes: int = 100  # episodes in eval.json; 0 = do not evaluate
    eval_seed: int = 1000
    overwrite: bool = False
    progress: bool = False  # a progress bar (tqdm/rich); RLCOURSE_PROGRESS=0 turns every bar off (book builds)
    tensorboard: bool = True
    command: str | None = None
    diagnostics: bool = False  # off-policy only: replay/critic diagnostics in every curve row and in TensorBoard
    normalize_obs: bool = False  # running mean/std normalisation of every observation key (SB3 VecNormalize)
    torch_threads: int = 0  # PyTorch intra-op threads during training; 0 = leave PyTorch's setting alone

    def resolved_run_id(self) -> str:
        return check_run_id(self.run_id or default_run_id(self.algo, self.env_id, self.seed, self.her))

    def identity(self) -> str:
        """A hash of the fields that must not change when a run is resumed."""
        keys = ("algo", "env_id", "seed", "total_steps", "n_envs", "her", "her_kwargs", "hyperparameters")
        keys += ("diagnostics",) if self.diagnostics else ()  # the curve's columns depend on it
        keys += ("normalize_obs",) if self.normalize_obs else ()
        keys += ("stop_at_success", "eval_every", "eval_episodes", "eval_seed") if self.stop_at_success else ()
        blob = json.dumps({k: _jsonable(getattr(self, k)) for k in keys}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _portable_config(cfg: TrainConfig) -> dict[str, Any]:
    """The config as JSON, with ``out_dir`` relative to the project root when it lies inside it."""
    from .paths import project_root

    doc = _jsonable(asdict(cfg))
    try:
        doc["out_dir"] = str(Path(cfg.out_dir).resolve().relative_to(project_root()))
    except ValueError:
        pass
    return doc


def validate_config(cfg: TrainConfig) -> None:
    """All checks that need no training: algorithm, environment, numbers, hyperparameter names and types."""
    from .envs import check_env_id

    if cfg.algo not in ALGOS + OWN_ALGOS:
        raise RLCourseError(f"unknown algorithm {cfg.algo!r}; choose one of {', '.join(ALGOS + OWN_ALGOS)}")
    check_env_id(cfg.env_id)
    cfg.resolved_run_id()
    for name in ("total_steps", "n_envs"):
        if int(getattr(cfg, name)) < 1:
            raise RLCourseError(f"{name} must be a positive integer, got {getattr(cfg, name)!r}")
    if not 0.0 <= float(cfg.stop_at_success) <= 1.0:
        raise RLCourseError(f"stop_at_success is a success rate in [0, 1] (0 = never stop early), got {cfg.stop_at_success!r}")
    if cfg.stop_at_success and cfg.eval_every < 1:
        raise RLCourseError("stop_at_success needs in-training evaluations: set eval_every (steps between them)")
    if int(cfg.torch_threads) < 0:
        raise RLCourseError(f"torch_threads must be 0 (PyTorch's default) or positive, got {cfg.torch_threads!r}")
    if cfg.her and cfg.algo not in OFF_POLICY:
        raise RLCourseError(f"HER needs an off-policy algorithm (sac or td3), not {cfg.algo}")
    if cfg.diagnostics and cfg.algo not in OFF_POLICY:
        raise RLCourseError(f"replay diagnostics need an off-policy algorithm (sac or td3), not {cfg.algo}")
    unknown_her = set(cfg.her_kwargs) - {"n_sampled_goal", "goal_selection_strategy", "copy_info_dict"}
    if unknown_her:
        raise RLCourseError(f"unknown HER option(s) {sorted(unknown_her)}; valid: n_sampled_goal, goal_selection_strategy")
    if cfg.algo == "fastsac":
        from .fastsac import config_from

        config_from(cfg.hyperparameters)
        if cfg.normalize_obs:
            raise RLCourseError("fastsac always normalises its inputs; leave normalize_obs off")
        return
    check_hyperparameters(cfg.algo, cfg.hyperparameters)


def _device(cfg: TrainConfig) -> str:
    return "cpu" if cfg.device == "auto" and cfg.algo == "ppo" else cfg.device


def _make_vec_env(cfg: TrainConfig, normalizer: Path | None = None):
    """``cfg.n_envs`` copies of the environment in one process; with ``cfg.normalize_obs`` wrapped in SB3's
    ``VecNormalize`` (observations only, rewards untouched), fresh or restored from ``normalizer``."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from .envs import make_env

    venv = make_vec_env(lambda: make_env(cfg.env_id), n_envs=cfg.n_envs, seed=cfg.seed, vec_env_cls=DummyVecEnv)
    if not cfg.normalize_obs:
        return venv
    if normalizer is not None:
        return VecNormalize.load(str(normalizer), venv)
    return VecNormalize(venv, norm_obs=True, norm_reward=False)


def policy_of(model: Any) -> Any:
    """What to evaluate: the model itself, or the model behind its observation normaliser (frozen statistics)."""
    from .evaluate import NormalizedPolicy

    vec_norm = model.get_vec_normalize_env() if hasattr(model, "get_vec_normalize_env") else None
    return model if vec_norm is None else NormalizedPolicy(model, vec_norm.normalize_obs)


def _constructor_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    kwargs = dict(cfg.hyperparameters)
    if cfg.her:
        from stable_baselines3 import HerReplayBuffer

        kwargs["replay_buffer_class"] = HerReplayBuffer
        kwargs["replay_buffer_kwargs"] = {**(kwargs.get("replay_buffer_kwargs") or {}), **cfg.her_kwargs}
    return kwargs


def curve_columns(cfg: TrainConfig) -> list[str]:
    """The columns of a run's curve.json: CURVE_COLUMNS, plus the replay diagnostics when they are switched on."""
    from .diagnostics import DIAGNOSTIC_COLUMNS

    return CURVE_COLUMNS + (DIAGNOSTIC_COLUMNS if cfg.diagnostics else [])


def _diagnostic_values(cfg: TrainConfig, model: Any, logger: Any) -> list[Any]:
    """The diagnostic columns of one curve row (None until learning has started), also logged as replay/<name>."""
    from .diagnostics import DIAGNOSTIC_COLUMNS, replay_diagnostics, replay_ready

    batch = int(getattr(model, "batch_size", 256))
    if model.num_timesteps <= getattr(model, "learning_starts", 0) or not replay_ready(model, batch):
        return [None] * len(DIAGNOSTIC_COLUMNS)
    diag = replay_diagnostics(model, batch_size=batch)
    for name, value in diag.items():
        if value is not None:
            logger.record(f"replay/{name}", value)
    return [diag[c] for c in DIAGNOSTIC_COLUMNS]


def effective_hyperparameters(cfg: TrainConfig) -> dict[str, Any]:
    """SB3 defaults (or fastsac's) overlaid with the run's settings: every hyperparameter, JSON-ready."""
    if cfg.algo == "fastsac":
        from .fastsac import config_from

        return {k: _jsonable(v) for k, v in sorted(asdict(config_from(cfg.hyperparameters)).items())}
    merged = {**hyperparameter_defaults(cfg.algo), **_constructor_kwargs(cfg)}
    return {k: _jsonable(v) for k, v in sorted(merged.items())}


class _ContractCallback:
    """Records the learning curve and writes resume checkpoints. Built lazily to keep SB3 imports local."""

    @staticmethod
    def make(cfg: TrainConfig, partial: Path, state: dict[str, Any], rows: list[list[Any]]):
        from stable_baselines3.common.callbacks import BaseCallback

        from .evaluate import evaluate, summarize

        total = cfg.total_steps
        record_every = max(total // max(cfg.curve_points, 1), cfg.n_envs)
        ckpt_every = cfg.checkpoint_every or max(total // 10, cfg.n_envs)

        class ContractCallback(BaseCallback):
            def _on_training_start(self) -> None:
                self.t0 = time.perf_counter()
                self.wall0 = state["wall_clock_s"]
                self.steps0 = self.num_timesteps
                self.next_row = (self.num_timesteps // record_every + 1) * record_every
                self.rows_at_total = 0
                self.next_ckpt = (self.num_timesteps // ckpt_every + 1) * ckpt_every
                self.next_eval = (self.num_timesteps // cfg.eval_every + 1) * cfg.eval_every if cfg.eval_every else None

            def wall(self) -> float:
                return self.wall0 + time.perf_counter() - self.t0

            def _on_step(self) -> bool:
                n = self.num_timesteps
                stop = evaluated = False
                if self.next_eval is not None and n >= self.next_eval:
                    evaluated = True
                    agg = summarize(evaluate(policy_of(self.model), cfg.env_id, cfg.eval_episodes, cfg.eval_seed))
                    self.pending_eval = (agg["success_rate"], agg["return_mean"])
                    self.logger.record("eval/success_rate", agg["success_rate"])
                    self.logger.record("eval/return_mean", agg["return_mean"])
                    while self.next_eval <= n:
                        self.next_eval += cfg.eval_every
                    stop = bool(cfg.stop_at_success) and agg["success_rate"] >= cfg.stop_at_success
                if evaluated or n >= self.next_row or (n >= total and self.rows_at_total == 0):
                    # a row every record_every steps and at every evaluation, plus one when the requested total is
                    # reached (PPO may overshoot it to finish a rollout; the rows then continue at the same spacing)
                    self.add_row()
                    self.rows_at_total += n >= total
                    while self.next_row <= n:
                        self.next_row += record_every
                if n >= self.next_ckpt and n < total and not stop:
                    self.save_resume()
                    self.next_ckpt += ckpt_every
                return not stop  # False ends model.learn

            def add_row(self) -> None:
                import numpy as np

                eps = list(self.model.ep_info_buffer)
                succ = list(self.model.ep_success_buffer)
                wall = self.wall()
                ev = getattr(self, "pending_eval", (None, None))
                self.pending_eval = (None, None)
                fps = (self.num_timesteps - self.steps0) / max(wall - self.wall0, 1e-9)
                rows.append([
                    int(self.num_timesteps),
                    round(wall, 3),
                    float(np.mean([e["r"] for e in eps])) if eps else None,
                    float(np.mean([e["l"] for e in eps])) if eps else None,
                    float(np.mean(succ)) if succ else None,
                    round(fps, 2),
                    ev[0],
                    ev[1],
                    *(_diagnostic_values(cfg, self.model, self.logger) if cfg.diagnostics else []),
                ])

            def save_resume(self) -> None:
                resume = partial / "resume"
                resume.mkdir(parents=True, exist_ok=True)
                tmp = resume / "model.tmp.zip"
                self.model.save(tmp)
                tmp.replace(resume / MODEL_FILE)
                if cfg.normalize_obs:
                    tmpn = resume / "obs_normalizer.tmp.pkl"
                    self.model.get_vec_normalize_env().save(str(tmpn))
                    tmpn.replace(resume / NORMALIZER_FILE)
                if cfg.algo in OFF_POLICY:
                    tmpb = resume / "replay_buffer.tmp.pkl"
                    self.model.save_replay_buffer(tmpb)
                    tmpb.replace(resume / "replay_buffer.pkl")
                write_json(resume / "state.json", {
                    "identity": cfg.identity(), "steps_done": int(self.num_timesteps), "wall_clock_s": self.wall(),
                    "rows": rows, "resumed": state["resumed"],
                })

        return ContractCallback()


def build_meta(
    cfg: TrainConfig,
    run_id: str,
    steps_done: int,
    wall: float,
    device: str,
    resumed: int = 0,
    model_path: Path | None = None,
    normalizer_path: Path | None = None,
) -> dict[str, Any]:
    """The meta.json document (schema ``meta``): what was run, how, with what, on what, how fast."""
    from .provenance import command_line, git_info, hardware, utc_now, versions

    return {
        "schema": "rlcourse.meta/1",
        "run_id": run_id,
        "algo": cfg.algo,
        "env_id": cfg.env_id,
        "seed": cfg.seed,
        "total_steps": cfg.total_steps,
        "steps_done": steps_done,
        "n_envs": cfg.n_envs,
        "her": cfg.her,
        "her_kwargs": cfg.her_kwargs or None,
        "hyperparameters": effective_hyperparameters(cfg) if cfg.algo in ALGOS + OWN_ALGOS else {},
        "policy": {"fastsac": "rlcourse.fastsac.Agent"}.get(cfg.algo, "MultiInputPolicy" if cfg.algo in ALGOS else cfg.algo),
        "device": device,
        "versions": versions(),
        "git": git_info(),
        "hardware": hardware(),
        "wall_clock_s": round(wall, 3),
        "steps_per_s": round(steps_done / wall, 2) if wall > 0 and steps_done > 0 else None,
        "command": cfg.command or command_line(),
        "created_utc": utc_now(),
        "resumed": resumed,
        "config": _portable_config(cfg),
        "model": _file_entry(model_path),
        "normalizer": _file_entry(normalizer_path),
    }


def _file_entry(path: Path | None) -> dict[str, Any] | None:
    return None if path is None else {"file": path.name, "sha256": sha256(path), "bytes": path.stat().st_size}


def random_run(
    env_id: str,
    n_episodes: int = 100,
    seed: int = 0,
    out_dir: str | Path = "checkpoints",
    run_id: str | None = None,
    overwrite: bool = False,
    progress: bool = False,
    eval_seed: int | None = None,
    command: str | None = None,
) -> Run:
    """The uniform-random baseline as a run folder (meta.json with ``algo: random`` and no model, plus eval.json),
    so that it is read, compared and plotted exactly like a trained policy.

    It is evaluated on the same episode seeds as every trained policy (``eval_seed``, default 1000, onwards); the
    random actions of episode ``i`` are seeded with that episode's seed, so ``seed`` only names the run.
    """
    from .envs import check_env_id
    from .evaluate import DEFAULT_EVAL_SEED, eval_report, evaluate

    check_env_id(env_id)
    eval_seed = DEFAULT_EVAL_SEED if eval_seed is None else eval_seed
    cfg = TrainConfig(algo="random", env_id=env_id, seed=seed, total_steps=0, out_dir=str(out_dir),
                      run_id=run_id or f"random_{env_id}_seed{seed}", final_eval_episodes=n_episodes,
                      eval_seed=eval_seed, overwrite=overwrite, command=command)
    rid = cfg.resolved_run_id()
    final = Path(out_dir) / rid
    if final.exists() and not overwrite:
        raise RLCourseError(f"run {final} already exists; pass --overwrite (overwrite=True) or choose another run id")
    if n_episodes < 1:
        raise RLCourseError(f"n_episodes must be at least 1, got {n_episodes}")
    t0 = time.perf_counter()
    episodes = evaluate("random", env_id, n_episodes, seed=eval_seed, progress=progress)
    wall = time.perf_counter() - t0
    partial = Path(out_dir) / f"{rid}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    write_json(partial / "eval.json", eval_report(rid, env_id, episodes, "random", deterministic=False), "eval")
    write_json(partial / "meta.json", build_meta(cfg, rid, 0, wall, device="cpu"), "meta")
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    return load_run(final)


def load_model(run: Run, env: Any = None):
    """Load a run's model (checksum already verified by :func:`rlcourse.runs.load_run`): an SB3 model, or a
    :class:`rlcourse.fastsac.Agent` for fastsac runs."""
    if run.meta["algo"] == "fastsac":
        from .fastsac import load_agent

        return load_agent(run.model_path)
    cls = algo_class(run.meta["algo"])
    if run.meta.get("her") and env is None:
        cfg = TrainConfig(algo=run.meta["algo"], env_id=run.meta["env_id"], n_envs=1, seed=run.meta["seed"])
        env = _make_vec_env(cfg)
    try:
        return cls.load(run.model_path, env=env, device="cpu" if run.meta["algo"] == "ppo" else "auto")
    except Exception as exc:  # a truncated or foreign zip surfaces as many exception types
        raise RLCourseError(f"cannot load checkpoint {run.model_path}: {type(exc).__name__}: {exc}") from None


def load_policy(run: Run) -> Any:
    """A run's policy ready for :func:`rlcourse.evaluate.evaluate`: the SB3 model, behind its frozen observation
    normaliser when the run was trained with ``normalize_obs``."""
    from .evaluate import NormalizedPolicy

    model = load_model(run)
    if not run.meta.get("normalizer"):
        return model
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from .envs import make_env

    path = run.path / run.meta["normalizer"]["file"]
    try:
        vec_norm = VecNormalize.load(str(path), DummyVecEnv([lambda: make_env(run.meta["env_id"])]))
    except Exception as exc:
        raise RLCourseError(f"cannot load observation normaliser {path}: {type(exc).__name__}: {exc}") from None
    vec_norm.training = False
    return NormalizedPolicy(model, vec_norm.normalize_obs)


def train(cfg: TrainConfig) -> Run:
    """Train (or resume) a run and return the complete run folder. See the module docstring."""
    validate_config(cfg)
    if cfg.algo == "fastsac":
        from .fastsac import train_run as run_training
    else:
        run_training = _train
    if not cfg.torch_threads:
        return run_training(cfg)
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(int(cfg.torch_threads))
    try:
        return run_training(cfg)
    finally:
        torch.set_num_threads(previous)


def _train(cfg: TrainConfig) -> Run:
    from .evaluate import eval_report, evaluate

    run_id = cfg.resolved_run_id()
    root = Path(cfg.out_dir)
    final, partial = root / run_id, root / f"{run_id}.partial"
    if final.exists() and not cfg.overwrite:
        raise RLCourseError(f"run {final} already exists; pass --overwrite (overwrite=True) or choose another --run-id")

    cls = algo_class(cfg.algo)
    resume_state = partial / "resume" / "state.json"
    saved_normalizer = partial / "resume" / NORMALIZER_FILE
    venv = _make_vec_env(cfg, saved_normalizer if resume_state.is_file() and saved_normalizer.is_file() else None)
    state: dict[str, Any] = {"wall_clock_s": 0.0, "resumed": 0}
    rows: list[list[Any]] = []
    resumed = False
    tb = None
    if cfg.tensorboard:
        from .paths import scratch_dir

        tb = str(scratch_dir() / "tb")
    if resume_state.is_file() and (partial / "resume" / MODEL_FILE).is_file():
        saved = read_json(resume_state)
        if saved.get("identity") != cfg.identity():
            venv.close()
            raise RLCourseError(
                f"{partial} holds an interrupted run with different settings; delete it or use another --run-id"
            )
        model = cls.load(partial / "resume" / MODEL_FILE, env=venv, device=_device(cfg), tensorboard_log=tb)
        if cfg.algo in OFF_POLICY and (partial / "resume" / "replay_buffer.pkl").is_file():
            model.load_replay_buffer(partial / "resume" / "replay_buffer.pkl")
        rows = saved["rows"]
        state = {"wall_clock_s": float(saved["wall_clock_s"]), "resumed": int(saved["resumed"]) + 1}
        resumed = True
    else:
        try:
            model = cls("MultiInputPolicy", venv, seed=cfg.seed, device=_device(cfg), verbose=0,
                        tensorboard_log=tb, **_constructor_kwargs(cfg))
        except (TypeError, ValueError, AssertionError, KeyError) as exc:
            venv.close()
            raise RLCourseError(f"cannot build {cfg.algo} with these hyperparameters: {exc}") from None
        if partial.exists():
            shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)

    callback = _ContractCallback.make(cfg, partial, state, rows)
    remaining = cfg.total_steps - model.num_timesteps
    t0 = time.perf_counter()
    if remaining > 0:
        model.learn(total_timesteps=remaining, callback=callback, reset_num_timesteps=not resumed,
                    progress_bar=progress_enabled(cfg.progress), tb_log_name=run_id)
    wall = state["wall_clock_s"] + (time.perf_counter() - t0)
    steps_done = int(model.num_timesteps)

    model_tmp = partial / "model.tmp.zip"
    model.save(model_tmp)
    model_tmp.replace(partial / MODEL_FILE)
    normalizer = None
    if cfg.normalize_obs:
        normalizer = partial / NORMALIZER_FILE
        venv.save(str(normalizer))
    write_json(partial / "curve.json", {"schema": "rlcourse.curve/1", "run_id": run_id,
                                        "columns": curve_columns(cfg), "rows": rows}, "curve")
    meta = build_meta(cfg, run_id, steps_done, wall, device=str(model.device), resumed=state["resumed"],
                      model_path=partial / MODEL_FILE, normalizer_path=normalizer)
    write_json(partial / "meta.json", meta, "meta")
    if cfg.final_eval_episodes > 0:
        episodes = evaluate(policy_of(model), cfg.env_id, cfg.final_eval_episodes, cfg.eval_seed,
                            progress=progress_enabled(cfg.progress))
        doc = eval_report(run_id, cfg.env_id, episodes, policy=cfg.algo, deterministic=True,
                          checkpoint={"path": f"{run_id}/{MODEL_FILE}", "sha256": meta["model"]["sha256"]})
        write_json(partial / "eval.json", doc, "eval")
    venv.close()
    shutil.rmtree(partial / "resume", ignore_errors=True)
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    return load_run(final)


def _train_in_worker(cfg: TrainConfig, parent_pid: int, report: Any) -> None:
    """A spawned worker of :func:`train_many`: train one run, send back a one-line error if it fails, and end
    early (the run resumes next time) if the process that started it disappears."""
    import os
    import threading

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
    try:
        train(cfg)
    except BaseException as exc:
        if not isinstance(exc, (RLCourseError, KeyboardInterrupt)):
            import traceback

            traceback.print_exc()  # an unexpected error: the whole story goes to the worker's stderr
        report.send(f"{type(exc).__name__}: {exc}")
        raise SystemExit(1) from None
    finally:
        report.close()


def train_many(configs: list[TrainConfig], jobs: int = 1, skip_existing: bool = True) -> list[Run]:
    """Train several runs, ``jobs`` at a time in separate processes (each run keeps its own ``torch_threads``).

    Every config is validated before anything starts. With ``skip_existing`` a run whose folder is already complete
    is loaded instead of retrained; an interrupted one resumes. Returns the runs in the order of ``configs``.
    The workers are started with "spawn", which re-imports the calling script: in a script, call this under
    ``if __name__ == "__main__":`` (notebooks need nothing). An interrupt or a failed run stops every worker, and
    workers exit on their own if this process is killed; the unfinished runs resume when called again."""
    ids = [cfg.resolved_run_id() for cfg in configs]
    if len(set(ids)) != len(ids):
        raise RLCourseError(f"train_many got the same run id twice: {sorted(i for i in ids if ids.count(i) > 1)}")
    for cfg in configs:
        validate_config(cfg)
    todo = [c for c, i in zip(configs, ids) if not (skip_existing and (Path(c.out_dir) / i / "meta.json").is_file())]
    if jobs < 1:
        raise RLCourseError(f"jobs must be at least 1, got {jobs}")
    if todo and (jobs == 1 or len(todo) == 1):
        for cfg in todo:
            train(cfg)
    elif todo:
        _run_workers(todo, jobs)
    return [load_run(Path(c.out_dir) / i) for c, i in zip(configs, ids)]


def _run_workers(todo: list[TrainConfig], jobs: int) -> None:
    """Train ``todo`` in spawned processes, ``jobs`` at a time. Whatever ends this early (a failed run, Ctrl-C, a
    notebook's stop button) terminates the workers still running before it propagates."""
    import os
    from multiprocessing import get_context
    from multiprocessing.connection import wait

    ctx = get_context("spawn")
    pending, running = list(todo), {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                cfg = pending.pop(0)
                reader, writer = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_train_in_worker, args=(cfg, os.getpid(), writer),
                                   name=f"train {cfg.resolved_run_id()}")
                proc.start()
                writer.close()  # the worker holds the only writing end
                running[proc] = (cfg, reader)
            wait([proc.sentinel for proc in running], timeout=1.0)
            for proc in [p for p in running if p.exitcode is not None]:
                cfg, reader = running.pop(proc)
                message = None
                if proc.exitcode != 0 and reader.poll():
                    try:
                        message = reader.recv()
                    except EOFError:
                        pass
                reader.close()
                if proc.exitcode != 0:
                    raise RLCourseError(f"run {cfg.resolved_run_id()} failed: "
                                        f"{message or f'its worker exited with code {proc.exitcode}'}")
    finally:
        for proc in running:
            proc.terminate()
        for proc in running:
            proc.join()
