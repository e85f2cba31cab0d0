"""PPO from scratch, for understanding (chapter 2). Read it top to bottom; production training uses SB3 through
:func:`rlcourse.training.train.train`.

The pieces, in the order the chapter builds them:

1. :func:`obs_to_tensor` and :class:`ActorCritic` — a Gaussian policy and a value function on the flattened goal
   dictionary (keys in sorted order, as stable-baselines3's ``CombinedExtractor`` does: 16 inputs on Reach).
2. :func:`compute_gae` — generalised advantage estimates and the value targets ("returns").
3. :func:`ppo_loss` and :func:`value_loss` — the clipped surrogate and the critic's regression loss, with the
   diagnostics SB3 logs (ratio, clip fraction, approximate KL, entropy, explained variance).
4. :func:`ppo_step` / :func:`ppo_update` — one gradient step on a minibatch; epochs of shuffled minibatches.
5. :class:`EnvPool`, :func:`collect_rollout`, :func:`rollout_to_batch`, :func:`train_ppo` — the on-policy loop.
6. :func:`sb3_gae` — the same GAE computed by SB3's ``RolloutBuffer``, for the bridge check.

Conventions (each matches stable-baselines3 2.x, so that the bridge is an equality, not an analogy):

- ``dones[t] = 1`` when transition ``t`` was the last of its episode (terminated *or* truncated). SB3 stores the
  same information shifted by one, as ``episode_starts[t + 1] = dones[t]``.
- A time-limit truncation is bootstrapped inside the rollout: the reward of the last transition becomes
  ``r + γ V(s_final)``. With that done, :func:`compute_gae` needs only one mask.
- :func:`value_loss` is the plain mean squared error **without** a factor ½, which is exactly SB3's
  ``train/value_loss``; ``value_coef`` has SB3's meaning (``vf_coef``).
- ``entropy_loss = −entropy``, as SB3 logs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.distributions import Normal

from rlcourse.core.threads import torch_threads
from rlcourse.envs.fetch import flatten_obs

ArrayLike = np.ndarray | torch.Tensor | Sequence[float]


# --- 1. observations and the actor-critic ------------------------------------------------------------------------


def obs_to_tensor(obs: Any, device: str | torch.device = "cpu") -> torch.Tensor:
    """A float32 tensor from a goal dictionary (keys concatenated in sorted order), a list of such dictionaries
    (stacked into a batch), or a plain array.

    One dictionary of 1-D arrays gives shape ``(D,)``; a dictionary of ``(n, d_k)`` arrays or a list of ``n``
    dictionaries gives ``(n, D)``. On Fetch the order is ``achieved_goal, desired_goal, observation``.
    """
    return torch.as_tensor(flatten_obs(obs), device=device)


def _layer(in_dim: int, out_dim: int, gain: float) -> nn.Linear:
    """A linear layer with orthogonal weights and zero bias (SB3's and CleanRL's initialisation)."""
    layer = nn.Linear(in_dim, out_dim)
    nn.init.orthogonal_(layer.weight, gain=gain)
    nn.init.zeros_(layer.bias)
    return layer


def _tanh_mlp(in_dim: int, hidden: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [_layer(in_dim, h, gain=float(np.sqrt(2))), nn.Tanh()]
        in_dim = h
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """Gaussian policy π(a | x) = N(μ_θ(x), diag σ²) with a state-independent log σ, and a value head V_φ(x).

    ``shared=False`` (default) builds separate tanh MLPs for policy and value, as SB3's ``MultiInputPolicy`` does
    for PPO (the same parameter count: 10,825 on Reach with ``hidden=(64, 64)``). ``shared=True`` builds one
    backbone with two heads, the source book's lab network (5,577 parameters on Reach).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (64, 64), shared: bool = False,
                 log_std_init: float = 0.0):
        super().__init__()
        self.obs_dim, self.act_dim, self.shared = obs_dim, act_dim, shared
        self.pi_body = _tanh_mlp(obs_dim, hidden)
        self.vf_body = self.pi_body if shared else _tanh_mlp(obs_dim, hidden)
        last = hidden[-1] if hidden else obs_dim
        self.mean_head = _layer(last, act_dim, gain=0.01)  # small: the first policy is nearly N(0, σ²)
        self.value_head = _layer(last, 1, gain=1.0)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    @classmethod
    def for_env(cls, env: Any, **kwargs: Any) -> ActorCritic:
        """Size the network from a Gymnasium environment's (dict) observation and (box) action spaces."""
        space = env.observation_space
        obs_dim = sum(int(np.prod(s.shape)) for s in space.spaces.values()) if hasattr(space, "spaces") \
            else int(np.prod(space.shape))
        return cls(obs_dim, int(np.prod(env.action_space.shape)), **kwargs)

    @torch.no_grad()
    def copy_from_sb3(self, policy: Any) -> ActorCritic:
        """Copy the weights of an SB3 ``MultiInputPolicy`` (PPO, default ``net_arch``) into this network, which must
        have been built with ``shared=False`` and the same sizes. Returns ``self``."""
        if self.shared:
            raise ValueError("SB3's PPO policy has separate policy and value networks; build with shared=False")
        pairs = [(self.pi_body, policy.mlp_extractor.policy_net), (self.vf_body, policy.mlp_extractor.value_net),
                 (self.mean_head, policy.action_net), (self.value_head, policy.value_net)]
        for ours, theirs in pairs:
            ours.load_state_dict(theirs.state_dict())
        self.log_std.copy_(policy.log_std)
        return self

    def distribution(self, x: torch.Tensor) -> Normal:
        mean = self.mean_head(self.pi_body(x))
        return Normal(mean, self.log_std.exp().expand_as(mean))

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return self.value_head(self.vf_body(x)).squeeze(-1)

    def forward(self, x: torch.Tensor) -> tuple[Normal, torch.Tensor]:
        """The action distribution and the value, for a batch ``x`` of shape ``(n, obs_dim)``."""
        return self.distribution(x), self.value(x)

    @torch.no_grad()
    def predict(self, observation: Any, deterministic: bool = True) -> tuple[np.ndarray, None]:
        """SB3's ``predict`` signature, so :func:`rlcourse.contract.evaluate.evaluate` can evaluate this network."""
        dist = self.distribution(obs_to_tensor(observation))
        action = dist.mean if deterministic else dist.sample()
        return action.cpu().numpy(), None


