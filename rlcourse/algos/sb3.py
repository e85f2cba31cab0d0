"""stable-baselines3 PPO, SAC and TD3 (SAC and TD3 optionally with ``HerReplayBuffer``) as backends of the run loop.

The backend builds the model with any SB3 constructor argument, lets ``model.learn`` do the algorithm's work, and
reports to the :class:`~rlcourse.contract.writer.RunWriter` from a callback after every vectorised step. The files it
checkpoints (model, replay buffer, observation normaliser) are SB3's own formats; stable-baselines3's zip and pickle
files can execute code when loaded, so every one is checked against its recorded SHA-256 first.
"""

from __future__ import annotations

import copy
import inspect
import math
from pathlib import Path
from typing import Any

import numpy as np

from rlcourse.core.errors import RLCourseError
from rlcourse.core.io import jsonable
from rlcourse.contract.config import TrainConfig
from rlcourse.contract.policies import NormalizedPolicy
from rlcourse.contract.runs import NORMALIZER_FILE, Run, env_spec_json
from rlcourse.contract.writer import RunWriter
from rlcourse.algos.base import register
from rlcourse.algos.diagnostics import DIAGNOSTIC_COLUMNS, replay_diagnostics, replay_ready

ZIP_FILE = "model.zip"  # the model in stable-baselines3's format (fastsac writes model.pt)
# Constructor arguments that the contract sets itself; users set them through TrainConfig fields instead.
_RESERVED = {"policy", "env", "seed", "device", "tensorboard_log", "verbose", "_init_setup_model", "stats_window_size"}
# Ranges of the numeric hyperparameters (inclusive unless noted); anything outside is refused before training.
_RANGES: dict[str, tuple[float, float]] = {
    "gamma": (0.0, 0.999999), "gae_lambda": (0.0, 1.0), "tau": (1e-12, 1.0), "clip_range": (1e-12, 1e6),
    "learning_rate": (1e-12, 10.0), "ent_coef": (0.0, 1e6), "vf_coef": (0.0, 1e6), "max_grad_norm": (1e-12, 1e12),
    "target_policy_noise": (0.0, 1e6), "target_noise_clip": (0.0, 1e6), "target_kl": (1e-12, 1e6),
    "ent_coef_max": (0.0, 1e6), "target_entropy": (-1e6, 1e6),
}


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
# Integer hyperparameters and their least value (gradient_steps may also be -1: as many as environment steps).
_INTS = {"batch_size": (1, 2**20), "n_steps": (2, 2**24), "n_epochs": (1, 10_000), "buffer_size": (1, 10**8),
         "policy_delay": (1, 10_000), "target_update_interval": (1, 10**9), "learning_starts": (0, 10**10),
         "gradient_steps": (1, 10_000), "train_freq": (1, 10**6), "sde_sample_freq": (-1, 10**6)}


def algo_class(algo: str) -> type:
    """The stable-baselines3 class for ``algo`` ("ppo", "sac", "td3")."""
    import stable_baselines3 as sb3

    classes = {"ppo": sb3.PPO, "sac": sb3.SAC, "td3": sb3.TD3}
    if algo not in classes:
        raise RLCourseError(f"unknown stable-baselines3 algorithm {algo!r}; choose one of {', '.join(classes)}")
    return classes[algo]


def hyperparameter_defaults(algo: str) -> dict[str, Any]:
    """SB3's constructor defaults for ``algo``, minus the arguments the contract sets itself."""
    sig = inspect.signature(algo_class(algo).__init__)
    return {name: p.default for name, p in sig.parameters.items()
            if name != "self" and name not in _RESERVED and p.kind is p.POSITIONAL_OR_KEYWORD
            and p.default is not inspect.Parameter.empty}


