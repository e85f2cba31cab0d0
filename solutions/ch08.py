"""Chapter 8 — Reach from pixels: solutions to the exercises.

Each function runs one exercise with its sizes as parameters, so that ``tests/test_solutions_ch08.py`` can run it
small and check what the solution text in the chapter claims.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from rlcourse import FunctionPolicy, evaluate, load_policy, summarize
from rlcourse.algos import pixels as px
from rlcourse.algos import pixelsac
from rlcourse.contract import runs
from rlcourse.core.paths import checkpoints_dir
from rlcourse.envs.spec import EnvSpec
from rlcourse.training.evaluation import trained_spec

# --- exercise 1 ---------------------------------------------------------------------------------------------------


def transition_bytes_stored_naively(size: int, frames: int) -> int:
    """A transition stored as two full stacks (observation and next observation), one byte per value."""
    return 2 * frames * 3 * size * size


def exercise_1(size: int = 84, frames: int = 4, memory_gib: float = 8.0, n_envs: int = 4, T: int = 50) -> dict[str, Any]:
    """Bytes per transition, stored naively and as the course's buffer stores them, and the largest run (in
    environment steps) whose frames fit in ``memory_gib``."""
    naive = transition_bytes_stored_naively(size, frames)
    ours = 3 * size * size * (T + 1) / T  # one frame a step, plus the reset frame of each episode
    budget = memory_gib * 2**30
    steps_ours = int(budget // ours) // T * T
    while pixelsac.replay_bytes(steps_ours, size, n_envs, T) > budget:  # the episodes a run may leave open
        steps_ours -= T
    return {"naive_bytes": naive, "ours_bytes": ours, "ratio": naive / ours,
            "steps_naive": int(budget // naive), "steps_ours": steps_ours}


# --- exercise 2 ---------------------------------------------------------------------------------------------------


def two_spot_keypoint(size: int, spots: list[tuple[int, int, float]], temperature: float) -> float:
    """The x coordinate a spatial softmax returns for a map that is zero but for ``spots`` (row, column, height),
    written out: every pixel weighs exp(h / T), the keypoint is the weighted mean of the column coordinates."""
    u = np.linspace(-1.0, 1.0, size)
    weights = np.ones((size, size))
    for r, c, h in spots:
        weights[r, c] = math.exp(h / temperature)
    return float((weights * u[None, :]).sum() / weights.sum())


def exercise_2(size: int = 13, temperatures: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0, 5.0, 50.0)) -> dict[str, Any]:
    """Keypoint x of a map with a strong spot on the right and a weaker one on the left, against the temperature:
    the module's answer and the formula's, which must agree."""
    spots = [(6, size - 2, 8.0), (6, 1, 6.0)]
    maps = torch.zeros(1, 1, size, size)
    for r, c, h in spots:
        maps[0, 0, r, c] = h
    rows = []
    for t in temperatures:
        module = float(px.SpatialSoftmax(size, size, temperature=t, learn_temperature=False)(maps)[0, 0])
        rows.append({"T": t, "x (module)": module, "x (formula)": two_spot_keypoint(size, spots, t)})
    u = np.linspace(-1.0, 1.0, size)
    return {"rows": rows, "strong_x": float(u[size - 2]), "weak_x": float(u[1])}


# --- exercise 3 ---------------------------------------------------------------------------------------------------


def mean_frame(policy: Any, spec: EnvSpec, n_episodes: int, seed: int) -> np.ndarray:
    """The average of every frame ``policy`` sees on ``n_episodes`` episodes (rounded to bytes)."""
    frames: list[np.ndarray] = []
    evaluate(policy, spec, n_episodes=n_episodes, seed=seed, observer=lambda env, obs, t: frames.append(obs["pixels"]))
    return np.rint(np.mean(frames, axis=0)).astype(np.uint8)


def exercise_3(run_id: str = "pixelsac_her_pad4_FetchReach-v4_seed0", n_episodes: int = 100,
               frame_episodes: int = 20) -> dict[str, Any]:
    """The policy with every frame replaced by the average frame of other episodes (seeds after the evaluation's),
    against the same policy seeing its frames, on the same evaluation episodes."""
    run = runs.load_run(checkpoints_dir() / run_id)
    agent = load_policy(run)
    spec = trained_spec(run.meta)
    average = mean_frame(agent, spec, frame_episodes, seed=5000)
    covered = FunctionPolicy(lambda o: agent.predict({**o, "pixels": average})[0])
    seeing = summarize(evaluate(agent, spec, n_episodes=n_episodes))
    blind = summarize(evaluate(covered, spec, n_episodes=n_episodes))
    return {"seeing": seeing, "mean_frame": blind, "average": average}
