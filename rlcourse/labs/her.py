"""Hindsight Experience Replay from scratch (chapter 4).

A goal-conditioned transition is ``(s, g, a, r, s')`` with ``r = compute_reward(ag', g)``, where ``ag'`` is the goal
the robot achieved *after* the action. A failed episode on a sparse task has ``r = -1`` everywhere, so it teaches
the critic nothing. HER replays the same transitions with a different goal ``g'`` the robot actually reached, and
asks the environment for the reward again: ``r' = compute_reward(ag', g')``. Nothing else in the transition
changes, which is why the data stay valid for an off-policy learner (the dynamics do not depend on the goal).

Indexing. An :class:`Episode` of ``T`` steps stores ``T + 1`` achieved goals ``ag[0..T]``; transition ``t`` ends in
``ag[t + 1]``. The strategies choose goals among those *end-of-step* achieved goals, as stable-baselines3's
``HerReplayBuffer`` does:

- ``future``: ``ag[t']`` with ``t' ~ U{t+1, ..., T}`` (this step's outcome or a later one);
- ``final``: ``ag[T]``;
- ``episode``: ``ag[t']`` with ``t' ~ U{1, ..., T}``.

Goals are sampled with replacement, ``k`` per transition. The reward is always recomputed through the
environment's ``compute_reward``; it is never assumed to be 0 for a relabelled transition (the achieved goal
counts as reached only within the environment's threshold, and other tasks define rewards differently).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import numpy as np

from rlcourse.core.errors import RLCourseError

# compute_reward(achieved_goal, desired_goal, info) -> reward(s); batched over the leading axis in Fetch.
RewardFn = Callable[[np.ndarray, np.ndarray, Any], Any]


class GoalStrategy(str, Enum):
    """Where relabelled goals come from (the names stable-baselines3 uses)."""

    FUTURE = "future"
    FINAL = "final"
    EPISODE = "episode"


@dataclass(frozen=True)
class Transition:
    """One goal-conditioned step. ``next_achieved_goal`` is what the robot achieved after ``action``."""

    observation: np.ndarray
    achieved_goal: np.ndarray
    desired_goal: np.ndarray
    action: np.ndarray
    reward: float
    next_observation: np.ndarray
    next_achieved_goal: np.ndarray
    relabelled: bool = False


@dataclass
class Episode:
    """One episode as arrays: ``T`` actions and rewards, ``T + 1`` observations and achieved goals, one goal."""

    observations: np.ndarray  # (T + 1, obs_dim)
    achieved_goals: np.ndarray  # (T + 1, goal_dim)
    desired_goal: np.ndarray  # (goal_dim,)
    actions: np.ndarray  # (T, act_dim)
    rewards: np.ndarray  # (T,)

    def __post_init__(self) -> None:
        T = len(self.actions)
        if T < 1:
            raise RLCourseError("an episode needs at least one step")
        if len(self.observations) != T + 1 or len(self.achieved_goals) != T + 1 or len(self.rewards) != T:
            raise RLCourseError(
                f"episode arrays disagree: {len(self.actions)} actions, {len(self.rewards)} rewards, "
                f"{len(self.observations)} observations and {len(self.achieved_goals)} achieved goals "
                "(expected T, T, T+1, T+1)"
            )

    def __len__(self) -> int:
        return len(self.actions)

    def transition(self, t: int) -> Transition:
        """Transition ``t`` (0-based) with its original goal and reward."""
        return Transition(
            observation=self.observations[t], achieved_goal=self.achieved_goals[t], desired_goal=self.desired_goal,
            action=self.actions[t], reward=float(self.rewards[t]), next_observation=self.observations[t + 1],
            next_achieved_goal=self.achieved_goals[t + 1],
        )

    def transitions(self) -> list[Transition]:
        return [self.transition(t) for t in range(len(self))]


def collect_episode(env: Any, policy: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None,
                    seed: int = 0) -> Episode:
    """Roll out one episode of a goal-conditioned Gymnasium env (random actions if ``policy`` is None)."""
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    observations, achieved, actions, rewards = [obs["observation"]], [obs["achieved_goal"]], [], []
    goal = np.array(obs["desired_goal"], copy=True)
    done = False
    while not done:
        action = env.action_space.sample() if policy is None else np.asarray(policy(obs))
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs["observation"])
        achieved.append(obs["achieved_goal"])
        actions.append(action)
        rewards.append(float(reward))
        done = terminated or truncated
    return Episode(np.array(observations), np.array(achieved), goal, np.array(actions), np.array(rewards))


def goal_indices(T: int, t: int, strategy: GoalStrategy | str, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` indices into an episode's achieved goals ``ag[0..T]`` for relabelling transition ``t``."""
    strategy = GoalStrategy(strategy)
    if not 0 <= t < T:
        raise RLCourseError(f"transition index {t} is outside the episode (0..{T - 1})")
    if k < 1:
        raise RLCourseError(f"k must be at least 1, got {k}")
    if strategy is GoalStrategy.FUTURE:
        return rng.integers(t + 1, T + 1, size=k)
    if strategy is GoalStrategy.FINAL:
        return np.full(k, T)
    return rng.integers(1, T + 1, size=k)


