"""Soft Actor-Critic from scratch: every piece of the algorithm in a few lines each.

The pieces, in the order chapter 3 builds them:

=========================  ==========================================================================================
:class:`ReplayBuffer`      circular, preallocated storage of transitions; dict observations are flattened in sorted
                           key order (``achieved_goal, desired_goal, observation``), as stable-baselines3 does
:class:`TwinQ`             two independent critics Q1, Q2 (no shared weights)
:class:`SquashedGaussian`  the actor: a Gaussian over pre-squash actions u, squashed by tanh; layer names
                           ``latent_pi``, ``mu``, ``log_std`` match stable-baselines3's SAC actor
:func:`soft_target`        y = r + γ(1 − d)(min_j Q̄_j(s', a') − α log π(a'|s')),  a' ~ π(·|s')
:func:`critic_loss`        Σ_i mean (Q_i(s, a) − y)²
:func:`actor_loss`         mean α log π(a|s) − min_i Q_i(s, a),  a = tanh(μ + σ ε) (reparameterised)
:func:`temperature_loss`   −mean log α · (log π(a|s) + H̄),  H̄ = −dim A
:func:`polyak_update`      θ̄ ← θ̄ + τ (θ − θ̄)
:func:`sac_update`         one gradient step of all three, then the target update
:func:`train_sac`          a small loop for any Gymnasium environment with a Box action space in [−1, 1]
:func:`final_offsets`      where a trained Fetch policy stops: achieved − desired goal after the last step
:func:`offset_bias`        is the mean of those offsets a bias, or what n episodes of scatter around the goal give?
=========================  ==========================================================================================

This is a teaching implementation: CPU, one environment, no observation normalisation. The chapter checks it
against stable-baselines3 (:func:`sb3_log_prob`) and then trains the library version through the contract.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlcourse.envs.fetch import flatten_obs  # a dict observation as one vector: the buffer stores those

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # the clamp stable-baselines3 and the original SAC code use
SB3_EPSILON = 1e-6  # stable-baselines3 computes log(1 − tanh² u + 1e-6)
Obs = np.ndarray | Mapping[str, np.ndarray]


# --------------------------------------------------------------------------------------------------- data


def obs_dim(space: Any) -> int:
    """Length of the flattened observation for a Gymnasium ``Box`` or ``Dict`` space."""
    if hasattr(space, "spaces") and isinstance(space.spaces, Mapping):
        return int(sum(np.prod(s.shape) for s in space.spaces.values()))
    return int(np.prod(space.shape))


class ReplayBuffer:
    """A circular buffer of transitions (s, a, r, s', d), preallocated as float32 numpy arrays.

    ``done`` must be 1 only for a *termination* (the MDP ended); a time-limit truncation is stored as 0 so that the
    target still bootstraps from s'. When the buffer is full, :meth:`add` overwrites the oldest transition.
    """

    def __init__(self, obs_dim: int, act_dim: int, capacity: int = 100_000, seed: int | None = None):
        if capacity < 1:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity, self.ptr, self.size = int(capacity), 0, 0
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros((capacity, act_dim), dtype=np.float32)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.dones = np.zeros(capacity, dtype=np.float32)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, obs: Obs, action: np.ndarray, reward: float, next_obs: Obs, done: bool) -> None:
        """Store one transition at ``ptr`` and advance it (wrapping around)."""
        i = self.ptr
        self.obs[i] = flatten_obs(obs)
        self.actions[i] = np.asarray(action, dtype=np.float32).reshape(-1)
        self.rewards[i] = float(reward)
        self.next_obs[i] = flatten_obs(next_obs)
        self.dones[i] = float(done)
        self.ptr = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        """A uniform batch (with replacement) as tensors: obs, actions, rewards, next_obs, dones."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = self.rng.integers(0, self.size, size=batch_size)
        arrays = {"obs": self.obs, "actions": self.actions, "rewards": self.rewards, "next_obs": self.next_obs,
                  "dones": self.dones}
        return {k: torch.as_tensor(v[idx], device=device) for k, v in arrays.items()}


# --------------------------------------------------------------------------------------------------- networks


def mlp(in_dim: int, out_dim: int | None, hidden: tuple[int, ...] = (256, 256)) -> nn.Sequential:
    """Linear + ReLU layers of widths ``hidden``, then a linear output of ``out_dim`` (none if ``out_dim`` is None)."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h), nn.ReLU()]
        in_dim = h
    if out_dim is not None:
        layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class TwinQ(nn.Module):
    """Two independent critics Q1(s, a), Q2(s, a) on the concatenation [s, a]; each returns shape (B,)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.q1 = mlp(obs_dim + act_dim, 1, hidden)
        self.q2 = mlp(obs_dim + act_dim, 1, hidden)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, action], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


def tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    """log(1 − tanh² u) per component, in the overflow-free form 2 (log 2 − u − softplus(−2u)).

    Derivation: 1 − tanh² u = sech² u = 4 / (e^u + e^−u)² = 4 e^−2u / (1 + e^−2u)², so its log is
    2 log 2 − 2u − 2 log(1 + e^−2u). It stays finite where the naive log(1 − tanh² u) gives log 0 = −inf."""
    return 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))


def gaussian_log_prob(mean: torch.Tensor, log_std: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """log N(u; mean, diag(exp(log_std)²)) summed over the last axis."""
    z = (u - mean) * torch.exp(-log_std)
    return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def squashed_log_prob(mean: torch.Tensor, log_std: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """log π(a|s) for a = tanh(u): the Gaussian density of u minus Σ_i log(1 − tanh² u_i) (change of variables)."""
    return gaussian_log_prob(mean, log_std, u) - tanh_log_det(u).sum(-1)


class SquashedGaussian(nn.Module):
    """The SAC actor: ``latent_pi`` (an MLP), then linear heads ``mu`` and ``log_std``; a = tanh(u), u ~ N(μ, σ²).

    The names and shapes are stable-baselines3's, so its weights load with :func:`load_sb3_actor`."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.latent_pi = mlp(obs_dim, None, hidden)
        self.mu = nn.Linear(hidden[-1], act_dim)
        self.log_std = nn.Linear(hidden[-1], act_dim)

    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and clamped log standard deviation of the pre-squash Gaussian."""
        h = self.latent_pi(obs)
        return self.mu(h), torch.clamp(self.log_std(h), LOG_STD_MIN, LOG_STD_MAX)

    def log_prob(self, obs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """log π(tanh(u) | obs) for given pre-squash actions ``u``, shape (B,)."""
        mean, log_std = self.dist_params(obs)
        return squashed_log_prob(mean, log_std, u)

    def forward(self, obs: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised sample a = tanh(μ + σ ε) and its log-probability (gradients flow through both)."""
        mean, log_std = self.dist_params(obs)
        u = mean if deterministic else mean + torch.exp(log_std) * torch.randn_like(mean)
        return torch.tanh(u), squashed_log_prob(mean, log_std, u)

    @torch.no_grad()
    def act(self, obs: Obs, deterministic: bool = True) -> np.ndarray:
        """One action for one (possibly dict) observation, as numpy; the mean action tanh(μ) by default."""
        x = torch.as_tensor(flatten_obs(obs)).unsqueeze(0)
        return self(x, deterministic=deterministic)[0].squeeze(0).numpy()


# --------------------------------------------------------------------------------------------------- losses


def soft_target(rewards: torch.Tensor, dones: torch.Tensor, next_q1: torch.Tensor, next_q2: torch.Tensor,
                next_log_prob: torch.Tensor, gamma: float, alpha: float | torch.Tensor) -> torch.Tensor:
    """The soft Bellman target y = r + γ (1 − d) (min(Q̄1, Q̄2)(s', a') − α log π(a'|s')).

    The minimum of the two *target* critics counters overestimation; ``d = 1`` (a true termination) stops the
    bootstrap, so the target of a terminal transition is its reward alone."""
    soft_value = torch.min(next_q1, next_q2) - alpha * next_log_prob
    return rewards + gamma * (1.0 - dones) * soft_value


def critic_loss(q: TwinQ, q_target: TwinQ, policy: SquashedGaussian, batch: Mapping[str, torch.Tensor],
                gamma: float, alpha: float | torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Σ_i MSE(Q_i(s, a), y) with y from :func:`soft_target` (no gradient through y).

    stable-baselines3 minimises half of this sum, and logs that half as ``train/critic_loss``."""
    with torch.no_grad():
        next_a, next_logp = policy(batch["next_obs"])
        tq1, tq2 = q_target(batch["next_obs"], next_a)
        y = soft_target(batch["rewards"], batch["dones"], tq1, tq2, next_logp, gamma, alpha)
    q1, q2 = q(batch["obs"], batch["actions"])
    l1, l2 = F.mse_loss(q1, y), F.mse_loss(q2, y)
    info = {"q1_loss": l1.item(), "q2_loss": l2.item(), "q1_mean": q1.mean().item(), "q2_mean": q2.mean().item(),
            "target_mean": y.mean().item()}
    return l1 + l2, info


def actor_loss(policy: SquashedGaussian, q: TwinQ, obs: torch.Tensor,
               alpha: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """mean(α log π(a|s) − min_i Q_i(s, a)) with a fresh reparameterised a; also returns the (detached) log π."""
    a, logp = policy(obs)
    q1, q2 = q(obs, a)
    loss = (alpha * logp - torch.min(q1, q2)).mean()
    return loss, logp.detach(), {"actor_loss": loss.item(), "entropy": -logp.mean().item()}


def temperature_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor,
                     target_entropy: float) -> tuple[torch.Tensor, dict[str, float]]:
    """−mean(log α · (log π + H̄)), the form stable-baselines3 uses; its gradient pushes the entropy towards H̄.

    If the policy's entropy −E[log π] is above the target H̄, then log π + H̄ < 0, the gradient with respect to
    log α is positive, and a descent step *lowers* α (less weight on entropy); below the target α rises. The
    paper's form −α (log π + H̄) has a gradient of the same sign, scaled by α."""
    loss = -(log_alpha * (log_prob.detach() + target_entropy)).mean()
    return loss, {"alpha_loss": loss.item()}


@torch.no_grad()
def polyak_update(online: nn.Module, target: nn.Module, tau: float) -> None:
    """θ̄ ← θ̄ + τ (θ − θ̄) = (1 − τ) θ̄ + τ θ for every parameter pair (τ = 1 copies; τ = 0.005 is SAC's default).

    Computed in the second form, as stable-baselines3 does, so that τ = 1 gives an exact copy."""
    for p, tp in zip(online.parameters(), target.parameters()):
        tp.mul_(1.0 - tau).add_(p, alpha=tau)


# --------------------------------------------------------------------------------------------------- the agent


@dataclass
class SACAgent:
    """Networks, optimisers and constants of one SAC learner (build it with :func:`make_agent`)."""

    policy: SquashedGaussian
    q: TwinQ
    q_target: TwinQ
    log_alpha: torch.Tensor
    policy_opt: torch.optim.Optimizer
    q_opt: torch.optim.Optimizer
    alpha_opt: torch.optim.Optimizer | None
    target_entropy: float
    gamma: float = 0.99
    tau: float = 0.005
    updates: int = 0

    @property
    def alpha(self) -> float:
        return float(self.log_alpha.detach().exp())


def make_agent(obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (256, 256), lr: float = 3e-4,
               gamma: float = 0.99, tau: float = 0.005, init_alpha: float = 1.0, auto_alpha: bool = True,
               target_entropy: float | None = None, seed: int | None = None) -> SACAgent:
    """A fresh SAC learner: target critics start as exact copies; α starts at ``init_alpha`` (1.0, log α = 0).

    ``target_entropy`` defaults to −act_dim; ``auto_alpha=False`` keeps α fixed at ``init_alpha``."""
    if seed is not None:
        torch.manual_seed(seed)
    policy, q = SquashedGaussian(obs_dim, act_dim, hidden), TwinQ(obs_dim, act_dim, hidden)
    q_target = copy.deepcopy(q).requires_grad_(False)
    log_alpha = torch.tensor(math.log(init_alpha), requires_grad=auto_alpha)
    return SACAgent(
        policy=policy, q=q, q_target=q_target, log_alpha=log_alpha,
        policy_opt=torch.optim.Adam(policy.parameters(), lr=lr),
        q_opt=torch.optim.Adam(q.parameters(), lr=lr),  # one optimiser over both critics: loss Q1 + Q2
        alpha_opt=torch.optim.Adam([log_alpha], lr=lr) if auto_alpha else None,
        target_entropy=float(-act_dim if target_entropy is None else target_entropy), gamma=gamma, tau=tau,
    )


def _step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def sac_update(agent: SACAgent, batch: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """One SAC gradient step on ``batch``. Order:

    1. read α (fixed for this step);
    2. critic step on Σ_i MSE(Q_i, y);
    3. actor step on α log π − min Q, using the critics just updated;
    4. temperature step, with the log-probabilities the actor step sampled (taken before its update);
    5. Polyak update of the target critics.

    stable-baselines3's ``SAC.train`` samples the actor's actions once, updates α *first*, then the critics, then
    the actor, then the targets; the α used in the critic and actor losses is the value before its update, as
    here. Both orders are fixed points of the same objectives; they differ only in which network sees which
    freshly updated one within a step. SB3 also clips no gradients."""
    alpha = agent.log_alpha.detach().exp()
    q_loss, q_info = critic_loss(agent.q, agent.q_target, agent.policy, batch, agent.gamma, alpha)
    _step(agent.q_opt, q_loss)
    pi_loss, logp, pi_info = actor_loss(agent.policy, agent.q, batch["obs"], alpha)
    _step(agent.policy_opt, pi_loss)
    info = {**q_info, **pi_info, "alpha": float(alpha)}
    if agent.alpha_opt is not None:
        a_loss, a_info = temperature_loss(agent.log_alpha, logp, agent.target_entropy)
        _step(agent.alpha_opt, a_loss)
        info.update(a_info)
    polyak_update(agent.q, agent.q_target, agent.tau)
    agent.updates += 1
    return info


# --------------------------------------------------------------------------------------------------- training


@dataclass
class SACHistory:
    """What :func:`train_sac` records: one entry per finished episode, and losses every ``log_every`` updates."""

    episode_steps: list[int] = field(default_factory=list)
    episode_returns: list[float] = field(default_factory=list)
    episode_success: list[float | None] = field(default_factory=list)
    updates: list[dict[str, float]] = field(default_factory=list)
    wall_s: float = 0.0


def train_sac(env_fn: Callable[[], Any], total_steps: int, seed: int = 0, hidden: tuple[int, ...] = (256, 256),
              lr: float = 3e-4, gamma: float = 0.99, tau: float = 0.005, batch_size: int = 256,
              learning_starts: int = 1000, buffer_size: int = 100_000, init_alpha: float = 1.0,
              auto_alpha: bool = True, target_entropy: float | None = None, log_every: int = 100,
              agent: SACAgent | None = None,
              update: Callable[[SACAgent, Mapping[str, torch.Tensor]], dict[str, float]] | None = None,
              ) -> tuple[SACAgent, SACHistory]:
    """Train SAC on ``env_fn()`` for ``total_steps`` environment steps: one gradient step per step after
    ``learning_starts`` uniformly random steps. Actions must live in [−1, 1] (Fetch; Pendulum is rescaled).

    Terminations stop the bootstrap; time-limit truncations do not (they are stored with ``done = 0``).
    ``update(agent, batch)`` replaces :func:`sac_update` as the gradient step (e.g. a variant for an ablation)."""
    env = env_fn()
    low, high = env.action_space.low, env.action_space.high
    act_dim = int(np.prod(env.action_space.shape))
    o_dim = obs_dim(env.observation_space)
    agent = agent or make_agent(o_dim, act_dim, hidden, lr, gamma, tau, init_alpha, auto_alpha, target_entropy, seed)
    buf = ReplayBuffer(o_dim, act_dim, buffer_size, seed=seed)
    hist = SACHistory()
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    ep_ret, t0 = 0.0, time.perf_counter()
    for step in range(1, total_steps + 1):
        if step <= learning_starts:
            a = ((env.action_space.sample() - low) / (high - low) * 2 - 1).astype(np.float32)
        else:
            a = agent.policy.act(obs, deterministic=False)
        next_obs, r, terminated, truncated, info = env.step(low + (a + 1) * 0.5 * (high - low))
        buf.add(obs, a, float(r), next_obs, bool(terminated))
        ep_ret += float(r)
        obs = next_obs
        if terminated or truncated:
            hist.episode_steps.append(step)
            hist.episode_returns.append(ep_ret)
            hist.episode_success.append(float(info["is_success"]) if "is_success" in info else None)
            obs, _ = env.reset()
            ep_ret = 0.0
        if step > learning_starts and len(buf) >= batch_size:
            upd = (update or sac_update)(agent, buf.sample(batch_size))
            if agent.updates % log_every == 0:
                hist.updates.append({"step": step, **upd})
    env.close()
    hist.wall_s = time.perf_counter() - t0
    return agent, hist


# --------------------------------------------------------------------------------------------------- SB3 bridge


def load_sb3_actor(policy: SquashedGaussian, sb3_actor: nn.Module) -> SquashedGaussian:
    """Copy a stable-baselines3 SAC actor's ``latent_pi``, ``mu`` and ``log_std`` weights into ``policy``."""
    state = {k: v for k, v in sb3_actor.state_dict().items() if k.split(".")[0] in ("latent_pi", "mu", "log_std")}
    policy.load_state_dict(state, strict=True)
    return policy


def sb3_log_prob(sb3_actor: Any, obs: Any, u: torch.Tensor) -> torch.Tensor:
    """stable-baselines3's log π(tanh(u)|s) for pre-squash actions ``u``: the actor's own distribution object,
    fed the same Gaussian sample instead of drawing one. ``obs`` is what the actor takes (a dict of tensors)."""
    with torch.no_grad():
        mean, log_std, _ = sb3_actor.get_action_dist_params(obs)
        dist = sb3_actor.action_dist.proba_distribution(mean, log_std)
        return dist.log_prob(torch.tanh(u), gaussian_actions=u)


def sb3_epsilon_gap(u: torch.Tensor, epsilon: float = SB3_EPSILON) -> torch.Tensor:
    """The exact difference ours − SB3's caused by SB3's ε: Σ_i log(1 + ε / (1 − tanh² u_i)) (≥ 0).

    It is about 4ε ≈ 4e-6 near u = 0 and grows as |u| saturates the tanh (≈ 8e-4 per component at |u| = 4)."""
    return torch.log1p(epsilon * torch.exp(-tanh_log_det(u.double()))).sum(-1)


# --------------------------------------------------------------------------------------------------- where it stops


def final_offsets(run: Any, n_episodes: int) -> tuple[np.ndarray, float]:
    """Roll ``run``'s deterministic policy out on its first ``n_episodes`` evaluation seeds, through the course's
    evaluation loop, and return the final offsets ``achieved_goal − desired_goal`` (metres, shape (n, 3)) and the
    mean |action| of the x, y, z commands the robot received over the last five steps of each episode."""
    from rlcourse.algos.base import load_policy
    from rlcourse.contract.evaluate import evaluate

    episodes: list[dict[str, Any]] = []

    def observe(env: Any, obs: Mapping[str, np.ndarray], t: int) -> None:
        if t == 0:
            episodes.append({"actions": []})
        else:
            episodes[-1]["actions"].append(np.asarray(env.get_wrapper_attr("delivered_action"))[:3])
        episodes[-1]["last"] = obs

    evaluate(load_policy(run), run.meta["env_id"], n_episodes, seed=run.eval["seeds"][0], observer=observe)
    offsets = np.array([e["last"]["achieved_goal"] - e["last"]["desired_goal"] for e in episodes], dtype=float)
    tail = float(np.mean([np.abs(np.array(e["actions"][-5:])).mean() for e in episodes]))
    return offsets, tail


def offset_bias(offsets: np.ndarray, confidence: float = 0.95) -> dict[str, Any]:
    """Separate a repeated offset (a bias) from scatter, for final offsets of shape (n, d) from n episodes.

    The mean offset of n episodes has standard error s/√n per axis (s: the sample standard deviation), so an axis
    shows a bias only where |mean| > t·s/√n, with t the two-sided Student-t quantile for n − 1 degrees of freedom
    (about 2 for large n). ``share`` = ‖mean offset‖ / mean ‖offset‖ lies in [0, 1]; scatter alone, with no bias at
    all, already gives about 1/√n, ``scatter_share``: for isotropic Gaussian scatter the mean of n offsets is
    distributed like one offset shrunk by √n, so E‖mean offset‖ = E‖offset‖ / √n exactly."""
    from scipy import stats

    x = np.asarray(offsets, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need offsets of shape (n >= 2, d), got {x.shape}")
    n = x.shape[0]
    mean, sem = x.mean(axis=0), x.std(axis=0, ddof=1) / math.sqrt(n)
    t = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1))
    dist = np.linalg.norm(x, axis=1)
    return {"n": n, "mean": mean, "sem": sem, "t": t, "biased": np.abs(mean) > t * sem,
            "share": float(np.linalg.norm(mean) / dist.mean()), "scatter_share": 1.0 / math.sqrt(n),
            "distance_mean": float(dist.mean())}
