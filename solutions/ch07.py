"""Chapter 7 — Robustness: solutions to the exercises.

Each function runs one exercise with its sizes as parameters, so that ``tests/test_solutions_ch07.py`` can run it
small and check what the solution text in the chapter claims.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
from scipy import stats

from rlcourse import evaluate, load_policy, summarize
from rlcourse.contract import runs
from rlcourse.core.paths import checkpoints_dir
from rlcourse.envs.spec import EnvSpec
from rlcourse.labs import robustness as rb


# --- exercise 1 ---------------------------------------------------------------------------------------------------


def filtered_variance_factor(alpha: float) -> float:
    """Var of ``f_t = α x_t + (1 − α) f_{t−1}`` over Var of white ``x``, in the steady state: the weights α(1−α)^j
    square-sum to α² / (1 − (1−α)²) = α / (2 − α)."""
    return alpha / (2 - alpha)


def exercise_1(alpha: float = 0.5, sigma: float = 0.01, n_episodes: int = 100, env_id: str = "FetchPush-v4",
               samples: int = 200_000) -> dict[str, Any]:
    """Check the variance factor on simulated white noise, then measure chapter 4's seed-0 policy under sensor noise
    with and without the filter, on the same episodes.

    The linear prediction says the filter divides the command noise's standard deviation by √((2−α)/α); it is
    optimistic because the filter also delays every correction by (1−α)/α steps, which costs success by itself
    (chapter 6), and because at the learned policy's gain the command noise saturates the clip, where nothing is
    linear."""
    x = np.random.default_rng(0).standard_normal(samples)
    f = np.empty_like(x)
    acc = 0.0
    for t, v in enumerate(x):
        acc = alpha * v + (1 - alpha) * acc
        f[t] = acc
    measured = float(f[100:].var() / x.var())  # after the start-up transient
    policy = load_policy(runs.load_run(checkpoints_dir() / f"fastsac_her_{env_id}_seed0"))
    noisy = EnvSpec(env_id).with_wrappers(f"obs_noise:sigma={sigma:g}")
    plain = summarize(evaluate(policy, noisy, n_episodes=n_episodes))
    smooth = summarize(evaluate(policy, noisy.with_wrappers(f"action_filter:alpha={alpha:g}"), n_episodes=n_episodes))
    return {"factor": filtered_variance_factor(alpha), "factor_measured": measured,
            "success_unfiltered": plain["success_rate"], "success_filtered": smooth["success_rate"],
            "ci_unfiltered": plain["success_ci95"], "ci_filtered": smooth["success_ci95"]}


# --- exercise 2 ---------------------------------------------------------------------------------------------------


def exercise_2(counts: Mapping[float, Sequence[tuple[int, int]]], keep: int = 3, level: float = 0.5) -> dict[str, Any]:
    """σ* of the full grid against σ* of every coarser grid that keeps 0, the last level and ``keep − 2`` of the
    levels between: how far it moves, and whether the coarse grid's band range still contains the full value."""
    full = rb.curve_summary(rb.degradation_curve(counts), level)
    sigmas = sorted(counts)
    inner = sigmas[1:-1]
    rows = []
    for chosen in combinations(inner, keep - 2):
        grid = [sigmas[0], *chosen, sigmas[-1]]
        s = rb.curve_summary(rb.degradation_curve({g: counts[g] for g in grid}), level)
        lo, hi = s["critical_sigma_range"]
        v, ref = s["critical_sigma"], full["critical_sigma"]
        contains = None if v is None or ref is None else (lo <= ref <= (hi if hi is not None else math.inf))
        rows.append({"grid": grid, "critical_sigma": v, "range": [lo, hi],
                     "moved": None if v is None or ref is None else v - ref, "contains_full": contains})
    return {"full": full["critical_sigma"], "coarse": rows}


# --- exercise 3 ---------------------------------------------------------------------------------------------------


def flip_probability(distance: float, sigma: float, radius: float = 0.05) -> float:
    """Probability that a relabelled sparse reward is wrong when both goals carry N(0, σ² I) noise in 3-D.

    The observed difference is ``d + √2 σ ε``; its squared norm over 2σ² is noncentral χ² with 3 degrees of freedom
    and noncentrality ``‖d‖² / 2σ²``. The true reward is 0 when ``‖d‖ < radius``; it flips when the observed norm
    lands on the other side of ``radius``."""
    s2 = 2 * sigma**2
    below = float(stats.ncx2.cdf(radius**2 / s2, df=3, nc=distance**2 / s2))
    return 1 - below if distance < radius else below


def exercise_3(distances: Sequence[float] = (0.0, 0.025, 0.045, 0.055, 0.075, 0.1), sigma: float = 0.02,
               radius: float = 0.05, samples: int = 100_000) -> list[dict[str, float]]:
    """The flip probability from the formula and from simulation, at several true distances."""
    rng = np.random.default_rng(0)
    out = []
    for d in distances:
        true = np.array([d, 0.0, 0.0])
        observed = np.linalg.norm(true + sigma * rng.standard_normal((samples, 3))
                                  - sigma * rng.standard_normal((samples, 3)), axis=1)
        flipped = float(np.mean((observed < radius) != (d < radius)))
        out.append({"distance": d, "formula": flip_probability(d, sigma, radius), "simulated": flipped,
                    "stderr": math.sqrt(max(flipped * (1 - flipped), 1e-12) / samples)})
    return out
