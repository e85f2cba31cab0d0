"""How fast does off-policy training run here, and how does that change with the number of environments?

:func:`measure_throughput` builds the environments and the model the way the training contract does, trains
``warmup_steps`` (past ``learning_starts``, so gradient updates are already running), and then times ``steps``
more environment steps. It also counts the gradient steps taken in that window: with stable-baselines3's
``train_freq=1`` and ``gradient_steps=1``, one *vector* step of ``n_envs`` environments is followed by one gradient
step, so ``n_envs`` environments collect ``n_envs`` transitions per gradient step. More environments therefore
buy environment steps per second partly by doing fewer updates per transition (a lower update-to-data ratio).

The result is one JSON document (schema ``throughput``) with the machine's provenance.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlcourse.core.errors import RLCourseError

SUPPORTED = ("sac", "td3")


def default_path(profile: str, algo: str = "sac", env_id: str = "FetchReachDense-v4") -> Path:
    """``checkpoints/throughput/<algo>_<env>.json`` for the full profile, ``runs/<profile>/throughput/...`` else."""
    from rlcourse.core.paths import runs_dir

    return runs_dir(profile) / "throughput" / f"{algo}_{env_id}.json"


def _measure_one(algo: str, env_id: str, n_envs: int, steps: int, warmup_steps: int, hp: dict[str, Any],
                 seed: int, device: str) -> dict[str, Any]:
    from rlcourse.algos.sb3 import build_model, make_vec_env
    from rlcourse.contract.config import TrainConfig

    cfg = TrainConfig(algo=algo, env_id=env_id, seed=seed, n_envs=n_envs, hyperparameters=hp, device=device)
    venv = make_vec_env(cfg)
    try:
        model = build_model(cfg, venv)
        if warmup_steps:
            model.learn(total_timesteps=warmup_steps)
        n0, u0 = model.num_timesteps, model._n_updates
        t0 = time.perf_counter()
        model.learn(total_timesteps=steps, reset_num_timesteps=not warmup_steps)
        wall = time.perf_counter() - t0
        n, u = model.num_timesteps - n0, model._n_updates - u0
    finally:
        venv.close()
    return {"n_envs": n_envs, "steps": int(n), "wall_s": round(wall, 4), "steps_per_s": round(n / wall, 2),
            "gradient_steps": int(u), "gradient_steps_per_s": round(u / wall, 2),
            "transitions_per_gradient_step": round(n / u, 3) if u else None}


def measure_throughput(algo: str = "sac", env_id: str = "FetchReachDense-v4",
                       n_envs_list: Sequence[int] = (1, 2, 4, 8), steps: int = 2000, warmup_steps: int = 500,
                       hyperparameters: dict[str, Any] | None = None, seed: int = 0, device: str = "cpu",
                       torch_threads: int | None = None, out: Path | str | None = None,
                       command: str | None = None) -> dict[str, Any]:
    """Steady-state environment steps/s of SB3 ``algo`` for each ``n_envs`` (one after another, never in parallel).

    ``hyperparameters`` are SB3 constructor arguments (default: ``learning_starts=100``); ``warmup_steps`` must
    exceed ``learning_starts`` so that the timed window includes gradient updates. ``torch_threads`` sets
    PyTorch's intra-op threads for the measurement (restored afterwards). With ``out`` the document is written
    there (validated against the ``throughput`` schema)."""
    import torch

    from rlcourse.core.provenance import command_line, git_info, hardware, utc_now, versions
    from rlcourse.contract.runs import validate, write_json
    from rlcourse.algos.sb3 import SB3Backend, check_hyperparameters
    from rlcourse.contract.config import TrainConfig
    from rlcourse.core.threads import torch_threads as threads_set_to

    if algo not in SUPPORTED:
        raise RLCourseError(f"throughput is measured for off-policy algorithms ({', '.join(SUPPORTED)}), not {algo!r}")
    hp = {"learning_starts": 100, **(hyperparameters or {})}
    check_hyperparameters(algo, hp)
    if steps < 1 or not n_envs_list or any(int(n) < 1 for n in n_envs_list):
        raise RLCourseError("steps and every n_envs must be positive integers, and n_envs_list must not be empty")
    if warmup_steps <= int(hp["learning_starts"]):
        raise RLCourseError(f"warmup_steps ({warmup_steps}) must exceed learning_starts ({hp['learning_starts']}) "
                            "so that the timed window measures training, not random data collection")
    with threads_set_to(int(torch_threads or 0)):
        results = [_measure_one(algo, env_id, int(n), steps, warmup_steps, hp, seed, device) for n in n_envs_list]
        threads = torch.get_num_threads()
    doc = {
        "schema": "rlcourse.throughput/1",
        "algo": algo,
        "env_id": env_id,
        "seed": seed,
        "steps": steps,
        "warmup_steps": warmup_steps,
        "hyperparameters": SB3Backend(algo).hyperparameters(TrainConfig(algo=algo, env_id=env_id, hyperparameters=hp)),
        "device": device,
        "torch_threads": threads,
        "versions": versions(),
        "git": git_info(),
        "hardware": {**hardware(), "torch_threads": threads},
        "command": command or command_line(),
        "created_utc": utc_now(),
        "results": results,
    }
    if out is not None:
        write_json(out, doc, "throughput")
    else:
        validate(doc, "throughput")
    return doc


def load_throughput(path: Path | str) -> dict[str, Any]:
    """Read a throughput document back, validated against the schema."""
    from rlcourse.contract.runs import read_json

    return read_json(path, "throughput")


def measure_costs(cfg: Any, fill_steps: int = 5000, repeats: int = 100) -> dict[str, float]:
    """Where the time of one off-policy training step goes, for a :class:`~rlcourse.training.train.TrainConfig`.

    Builds the environments and model exactly as :func:`rlcourse.training.train.train` would (HER, normalisation), collects
    ``fill_steps`` transitions with random actions (timed: simulator + buffer insertion per environment step), then
    times ``repeats`` replay samples and ``repeats`` gradient steps at the config's batch size (a gradient step
    includes drawing its batch, as in SB3's ``train``). Works for SB3 SAC/TD3 and :mod:`rlcourse.algos.fastsac`. The predicted
    steps/s combine them with the config's update-to-data ratio (gradient steps per environment step); it ignores
    the policy's forward pass when acting, so real training is a little slower."""

    from rlcourse.algos.sb3 import build_model, make_vec_env
    from rlcourse.core.threads import torch_threads
    from rlcourse.training.train import validate_config

    validate_config(cfg, preflight=False)
    if cfg.algo not in SUPPORTED + ("fastsac",):
        raise RLCourseError(f"costs are measured for off-policy algorithms ({', '.join(SUPPORTED)}, fastsac), "
                            f"not {cfg.algo!r}")
    with torch_threads(cfg.torch_threads):
        if cfg.algo == "fastsac":
            return _fastsac_costs(cfg, fill_steps, repeats)
        venv = make_vec_env(cfg)
        try:
            # collection only while filling: no gradient step before fill_steps
            model = build_model(cfg, venv, learning_starts=fill_steps + cfg.n_envs, device="cpu")
            t0 = time.perf_counter()
            model.learn(total_timesteps=fill_steps)
            env_step = (time.perf_counter() - t0) / model.num_timesteps
            batch = int(model.batch_size)
            vec_norm = model.get_vec_normalize_env()
            t0 = time.perf_counter()
            for _ in range(repeats):
                model.replay_buffer.sample(batch, env=vec_norm)
            sample = (time.perf_counter() - t0) / repeats
            model.train(gradient_steps=5, batch_size=batch)  # warm-up
            t0 = time.perf_counter()
            model.train(gradient_steps=repeats, batch_size=batch)
            grad = (time.perf_counter() - t0) / repeats
            train_freq = model.train_freq.frequency  # in vector steps
            utd = (model.gradient_steps if model.gradient_steps > 0 else train_freq * cfg.n_envs) / (train_freq * cfg.n_envs)
        finally:
            venv.close()
    return {"env_step_ms": 1000 * env_step, "sample_ms": 1000 * sample, "gradient_step_ms": 1000 * grad,
            "sample_share_of_gradient_step": sample / grad, "updates_per_env_step": utd,
            "predicted_steps_per_s": 1.0 / (env_step + utd * grad)}