def n_parameters(model: nn.Module) -> int:
    """Number of trainable scalars (shared modules counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --- 2. generalised advantage estimation -------------------------------------------------------------------------


def compute_gae(rewards: ArrayLike, values: ArrayLike, dones: ArrayLike, last_value: ArrayLike,
                gamma: float = 0.99, lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE(γ, λ) advantages and value targets for a rollout of ``T`` steps (shapes ``(T,)`` or ``(T, n_envs)``).

    ``values[t] = V(x_t)`` as computed while collecting; ``last_value = V(x_T)``, the value of the observation after
    the last step; ``dones[t] = 1`` if transition ``t`` ended its episode. Backwards in time::

        δ_t = r_t + γ (1 − d_t) V(x_{t+1}) − V(x_t)
        Â_t = δ_t + γ λ (1 − d_t) Â_{t+1}
        Ĝ_t = Â_t + V(x_t)        (the "returns": TD(λ) targets for the critic)

    The mask ``1 − d_t`` does two jobs: no bootstrap from the next episode's first state, and no advantage leaking
    backwards across the boundary. SB3's ``RolloutBuffer`` computes the same with ``1 − episode_starts[t + 1]``
    (and ``1 − dones`` at ``t = T − 1``). The dtype of ``rewards`` is kept (SB3 works in float32).
    """
    r = torch.as_tensor(rewards)
    dtype = r.dtype if r.is_floating_point() else torch.float32
    r = r.to(dtype)
    v = torch.as_tensor(values).to(dtype)
    d = torch.as_tensor(dones).to(dtype)
    last_v = torch.as_tensor(last_value).to(dtype)
    if not (r.shape == v.shape == d.shape) or last_v.shape != r.shape[1:]:
        raise ValueError(f"shape mismatch: rewards {tuple(r.shape)}, values {tuple(v.shape)}, dones {tuple(d.shape)},"
                         f" last_value {tuple(last_v.shape)} (expected {tuple(r.shape[1:])})")
    advantages = torch.zeros_like(r)
    last_gae = torch.zeros_like(last_v)
    for t in reversed(range(r.shape[0])):
        next_value = last_v if t == r.shape[0] - 1 else v[t + 1]
        not_done = 1.0 - d[t]
        delta = r[t] + gamma * next_value * not_done - v[t]
        last_gae = delta + gamma * lam * not_done * last_gae
        advantages[t] = last_gae
    return advantages, advantages + v