def check_hyperparameters(algo: str, hp: dict[str, Any]) -> None:
    """Reject unknown names, mistyped values and values outside their range, in one line."""
    defaults = hyperparameter_defaults(algo)
    for name, value in hp.items():
        if name not in defaults:
            raise RLCourseError(f"unknown hyperparameter {name!r} for {algo}; valid: {', '.join(sorted(defaults))}")
        default = defaults[name]
        if name in ("ent_coef", "target_entropy") and isinstance(value, str):
            auto = value == "auto" or (name == "ent_coef" and value.startswith("auto_") and _is_number(value[5:]))
            if not auto:
                extra = " or 'auto_<initial value>'" if name == "ent_coef" else ""
                raise RLCourseError(f"hyperparameter {name} is a number or 'auto'{extra}, got {value!r}")
            continue
        if name in ("ent_coef", "target_entropy") or (default is None and name in _RANGES and value is not None):
            default = 0.0  # a string or None by default ("auto", no limit); a number given instead is checked as one
        if name.endswith("_kwargs") and value is not None and not isinstance(value, dict):
            raise RLCourseError(f"hyperparameter {name} expects a dict, e.g. {name}=dict(net_arch=[64, 64]), got {value!r}")
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise RLCourseError(f"hyperparameter {name} expects true/false, got {value!r}")
        elif name in _INTS:
            low, high = _INTS[name]
            if isinstance(value, bool) or not isinstance(value, int):
                raise RLCourseError(f"hyperparameter {name} expects an integer, got {value!r}")
            if value < low and not (name == "gradient_steps" and value == -1):
                raise RLCourseError(f"hyperparameter {name} must be at least {low}, got {value}")
            if value > high:
                raise RLCourseError(f"hyperparameter {name} must be at most {high:,}, got {str(value)[:40]}")
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                if callable(value):
                    continue
                raise RLCourseError(f"hyperparameter {name} expects a number, got {value!r}")
            if not math.isfinite(value):
                raise RLCourseError(f"hyperparameter {name} must be finite, got {value!r}")
            lo, hi = _RANGES.get(name, (-math.inf, math.inf))
            if not lo <= value <= hi:
                hint = " (a discount factor lies in [0, 1))" if name == "gamma" else ""
                raise RLCourseError(f"hyperparameter {name}={value} is out of range [{lo:g}, {hi:g}]{hint}")


def _constructor_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    kwargs = dict(cfg.hyperparameters)
    if cfg.her:
        from stable_baselines3 import HerReplayBuffer

        kwargs["replay_buffer_class"] = HerReplayBuffer
        kwargs["replay_buffer_kwargs"] = {**(kwargs.get("replay_buffer_kwargs") or {}), **cfg.her_kwargs}
    return kwargs


def _device(cfg: TrainConfig) -> str:
    return "cpu" if cfg.device == "auto" and cfg.algo == "ppo" else cfg.device


def policy_of(model: Any) -> Any:
    """What to evaluate: the model itself, or the model behind its observation normaliser (frozen statistics)."""
    vec_norm = model.get_vec_normalize_env() if hasattr(model, "get_vec_normalize_env") else None
    return model if vec_norm is None else NormalizedPolicy(model, vec_norm.normalize_obs)


def _writer_to(save: Any) -> Any:
    """A file writer for :func:`rlcourse.core.io.atomic_write` from an SB3 ``save(file_object)`` method."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            save(fh)
    return write


def make_vec_env(cfg: TrainConfig, env_fns: list[Any] | None = None, normalizer: Path | None = None) -> Any:
    """``cfg.n_envs`` environments of ``cfg.spec`` in one process (``env_fns`` from the run writer, which share a
    curriculum state), with episode statistics; environment ``i`` is reset with ``cfg.seed + i``. With
    ``normalize_obs`` they are wrapped in SB3's ``VecNormalize`` (observations only), fresh or restored from
    ``normalizer`` (a file already verified against its SHA-256)."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor, VecNormalize

    from rlcourse.envs.spec import make

    spec = cfg.spec.validate()
    venv = VecMonitor(DummyVecEnv(env_fns or [lambda: make(spec) for _ in range(cfg.n_envs)]),
                      info_keywords=("is_success",))
    venv.seed(cfg.seed)
    if not cfg.normalize_obs:
        return venv
    if normalizer is not None:
        return VecNormalize.load(str(normalizer), venv)
    return VecNormalize(venv, norm_obs=True, norm_reward=False)


