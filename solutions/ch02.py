"""Chapter 2 — PPO on dense Reach: solutions to the exercises.

Each function runs one exercise with settings passed as parameters (the chapter's settings by default), so that
``tests/test_solutions_ch02.py`` can run it small and check what the solution text in the chapter claims.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlcourse import TrainConfig, evaluate, summarize, train
from rlcourse.envs import make_env
from rlcourse.labs import ppo

ENV = "FetchReachDense-v4"


def untrained_rollout(n_envs: int = 8, n_steps: int = 64, gamma: float = 0.99, seed: int = 0
                      ) -> tuple[ppo.ActorCritic, ppo.Rollout]:
    """The batch of Build It (c): an untrained network's rollout on Reach."""
    torch.manual_seed(seed)
    pool = ppo.EnvPool(ENV, n_envs=n_envs, seed=seed)
    try:
        net = ppo.ActorCritic.for_env(pool.envs[0])
        rollout = ppo.collect_rollout(pool, net, n_steps=n_steps, gamma=gamma)
    finally:
        pool.close()
    return net, rollout


def exercise_1_spread(lams: Sequence[float] = (0.0, 0.5, 0.95, 1.0), gamma: float = 0.99, **rollout_kwargs: Any
                      ) -> dict[float, float]:
    """λ by the numbers, first part: the standard deviation of the GAE advantages on one batch, for each λ."""
    _, ro = untrained_rollout(gamma=gamma, **rollout_kwargs)
    return {lam: ppo.compute_gae(ro.rewards, ro.values, ro.dones, ro.last_value, gamma, lam)[0].std().item()
            for lam in lams}


def exercise_1_train(lam: float, total_steps: int = 12_288, n_envs: int = 8, n_steps: int = 128, n_epochs: int = 10,
                     batch_size: int = 64, learning_rate: float = 1e-3, eval_episodes: int = 10, seed: int = 0
                     ) -> dict[str, float]:
    """λ by the numbers, second part: the from-scratch agent (the demo's settings by default) trained with one λ,
    evaluated deterministically with the course's loop."""
    cfg = ppo.PPOConfig(env_id=ENV, total_steps=total_steps, n_envs=n_envs, n_steps=n_steps, n_epochs=n_epochs,
                        batch_size=batch_size, learning_rate=learning_rate, gae_lambda=lam, seed=seed)
    model, history = ppo.train_ppo(cfg)
    return {**summarize(evaluate(model, ENV, eval_episodes)), "last_train_return": history[-1]["ep_return_mean"]}


def exercise_2(clip_ranges: Sequence[float] = (0.0, 0.2, 1e6), n_epochs: int = 10, batch_size: int = 64,
               learning_rate: float = 3e-4, watch: float = 0.2, seed: int = 0, **rollout_kwargs: Any
               ) -> dict[float, dict[str, float]]:
    """The clip range at its extremes: how far does one PPO update (``n_epochs`` over one batch) move the policy?

    For each ε, a copy of the same untrained network takes the same update on the same batch. Afterwards we measure,
    on that batch, the approximate KL divergence from the old policy, the largest |ρ − 1|, and the share of samples
    whose ratio left [1 − ``watch``, 1 + ``watch``]; during the update, the share of samples that ε clipped."""
    net, ro = untrained_rollout(seed=seed, **rollout_kwargs)
    batch = ppo.rollout_to_batch(ro)
    out = {}
    for eps in clip_ranges:
        model = copy.deepcopy(net)
        opt = torch.optim.Adam(model.parameters(), lr=learning_rate, eps=1e-5)
        during = ppo.ppo_update(model, opt, batch, n_epochs=n_epochs, batch_size=batch_size,
                                generator=torch.Generator().manual_seed(seed), clip_range=eps)
        with torch.no_grad():
            dist, _ = model(batch.obs)
            log_ratio = dist.log_prob(batch.actions).sum(-1) - batch.log_probs
            ratio = log_ratio.exp()
        out[eps] = {"approx_kl": ((ratio - 1) - log_ratio).mean().item(),
                    "max_ratio_change": (ratio - 1).abs().max().item(),
                    "outside_watch": ((ratio - 1).abs() > watch).float().mean().item(),
                    "clipped_during_update": during["clip_fraction"]}
    return out