def sb3_gae(rewards: ArrayLike, values: ArrayLike, dones: ArrayLike, last_value: ArrayLike,
            gamma: float = 0.99, lam: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The same quantities from stable-baselines3's ``RolloutBuffer.compute_returns_and_advantage``.

    The data go in through ``RolloutBuffer.add`` exactly as SB3's ``collect_rollouts`` would add them: the flag
    stored with step ``t`` is ``episode_start = dones[t − 1]`` (does ``x_t`` begin a new episode?), and the
    ``dones`` passed at the end are those of the last step. Inputs as for :func:`compute_gae`; ``(T,)`` means one
    environment. Returns float32 arrays shaped like ``rewards``.
    """
    from gymnasium import spaces
    from stable_baselines3.common.buffers import RolloutBuffer

    r = np.asarray(rewards, dtype=np.float32)
    squeeze = r.ndim == 1
    as2d = (lambda a: np.asarray(a, dtype=np.float32).reshape(r.shape[0], -1))
    r, v, d = as2d(rewards), as2d(values), as2d(dones)
    n_steps, n_envs = r.shape
    buf = RolloutBuffer(n_steps, spaces.Box(-1, 1, (1,)), spaces.Box(-1, 1, (1,)), device="cpu",
                        gae_lambda=lam, gamma=gamma, n_envs=n_envs)
    episode_start = np.ones(n_envs, dtype=np.float32)  # the first observation of a rollout: irrelevant to GAE
    for t in range(n_steps):
        buf.add(np.zeros((n_envs, 1), np.float32), np.zeros((n_envs, 1), np.float32), r[t], episode_start,
                torch.as_tensor(v[t]), torch.zeros(n_envs))
        episode_start = d[t]
    buf.compute_returns_and_advantage(torch.as_tensor(np.asarray(last_value, np.float32).reshape(n_envs)), d[-1])
    adv, ret = buf.advantages.copy(), buf.returns.copy()
    return (adv[:, 0], ret[:, 0]) if squeeze else (adv, ret)


# --- 3. the losses ----------------------------------------------------------------------------------------------


def ppo_loss(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, clip_range: float = 0.2,
             entropy: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The clipped surrogate as a loss to minimise, ``−E[min(ρ Â, clip(ρ, 1 − ε, 1 + ε) Â)]``, and diagnostics.

    ``ρ = exp(log π_θ(a|x) − log π_old(a|x))``. Diagnostics (no gradient), with SB3's formulas: ``ratio_mean``;
    ``clip_fraction`` = share of samples with ``|ρ − 1| > ε``; ``approx_kl`` = mean of ``(ρ − 1) − log ρ``, an
    unbiased, non-negative estimator of KL(π_old ‖ π_θ); ``entropy`` if per-sample entropies are passed.
    """
    log_ratio = log_prob - old_log_prob
    ratio = log_ratio.exp()
    unclipped = advantages * ratio
    clipped = advantages * ratio.clamp(1.0 - clip_range, 1.0 + clip_range)
    loss = -torch.min(unclipped, clipped).mean()
    with torch.no_grad():
        info = {
            "policy_loss": loss.item(),
            "ratio_mean": ratio.mean().item(),
            "clip_fraction": ((ratio - 1.0).abs() > clip_range).float().mean().item(),
            "approx_kl": ((ratio - 1.0) - log_ratio).mean().item(),
        }
        if entropy is not None:
            info["entropy"] = entropy.mean().item()
    return loss, info


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """``1 − Var[G − V] / Var[G]``: 1 is perfect, 0 is no better than a constant, < 0 is worse. NaN if Var[G] = 0
    (SB3's convention)."""
    var = returns.var(unbiased=False).item()
    return float("nan") if var == 0 else 1.0 - (returns - values).var(unbiased=False).item() / var


def value_loss(values: torch.Tensor, returns: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """``E[(V_φ(x) − Ĝ)²]`` — **no ½**, so it equals SB3's ``train/value_loss``. (The source book writes
    ``½ E[…]``; with its c1 = 0.5 the critic gets half SB3's weight.) ``returns`` are targets and get no gradient."""
    loss = nn.functional.mse_loss(values, returns.detach())
    with torch.no_grad():
        info = {"value_loss": loss.item(), "explained_variance": explained_variance(values, returns)}
    return loss, info


# --- 4. the update ----------------------------------------------------------------------------------------------


@dataclass
class Batch:
    """Flat training data: one row per transition. ``values`` and ``log_probs`` are from collection time."""

    obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor

    def __len__(self) -> int:
        return self.obs.shape[0]

    def __getitem__(self, idx: Any) -> Batch:
        return Batch(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def ppo_step(model: ActorCritic, optimizer: torch.optim.Optimizer, mb: Batch, clip_range: float = 0.2,
             value_coef: float = 0.5, entropy_coef: float = 0.0, max_grad_norm: float = 0.5,
             normalize_advantage: bool = True) -> dict[str, float]:
    """One gradient step on one minibatch; the diagnostics are measured *before* the step (as SB3 logs them).

    Loss = policy loss + value_coef × value loss + entropy_coef × (−entropy). Advantages are normalised per
    minibatch; the critic regresses on ``mb.returns`` (the source book's listing passes the rewards, a bug).
    """
    dist, values = model(mb.obs)
    log_prob = dist.log_prob(mb.actions).sum(-1)
    entropy = dist.entropy().sum(-1)
    adv = mb.advantages
    if normalize_advantage and len(adv) > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg_loss, info = ppo_loss(log_prob, mb.log_probs, adv, clip_range, entropy)
    v_loss, v_info = value_loss(values, mb.returns)
    entropy_loss = -entropy.mean()
    loss = pg_loss + value_coef * v_loss + entropy_coef * entropy_loss
    optimizer.zero_grad()
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    return {**info, "value_loss": v_info["value_loss"], "entropy_loss": entropy_loss.item(), "loss": loss.item(),
            "grad_norm": float(grad_norm)}


def ppo_update(model: ActorCritic, optimizer: torch.optim.Optimizer, batch: Batch, n_epochs: int = 10,
               batch_size: int = 256, generator: torch.Generator | None = None, **step_kwargs: Any) -> dict[str, float]:
    """``n_epochs`` passes over ``batch`` in shuffled minibatches of ``batch_size``; returns the mean of each
    diagnostic over all minibatches (SB3 averages the same way), plus ``explained_variance`` of the collection-time
    values against the returns and ``n_minibatches``. ``step_kwargs`` go to :func:`ppo_step`."""
    logs: list[dict[str, float]] = []
    for _ in range(n_epochs):
        order = torch.randperm(len(batch), generator=generator)
        for start in range(0, len(batch), batch_size):
            logs.append(ppo_step(model, optimizer, batch[order[start:start + batch_size]], **step_kwargs))
    out = {k: float(np.mean([row[k] for row in logs])) for k in logs[0]}
    out["explained_variance"] = explained_variance(batch.values, batch.returns)
    out["n_minibatches"] = len(logs)
    return out


# --- 5. collecting experience and the training loop -------------------------------------------------------------


class EnvPool:
    """``n_envs`` copies of one task stepped in lock-step with automatic reset (a minimal ``DummyVecEnv``).

    Copy ``i`` is first reset with ``seed + i``; later resets continue each copy's own random stream. Finished
    episodes are recorded in ``finished`` as ``(return, success at the final step)``.
    """

    def __init__(self, env_id: str, n_envs: int, seed: int = 0):
        from rlcourse.envs.fetch import make_env

        self.envs = [make_env(env_id) for _ in range(n_envs)]
        self.obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(self.envs)]
        self.ep_return = np.zeros(n_envs)
        self.finished: list[tuple[float, bool]] = []
        space = self.envs[0].action_space
        self.low, self.high = space.low, space.high

    def __len__(self) -> int:
        return len(self.envs)

    def close(self) -> None:
        for env in self.envs:
            env.close()


@dataclass
class Rollout:
    """``n_steps × n_envs`` transitions; ``last_value = V(x_T)`` for each copy."""

    obs: torch.Tensor  # (T, n, obs_dim)
    actions: torch.Tensor  # (T, n, act_dim), unclipped samples (their log-probabilities are what we stored)
    log_probs: torch.Tensor  # (T, n)
    values: torch.Tensor  # (T, n)
    rewards: torch.Tensor  # (T, n), with γ V(s_final) added where an episode was truncated
    dones: torch.Tensor  # (T, n)
    last_value: torch.Tensor  # (n,)


@torch.no_grad()
def collect_rollout(pool: EnvPool, model: ActorCritic, n_steps: int, gamma: float = 0.99) -> Rollout:
    """Run the current stochastic policy for ``n_steps`` in every copy of ``pool``.

    Actions are sampled from π, clipped to the action box only when sent to the environment (the stored action is
    the sample itself, as in SB3). When an episode is *truncated* by the time limit, the final observation's value
    is added to the last reward (``r + γ V(s_final)``): the task did not end there, only our patience did.
    """
    n = len(pool)
    buf: dict[str, list[torch.Tensor]] = {k: [] for k in ("obs", "actions", "log_probs", "values", "rewards", "dones")}
    for _ in range(n_steps):
        x = obs_to_tensor(pool.obs)
        dist, value = model(x)
        action = dist.sample()
        env_action = np.clip(action.numpy(), pool.low, pool.high)
        rewards, dones = np.zeros(n, np.float32), np.zeros(n, np.float32)
        for i, env in enumerate(pool.envs):
            obs, r, terminated, truncated, info = env.step(env_action[i])
            pool.ep_return[i] += r
            if terminated or truncated:
                if truncated and not terminated:
                    r += gamma * model.value(obs_to_tensor(obs)).item()
                pool.finished.append((float(pool.ep_return[i]), bool(info.get("is_success", False))))
                pool.ep_return[i] = 0.0
                obs, _ = env.reset()
            rewards[i], dones[i] = r, float(terminated or truncated)
            pool.obs[i] = obs
        for k, v in (("obs", x), ("actions", action), ("log_probs", dist.log_prob(action).sum(-1)),
                     ("values", value), ("rewards", torch.as_tensor(rewards)), ("dones", torch.as_tensor(dones))):
            buf[k].append(v)
    return Rollout(**{k: torch.stack(v) for k, v in buf.items()}, last_value=model.value(obs_to_tensor(pool.obs)))


def rollout_to_batch(rollout: Rollout, gamma: float = 0.99, lam: float = 0.95) -> Batch:
    """Compute GAE on the ``(T, n)`` rollout, then flatten time and copies into one batch of ``T × n`` rows."""
    adv, ret = compute_gae(rollout.rewards, rollout.values, rollout.dones, rollout.last_value, gamma, lam)

    def flat(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(-1, *t.shape[2:])

    return Batch(flat(rollout.obs), flat(rollout.actions), flat(rollout.log_probs), flat(rollout.values),
                 flat(adv), flat(ret))


@dataclass
class PPOConfig:
    """Settings of the from-scratch loop. Defaults are the source book's, except the shorter rollout (``n_steps``)."""

    env_id: str = "FetchReachDense-v4"
    total_steps: int = 20_000
    n_envs: int = 8
    n_steps: int = 128  # per copy and iteration: a rollout holds n_steps × n_envs transitions
    n_epochs: int = 10
    batch_size: int = 256
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    value_coef: float = 0.5
    entropy_coef: float = 0.0
    max_grad_norm: float = 0.5
    hidden: tuple[int, ...] = (64, 64)
    shared: bool = False
    seed: int = 0
    torch_threads: int = 1  # tiny networks: one thread is fastest, and does not fight the simulator for cores


def train_ppo(cfg: PPOConfig, callback: Callable[[dict[str, Any]], None] | None = None
              ) -> tuple[ActorCritic, list[dict[str, Any]]]:
    """Collect → GAE → update, until ``cfg.total_steps`` transitions have been collected.

    Returns the model and one history row per iteration: steps, wall-clock, mean return and success rate of the
    episodes that finished in that iteration (stochastic policy), and the update diagnostics. ``callback(row)`` is
    called after each iteration (e.g. to print progress).
    """
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    pool = EnvPool(cfg.env_id, cfg.n_envs, cfg.seed)
    model = ActorCritic.for_env(pool.envs[0], hidden=cfg.hidden, shared=cfg.shared)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, eps=1e-5)  # SB3's Adam eps
    history: list[dict[str, Any]] = []
    steps, t0 = 0, time.perf_counter()
    with torch_threads(cfg.torch_threads):
        try:
            while steps < cfg.total_steps:
                rollout = collect_rollout(pool, model, cfg.n_steps, cfg.gamma)
                steps += cfg.n_steps * cfg.n_envs
                batch = rollout_to_batch(rollout, cfg.gamma, cfg.gae_lambda)
                diag = ppo_update(model, optimizer, batch, cfg.n_epochs, cfg.batch_size, generator,
                                  clip_range=cfg.clip_range, value_coef=cfg.value_coef, entropy_coef=cfg.entropy_coef,
                                  max_grad_norm=cfg.max_grad_norm)
                finished, pool.finished = pool.finished, []
                row = {"iteration": len(history) + 1, "timesteps": steps, "wall_s": time.perf_counter() - t0,
                       "episodes": len(finished),
                       "ep_return_mean": float(np.mean([f[0] for f in finished])) if finished else None,
                       "success_rate": float(np.mean([f[1] for f in finished])) if finished else None,
                       "std_mean": model.log_std.exp().mean().item(), **diag}
                history.append(row)
                if callback is not None:
                    callback(row)
        finally:
            pool.close()
    return model, history
