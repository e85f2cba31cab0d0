"""Chapter 1, environment anatomy: solutions to the five exercises.

Each function runs one exercise on the real simulator and returns plain data. Its size (seeds, steps, resets,
episodes) is a parameter, so that ``tests/test_solutions_ch01.py`` can run it small and check what the chapter's
hidden solution says about it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlcourse import random_run
from rlcourse.core import paths
from rlcourse.envs import goal_distance, make_env
from rlcourse.labs import anatomy


def exercise_1(env_id: str = "FetchReachDense-v4", seeds: Sequence[int] = (0, 1, 2, 3, 4),
               n_unseeded: int = 5) -> dict[str, Any]:
    """Seeds and goals. Reset twice with each seed; then, after a reset with ``seeds[0]``, reset ``n_unseeded`` times
    without a seed, and compare that sequence with a fresh environment, with one extra reset in front, and with the
    goals of the seeds that follow ``seeds[0]``."""
    env, fresh = make_env(env_id), make_env(env_id)

    def goal(e: Any, **kwargs: Any) -> np.ndarray:
        obs, _ = e.reset(**kwargs)
        return obs["desired_goal"].copy()

    def unseeded(e: Any, extra: int = 0) -> np.ndarray:
        """Reset with seeds[0], ``extra`` more times without a seed, then n_unseeded goals without a seed."""
        goal(e, seed=seeds[0])
        for _ in range(extra):
            goal(e)
        return np.array([goal(e) for _ in range(n_unseeded)])

    try:
        pairs = {s: (goal(env, seed=s), goal(env, seed=s)) for s in seeds}
        first = np.array([a for a, _ in pairs.values()])
        seq = unseeded(env)
        next_seeds = np.array([goal(env, seed=seeds[0] + k) for k in range(1, n_unseeded + 1)])
        return {
            "seeded_goals": first,
            "same_seed_same_goal": all(np.array_equal(a, b) for a, b in pairs.values()),
            "distinct_across_seeds": len(np.unique(first, axis=0)) == len(seeds),
            "unseeded_goals": seq,
            "unseeded_all_distinct": len(np.unique(np.vstack([first[:1], seq]), axis=0)) == n_unseeded + 1,
            # the same first seed in another environment gives the same sequence: it is determined, not random
            "unseeded_reproducible": bool(np.array_equal(seq, unseeded(fresh))),
            # one reset more in front and every later goal moves up by one place: the goal of episode i depends
            # on how many resets came before it
            "unseeded_shifted_by_extra_reset": bool(np.array_equal(unseeded(env, extra=1)[:-1], seq[1:])),
            # an unseeded reset is not "the next seed"
            "unseeded_equals_next_seeds": bool(np.any(np.all(np.isclose(seq, next_seeds), axis=1))),
        }
    finally:
        env.close()
        fresh.close()


def exercise_2(seed: int = 0, n_steps: int = 50) -> dict[str, Any]:
    """Dense and sparse on one trajectory: the same reset seed and the same random actions in FetchReachDense-v4 and
    FetchReach-v4, step by step."""
    dense_env, sparse_env = make_env("FetchReachDense-v4"), make_env("FetchReach-v4")
    try:
        eps = float(sparse_env.unwrapped.distance_threshold)
        dense_env.reset(seed=seed)
        sparse_env.reset(seed=seed)
        actions = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n_steps, 4)).astype(np.float32)
        dense, sparse, same_state = [], [], True
        for a in actions:
            obs_d, r_d, *_ = dense_env.step(a)
            obs_s, r_s, *_ = sparse_env.step(a)
            same_state &= bool(np.array_equal(obs_d["observation"], obs_s["observation"]))
            dense.append(float(r_d))
            sparse.append(float(r_s))
        dense, sparse = np.array(dense), np.array(sparse)
        predicted = -(-dense > eps).astype(np.float64)  # r_sparse = -1[-r_dense > eps]
        n_zero = int(np.sum(sparse == 0.0))
        return {
            "epsilon": eps,
            "dense_rewards": dense,
            "sparse_rewards": sparse,
            "same_trajectory": same_state,
            "mismatches": int(np.sum(predicted != sparse)),
            "steps_with_sparse_zero": n_zero,
            "fraction_sparse_zero": n_zero / n_steps,
            "dense_return": float(dense.sum()),
            "sparse_return": float(sparse.sum()),
        }
    finally:
        dense_env.close()
        sparse_env.close()


def exercise_3(seed: int = 0, n_steps: int = 50, env_id: str = "FetchPushDense-v4",
               tol: float = 1e-6) -> dict[str, Any]:
    """Push by hand. Hold ``[0, 0, 0, 0]`` for ``n_steps`` steps; then, from the same reset, steer the gripper at the
    block (``a = clip(obs[6:9] / MOCAP_STEP, -1, 1)``, ``obs[6:9]`` being the block relative to the gripper) and
    name the observation segments that change before and at the first contact (the block moves by more than
    ``tol`` metres)."""

    def changed_segments(before: np.ndarray, after: np.ndarray) -> set[str]:
        """The observation segments in which some entry changed by more than ``tol``."""
        rows = zip(anatomy.label_observation(before), anatomy.label_observation(after))
        return {b["segment"] for b, a in rows if abs(a["value"] - b["value"]) > tol}

    env = make_env(env_id)
    try:
        obs, _ = env.reset(seed=seed)
        block0, grip0 = obs["achieved_goal"].copy(), obs["observation"][:3].copy()
        for _ in range(n_steps):
            obs, *_ = env.step(np.zeros(4, dtype=np.float32))
        idle_block = float(np.linalg.norm(obs["achieved_goal"] - block0))
        idle_grip = float(np.linalg.norm(obs["observation"][:3] - grip0))

        obs, _ = env.reset(seed=seed)
        contact, before_contact, at_contact = None, set(), set()
        for t in range(n_steps):
            a = np.zeros(4)
            a[:3] = np.clip(obs["observation"][6:9] / anatomy.MOCAP_STEP, -1.0, 1.0)
            prev = obs["observation"].copy()
            obs, *_ = env.step(a.astype(np.float32))
            changed = changed_segments(prev, obs["observation"])
            if contact is None and np.linalg.norm(obs["achieved_goal"] - block0) > tol:
                contact, at_contact = t, changed
            elif contact is None:
                before_contact |= changed
        return {
            "idle_block_displacement": idle_block,
            "idle_gripper_drift": idle_grip,
            "contact_step": contact,
            "block_displacement": float(np.linalg.norm(obs["achieved_goal"] - block0)),
            "changed_before_contact": sorted(before_contact),
            "changed_at_contact": sorted(at_contact),
            "new_at_contact": sorted(at_contact - before_contact),
        }
    finally:
        env.close()


def exercise_4(n_resets: int = 500, seed: int = 0, n_steps: int = 50) -> dict[str, Any]:
    """Reachability. Reach: draw ``n_resets`` goals (reset ``i`` seeded ``seed + i``), bound the gap to the goals
    below the table with the lowest height a held −z reaches, then steer the gripper straight at every goal and
    record the final distance. PickAndPlace: the highest goal the sampler can draw against the highest point a
    held +z reaches."""

    def steer(env: Any, reset_seed: int) -> tuple[float, bool]:
        """Reset, drive the gripper straight at the goal; the final distance and ``is_success``."""
        obs, _ = env.reset(seed=reset_seed)
        info: dict[str, Any] = {}
        for _ in range(n_steps):
            a = np.zeros(4)
            a[:3] = np.clip((obs["desired_goal"] - obs["achieved_goal"]) / anatomy.MOCAP_STEP, -1.0, 1.0)
            obs, _, _, _, info = env.step(a.astype(np.float32))
        return float(goal_distance(obs["achieved_goal"], obs["desired_goal"])), bool(info["is_success"])

    space = anatomy.goal_space("FetchReach-v4", n_resets=n_resets, seed=seed)
    goals, table_z = space["goals"], space["table"]["z"]
    below = goals[:, 2] < table_z
    lowest_z = float(anatomy.hold_action("FetchReach-v4", [0, 0, -1, 0], n_steps=n_steps, seed=seed)[:, 2].min())
    env = make_env("FetchReach-v4")
    try:
        eps = float(env.unwrapped.distance_threshold)
        results = [steer(env, seed + i) for i in range(n_resets)]
    finally:
        env.close()
    final = np.array([d for d, _ in results])
    success = np.array([s for _, s in results])
    pnp = make_env("FetchPickAndPlace-v4")
    try:
        pnp.reset(seed=seed)
        highest_goal = float(anatomy.sampling_box(pnp)[1][2])
    finally:
        pnp.close()
    highest_grip = float(anatomy.hold_action("FetchPickAndPlace-v4", [0, 0, 1, 0], n_steps=n_steps,
                                             seed=seed)[:, 2].max())
    return {
        "epsilon": eps,
        "n_goals": n_resets,
        "n_below_table": int(below.sum()),
        "table_z": table_z,
        "lowest_gripper_z": lowest_z,
        # the vertical gap to the deepest goal the sampler can draw, and the largest among the goals drawn
        "deepest_possible_gap": lowest_z - float(space["box_low"][2]),
        "largest_vertical_gap": float(np.max(np.maximum(lowest_z - goals[below, 2], 0.0), initial=0.0)),
        "final_distance_below_table": final[below],
        "final_distance": final,
        "steered_success_rate": float(success.mean()),
        "pnp_highest_goal_z": highest_goal,
        "pnp_highest_gripper_z": highest_grip,
    }


def exercise_5(n_episodes: int = 100, out_dir: str | Path | None = None,
               env_ids: Sequence[str] = ("FetchPushDense-v4", "FetchReachDense-v4")) -> dict[str, dict[str, Any]]:
    """A second baseline. Random runs on Push and Reach (run folders ``ex5_random_<env_id>`` under ``out_dir``,
    default ``runs/quick/``), each episode compared with its own reset: the distance to the goal at reset, whether
    the episode started out solved, and whether the achieved goal ended where it started."""
    out_dir = paths.runs_dir("quick") if out_dir is None else Path(out_dir)
    summary = {}
    for env_id in env_ids:
        run = random_run(env_id, n_episodes=n_episodes, out_dir=out_dir, run_id=f"ex5_random_{env_id}",
                         overwrite=True, command="python -c 'from solutions.ch01 import exercise_5; exercise_5()'")
        ev = run.eval
        env = make_env(env_id)
        try:
            eps = float(env.unwrapped.distance_threshold)
            start = []
            for s in ev["seeds"]:  # the evaluation loop resets episode i with seed ev["seeds"][i]
                obs, _ = env.reset(seed=s)
                start.append(float(goal_distance(obs["achieved_goal"], obs["desired_goal"])))
        finally:
            env.close()
        start = np.array(start)
        final = np.array([e["final_distance"] for e in ev["episodes"]])
        success = np.array([e["success"] for e in ev["episodes"]])
        summary[env_id] = {
            "run_path": run.path,
            "success_rate": ev["aggregate"]["success_rate"],
            "success_ci95": tuple(ev["aggregate"]["success_ci95"]),
            "solved_at_reset_rate": float(np.mean(start < eps)),
            "start_distance": start,
            "final_distance": final,
            # the final distance equals the distance at reset, to 1 mm: the achieved goal (the block in Push) never moved
            "share_distance_unchanged": float(np.mean(np.abs(final - start) < 1e-3)),
            "share_success_as_at_reset": float(np.mean(success == (start < eps))),
        }
    return summary
