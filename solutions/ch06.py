"""Chapter 6 — Policies as controllers: solutions to the exercises.

Each function runs one exercise with its sizes as parameters, so that ``tests/test_solutions_ch06.py`` can run it
small and check what the solution text in the chapter claims.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rlcourse import evaluate, load_policy, summarize
from rlcourse.contract import runs
from rlcourse.core.paths import checkpoints_dir
from rlcourse.envs.spec import EnvSpec
from rlcourse.labs.controllers import ACTION_STEP, ProportionalReach


def learned(env_id: str, seed: int = 0) -> Any:
    """Chapter 4's committed SAC+HER policy for ``env_id``."""
    return load_policy(runs.load_run(checkpoints_dir() / f"fastsac_her_{env_id}_seed{seed}"))


# --- exercise 1 ---------------------------------------------------------------------------------------------------


def largest_calm_gain(alpha: float, beta: float, step: float = ACTION_STEP) -> float:
    """The largest gain k for which ``ProportionalReach(k)`` behind ``action_filter:alpha`` does not oscillate.

    State (e, f): error and delivered command. One step: f' = αk e + (1−α) f, e' = e − βs f'. The matrix has trace
    2 − α − βsαk and determinant 1 − α; its eigenvalues are real (no oscillation) while trace² ≥ 4·det, that is
    while 2 − α − βsαk ≥ 2√(1−α), i.e. k ≤ (1 − √(1−α))² / (βsα). At α = 1 this is the dead-beat gain 1/(βs)."""
    return (1 - math.sqrt(1 - alpha)) ** 2 / (beta * step * alpha)


def exercise_1(alpha: float = 0.5, beta: float = 0.65, n_episodes: int = 20) -> dict[str, Any]:
    """Predict the largest non-overshooting gain behind a filter, then measure overshoot below and above it."""
    k_max = largest_calm_gain(alpha, beta)
    spec = EnvSpec("FetchReach-v4").with_wrappers(f"action_filter:alpha={alpha}")
    out: dict[str, Any] = {"alpha": alpha, "k_max": k_max}
    for name, k in (("below", 0.8 * k_max), ("above", 4 * k_max)):
        agg = summarize(evaluate(ProportionalReach(k), spec, n_episodes=n_episodes))
        out[name] = {"gain": k, "overshoot": agg["overshoot_mean"], "success": agg["success_rate"]}
    return out


# --- exercise 2 ---------------------------------------------------------------------------------------------------


def exercise_2(scales: Sequence[float] = (0.5, 1.0), alphas: Sequence[float] = (0.3, 0.6, 1.0),
               n_episodes: int = 100, env_id: str = "FetchPush-v4") -> dict[str, Any]:
    """Every scale × filter combination on one policy, and the combinations no other one dominates."""
    policy = learned(env_id)
    rows = []
    for s in scales:
        for a in alphas:
            spec = EnvSpec(env_id).with_wrappers(f"action_scale:scale={s}", f"action_filter:alpha={a}")
            agg = summarize(evaluate(policy, spec, n_episodes=n_episodes))
            rows.append({"scale": s, "alpha": a, "success": agg["success_rate"], "jerk": agg["jerk_mean"]})

    def dominates(p: dict[str, Any], q: dict[str, Any]) -> bool:
        return (p["success"] >= q["success"] and p["jerk"] <= q["jerk"]
                and (p["success"] > q["success"] or p["jerk"] < q["jerk"]))

    pareto = [r for r in rows if not any(dominates(o, r) for o in rows)]
    return {"rows": rows, "pareto": pareto, "dominates": dominates}


# --- exercise 3 ---------------------------------------------------------------------------------------------------


class RateLimited:
    """A policy whose command may change by at most ``rho`` per component and step.

    It remembers its last command; a new episode is recognised by a change of goal (the evaluation loop does not tell
    policies about resets), and starts from rest, like the low-pass filter."""

    def __init__(self, policy: Any, rho: float):
        self.policy, self.rho = policy, float(rho)
        self.last: np.ndarray | None = None
        self.goal: np.ndarray | None = None

    def predict(self, observation: dict[str, np.ndarray], deterministic: bool = True) -> tuple[np.ndarray, None]:
        goal = np.asarray(observation["desired_goal"])
        if self.goal is None or not np.array_equal(goal, self.goal):
            self.goal, self.last = goal.copy(), np.zeros(4)
        wanted = np.clip(np.asarray(self.policy.predict(observation, deterministic)[0], dtype=np.float64), -1, 1)
        self.last = self.last + np.clip(wanted - self.last, -self.rho, self.rho)
        return self.last.astype(np.float32), None


def exercise_3(rho: float = 0.2, alphas: Sequence[float] = (0.2, 0.3, 0.5), n_episodes: int = 100,
               env_id: str = "FetchPush-v4") -> dict[str, Any]:
    """The rate limiter against the low-pass filter whose jerk is closest, on the same episodes."""
    policy = learned(env_id)
    limited = summarize(evaluate(RateLimited(policy, rho), env_id, n_episodes=n_episodes))
    filters = {a: summarize(evaluate(policy, EnvSpec(env_id).with_wrappers(f"action_filter:alpha={a}"),
                                     n_episodes=n_episodes)) for a in alphas}
    match = min(filters, key=lambda a: abs(filters[a]["jerk_mean"] - limited["jerk_mean"]))
    return {"rho": rho, "limited": limited, "filter_alpha": match, "filtered": filters[match]}