def build_model(cfg: TrainConfig, venv: Any, tensorboard_log: str | None = None, **overrides: Any) -> Any:
    """A fresh SB3 model for ``cfg`` on ``venv`` (a one-line error for arguments SB3 itself rejects)."""
    device = overrides.pop("device", _device(cfg))
    kwargs = {**_constructor_kwargs(cfg), **overrides}
    try:
        return algo_class(cfg.algo)("MultiInputPolicy", venv, seed=cfg.seed, device=device, verbose=0,
                                    tensorboard_log=tensorboard_log, **copy.deepcopy(kwargs))
    except (TypeError, ValueError, AssertionError, KeyError, AttributeError, RuntimeError, MemoryError) as exc:
        raise RLCourseError(f"cannot build {cfg.algo} with these hyperparameters: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:300]}") from None


class SB3Backend:
    """One stable-baselines3 algorithm as a backend."""

    def __init__(self, name: str):
        self.name = name
        self.off_policy = name in ("sac", "td3")

    def validate(self, cfg: TrainConfig) -> None:
        if cfg.her and not self.off_policy:
            raise RLCourseError(f"HER needs an off-policy algorithm (sac, td3 or fastsac), not {cfg.algo}")
        if cfg.diagnostics and not self.off_policy:
            raise RLCourseError(f"replay diagnostics need an off-policy algorithm (sac, td3 or fastsac), not {cfg.algo}")
        check_hyperparameters(self.name, cfg.hyperparameters)
        if cfg.her:
            self._check_her(cfg)

    def _check_her(self, cfg: TrainConfig) -> None:
        """HerReplayBuffer samples only from finished episodes and keeps whole episodes per environment: the first
        update needs one episode of every environment, and the buffer must hold one."""
        import gymnasium as gym

        if "replay_buffer_kwargs" in cfg.hyperparameters or "replay_buffer_class" in cfg.hyperparameters:
            raise RLCourseError("with HER, set the relabelling through her_kwargs (--her-goals, --her-strategy), not "
                                "replay_buffer_class/replay_buffer_kwargs")
        horizon = int(cfg.env_kwargs.get("max_episode_steps") or gym.spec(cfg.env_id).max_episode_steps or 1)
        episode = horizon * cfg.n_envs  # environment steps until every environment has finished an episode
        defaults = hyperparameter_defaults(self.name)
        for name in ("learning_starts", "buffer_size"):
            value = cfg.hyperparameters.get(name, defaults[name])
            if value < episode:
                raise RLCourseError(f"with HER, {name} must be at least one episode of every environment "
                                    f"({horizon} steps x {cfg.n_envs} environments = {episode}), got {value}")

    def hyperparameters(self, cfg: TrainConfig) -> dict[str, Any]:
        merged = {**hyperparameter_defaults(self.name), **_constructor_kwargs(cfg)}
        return {k: jsonable(v) for k, v in sorted(merged.items())}

    def policy_name(self, cfg: TrainConfig) -> str:
        return "MultiInputPolicy"

    def extra_columns(self, cfg: TrainConfig) -> list[str]:
        return DIAGNOSTIC_COLUMNS if cfg.diagnostics else []

    def train(self, cfg: TrainConfig, writer: RunWriter) -> Run:
        cls = algo_class(self.name)
        resume = writer.resume
        venv = make_vec_env(cfg, writer.env_fns(), resume.files.get(NORMALIZER_FILE) if resume else None)
        tb = None
        if cfg.tensorboard:
            from rlcourse.core.paths import scratch_dir

            tb = str(scratch_dir() / "tb")
        try:
            if resume:
                model = cls.load(resume.file(ZIP_FILE), env=venv, device=_device(cfg), tensorboard_log=tb)
                if "replay_buffer.pkl" in resume.files:
                    model.load_replay_buffer(resume.files["replay_buffer.pkl"])
            else:
                model = build_model(cfg, venv, tb)
            callback = _callback(cfg, writer)
            remaining = cfg.total_steps - model.num_timesteps
            if remaining > 0:
                model.learn(total_timesteps=remaining, callback=callback, reset_num_timesteps=resume is None,
                            tb_log_name=writer.run_id)
            files = {"model": (ZIP_FILE, _writer_to(model.save))}
            if cfg.normalize_obs:
                files["normalizer"] = (NORMALIZER_FILE, lambda tmp: venv.save(str(tmp)))
            return writer.finish(int(model.num_timesteps), files, policy_of(model), device=str(model.device))
        finally:
            venv.close()

    def load_model(self, run: Run, env: Any = None) -> Any:
        """The SB3 model of a finished run (SHA-256 verified first)."""
        path = run.verified("model")
        cls = algo_class(run.meta["algo"])
        if run.meta.get("her") and env is None:
            from stable_baselines3.common.vec_env import DummyVecEnv

            from rlcourse.envs.spec import EnvSpec, make

            spec = EnvSpec.from_json(env_spec_json(run.meta))
            env = DummyVecEnv([lambda: make(spec)])
        try:
            return cls.load(path, env=env, device="cpu" if run.meta["algo"] == "ppo" else "auto")
        except Exception as exc:  # a truncated or foreign zip surfaces as many exception types
            raise RLCourseError(f"cannot load checkpoint {path}: {type(exc).__name__}: {exc}") from None

    def load_policy(self, run: Run) -> Any:
        model = self.load_model(run)
        if not run.meta.get("normalizer"):
            return model
        from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

        from rlcourse.envs.spec import EnvSpec, make

        path = run.verified("normalizer")
        spec = EnvSpec.from_json(env_spec_json(run.meta))
        try:
            vec_norm = VecNormalize.load(str(path), DummyVecEnv([lambda: make(spec)]))
        except Exception as exc:
            raise RLCourseError(f"cannot load observation normaliser {path}: {type(exc).__name__}: {exc}") from None
        vec_norm.training = False
        return NormalizedPolicy(model, vec_norm.normalize_obs)


