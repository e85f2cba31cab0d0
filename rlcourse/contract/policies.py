"""The policy protocol: anything with stable-baselines3's ``predict(observation, deterministic)``.

stable-baselines3 models, :class:`rlcourse.algos.fastsac.Agent`, the uniform-random baseline and hand-written
controllers (a proportional "go to the goal" rule, a scripted pick-and-place) all satisfy it, so one evaluation
loop serves them all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np


class Policy(Protocol):
    """Maps an observation dict to an action: ``predict(obs, deterministic) -> (action, state)``."""

    def predict(self, observation: Any, deterministic: bool = True) -> tuple[np.ndarray, Any]: ...


class RandomPolicy:
    """Uniform random actions from the action box; :meth:`reseed` makes episode ``i`` reproducible."""

    def __init__(self, action_space: Any, seed: int = 0):
        self.action_space = action_space
        self.action_space.seed(seed)

    def reseed(self, seed: int) -> None:
        self.action_space.seed(seed)

    def predict(self, observation: Any, deterministic: bool = True) -> tuple[np.ndarray, None]:
        return self.action_space.sample(), None


class FunctionPolicy:
    """Wrap ``f(obs) -> action`` (e.g. a hand-written controller) as a policy."""

    def __init__(self, fn: Callable[[dict[str, np.ndarray]], np.ndarray]):
        self.fn = fn

    def predict(self, observation: Any, deterministic: bool = True) -> tuple[np.ndarray, None]:
        return np.asarray(self.fn(observation)), None


class NormalizedPolicy:
    """A model trained on normalised observations: normalise each observation (frozen statistics), then predict."""

    def __init__(self, model: Policy, normalize: Callable[[Any], Any]):
        self.model = model
        self.normalize = normalize

    def predict(self, observation: Any, deterministic: bool = True) -> tuple[np.ndarray, Any]:
        return self.model.predict(self.normalize(observation), deterministic=deterministic)


def proportional_policy(gain: float = 10.0) -> FunctionPolicy:
    """The "go to the goal" rule for Reach: a = clip(gain · (goal − gripper)), gripper held still.

    The gripper position is ``observation[:3]`` in every Fetch task (``grip_pos`` leads the vector)."""

    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        delta = np.asarray(obs["desired_goal"]) - np.asarray(obs["observation"][:3])
        return np.clip(np.concatenate([gain * delta, [0.0]]), -1.0, 1.0)

    return FunctionPolicy(act)
