"""SAC + HER for the goal-conditioned Fetch tasks, written to train fast on a CPU (chapter 4).

One file, read top to bottom: a normaliser, an episode replay buffer that relabels goals when it samples, the two
networks, the update, and the training loop that writes a standard run folder. Compared with stable-baselines3's
SAC + ``HerReplayBuffer`` it makes the choices of the original HER implementation (Plappert et al., 2018), which
on FetchPush-v4 make each gradient step count for far more (``benchmarks/her_push_speed.py`` measures it):

- the inputs are ``observation`` and ``desired_goal`` only (``achieved_goal`` is already inside the observation);
  both are normalised by running statistics, with the standard deviation floored at ``norm_eps`` and the result
  clipped to ``±norm_clip``; achieved and desired goals share one goal normaliser, so their difference survives;
- critic targets are clipped to ``[-1/(1-γ), 0]``, the range of returns that sparse rewards in {-1, 0} allow
  (the entropy bonus can carry a soft value outside it; the clip removes that too);
- the entropy temperature α is fixed (``auto_ent_coef`` switches on SAC's automatic tuning, for chapter 4's study);
- the two critics run as one batched network (``torch.baddbmm``), the optimisers use ``foreach`` kernels, and the
  target update is one ``torch._foreach_lerp_``;
- optionally (chapter 5's speed study), layer-normalised critics (``layer_norm``), which keep the critic's targets
  well-conditioned at high update-to-data ratios, and environments stepped in a worker process (``env_worker``,
  :mod:`rlcourse.algos.stepper`): the gradient steps for one batch of transitions then run while the next batch is
  simulated, with actions chosen by the policy from before those steps.

Relabelling follows ``rlcourse.labs.her``: a fraction ``k/(k+1)`` of each batch gets a "future" goal, an achieved goal
from the same episode after the sampled step, and its reward is recomputed with the environment's
``compute_reward``. The learner assumes fixed-length episodes without early termination, which holds for Fetch.
It runs on the CPU (networks this small gain nothing from a GPU) and writes no TensorBoard log: ``curve.json``
holds the learning curve and the replay diagnostics.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from rlcourse.core.errors import RLCourseError
from rlcourse.contract.config import TrainConfig
from rlcourse.contract.runs import Run
from rlcourse.contract.writer import RunWriter
from rlcourse.algos.base import register
from rlcourse.algos.diagnostics import DIAGNOSTIC_COLUMNS
from rlcourse.algos.stepper import InlineEnvs, WorkerEnvs

TENSORS_FILE = "model.pt"  # the agent as tensors and plain values (torch.load with weights_only=True)


def squashed_log_prob(mu: torch.Tensor, log_std: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """log π(a) for a = tanh(u), u ~ N(mu, exp(log_std)²): the Gaussian log-density of u minus Σ log(1 − tanh² u),
    the latter in the overflow-free form 2 (log 2 − u − softplus(−2u)). Chapter 3 derives both terms."""
    gauss = (-0.5 * ((u - mu) * torch.exp(-log_std)).pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
    return gauss - (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)


@dataclass
class FastSACConfig:
    """Hyperparameters of :mod:`rlcourse.algos.fastsac` (set through ``TrainConfig.hyperparameters``)."""

    hidden: int = 128  # units in each of the two hidden layers (actor and both critics)
    batch_size: int = 256
    updates_per_step: float = 0.5  # gradient steps per environment step (update-to-data ratio)
    learning_rate: float = 1e-3
    tau: float = 0.05  # target network: θ̄ ← (1 − τ) θ̄ + τ θ
    gamma: float = 0.95
    ent_coef: float = 0.05  # entropy temperature α (fixed, or the starting value when auto_ent_coef is on)
    auto_ent_coef: bool = False  # learn α so that the policy's entropy tracks -dim(A) (SAC's automatic temperature)
    learning_starts: int = 1000  # random actions and no updates before this many environment steps
    clip_target: bool = True  # clip critic targets to [-1/(1-γ), 0] (sparse rewards in {-1, 0})
    normalize: bool = True  # feed the networks normalised inputs (False: the raw observation and goal)
    norm_eps: float = 0.01  # floor of the normaliser's standard deviation
    norm_clip: float = 5.0
    layer_norm: bool = False  # layer normalisation after each hidden layer of the critics (keeps high UTD stable)
    env_worker: bool = False  # step the environments in a worker process while the learner updates (2 cores)
    demonstrations: str = ""  # an .npz of whole episodes (save_demonstrations) put in the replay buffer first
    demonstrations_sha256: str = ""  # that file's SHA-256, checked before it is read


# Every setting's range (sizes capped where a typo would exhaust memory or time); those in _OPEN_BELOW exclude
# their lower end.
_RANGES = {"hidden": (1, 4096), "batch_size": (1, 2**18), "updates_per_step": (0.0, 64.0), "learning_rate": (0.0, 1.0),
           "tau": (0.0, 1.0), "gamma": (0.0, 0.999999), "ent_coef": (0.0, 100.0), "learning_starts": (0, 10**10),
           "norm_eps": (1e-8, 1e3), "norm_clip": (1e-3, 1e6)}
_OPEN_BELOW = {"updates_per_step", "learning_rate", "tau"}


def config_from(hyperparameters: dict[str, Any], cls: type = FastSACConfig, algo: str = "fastsac",
                ranges: dict[str, tuple[float, float]] | None = None) -> Any:
    """A :class:`FastSACConfig` (or ``cls``, a dataclass derived from it, with its extra ``ranges``) from a dict,
    with a one-line error for unknown names or mistyped values."""
    names = {f.name: f for f in fields(cls)}
    for name, value in hyperparameters.items():
        if name not in names:
            raise RLCourseError(f"unknown hyperparameter {name!r} for {algo}; valid: {', '.join(sorted(names))}")
        default = getattr(cls(), name)
        if isinstance(default, str):
            if not isinstance(value, str):
                raise RLCourseError(f"hyperparameter {name} expects a string, got {value!r}")
            continue
        if isinstance(default, bool) != isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RLCourseError(f"hyperparameter {name} expects {type(default).__name__}, got {value!r}")
        if isinstance(default, int) and not isinstance(default, bool) and not isinstance(value, int):
            raise RLCourseError(f"hyperparameter {name} expects an integer, got {value!r}")
        if not math.isfinite(value):
            raise RLCourseError(f"hyperparameter {name} must be finite, got {value!r}")
    cfg = cls(**hyperparameters)
    for name, (low, high) in {**_RANGES, **(ranges or {})}.items():
        value = getattr(cfg, name)
        if not low <= value <= high or (name in _OPEN_BELOW and value == low):
            bracket = "(" if name in _OPEN_BELOW else "["
            raise RLCourseError(f"{algo} hyperparameter {name}={value:g} is out of range {bracket}{low:g}, {high:g}]")
    if cfg.auto_ent_coef and cfg.ent_coef == 0:
        raise RLCourseError(f"{algo}: auto_ent_coef learns α starting from ent_coef; give ent_coef a positive start")
    if bool(cfg.demonstrations) != bool(cfg.demonstrations_sha256):
        raise RLCourseError(f"{algo}: demonstrations and demonstrations_sha256 go together (the file and its SHA-256)")
    if cfg.demonstrations_sha256 and not re.fullmatch(r"[0-9a-f]{64}", cfg.demonstrations_sha256):
        raise RLCourseError(f"{algo}: demonstrations_sha256 must be 64 lower-case hex digits")
    return cfg


DEMO_ARRAYS = ("observations", "achieved_goals", "desired_goals", "actions")


def save_demonstrations(path: Path | str, observations: np.ndarray, achieved_goals: np.ndarray,
                        desired_goals: np.ndarray, actions: np.ndarray) -> str:
    """Write whole episodes for ``demonstrations`` as an .npz of four float32 arrays, shapes (N, T + 1, obs),
    (N, T + 1, goal), (N, goal) and (N, T, act); returns the file's SHA-256 (what ``demonstrations_sha256`` takes)."""
    from rlcourse.core.io import atomic_write, sha256

    arrays = dict(zip(DEMO_ARRAYS, (np.asarray(a, dtype=np.float32) for a in
                                    (observations, achieved_goals, desired_goals, actions))))
    _check_demo_shapes(arrays, path)

    def write(tmp: Path) -> None:  # np.savez's layout, with fixed timestamps: the same episodes, the same bytes
        import zipfile

        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
            for name, array in arrays.items():
                with zf.open(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w") as fh:
                    np.lib.format.write_array(fh, array, allow_pickle=False)

    return sha256(atomic_write(Path(path), write))


def load_demonstrations(path: Path | str, expected_sha256: str) -> dict[str, np.ndarray]:
    """The episodes of a demonstrations file, after checking its SHA-256; arrays only (``allow_pickle=False``).
    A relative path is read from the project root."""
    from rlcourse.core.io import verify_sha256
    from rlcourse.core.paths import project_root

    path = Path(path)
    path = path if path.is_absolute() else project_root() / path
    if not path.is_file():
        raise RLCourseError(f"demonstrations file {path} not found")
    verify_sha256(path, expected_sha256, what="demonstrations file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k], dtype=np.float32) for k in DEMO_ARRAYS}
    except (KeyError, ValueError, OSError) as exc:
        raise RLCourseError(f"demonstrations file {path} is not a set of episodes ({exc})") from None
    _check_demo_shapes(arrays, path)
    return arrays


def _check_demo_shapes(a: dict[str, np.ndarray], path: Path | str) -> None:
    obs, ag, goal, act = (a[k] for k in DEMO_ARRAYS)
    ok = (obs.ndim == ag.ndim == act.ndim == 3 and goal.ndim == 2 and len(obs) == len(ag) == len(goal) == len(act) > 0
          and obs.shape[1] == ag.shape[1] == act.shape[1] + 1 and ag.shape[2] == goal.shape[1])
    if not ok or not all(np.isfinite(x).all() for x in (obs, ag, goal, act)):
        raise RLCourseError(f"demonstrations {path}: expected finite arrays (N, T+1, obs), (N, T+1, goal), (N, goal), "
                            f"(N, T, act); got {[x.shape for x in (obs, ag, goal, act)]}")


class Normalizer:
    """Running mean and standard deviation (floored at ``eps``); ``__call__`` normalises and clips."""

    def __init__(self, size: int, eps: float = 0.01, clip: float = 5.0):
        self.sum, self.sumsq, self.count = np.zeros(size), np.zeros(size), 0
        self.mean, self.std = np.zeros(size), np.ones(size)
        self.eps, self.clip = eps, clip

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.sum.shape[0])
        self.sum += x.sum(0)
        self.sumsq += (x**2).sum(0)
        self.count += len(x)
        self._refresh()

    def _refresh(self) -> None:
        if self.count:
            self.mean = self.sum / self.count
            self.std = np.sqrt(np.maximum(self.eps**2, self.sumsq / self.count - self.mean**2))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.mean) / self.std, -self.clip, self.clip)

    def state(self) -> dict[str, Any]:
        """Tensors and plain numbers only, so that ``torch.load(weights_only=True)`` can read it back."""
        return {"sum": torch.from_numpy(self.sum.copy()), "sumsq": torch.from_numpy(self.sumsq.copy()),
                "count": int(self.count), "eps": float(self.eps), "clip": float(self.clip)}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> Normalizer:
        n = cls(len(s["sum"]), s["eps"], s["clip"])
        as_array = lambda x: np.array(x.numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
        n.sum, n.sumsq, n.count = as_array(s["sum"]), as_array(s["sumsq"]), int(s["count"])
        n._refresh()
        return n


def buffer_episodes(total_steps: int, T: int, n_envs: int, n_demos: int = 0) -> int:
    """Episodes the replay buffer holds: every episode of the run (each environment may end the budget in the
    middle of one, hence ``n_envs + 1`` more) and the demonstrations."""
    return total_steps // T + n_envs + 1 + n_demos


class EpisodeBuffer:
    """Whole episodes of fixed length ``T``; :meth:`sample` relabels a fraction ``k/(k+1)`` with future goals.

    An observation is a vector (``obs_dim`` an int) or an array of any shape and dtype, e.g. one camera frame
    ``(3, H, W)`` uint8. With ``frames > 1`` each step stores only its newest frame, and :meth:`sample` stacks the
    last ``frames`` of them on the first axis, repeating the episode's first frame before its start, as the
    ``pixels`` wrapper does: every frame is stored once, not ``frames`` times."""

    def __init__(self, capacity: int, T: int, obs_dim: int | tuple[int, ...], goal_dim: int, act_dim: int, k: int,
                 obs_dtype: Any = np.float32, frames: int = 1):
        self.T, self.k, self.capacity, self.size, self.next = T, k, capacity, 0, 0
        shape = (obs_dim,) if isinstance(obs_dim, int) else tuple(obs_dim)
        if frames > 1 and len(shape) < 2:
            raise RLCourseError("frame stacking needs array observations (channels first), not vectors")
        self.frames = frames
        self.obs = np.zeros((capacity, T + 1, *shape), obs_dtype)
        self.ag = np.zeros((capacity, T + 1, goal_dim), np.float32)
        self.goal = np.zeros((capacity, goal_dim), np.float32)
        self.act = np.zeros((capacity, T, act_dim), np.float32)

    def add(self, obs: np.ndarray, ag: np.ndarray, goal: np.ndarray, act: np.ndarray) -> None:
        i = self.next
        self.obs[i], self.ag[i], self.goal[i], self.act[i] = obs, ag, goal, act
        self.next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, n: int, rng: np.random.Generator, compute_reward: Any) -> dict[str, np.ndarray]:
        """``n`` transitions: observation, goal, action, reward (recomputed), next observation, relabelled flag."""
        ep = rng.integers(0, self.size, n)
        t = rng.integers(0, self.T, n)
        relabel = rng.random(n) < (self.k / (self.k + 1.0) if self.k > 0 else 0.0)
        future = rng.integers(t + 1, self.T + 1)  # an achieved goal after this step (this step's outcome included)
        goal = np.where(relabel[:, None], self.ag[ep, future], self.goal[ep])
        next_ag = self.ag[ep, t + 1]
        reward = np.asarray(compute_reward(next_ag, goal, None), dtype=np.float32)
        return {"obs": self.observations(ep, t), "goal": goal, "act": self.act[ep, t], "reward": reward,
                "next_obs": self.observations(ep, t + 1), "next_ag": next_ag, "relabelled": relabel}

    def observations(self, ep: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The observation the policy saw at step ``t`` of episode ``ep``: with ``frames > 1`` the stack of frames
        ``t - frames + 1 ... t`` (indices below 0 repeat frame 0), oldest first, on the first observation axis."""
        if self.frames == 1:
            return self.obs[ep, t]
        idx = np.maximum(t[:, None] - np.arange(self.frames - 1, -1, -1)[None, :], 0)  # (n, frames)
        stack = self.obs[ep[:, None], idx]  # (n, frames, C, ...)
        return stack.reshape(len(ep), -1, *self.obs.shape[3:])


class _TwinLinear(nn.Module):
    """Two independent linear layers applied to a (2, batch, in) tensor in one ``baddbmm``."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        bound = 1.0 / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(2, n_in, n_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(2, 1, n_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class _TwinLayerNorm(nn.Module):
    """Layer normalisation over the last axis with a separate gain and bias for each of the two critics."""

    def __init__(self, n: int):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(2, 1, n)), nn.Parameter(torch.zeros(2, 1, n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:]) * self.weight + self.bias