def exercise_3(out_dir: str | Path, n_envs_list: Sequence[int] = (1, 2, 4, 8, 16), total_steps: int = 32_768,
               rollout: int = 2048, ppo_settings: dict[str, Any] | None = None, eval_episodes: int = 50,
               seed: int = 0) -> dict[int, dict[str, float]]:
    """Parallel environments: the quick recipe with each number of copies, ``n_steps × n_envs = rollout`` fixed,
    so every run makes the same updates from the same amount of data; steps/s and success from the run folder."""
    hp = {"batch_size": 64, "n_epochs": 10, "learning_rate": 3e-4, **(ppo_settings or {})}
    out = {}
    for n in n_envs_list:
        run = train(TrainConfig(algo="ppo", env_id=ENV, seed=seed, total_steps=total_steps, n_envs=n,
                                hyperparameters={**hp, "n_steps": rollout // n}, run_id=f"ppo_envs{n}_seed{seed}",
                                out_dir=str(out_dir), final_eval_episodes=eval_episodes, overwrite=True,
                                tensorboard=False))
        out[n] = {"steps_per_s": run.meta["steps_per_s"], "success_rate": run.eval["aggregate"]["success_rate"],
                  "updates": run.meta["steps_done"] // rollout}
    return out


def exercise_4(learning_rate: float = 1e-3, shared: bool = False, threshold: float = 0.9, max_steps: int = 200_000,
               chunk: int = 8192, eval_episodes: int = 20, seed: int = 0, **config: Any) -> dict[str, Any]:
    """The from-scratch loop, seriously: train in chunks of ``chunk`` steps until deterministic success reaches
    ``threshold`` (or ``max_steps``). Each chunk continues the same network and optimiser; the KL and clip-fraction
    history of every update is kept.

    ``train_ppo`` starts from scratch each call, so the chunks reuse its pieces directly (collect, GAE, update)."""
    cfg = ppo.PPOConfig(env_id=ENV, learning_rate=learning_rate, shared=shared, seed=seed,
                        **{"n_steps": 128, "batch_size": 64, **config})
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    pool = ppo.EnvPool(cfg.env_id, cfg.n_envs, cfg.seed)
    model = ppo.ActorCritic.for_env(pool.envs[0], hidden=cfg.hidden, shared=cfg.shared)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, eps=1e-5)
    steps, history, evals = 0, [], []
    try:
        while steps < max_steps:
            target = min(steps + chunk, max_steps)
            while steps < target:
                ro = ppo.collect_rollout(pool, model, cfg.n_steps, cfg.gamma)
                steps += cfg.n_steps * cfg.n_envs
                diag = ppo.ppo_update(model, opt, ppo.rollout_to_batch(ro, cfg.gamma, cfg.gae_lambda), cfg.n_epochs,
                                      cfg.batch_size, generator, clip_range=cfg.clip_range)
                history.append({"timesteps": steps, "approx_kl": diag["approx_kl"],
                                "clip_fraction": diag["clip_fraction"]})
            success = summarize(evaluate(model, ENV, eval_episodes))["success_rate"]
            evals.append((steps, success))
            if success >= threshold:
                break
    finally:
        pool.close()
    reached = next((s for s, v in evals if v >= threshold), None)
    return {"steps_to_threshold": reached, "evals": evals, "history": history}


def achieved_goal_is_in_the_observation(n_steps: int = 100, seed: int = 0) -> float:
    """Exercise 4's last variant: on Reach, ``achieved_goal`` (the gripper's position) is a copy of the first three
    entries of ``observation``. Returns the largest difference seen over a random walk (0.0 when it is a copy)."""
    env = make_env(ENV)
    try:
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        worst = 0.0
        for _ in range(n_steps):
            worst = max(worst, float(np.abs(obs["achieved_goal"] - obs["observation"][:3]).max()))
            obs, *_ = env.step(env.action_space.sample())
    finally:
        env.close()
    return worst


def sb3_hyperparameters(cfg: ppo.PPOConfig) -> dict[str, Any]:
    """Exercise 5: the stable-baselines3 PPO settings that match a from-scratch ``PPOConfig`` one to one."""
    return {"n_steps": cfg.n_steps, "batch_size": cfg.batch_size, "n_epochs": cfg.n_epochs,
            "learning_rate": cfg.learning_rate, "gamma": cfg.gamma, "gae_lambda": cfg.gae_lambda,
            "clip_range": cfg.clip_range, "vf_coef": cfg.value_coef, "ent_coef": cfg.entropy_coef,
            "max_grad_norm": cfg.max_grad_norm, "normalize_advantage": True,
            # separate [64, 64] tanh networks for policy and value, orthogonal initialisation: SB3's PPO defaults
            "policy_kwargs": {"net_arch": list(cfg.hidden)}}


def exercise_5(out_dir: str | Path, seeds: Sequence[int] = (0, 1, 2), eval_episodes: int = 20, **config: Any
               ) -> dict[str, list[dict[str, float]]]:
    """Exercise 5: the same configuration trained by ``train_ppo`` and by SB3 (through ``rlcourse.train``) on each
    seed, both evaluated by the course's loop. Returns one summary per seed and implementation."""
    cfg = ppo.PPOConfig(env_id=ENV, **config)
    out: dict[str, list[dict[str, float]]] = {"from scratch": [], "stable-baselines3": []}
    for seed in seeds:
        model, _ = ppo.train_ppo(ppo.PPOConfig(**{**cfg.__dict__, "seed": seed}))
        out["from scratch"].append(summarize(evaluate(model, ENV, eval_episodes)))
        run = train(TrainConfig(algo="ppo", env_id=ENV, seed=seed, total_steps=cfg.total_steps, n_envs=cfg.n_envs,
                                hyperparameters=sb3_hyperparameters(cfg), run_id=f"ppo_sb3_match_seed{seed}",
                                out_dir=str(out_dir), final_eval_episodes=eval_episodes, overwrite=True,
                                tensorboard=False))
        out["stable-baselines3"].append(run.eval["aggregate"])
    return out