def sample_goals(episode: Episode, t: int, strategy: GoalStrategy | str = GoalStrategy.FUTURE, k: int = 4,
                 rng: np.random.Generator | None = None) -> np.ndarray:
    """``k`` relabelling goals for transition ``t``, shape ``(k, goal_dim)`` (see the module docstring)."""
    rng = np.random.default_rng() if rng is None else rng
    return episode.achieved_goals[goal_indices(len(episode), t, strategy, k, rng)]


def relabel(transition: Transition, goal: np.ndarray, compute_reward: RewardFn) -> Transition:
    """The same transition with goal ``goal`` and the reward the environment gives for it."""
    reward = compute_reward(transition.next_achieved_goal, np.asarray(goal), {})
    return replace(transition, desired_goal=np.asarray(goal), reward=float(reward), relabelled=True)


def process_episode(episode: Episode, compute_reward: RewardFn, strategy: GoalStrategy | str = GoalStrategy.FUTURE,
                    k: int = 4, her_ratio: float = 0.8, rng: np.random.Generator | None = None) -> list[Transition]:
    """Insertion-time HER: every original transition, plus, with probability ``her_ratio``, ``k`` relabelled copies.

    The expected number of transitions is ``T (1 + her_ratio k)``: 210 for T = 50, k = 4, her_ratio = 0.8.
    """
    if not 0.0 <= her_ratio <= 1.0:
        raise RLCourseError(f"her_ratio must lie in [0, 1], got {her_ratio}")
    rng = np.random.default_rng() if rng is None else rng
    out: list[Transition] = []
    for t in range(len(episode)):
        original = episode.transition(t)
        out.append(original)
        if rng.random() < her_ratio:
            out.extend(relabel(original, g, compute_reward) for g in sample_goals(episode, t, strategy, k, rng))
    return out


def success_fraction(transitions: list[Transition]) -> float:
    """Share of transitions with reward 0 (success, for Fetch's sparse reward)."""
    return float(np.mean([tr.reward == 0.0 for tr in transitions])) if transitions else 0.0


def relabel_rewards(episode: Episode, t: np.ndarray, goals: np.ndarray, compute_reward: RewardFn) -> np.ndarray:
    """Vectorised relabelling: rewards of transitions ``t`` (an index array) under ``goals`` (one row each)."""
    t = np.asarray(t)
    return np.asarray(compute_reward(episode.achieved_goals[t + 1], goals, [{}] * len(t)), dtype=np.float64)


def plot_relabelling(episode: Episode, t: int, compute_reward: RewardFn,
                     strategy: GoalStrategy | str = GoalStrategy.FUTURE, k: int = 4,
                     rng: np.random.Generator | None = None, ax: Any = None, eps: float = 0.05):
    """Top view (x, y) of one episode: the achieved-goal path, the original goal, transition ``t``'s outcome, and
    ``k`` relabelled goals coloured by the reward ``compute_reward`` gives them (green 0, red -1). Circles have
    radius ``eps``. Returns the axes and the relabelled rewards."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    rng = np.random.default_rng(0) if rng is None else rng
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 4.2))
    goals = sample_goals(episode, t, strategy, k, rng)
    rewards = relabel_rewards(episode, np.full(len(goals), t), goals, compute_reward)
    ag = episode.achieved_goals
    ax.plot(ag[:, 0], ag[:, 1], "-", color="0.6", lw=1, zorder=1, label="achieved goal path")
    ax.plot(ag[0, 0], ag[0, 1], "o", color="0.3", ms=5, label="start")
    g = episode.desired_goal
    ax.add_patch(Circle((g[0], g[1]), eps, fill=False, ls="--", color="C0"))
    ax.plot(g[0], g[1], "*", color="C0", ms=12, label=f"original goal (r = {episode.rewards[t]:.0f})")
    ax.plot(ag[t + 1, 0], ag[t + 1, 1], "s", color="k", ms=6, label=f"outcome of step {t}")
    for goal, r in zip(goals, rewards):
        colour = "C2" if r == 0.0 else "C3"
        ax.add_patch(Circle((goal[0], goal[1]), eps, fill=False, color=colour, lw=0.8))
        ax.plot(goal[0], goal[1], "x", color=colour, ms=8, mew=2)
    ax.plot([], [], "x", color="C2", mew=2, label="relabelled goal, r = 0")
    ax.plot([], [], "x", color="C3", mew=2, label="relabelled goal, r = -1")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(f"{GoalStrategy(strategy).value}, step {t}: rewards {rewards.astype(int).tolist()}", fontsize=9)
    return ax, rewards