class TwinCritic(nn.Module):
    """Q1 and Q2 in one module; ``forward`` returns a (2, batch) tensor. With ``layer_norm`` each hidden layer's
    pre-activation is normalised (per critic, per sample), which bounds the features the output layer sees."""

    def __init__(self, in_dim: int, act_dim: int, hidden: int, layer_norm: bool = False):
        super().__init__()
        self.l1, self.l2, self.l3 = _TwinLinear(in_dim + act_dim, hidden), _TwinLinear(hidden, hidden), _TwinLinear(hidden, 1)
        self.n1, self.n2 = (_TwinLayerNorm(hidden), _TwinLayerNorm(hidden)) if layer_norm else (nn.Identity(), nn.Identity())

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        z = torch.cat([x, a], -1).expand(2, -1, -1)
        return self.l3(F.relu(self.n2(self.l2(F.relu(self.n1(self.l1(z))))))).squeeze(-1)


class Actor(nn.Module):
    """Squashed Gaussian policy: tanh of a Gaussian sample, with the log-density corrected for the tanh."""

    def __init__(self, in_dim: int, act_dim: int, hidden: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.mu, self.log_std = nn.Linear(hidden, act_dim), nn.Linear(hidden, act_dim)

    def forward(self, x: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = self.body(x)
        mu = self.mu(z)
        if deterministic:
            return torch.tanh(mu), None
        log_std = self.log_std(z).clamp(-20.0, 2.0)
        u = mu + log_std.exp() * torch.randn_like(mu)
        return torch.tanh(u), squashed_log_prob(mu, log_std, u)  # chapter 3: Gaussian density minus log|tanh'(u)|


class Agent:
    """Networks, optimisers and normalisers; ``predict`` has stable-baselines3's signature for the evaluation loop."""

    def __init__(self, obs_dim: int, goal_dim: int, act_dim: int, cfg: FastSACConfig):
        self.cfg, self.dims = cfg, (obs_dim, goal_dim, act_dim)
        d = obs_dim + goal_dim
        self.actor = Actor(d, act_dim, cfg.hidden)
        self.critic = TwinCritic(d, act_dim, cfg.hidden, cfg.layer_norm)
        self.target = TwinCritic(d, act_dim, cfg.hidden, cfg.layer_norm)
        self.target.load_state_dict(self.critic.state_dict())
        self.target.requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), cfg.learning_rate, foreach=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), cfg.learning_rate, foreach=True)
        self.obs_norm = Normalizer(obs_dim, cfg.norm_eps, cfg.norm_clip)
        self.goal_norm = Normalizer(goal_dim, cfg.norm_eps, cfg.norm_clip)
        # The temperature as log α, so that it stays positive; learned only with auto_ent_coef (see update).
        self.log_alpha = torch.tensor(math.log(max(cfg.ent_coef, 1e-8)), requires_grad=cfg.auto_ent_coef)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], cfg.learning_rate) if cfg.auto_ent_coef else None
        self.target_entropy = -float(act_dim)
        self._critic_params, self._target_params = list(self.critic.parameters()), list(self.target.parameters())

    @property
    def alpha(self) -> float:
        """The current entropy temperature α."""
        return float(self.log_alpha.detach().exp()) if self.cfg.auto_ent_coef else self.cfg.ent_coef

    def inputs(self, obs: np.ndarray, goal: np.ndarray) -> torch.Tensor:
        if not self.cfg.normalize:
            return torch.as_tensor(np.concatenate([obs, goal], -1), dtype=torch.float32)
        return torch.as_tensor(np.concatenate([self.obs_norm(obs), self.goal_norm(goal)], -1), dtype=torch.float32)

    def act(self, obs: np.ndarray, goal: np.ndarray, deterministic: bool = False) -> np.ndarray:
        with torch.no_grad():
            return self.actor(self.inputs(obs, goal), deterministic)[0].numpy()

    def act_on(self, observations: list[dict[str, np.ndarray]], deterministic: bool = False) -> np.ndarray:
        """Actions for one observation dict per environment (the training loop's call)."""
        return self.act(np.stack([o["observation"] for o in observations]),
                        np.stack([o["desired_goal"] for o in observations]), deterministic)

    def observe(self, obs: np.ndarray, ag: np.ndarray, goal: np.ndarray) -> None:
        """Update the input normalisers with one finished episode (its stored observations and goals)."""
        self.obs_norm.update(obs)
        self.goal_norm.update(np.concatenate([ag, goal[None]]))

    def predict(self, observation: dict[str, np.ndarray], deterministic: bool = True) -> tuple[np.ndarray, None]:
        single = np.ndim(observation["observation"]) == 1
        obs, goal = np.atleast_2d(observation["observation"]), np.atleast_2d(observation["desired_goal"])
        action = self.act(obs, goal, deterministic)
        return (action[0] if single else action), None

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One gradient step on the critics, one on the actor, one on the temperature (with ``auto_ent_coef``), one
        Polyak step; returns the critics' means and the temperature used."""
        alpha = self.alpha
        x, x2 = self.inputs(batch["obs"], batch["goal"]), self.inputs(batch["next_obs"], batch["goal"])
        a, r = torch.as_tensor(batch["act"]), torch.as_tensor(batch["reward"])
        with torch.no_grad():
            y = self.target_value(r, x2, x2, alpha)
        q = self.critic_step(x, a, y)
        self.actor_step(x, alpha)
        return self.finish_update(q, alpha)

    # The update's parts, shared with the pixel agent (rlcourse.algos.pixelsac), whose inputs come from an encoder.

    def target_value(self, r: torch.Tensor, x2_actor: torch.Tensor, x2_critic: torch.Tensor,
                     alpha: float) -> torch.Tensor:
        """The soft Bellman target r + γ (min Q̄(s', a') − α log π(a'|s')), a' ~ π(s'), clipped with ``clip_target``;
        the actor and the target critics may see the next state through different inputs (the pixel agent's online
        and target encoders)."""
        cfg = self.cfg
        a2, logp2 = self.actor(x2_actor)
        y = r + cfg.gamma * (self.target(x2_critic, a2).min(0).values - alpha * logp2)
        return y.clamp(-1.0 / (1.0 - cfg.gamma), 0.0) if cfg.clip_target else y

    def critic_step(self, x: torch.Tensor, a: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One gradient step of ``critic_opt`` (the critics, and the encoder where there is one) on the squared error
        of both critics against ``y``; returns Q(x, a), detached."""
        q = self.critic(x, a)
        critic_loss = F.mse_loss(q, y.expand(2, -1), reduction="none").mean(1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        return q.detach()

    def actor_step(self, x: torch.Tensor, alpha: float) -> None:
        """One gradient step of the actor on E[α log π − min Q] with the critics frozen, then, with
        ``auto_ent_coef``, one of the temperature."""
        pi, logp = self.actor(x)
        self.critic.requires_grad_(False)
        actor_loss = (alpha * logp - self.critic(x, pi).min(0).values).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        self.critic.requires_grad_(True)
        if self.alpha_opt is not None:
            # SAC's temperature loss -log α · (log π + H_target): its gradient raises α while the policy's entropy
            # -E[log π] is below the target and lowers it while above, whatever the critic says.
            alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
            self.alpha_opt.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_opt.step()

    def finish_update(self, q: torch.Tensor, alpha: float) -> dict[str, float]:
        """The Polyak step of the target critics, and the update's diagnostics."""
        with torch.no_grad():
            torch._foreach_lerp_(self._target_params, self._critic_params, self.cfg.tau)
        return {"q1_mean": float(q[0].mean()), "q2_mean": float(q[1].mean()), "q_min_mean": float(q.min(0).values.mean()),
                "q_gap_mean": float((q[0] - q[1]).abs().mean()), "alpha": alpha}

    def state(self) -> dict[str, Any]:
        return {"config": asdict(self.cfg), "dims": list(self.dims), "actor": self.actor.state_dict(),
                "critic": self.critic.state_dict(), "target": self.target.state_dict(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                **({"obs_norm": self.obs_norm.state()} if self.obs_norm is not None else {}),
                "goal_norm": self.goal_norm.state(),
                "log_alpha": self.log_alpha.detach().clone(),
                **({"alpha_opt": self.alpha_opt.state_dict()} if self.alpha_opt is not None else {})}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> Agent:
        agent = cls(*s["dims"], FastSACConfig(**s["config"]))
        for name in ("actor", "critic", "target", "actor_opt", "critic_opt"):
            getattr(agent, name).load_state_dict(s[name])
        agent.obs_norm, agent.goal_norm = Normalizer.from_state(s["obs_norm"]), Normalizer.from_state(s["goal_norm"])
        if "log_alpha" in s:  # files written before the automatic temperature hold a fixed α only
            with torch.no_grad():
                agent.log_alpha.copy_(s["log_alpha"])
        if agent.alpha_opt is not None:
            agent.alpha_opt.load_state_dict(s["alpha_opt"])
        return agent


def save_agent(agent: Agent, path: Path | str) -> None:
    """Write the agent's tensors and plain values (no pickled objects) to ``path``."""
    torch.save(agent.state(), path)


def _legacy_numpy_globals() -> list[Any]:
    """The numpy reconstructors that reference runs saved before the tensor-only format need (arrays, not code)."""
    import numpy.core.multiarray as multiarray

    return [multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.float64))]