def _callback(cfg: TrainConfig, writer: RunWriter) -> Any:
    """The SB3 callback that reports to the writer after every vectorised step."""
    from stable_baselines3.common.callbacks import BaseCallback

    class WriterCallback(BaseCallback):
        def _on_step(self) -> bool:
            tick = writer.tick(int(self.num_timesteps), lambda: policy_of(self.model), self.stats)
            if tick.checkpoint:
                self.save_checkpoint()
            return not tick.stop  # False ends model.learn

        def stats(self) -> dict[str, Any]:
            eps, succ = list(self.model.ep_info_buffer), list(self.model.ep_success_buffer)
            values = {"ep_return_mean": float(np.mean([e["r"] for e in eps])) if eps else None,
                      "ep_length_mean": float(np.mean([e["l"] for e in eps])) if eps else None,
                      "success_rate": float(np.mean(succ)) if succ else None}
            if cfg.diagnostics:
                values.update(self.diagnostics())
            return values

        def diagnostics(self) -> dict[str, Any]:
            batch = int(getattr(self.model, "batch_size", 256))
            if self.model.num_timesteps <= getattr(self.model, "learning_starts", 0) or \
                    not replay_ready(self.model, batch):
                return {}
            diag = replay_diagnostics(self.model, batch_size=batch)
            for name, value in diag.items():
                if value is not None:
                    self.logger.record(f"replay/{name}", value)
            return diag

        def save_checkpoint(self) -> None:
            files = {ZIP_FILE: _writer_to(self.model.save)}
            if cfg.normalize_obs:
                files[NORMALIZER_FILE] = lambda tmp: self.model.get_vec_normalize_env().save(str(tmp))
            if cfg.algo in ("sac", "td3"):
                files["replay_buffer.pkl"] = _writer_to(self.model.save_replay_buffer)
            writer.save_checkpoint(int(self.num_timesteps), files, extra={})

    return WriterCallback()


for _name in ("ppo", "sac", "td3"):
    register(SB3Backend(_name))
