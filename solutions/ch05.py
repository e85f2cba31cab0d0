"""Chapter 5 — PickAndPlace: solutions to the exercises.

Each function runs one exercise with its sizes as parameters, so that ``tests/test_solutions_ch05.py`` can run it
small and check what the solution text in the chapter claims. Exercise 4's training takes hours on a 2-core CPU;
its function computes what demonstrations change in the replay buffer, which is cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rlcourse import evaluate, summarize
from rlcourse.algos import fastsac
from rlcourse.contract.evaluate import summarize_by_label
from rlcourse.envs.spec import EnvSpec, make
from rlcourse.labs import her, pick

ENV = "FetchPickAndPlace-v4"
MAX_LIFT = 0.45
"""The largest lift of an air goal: PickAndPlace adds U(0, 0.45) m to a goal's height with probability one half
(``_sample_goal`` in Gymnasium-Robotics' Fetch task; a constant of its source, not an attribute)."""


def noisy(sigma: float) -> EnvSpec:
    """PickAndPlace with Gaussian noise of ``sigma`` metres on the ``observation`` vector."""
    return EnvSpec(ENV).with_wrappers(f"obs_noise:sigma={sigma}")


# --- exercise 1 ---------------------------------------------------------------------------------------------------


def exercise_1(n_episodes: int = 100, sigma: float = 0.01) -> dict[str, dict[str, float]]:
    """Mean steps per phase of the scripted controller, clean and under observation noise, on the same episodes.

    Under noise there are two readings of every step: the phase of the observation the policy saw (what it
    believed) and the phase of the simulator's true state (``env.unwrapped._get_obs()``, what happened)."""
    out: dict[str, dict[str, float]] = {}
    for name, spec in (("clean", EnvSpec(ENV)), ("noisy", noisy(sigma))):
        seen: list[list[str]] = []
        true: list[list[str]] = []

        def observe(env: Any, obs: dict[str, np.ndarray], t: int) -> None:
            if t == 0:
                seen.append([])
                true.append([])
                return
            g = pick.Geometry.of(env)
            seen[-1].append(pick.phase_of(obs, g))
            true[-1].append(pick.phase_of(env.unwrapped._get_obs(), g))

        eps = evaluate(pick.ScriptedPickPlace(), spec, n_episodes=n_episodes, observer=observe)
        for reading, traces in (("seen", seen), ("true", true)):
            counts = [pick.phase_counts(t) for t in traces]
            out[f"{name}, {reading}"] = {p: float(np.mean([c[p] for c in counts])) for p in pick.PHASES}
        out[f"{name}, true"]["success"] = summarize(eps)["success_rate"]
    return out


# --- exercise 2 ---------------------------------------------------------------------------------------------------


class FilteredPickPlace(pick.ScriptedPickPlace):
    """The scripted controller with two changes against sensor noise.

    1. It decides on *estimates*, not readings: an exponential moving average of the gripper's and the block's
       positions and of the finger joints, ``x̂ ← s x + (1 - s) x̂``; the block's offset is the difference of the
       two estimates (the observation's own offset entries carry independent noise).
    2. Hysteresis on "holding": once it has closed on the block it keeps carrying until the estimated block is
       more than ``release`` from the gripper, instead of re-deciding from a threshold every step.

    It keeps state across steps, so it must know when an episode starts: the evaluation loop does not tell a
    policy, and the goal, which the noise leaves exact and which changes at every reset, does.
    """

    def __init__(self, smoothing: float = 0.3, release: float = 0.04, **kwargs: Any):
        super().__init__(**kwargs)
        self.smoothing, self.release = float(smoothing), float(release)
        self.estimate: np.ndarray | None = None
        self.holding = False
        self.goal: np.ndarray | None = None

    def action(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        o = np.asarray(obs["observation"], dtype=np.float64)
        goal = np.asarray(obs["desired_goal"], dtype=np.float64)
        reading = np.concatenate([o[0:3], o[3:6], o[9:11]])
        if self.goal is None or not np.array_equal(goal, self.goal):  # a new episode
            self.goal, self.estimate, self.holding = goal.copy(), reading, False
        else:
            self.estimate = self.smoothing * reading + (1.0 - self.smoothing) * self.estimate
        grip, obj, width = self.estimate[0:3], self.estimate[3:6], self.estimate[6:8].sum()
        rel = obj - grip
        self.holding = np.linalg.norm(rel) < self.release if self.holding else \
            self.around_block(rel) and width < self.held_width
        return self.decide(grip, obj, rel, goal, self.holding)


def exercise_2(n_episodes: int = 100, sigma: float = 0.01) -> dict[str, dict[str, Any]]:
    """Success of the plain and the filtered controller, clean and under observation noise, per stratum."""
    out: dict[str, dict[str, Any]] = {}
    for name, make_policy in (("plain", pick.ScriptedPickPlace), ("filtered", FilteredPickPlace)):
        for condition, spec in (("clean", EnvSpec(ENV)), ("noisy", noisy(sigma))):
            eps = evaluate(make_policy(), spec, n_episodes=n_episodes, labeller=pick.stratum_labeller)
            out[f"{name}, {condition}"] = {"all": summarize(eps), **summarize_by_label(eps)}
    return out


# --- exercise 3 ---------------------------------------------------------------------------------------------------


def predicted_high_share(d: float, height: float) -> float:
    """The share of curriculum goals at difficulty ``d`` lying more than ``height`` above the block's resting
    height: half the goals are lifted, by ``d * U(0, MAX_LIFT)``, so P = ½ · max(0, 1 - height / (d · MAX_LIFT))."""
    if d <= 0:
        return 0.0
    return 0.5 * max(0.0, 1.0 - height / (d * MAX_LIFT))


def sampled_high_share(d: float, height: float, n: int = 1000) -> float:
    """The same share, measured on ``n`` resets of the ``goal_curriculum`` wrapper fixed at ``d``."""
    env = make(EnvSpec(ENV).with_wrappers(f"goal_curriculum:mode=fixed,start={d}"))
    h = pick.table_height(env)
    return float(np.mean([env.reset(seed=s)[0]["desired_goal"][2] > h + height for s in range(n)]))


def schedule_share_below(d: float, schedule_steps: int, total_steps: int) -> float:
    """The share of a run's environment steps trained below difficulty ``d`` under a linear schedule from 0 to 1
    over ``schedule_steps`` (then 1 until ``total_steps``)."""
    return min(d * schedule_steps, total_steps) / total_steps


def exercise_3(difficulties: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 1.0), height: float = 0.05,
               n: int = 1000) -> list[dict[str, float]]:
    """Predicted against sampled share of goals that need a real lift (more than ``height`` above the table)."""
    return [{"difficulty": d, "predicted": predicted_high_share(d, height), "sampled": sampled_high_share(d, height, n)}
            for d in difficulties]


# --- exercise 4 ---------------------------------------------------------------------------------------------------


demonstrations = pick.demonstrations  # n episodes of the scripted controller (policy=False: random actions)


def relabelled_air_share(episodes: Sequence[her.Episode], height: float = 0.05, k: int = 4, batch: int = 20_000,
                         seed: int = 0) -> float:
    """The share of relabelled goals in a replay batch that lie more than ``height`` above the table: what HER can
    teach about lifting from these episodes."""
    env = make(ENV)
    h = pick.table_height(env)
    first = episodes[0]
    buffer = fastsac.EpisodeBuffer(len(episodes), len(first.actions), first.observations.shape[1],
                                   first.achieved_goals.shape[1], first.actions.shape[1], k=k)
    for e in episodes:
        buffer.add(e.observations, e.achieved_goals, e.desired_goal, e.actions)
    b = buffer.sample(batch, np.random.default_rng(seed), env.unwrapped.compute_reward)
    relabelled = b["goal"][b["relabelled"]]
    return float(np.mean(relabelled[:, 2] > h + height))


def exercise_4(n: int = 100, height: float = 0.05) -> dict[str, float]:
    """Relabelled air goals from random episodes against scripted demonstrations (and the demonstrations' success)."""
    demos = demonstrations(n)
    return {"random": relabelled_air_share(demonstrations(n, policy=False), height),
            "demonstrations": relabelled_air_share(demos, height),
            "demo_success": float(np.mean([e.rewards[-1] == 0.0 for e in demos]))}