def load_agent(path: Path | str, cls: Any = None) -> Agent:
    """Read an agent (``cls``, by default :class:`Agent`) written by :func:`save_agent` with
    ``torch.load(weights_only=True)``: tensors, numbers and (for older files) numpy arrays only; a file holding
    anything else is refused without running it.
    Callers verify the file's SHA-256 first (:meth:`rlcourse.contract.runs.Run.verified`)."""
    import pickle
    import warnings

    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(_legacy_numpy_globals()):
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise RLCourseError(f"cannot load checkpoint {path}: it holds objects other than tensors and plain values; "
                            "refused without running them") from None
    except Exception as exc:  # truncated or foreign files surface as many exception types
        raise RLCourseError(f"cannot load checkpoint {path}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None
    cls = Agent if cls is None else cls
    try:
        return cls.from_state(state)
    except Exception as exc:
        raise RLCourseError(f"cannot load checkpoint {path}: not a {cls.__module__.rsplit('.', 1)[-1]} agent "
                            f"({type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:120]})") from None


class FastSACBackend:
    """:mod:`rlcourse.algos.fastsac` as a backend of the run loop."""

    name = "fastsac"
    off_policy = True

    def validate(self, cfg: TrainConfig) -> None:
        hp = self.config(cfg.hyperparameters)
        if hp.demonstrations:
            load_demonstrations(hp.demonstrations, hp.demonstrations_sha256)  # present, unmodified, well-formed
        if cfg.normalize_obs:
            raise RLCourseError("fastsac normalises its inputs itself (hyperparameter normalize); leave normalize_obs off")
        if cfg.her and cfg.her_kwargs.get("goal_selection_strategy", "future") != "future":
            raise RLCourseError("fastsac relabels with the 'future' strategy only")

    def hyperparameters(self, cfg: TrainConfig) -> dict[str, Any]:
        return dict(sorted(asdict(self.config(cfg.hyperparameters)).items()))

    def policy_name(self, cfg: TrainConfig) -> str:
        return "rlcourse.algos.fastsac.Agent"

    def extra_columns(self, cfg: TrainConfig) -> list[str]:
        return DIAGNOSTIC_COLUMNS if cfg.diagnostics else []

    def load_policy(self, run: Run) -> Agent:
        return self.load_agent(run.verified("model"))

    # What the training loop needs to know about the agent; the pixel backend (rlcourse.algos.pixelsac) overrides it.
    config = staticmethod(config_from)
    save_agent = staticmethod(save_agent)
    load_agent = staticmethod(load_agent)

    def stored(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """What the replay buffer keeps of one observation (the policy's input besides the goal)."""
        return observation["observation"]

    def stored_shape(self, space: Any) -> tuple[int, ...]:
        """The shape of :meth:`stored` for an observation of ``space``."""
        return space["observation"].shape

    def new_agent(self, probe: Any, hp: Any) -> Agent:
        space = probe.observation_space
        return Agent(space["observation"].shape[0], space["desired_goal"].shape[0], probe.action_space.shape[0], hp)

    def new_buffer(self, probe: Any, capacity: int, k: int) -> EpisodeBuffer:
        space = probe.observation_space
        return EpisodeBuffer(capacity, probe.spec.max_episode_steps, space["observation"].shape[0],
                             space["desired_goal"].shape[0], probe.action_space.shape[0], k=k)

    def train(self, cfg: TrainConfig, writer: RunWriter) -> Run:
        """The training loop: act in ``n_envs`` environments, store whole episodes, update ``updates_per_step``
        times per environment step, and report to the writer after every vectorised step. After a kill it resumes
        from the last checkpoint (episodes in progress at the kill are discarded)."""
        from rlcourse.envs.spec import make

        hp = self.config(cfg.hyperparameters)
        k = int(cfg.her_kwargs.get("n_sampled_goal", 4)) if cfg.her else 0
        probe = make(writer.spec)  # shapes, episode length, compute_reward and action spaces, never stepped
        try:
            envs = WorkerEnvs(writer.spec.to_json(), cfg.n_envs, writer.shared_curriculum()) if hp.env_worker else \
                InlineEnvs(writer.env_fns())
            try:
                return self._train(cfg, writer, hp, k, envs, probe)
            finally:
                envs.close()
        finally:
            probe.close()

    def _train(self, cfg: TrainConfig, writer: RunWriter, hp: FastSACConfig, k: int, envs: InlineEnvs | WorkerEnvs,
               probe: Any) -> Run:
        compute_reward = probe.unwrapped.compute_reward
        T = probe.spec.max_episode_steps
        space = probe.observation_space
        dims = (self.stored_shape(space), space["desired_goal"].shape[0], probe.action_space.shape[0])
        demos = load_demonstrations(hp.demonstrations, hp.demonstrations_sha256) if hp.demonstrations else None
        if demos is not None and (demos["actions"].shape[1:] != (T, dims[2]) or demos["observations"].shape[2:] != dims[0]
                                  or demos["desired_goals"].shape[1] != dims[1]):
            raise RLCourseError(f"demonstrations {hp.demonstrations} do not fit {cfg.env_id}: episodes of "
                                f"{demos['actions'].shape[1]} steps with observations of {demos['observations'].shape[2]}")
        n_demos = 0 if demos is None else len(demos["actions"])
        buffer = self.new_buffer(probe, buffer_episodes(cfg.total_steps, T, cfg.n_envs, n_demos), k)
        rng = np.random.default_rng(cfg.seed)
        torch.manual_seed(cfg.seed)
        agent = self.new_agent(probe, hp)
        if demos is not None and not writer.resume:  # (a resumed run's saved buffer holds them already)
            for obs_, ag_, goal_, act_ in zip(*(demos[k_] for k_ in DEMO_ARRAYS)):
                buffer.add(obs_, ag_, goal_, act_)
                agent.observe(obs_, ag_, goal_)
        steps, updates, debt, resumed = 0, 0, 0.0, 0
        recent: list[tuple[float, float]] = []  # (return, success) of the last 100 training episodes
        if writer.resume:
            r = writer.resume
            agent = self.load_agent(r.file(TENSORS_FILE))
            with np.load(r.file("buffer.npz"), allow_pickle=False) as z:
                n = int(z["size"])
                buffer.obs[:n], buffer.ag[:n], buffer.goal[:n], buffer.act[:n] = z["obs"], z["ag"], z["goal"], z["act"]
                buffer.size = buffer.next = n
            steps, updates, debt, resumed = r.steps, int(r.extra.get("updates", 0)), float(r.extra.get("debt", 0.0)), \
                r.resumed
            rng = np.random.default_rng([cfg.seed, resumed])
            torch.manual_seed(cfg.seed + 7919 * resumed)
        obs = envs.reset([cfg.seed + i + 10_000 * resumed for i in range(cfg.n_envs)])
        action_spaces = [copy.deepcopy(probe.action_space) for _ in range(cfg.n_envs)]
        for i, space in enumerate(action_spaces):  # random actions before learning_starts, one stream per environment
            space.seed(cfg.seed + i)
        episodes = [self._new_episode(o) for o in obs]
        last_diag: dict[str, Any] = {}

        def stats() -> dict[str, Any]:
            values: dict[str, Any] = {"ep_return_mean": float(np.mean([x[0] for x in recent])) if recent else None,
                                      "ep_length_mean": float(T) if recent else None,
                                      "success_rate": float(np.mean([x[1] for x in recent])) if recent else None}
            if cfg.diagnostics and last_diag:
                values.update(_diagnostics(last_diag))
            return values

        def save_buffer(tmp: Path) -> None:
            n = buffer.size
            with open(tmp, "wb") as fh:
                np.savez(fh, size=n, obs=buffer.obs[:n], ag=buffer.ag[:n], goal=buffer.goal[:n], act=buffer.act[:n])

        def pay_debt() -> None:  # the gradient steps owed: updates_per_step per environment step since learning_starts
            nonlocal debt, updates, last_diag
            while debt >= 1.0:
                batch = buffer.sample(hp.batch_size, rng, compute_reward)
                last_diag = {**agent.update(batch), "batch": batch}
                updates += 1
                debt -= 1.0

        while steps < cfg.total_steps:
            if steps < hp.learning_starts:
                actions = np.stack([space.sample() for space in action_spaces]).astype(np.float32)
            else:
                actions = agent.act_on(obs)
            envs.send(actions)
            if hp.env_worker:
                pay_debt()  # while the worker simulates this step
            result = envs.recv()
            for i, o in enumerate(result.obs):
                ep = episodes[i]
                ep["act"].append(actions[i])
                ep["obs"].append(self.stored(o))
                ep["ag"].append(o["achieved_goal"])
                ep["ret"] += result.rewards[i]
                if result.done[i]:
                    if len(ep["act"]) != T:
                        raise RLCourseError(f"fastsac needs fixed-length episodes of {T} steps; got {len(ep['act'])}")
                    buffer.add(np.array(ep["obs"]), np.array(ep["ag"]), ep["goal"], np.array(ep["act"]))
                    agent.observe(np.array(ep["obs"]), np.array(ep["ag"]), ep["goal"])
                    recent = (recent + [(ep["ret"], result.success[i])])[-100:]
                    o = result.next_obs[i]
                    episodes[i] = self._new_episode(o)
                obs[i] = o
            steps += cfg.n_envs
            if steps >= hp.learning_starts and buffer.size > 0:
                debt += hp.updates_per_step * cfg.n_envs
                if not hp.env_worker:
                    pay_debt()
            tick = writer.tick(steps, lambda: agent, stats)
            if tick.stop:
                break
            if tick.checkpoint:
                writer.save_checkpoint(steps, {TENSORS_FILE: lambda tmp: self.save_agent(agent, tmp),
                                               "buffer.npz": save_buffer},
                                       extra={"updates": updates, "debt": debt})
        if hp.env_worker:
            pay_debt()  # the last step's gradient steps, owed to the worker's overlap
        return writer.finish(steps, {"model": (TENSORS_FILE, lambda tmp: self.save_agent(agent, tmp))}, agent,
                             device="cpu")

    def _new_episode(self, o: dict[str, np.ndarray]) -> dict[str, Any]:
        return {"obs": [self.stored(o)], "ag": [o["achieved_goal"]], "goal": o["desired_goal"], "act": [], "ret": 0.0}


def _diagnostics(diag: dict[str, Any]) -> dict[str, float]:
    """The replay diagnostics (``rlcourse.algos.diagnostics.DIAGNOSTIC_COLUMNS``) of the last update's batch."""
    b = diag["batch"]
    dist = np.linalg.norm(b["next_ag"] - b["goal"], axis=-1)
    r = b["reward"]
    values = [diag["q1_mean"], diag["q2_mean"], diag["q_min_mean"], diag["q_gap_mean"], diag["alpha"],
              float(r.mean()), float(r.min()), float(r.max()), float(dist.mean()), float(np.mean(dist < 0.05))]
    return dict(zip(DIAGNOSTIC_COLUMNS, values))


register(FastSACBackend())