def _fastsac_costs(cfg: Any, fill_steps: int, repeats: int) -> dict[str, float]:
    """:func:`measure_costs` for :mod:`rlcourse.algos.fastsac`: the same three timings on its own buffer and agent."""
    import numpy as np

    from rlcourse.envs.fetch import make_env
    from rlcourse.algos.fastsac import Agent, EpisodeBuffer, config_from

    hp = config_from(cfg.hyperparameters)
    envs = [make_env(cfg.env_id) for _ in range(cfg.n_envs)]
    try:
        T = envs[0].spec.max_episode_steps
        space = envs[0].observation_space
        dims = (space["observation"].shape[0], space["desired_goal"].shape[0], envs[0].action_space.shape[0])
        k = int(cfg.her_kwargs.get("n_sampled_goal", 4)) if cfg.her else 0
        agent, buffer = Agent(*dims, hp), EpisodeBuffer(fill_steps // T + cfg.n_envs + 1, T, *dims, k=k)
        rng = np.random.default_rng(cfg.seed)
        eps = [{"obs": [], "ag": [], "act": []} for _ in envs]
        obs = [e.reset(seed=cfg.seed + i)[0] for i, e in enumerate(envs)]
        for i, o in enumerate(obs):
            eps[i] = {"obs": [o["observation"]], "ag": [o["achieved_goal"]], "goal": o["desired_goal"], "act": []}
        steps = 0
        t0 = time.perf_counter()
        while steps < fill_steps:
            for i, e in enumerate(envs):
                a = e.action_space.sample()
                o, _, terminated, truncated, _ = e.step(a)
                ep = eps[i]
                ep["act"].append(a)
                ep["obs"].append(o["observation"])
                ep["ag"].append(o["achieved_goal"])
                if terminated or truncated:
                    buffer.add(np.array(ep["obs"]), np.array(ep["ag"]), ep["goal"], np.array(ep["act"]))
                    agent.obs_norm.update(np.array(ep["obs"]))
                    agent.goal_norm.update(np.array(ep["ag"]))
                    o, _ = e.reset()
                    eps[i] = {"obs": [o["observation"]], "ag": [o["achieved_goal"]], "goal": o["desired_goal"], "act": []}
            steps += cfg.n_envs
        env_step = (time.perf_counter() - t0) / steps
        if buffer.size == 0:
            raise RLCourseError(f"fill_steps={fill_steps} completes no episode with {cfg.n_envs} environments")
        reward = envs[0].unwrapped.compute_reward
        t0 = time.perf_counter()
        batches = [buffer.sample(hp.batch_size, rng, reward) for _ in range(repeats)]
        sample = (time.perf_counter() - t0) / repeats
        for b in batches[:5]:
            agent.update(b)  # warm-up
        t0 = time.perf_counter()
        for b in batches:
            agent.update(b)
        grad = (time.perf_counter() - t0) / repeats
    finally:
        for e in envs:
            e.close()
    grad += sample  # like SB3's train(), a gradient step includes drawing its batch
    utd = hp.updates_per_step
    return {"env_step_ms": 1000 * env_step, "sample_ms": 1000 * sample, "gradient_step_ms": 1000 * grad,
            "sample_share_of_gradient_step": sample / grad, "updates_per_env_step": utd,
            "predicted_steps_per_s": 1.0 / (env_step + utd * grad)}
