"""Chapter 3, SAC on dense Reach: worked solutions to the exercises.

One function per exercise, sized by its arguments: the defaults are the exercise as the chapter states it, and
``tests/test_solutions_ch03.py`` runs each one with small settings and checks what the solution text claims.
Exercises 1 and 2 use the from-scratch learner (``rlcourse.labs.sac``) on Pendulum; exercises 3 to 5 train
stable-baselines3 SAC on FetchReachDense-v4 through the course's contract (``rlcourse.train``), with the chapter's
recipe from ``rlcourse.chapters``, so a solution cannot drift from the recipe the chapter uses."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rlcourse import TrainConfig, chapters, train
from rlcourse.labs import sac

PENDULUM = "Pendulum-v1"
PENDULUM_KW = {"hidden": (64, 64), "lr": 1e-3, "batch_size": 128, "learning_starts": 600}  # the chapter's demo
SOLVED = -200.0  # the source book's "solved" threshold for a Pendulum episode return


def _pendulum():
    import gymnasium as gym

    return gym.make(PENDULUM)


def _out(out_dir: str | Path | None) -> str:
    from rlcourse.core import paths

    return str(Path(out_dir) if out_dir is not None else paths.scratch_dir() / "exercises" / "ch03")


# ------------------------------------------------------------------------------------------------- exercise 1


def single_critic_update(agent: sac.SACAgent, batch: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """:func:`rlcourse.labs.sac.sac_update` with one critic doing the work of two: the target uses Q̄1 alone,
    y = r + γ(1 − d)(Q̄1(s', a') − α log π(a'|s')), and the actor maximises Q1 alone. Q2 is still fitted (so the
    agent is otherwise unchanged) but never read."""
    alpha = agent.log_alpha.detach().exp()
    with torch.no_grad():
        next_a, next_logp = agent.policy(batch["next_obs"])
        tq1, _ = agent.q_target(batch["next_obs"], next_a)
        y = sac.soft_target(batch["rewards"], batch["dones"], tq1, tq1, next_logp, agent.gamma, alpha)  # min(Q̄1, Q̄1)
    q1, q2 = agent.q(batch["obs"], batch["actions"])
    q_loss = F.mse_loss(q1, y) + F.mse_loss(q2, y)
    agent.q_opt.zero_grad(set_to_none=True)
    q_loss.backward()
    agent.q_opt.step()

    a, logp = agent.policy(batch["obs"])
    q1_pi, _ = agent.q(batch["obs"], a)
    pi_loss = (alpha * logp - q1_pi).mean()
    agent.policy_opt.zero_grad(set_to_none=True)
    pi_loss.backward()
    agent.policy_opt.step()
    info = {"q1_loss": F.mse_loss(q1, y).item(), "q1_mean": q1.mean().item(), "q2_mean": q2.mean().item(),
            "target_mean": y.mean().item(), "actor_loss": pi_loss.item(), "entropy": -logp.mean().item(),
            "alpha": float(alpha)}
    if agent.alpha_opt is not None:
        a_loss, a_info = sac.temperature_loss(agent.log_alpha, logp.detach(), agent.target_entropy)
        agent.alpha_opt.zero_grad(set_to_none=True)
        a_loss.backward()
        agent.alpha_opt.step()
        info.update(a_info)
    sac.polyak_update(agent.q, agent.q_target, agent.tau)
    agent.updates += 1
    return info


def pendulum_soft_return(agent: sac.SACAgent, state: np.ndarray, action: float, horizon: int,
                         generator: torch.Generator | None = None) -> float:
    """One Monte Carlo sample of the soft return that Q(s, a) estimates, on Pendulum started in ``state``
    (θ, θ̇): take ``action`` (in [−1, 1]), then follow the agent's *sampled* policy for ``horizon`` − 1 more steps:

        Σ_{k=0}^{H−1} γ^k r_k  −  α Σ_{k=1}^{H−1} γ^k log π(a_k | s_k),

    with the agent's current α and γ. No time limit: the critic bootstraps through Pendulum's 200-step truncation,
    so the return it estimates has no end either; γ^H must be small for the cut-off to be negligible."""
    env = _pendulum().unwrapped
    env.reset(seed=0)
    env.state = np.array(state, dtype=np.float64)
    high = float(env.action_space.high[0])
    alpha, gamma = agent.alpha, agent.gamma
    _, r, *_ = env.step(np.array([high * action], dtype=np.float32))
    total, discount = float(r), gamma
    for _ in range(horizon - 1):
        obs = torch.as_tensor(env._get_obs(), dtype=torch.float32).unsqueeze(0)
        with torch.no_grad():
            mean, log_std = agent.policy.dist_params(obs)
            u = mean + log_std.exp() * torch.randn(mean.shape, generator=generator)
            logp = sac.squashed_log_prob(mean, log_std, u).item()
        _, r, *_ = env.step(np.array([high * math.tanh(u.item())], dtype=np.float32))
        total += discount * (float(r) - alpha * logp)
        discount *= gamma
    env.close()
    return total


def critic_bias(agent: sac.SACAgent, n_states: int = 20, rollouts: int = 4, horizon: int = 400,
                seed: int = 0) -> dict[str, float]:
    """Compare what the critics say with what the policy obtains, on states the policy itself visits.

    One sampled episode of the policy gives ``n_states`` evenly spaced states s; at each, a fresh a ~ π(·|s) is
    scored by Q1, Q2 and min(Q1, Q2), and ``rollouts`` Monte Carlo soft returns from (s, a) are averaged. Returns
    the means over states; ``bias_q1`` = mean Q1 − mean soft return (positive: overestimation)."""
    gen = torch.Generator().manual_seed(seed)
    env = _pendulum()
    high = float(env.action_space.high[0])
    obs, _ = env.reset(seed=seed)
    states, observations = [], []
    for _ in range(int(env.spec.max_episode_steps)):
        states.append(np.array(env.unwrapped.state, dtype=np.float64))
        observations.append(obs)
        with torch.no_grad():
            a, _ = agent.policy(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0))
        obs, *_ = env.step(high * a.squeeze(0).numpy())
    env.close()
    pick = np.linspace(0, len(states) - 1, n_states).round().astype(int)
    q1s, q2s, mcs = [], [], []
    for i in pick:
        o = torch.as_tensor(observations[i], dtype=torch.float32).unsqueeze(0)
        with torch.no_grad():
            mean, log_std = agent.policy.dist_params(o)
            a = torch.tanh(mean + log_std.exp() * torch.randn(mean.shape, generator=gen))
            q1, q2 = agent.q(o, a)
        q1s.append(q1.item())
        q2s.append(q2.item())
        mcs.append(np.mean([pendulum_soft_return(agent, states[i], a.item(), horizon, gen) for _ in range(rollouts)]))
    q1m, qminm, mc = float(np.mean(q1s)), float(np.mean(np.minimum(q1s, q2s))), float(np.mean(mcs))
    return {"q1_mean": q1m, "q_min_mean": qminm, "soft_return_mean": mc, "bias_q1": q1m - mc,
            "bias_q_min": qminm - mc}


def exercise_1(total_steps: int = 10_000, seed: int = 0, n_states: int = 20, rollouts: int = 4,
               horizon: int = 400, **kwargs: Any) -> list[dict[str, Any]]:
    """Train the Pendulum demo twice from the same seed, with the clipped double-Q update and with one critic, and
    compare each critic with the soft returns its policy really obtains (:func:`critic_bias`)."""
    rows = []
    for label, update in (("clipped double-Q (min of two)", sac.sac_update), ("one critic (Q1 only)",
                                                                                single_critic_update)):
        agent, hist = sac.train_sac(_pendulum, total_steps=total_steps, seed=seed, update=update,
                                    log_every=50, **{**PENDULUM_KW, **kwargs})
        bias = critic_bias(agent, n_states=n_states, rollouts=rollouts, horizon=horizon, seed=seed)
        rows.append({"variant": label, "final return (last 3 episodes)": float(np.mean(hist.episode_returns[-3:])),
                     "Q1 on visited states": bias["q1_mean"], "min(Q1, Q2)": bias["q_min_mean"],
                     "Monte Carlo soft return": bias["soft_return_mean"], "Q1 − soft return": bias["bias_q1"],
                     "final α": agent.alpha})
    return rows


# ------------------------------------------------------------------------------------------------- exercise 2


def first_solved(hist: sac.SACHistory, threshold: float = SOLVED) -> int | None:
    """The environment step at which the first episode with a return above ``threshold`` ended (None if none)."""
    return next((s for s, r in zip(hist.episode_steps, hist.episode_returns) if r > threshold), None)


def exercise_2(total_steps: int = 10_000, seed: int = 0, fixed: Sequence[float] = (0.02, 0.2, 1.0),
               targets: Sequence[float] = (-0.5, -1.0, -2.0), **kwargs: Any) -> list[dict[str, Any]]:
    """The Pendulum demo with a fixed temperature α ∈ ``fixed`` and with the automatic one at each target entropy in
    ``targets``: final return, the step of the first episode above −200, the final α and the final entropy."""
    arms = [(f"fixed α = {a}", {"auto_alpha": False, "init_alpha": a}) for a in fixed]
    arms += [(f"automatic, target {t}", {"auto_alpha": True, "target_entropy": t}) for t in targets]
    rows = []
    for label, arm in arms:
        agent, hist = sac.train_sac(_pendulum, total_steps=total_steps, seed=seed, log_every=25,
                                    **{**PENDULUM_KW, **kwargs, **arm})
        last = hist.updates[-4:]
        rows.append({"setting": label, "final return (last 3 episodes)": float(np.mean(hist.episode_returns[-3:])),
                     "first episode above −200 (step)": first_solved(hist), "final α": agent.alpha,
                     "final entropy": float(np.mean([u["entropy"] for u in last])) if last else None,
                     "target entropy": agent.target_entropy if arm["auto_alpha"] else None})
    return rows


# ------------------------------------------------------------------------------------------------- exercise 3


def _recipe(profile: str = "full") -> dict[str, Any]:
    return copy.deepcopy(chapters.settings("ch03", profile)["sac"])


def exercise_3(total_steps: int = 50_000, seed: int = 0, n_envs: int = 4, out_dir: str | Path | None = None,
               eval_every: int = 2500, curve_eval_episodes: int = 20, eval_episodes: int = 100,
               hyperparameters: Mapping[str, Any] | None = None, tensorboard: bool = True) -> list[dict[str, Any]]:
    """Three runs of the chapter's recipe: one environment; ``n_envs`` environments with one gradient step per
    vector step (update-to-data ratio 1/n_envs); ``n_envs`` environments with ``n_envs`` gradient steps (ratio 1).
    Each row: the gradient steps the model took, per transition collected, and the outcome."""
    from rlcourse.algos.base import get_backend
    from rlcourse.contract.runs import load_run

    hp = {**_recipe(), **(hyperparameters or {})}
    rows = []
    for envs, grad in ((1, 1), (n_envs, 1), (n_envs, n_envs)):
        run = train(TrainConfig(
            algo="sac", env_id="FetchReachDense-v4", seed=seed, total_steps=total_steps, n_envs=envs,
            hyperparameters={**hp, "gradient_steps": grad}, out_dir=_out(out_dir),
            run_id=f"ex3_sac_envs{envs}_grad{grad}_seed{seed}", eval_every=eval_every,
            curve_eval_episodes=curve_eval_episodes, final_eval_episodes=eval_episodes, overwrite=True,
            tensorboard=tensorboard, command="solutions/ch03.py exercise_3"))
        run = load_run(run.path)
        model = get_backend("sac").load_model(run)
        agg = run.eval["aggregate"]
        rows.append({"run": run, "n_envs": envs, "gradient_steps": grad, "environment steps": run.meta["steps_done"],
                     "gradient steps taken": int(model._n_updates),
                     "gradient steps per transition": model._n_updates / (run.meta["steps_done"] - hp["learning_starts"]),
                     "success": agg["success_rate"], "final distance (mm)": 1000 * agg["final_distance_mean"],
                     "wall-clock (s)": run.meta["wall_clock_s"], "steps/s": run.meta["steps_per_s"]})
    return rows


# ------------------------------------------------------------------------------------------------- exercise 4


def exercise_4(total_steps: int = 50_000, seeds: Sequence[int] = (0, 1, 2), out_dir: str | Path | None = None,
               offset_episodes: int = 20, eval_episodes: int = 100, eval_every: int = 2500,
               curve_eval_episodes: int = 20, hyperparameters: Mapping[str, Any] | None = None,
               tensorboard: bool = True) -> list[dict[str, Any]]:
    """The chapter's recipe with normalised observations (``TrainConfig(normalize_obs=True)``: SB3's VecNormalize
    statistics, frozen and saved with the run, applied by ``load_policy`` at evaluation), one run per seed, each
    with the offset analysis of "Where do the policies stop?" (:func:`rlcourse.labs.sac.offset_bias`)."""
    hp = {**_recipe(), **(hyperparameters or {})}
    rows = []
    for seed in seeds:
        run = train(TrainConfig(
            algo="sac", env_id="FetchReachDense-v4", seed=seed, total_steps=total_steps, hyperparameters=hp,
            normalize_obs=True, out_dir=_out(out_dir), run_id=f"ex4_sac_norm_FetchReachDense-v4_seed{seed}",
            eval_every=eval_every, curve_eval_episodes=curve_eval_episodes, final_eval_episodes=eval_episodes,
            overwrite=True, tensorboard=tensorboard, command="solutions/ch03.py exercise_4"))
        off, tail = sac.final_offsets(run, min(offset_episodes, eval_episodes))
        b = sac.offset_bias(1000 * off)
        rows.append({"run": run, "seed": seed, "episodes": b["n"], "mean offset x, y, z (mm)": b["mean"],
                     "standard error x, y, z (mm)": b["sem"], "biased axes": int(b["biased"].sum()),
                     "mean final distance (mm)": b["distance_mean"], "bias share": b["share"],
                     "scatter-only share": b["scatter_share"], "mean |a| last 5 steps": tail,
                     "success": run.eval["aggregate"]["success_rate"], "final offsets (mm)": 1000 * off})
    return rows


# ------------------------------------------------------------------------------------------------- exercise 5

SOURCE_BOOK_RECIPE = {"learning_rate": 3e-4, "gamma": 0.99, "learning_starts": 10_000,
                      "policy_kwargs": {"net_arch": [256, 256]}}  # the source book's SAC settings for dense Reach


def updates_to_reach(alpha: float, lr: float, alpha0: float = 1.0) -> float:
    """The fewest updates Adam needs to bring α from ``alpha0`` to ``alpha`` when it moves log α by about one
    learning rate per update: ln(alpha0 / alpha) / lr."""
    return math.log(alpha0 / alpha) / lr


def exercise_5(total_steps: int = 50_000, seed: int = 0, out_dir: str | Path | None = None,
               eval_every: int = 2500, curve_eval_episodes: int = 20, eval_episodes: int = 100,
               hyperparameters: Mapping[str, Any] | None = None, tensorboard: bool = True) -> dict[str, Any]:
    """The chapter's recipe with the source book's learning rate, γ, network and warm-up, diagnostics on. Returns
    the run and, from its curve, α at each row next to the line exp(−lr · updates) it cannot fall below."""
    from rlcourse.contract.runs import curve_table

    hp = {**_recipe(), **SOURCE_BOOK_RECIPE, **(hyperparameters or {})}
    run = train(TrainConfig(
        algo="sac", env_id="FetchReachDense-v4", seed=seed, total_steps=total_steps, hyperparameters=hp,
        out_dir=_out(out_dir), run_id=f"ex5_sac_sourcebook_FetchReachDense-v4_seed{seed}", eval_every=eval_every,
        curve_eval_episodes=curve_eval_episodes, final_eval_episodes=eval_episodes, diagnostics=True,
        overwrite=True, tensorboard=tensorboard, command="solutions/ch03.py exercise_5"))
    c = curve_table(run.curve)
    rows = [(t, a) for t, a in zip(c["timesteps"], c["ent_coef"]) if a is not None]
    steps = np.array([t for t, _ in rows], dtype=float)
    alpha = np.array([a for _, a in rows], dtype=float)
    line = np.exp(-hp["learning_rate"] * np.clip(steps - hp["learning_starts"], 0, None))
    return {"run": run, "steps": steps, "alpha": alpha, "line": line, "learning_rate": hp["learning_rate"],
            "learning_starts": hp["learning_starts"], "success": run.eval["aggregate"]["success_rate"]}
