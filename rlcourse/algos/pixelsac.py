"""SAC + HER from camera frames (chapter 8; reused by chapters 9 and 10).

The algorithm is :mod:`rlcourse.algos.fastsac`'s, with the state vector replaced by what a camera sees: its training
loop, replay buffer, relabelling, critics, actor and update are reused, and this file adds only what pixels change.

**Inputs.** The environment spec carries the ``pixels`` wrapper (:mod:`rlcourse.envs.wrappers`): each observation is
``pixels`` (the last ``frames`` RGB frames, uint8, channels first), ``desired_goal`` and ``achieved_goal``. The
policy and the critics read the frames and the desired goal only (``PixelObservation.POLICY_KEYS``). Hindsight
relabelling still uses the achieved-goal *vectors* the simulator reports: that is not a leak, because they enter
only the rewards computed in training, never an input, and a deployed policy needs neither rewards nor achieved
goals.

**The replay buffer** stores one uint8 frame per step (the newest of the stack) and rebuilds the stacks when it
samples, so a frame costs its bytes once: 3·H·W bytes per step, 12 KiB at 64², about 1.2 GiB for 100,000 steps
(:func:`replay_bytes`).

**The encoder** (:class:`~rlcourse.algos.pixels.PixelEncoder`) belongs to the critic. Its features, with the
normalised goal, are the input of both critics and of the actor, but only the critic's loss trains it: the actor
reads the features *detached*. (Trained by the actor too, the encoder would be pulled towards features that make
the current critic's value large rather than features that predict it; SAC-AE and DrQ found that this
destabilises learning.) The target critics read a target encoder, a Polyak average of the encoder with its own
rate ``encoder_tau``.

**DrQ** (Kostrikov et al., 2021): each update shifts the frames of the batch, current and next independently, by
up to ``pad`` pixels (:func:`~rlcourse.algos.pixels.random_shift`); the goal vector is never shifted. Acting and
evaluation see unshifted frames. ``pad = 0`` switches the augmentation off, for the chapter's ablation.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlcourse.algos.base import register
from rlcourse.algos.fastsac import (Agent, EpisodeBuffer, FastSACBackend, FastSACConfig, buffer_episodes, config_from,
                                    load_agent)
from rlcourse.algos.pixels import PixelEncoder, random_shift
from rlcourse.contract.config import TrainConfig
from rlcourse.core.errors import RLCourseError

FRAME_CHANNELS = 3  # RGB


@dataclass
class PixelSACConfig(FastSACConfig):
    """:class:`~rlcourse.algos.fastsac.FastSACConfig` plus the encoder and the augmentation. ``normalize`` applies
    to the goal only (the frames are scaled to [0, 1] inside the encoder); ``demonstrations`` are not supported."""

    feature_dim: int = 50  # the encoder's output, concatenated with the normalised goal
    width: int = 32  # channels of each of the encoder's three convolutions, and its number of keypoints
    pad: int = 4  # DrQ's random shift, in pixels (0: no augmentation)
    encoder_tau: float = 0.05  # target encoder: φ̄ ← (1 − encoder_tau) φ̄ + encoder_tau φ


_PIXEL_RANGES = {"feature_dim": (1, 4096), "width": (1, 1024), "pad": (0, 32), "encoder_tau": (0.0, 1.0)}


def pixel_config_from(hyperparameters: dict[str, Any]) -> PixelSACConfig:
    """A :class:`PixelSACConfig` from a dict, with a one-line error for unknown names or bad values."""
    cfg = config_from(hyperparameters, PixelSACConfig, "pixelsac", _PIXEL_RANGES)
    if cfg.demonstrations:
        raise RLCourseError("pixelsac: demonstrations are state episodes; a pixel agent cannot use them")
    return cfg


class PixelAgent(Agent):
    """Encoder, target encoder, actor, critics and the goal normaliser; ``predict`` reads ``pixels`` and
    ``desired_goal`` from an observation dict, nothing else."""

    def __init__(self, frame_shape: tuple[int, int, int], frames: int, goal_dim: int, act_dim: int,
                 cfg: PixelSACConfig):
        super().__init__(cfg.feature_dim, goal_dim, act_dim, cfg)  # actor and critics on features + goal
        self.frame_shape, self.frames = tuple(int(x) for x in frame_shape), int(frames)
        channels, height, width = self.frame_shape
        self.encoder = PixelEncoder(channels * frames, (height, width), cfg.feature_dim, cfg.width)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        # the critic's optimiser also trains the encoder; the actor's never sees it
        self.critic_opt = torch.optim.Adam([*self.critic.parameters(), *self.encoder.parameters()],
                                           cfg.learning_rate, foreach=True)
        self._encoder_params = list(self.encoder.parameters())
        self._target_encoder_params = list(self.target_encoder.parameters())
        self.obs_norm = None  # type: ignore[assignment]  # frames are not normalised by running statistics

    def goal_inputs(self, goal: np.ndarray) -> torch.Tensor:
        g = self.goal_norm(goal) if self.cfg.normalize else goal
        return torch.as_tensor(g, dtype=torch.float32)

    def features(self, frames: np.ndarray | torch.Tensor, goal: np.ndarray, encoder: Any = None) -> torch.Tensor:
        """``[encoder(frames), normalised goal]``: the input of the actor and the critics."""
        encoder = self.encoder if encoder is None else encoder
        return torch.cat([encoder(torch.as_tensor(frames)), self.goal_inputs(goal)], -1)

    def act(self, frames: np.ndarray, goal: np.ndarray, deterministic: bool = False) -> np.ndarray:
        with torch.no_grad():
            return self.actor(self.features(frames, goal), deterministic)[0].numpy()

    def act_on(self, observations: list[dict[str, np.ndarray]], deterministic: bool = False) -> np.ndarray:
        return self.act(np.stack([o["pixels"] for o in observations]),
                        np.stack([o["desired_goal"] for o in observations]), deterministic)

    def observe(self, obs: np.ndarray, ag: np.ndarray, goal: np.ndarray) -> None:
        self.goal_norm.update(np.concatenate([ag, goal[None]]))

    def predict(self, observation: dict[str, np.ndarray], deterministic: bool = True) -> tuple[np.ndarray, None]:
        single = np.ndim(observation["pixels"]) == 3
        frames = observation["pixels"][None] if single else observation["pixels"]
        goal = np.atleast_2d(observation["desired_goal"])
        action = self.act(frames, goal, deterministic)
        return (action[0] if single else action), None

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """DrQ-shifted frames; the critics (and through them the encoder) step towards the soft target; the actor
        steps on the features detached; then both Polyak steps."""
        cfg, alpha = self.cfg, self.alpha
        obs = random_shift(torch.as_tensor(batch["obs"]), cfg.pad)
        nxt = random_shift(torch.as_tensor(batch["next_obs"]), cfg.pad)
        a, r = torch.as_tensor(batch["act"]), torch.as_tensor(batch["reward"])
        with torch.no_grad():
            y = self.target_value(r, self.features(nxt, batch["goal"]),
                                  self.features(nxt, batch["goal"], self.target_encoder), alpha)
        x = self.features(obs, batch["goal"])
        q = self.critic_step(x, a, y)
        self.actor_step(x.detach(), alpha)  # detached: the actor's loss puts no gradient into the encoder
        with torch.no_grad():
            torch._foreach_lerp_(self._target_encoder_params, self._encoder_params, cfg.encoder_tau)
        return self.finish_update(q, alpha)

    def state(self) -> dict[str, Any]:
        return {**super().state(), "frame_shape": list(self.frame_shape), "frames": self.frames,
                "encoder": self.encoder.state_dict(), "target_encoder": self.target_encoder.state_dict()}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> PixelAgent:
        _, goal_dim, act_dim = s["dims"]
        agent = cls(tuple(s["frame_shape"]), int(s["frames"]), goal_dim, act_dim, PixelSACConfig(**s["config"]))
        for name in ("actor", "critic", "target", "encoder", "target_encoder", "actor_opt", "critic_opt"):
            getattr(agent, name).load_state_dict(s[name])
        agent.goal_norm = type(agent.goal_norm).from_state(s["goal_norm"])
        with torch.no_grad():
            agent.log_alpha.copy_(s["log_alpha"])
        if agent.alpha_opt is not None:
            agent.alpha_opt.load_state_dict(s["alpha_opt"])
        return agent


def load_pixel_agent(path: Any) -> PixelAgent:
    """A :class:`PixelAgent` from a file written by :func:`~rlcourse.algos.fastsac.save_agent`, read without
    executing code (``torch.load(weights_only=True)``); callers verify the SHA-256 first."""
    return load_agent(path, PixelAgent)


def frame_layout(space: Any) -> tuple[tuple[int, int, int], int]:
    """``((3, H, W), frames)`` of a ``pixels`` observation space, or a one-line error if there is none."""
    pixels = getattr(space, "spaces", {}).get("pixels")
    if pixels is None or len(pixels.shape) != 3 or pixels.shape[0] % FRAME_CHANNELS:
        raise RLCourseError("pixelsac needs the pixels wrapper in the environment spec (e.g. --wrap pixels:size=64)")
    return (FRAME_CHANNELS, *pixels.shape[1:]), pixels.shape[0] // FRAME_CHANNELS


class PixelSACBackend(FastSACBackend):
    """:mod:`rlcourse.algos.pixelsac` as a backend of the run loop: fastsac's loop with frames for observations."""

    name = "pixelsac"
    config = staticmethod(pixel_config_from)
    load_agent = staticmethod(load_pixel_agent)

    def validate(self, cfg: TrainConfig) -> None:
        super().validate(cfg)
        if not any(w.name == "pixels" for w in cfg.spec.wrappers):
            raise RLCourseError("pixelsac needs the pixels wrapper in the environment spec (e.g. --wrap pixels:size=64)")

    def policy_name(self, cfg: TrainConfig) -> str:
        return "rlcourse.algos.pixelsac.PixelAgent"

    def stored(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return observation["pixels"][-FRAME_CHANNELS:]  # the newest frame; the buffer rebuilds the stack

    def stored_shape(self, space: Any) -> tuple[int, ...]:
        return frame_layout(space)[0]

    def new_agent(self, probe: Any, hp: Any) -> PixelAgent:
        shape, frames = frame_layout(probe.observation_space)
        return PixelAgent(shape, frames, probe.observation_space["desired_goal"].shape[0],
                          probe.action_space.shape[0], hp)

    def new_buffer(self, probe: Any, capacity: int, k: int) -> EpisodeBuffer:
        shape, frames = frame_layout(probe.observation_space)
        return EpisodeBuffer(capacity, probe.spec.max_episode_steps, shape,
                             probe.observation_space["desired_goal"].shape[0], probe.action_space.shape[0], k=k,
                             obs_dtype=np.uint8, frames=frames)


def replay_bytes(total_steps: int, size: int, n_envs: int, episode_steps: int = 50, views: int = 1) -> int:
    """The frame memory of the replay buffer of a run of ``total_steps`` on ``n_envs`` environments at ``size``²
    (``views`` such frames side by side): :func:`~rlcourse.algos.fastsac.buffer_episodes` episodes of
    ``episode_steps + 1`` frames of 3 bytes a pixel. A count below 1 (or ``total_steps`` below 0) is refused."""
    counts = {"total_steps": (total_steps, 0), "size": (size, 1), "n_envs": (n_envs, 1),
              "episode_steps": (episode_steps, 1), "views": (views, 1)}
    for name, (value, least) in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise RLCourseError(f"replay_bytes: {name} must be an integer >= {least}, got {value!r}")
    frame = FRAME_CHANNELS * size * size * views
    return buffer_episodes(total_steps, episode_steps, n_envs) * (episode_steps + 1) * frame


register(PixelSACBackend())
