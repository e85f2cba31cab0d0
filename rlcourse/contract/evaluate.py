"""The one evaluation loop.

Every number the course reports about a policy comes from :func:`evaluate`: ``n`` episodes on an environment spec,
episode ``i`` reset with seed ``seed + i``, deterministic actions by default, and the metrics below recorded per
episode. Success is ``info["is_success"]`` at the final step (the robot must *be* at the goal when the episode
ends, not merely pass through it); time-to-success is the first step at which it was successful.

The action metrics use what the simulator *received*: the action after every wrapper of the spec (scaling,
filtering, noise) and clipped to the action box, read from the spec's innermost ``DeliveredAction`` wrapper. The
gripper is found by its site name, not by a position in the observation vector (which noise may perturb).

=================  =========================================================================================
``return``         undiscounted sum of rewards
``final_distance`` ‖achieved_goal − desired_goal‖ after the last step, metres
``smoothness``     mean over t ≥ 1 of ‖a_t − a_{t−1}‖² of the delivered actions (0 = constant command)
``peak_action``    max_t max_i |a_t,i| of the delivered actions (1.0 = the actuator saturates somewhere)
``path_length``    Σ_t ‖p_{t+1} − p_t‖ of the gripper site position p, metres
``action_energy``  Σ_t ‖a_t‖² of the delivered actions
``jerk``           RMS over t of ‖p_{t+3} − 3p_{t+2} + 3p_{t+1} − p_t‖ / Δt³ of the gripper positions p_0..p_T
                   (Δt = the task's control period), m/s³: how abruptly the gripper's acceleration changes
``overshoot``      max(0, max_t ⟨x_t − g, u⟩), u = (g − x_0)/‖g − x_0‖: how far the achieved position x (gripper
                   or object) went past the goal g along the direction it started in, metres
``settling_time``  the first step from which the episode is successful at every step to the end; None if the
                   last step is not successful
``label``          optional: a stratum of the episode (e.g. ``air`` or ``table`` goal), from a labeller
=================  =========================================================================================

``overshoot`` and ``settling_time`` read the true positions and the per-step success from the simulator, never
the observation (which an observation-noise wrapper may perturb). Evaluations written before these three metrics
existed lack them; :func:`summarize` then leaves out their means.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from rlcourse.core.errors import RLCourseError
from rlcourse.core.stats import wilson_interval
from rlcourse.contract.config import DEFAULT_EVAL_SEED, MAX_SEED, check_int
from rlcourse.contract.policies import Policy, RandomPolicy
from rlcourse.contract.runs import EVAL_SCHEMA
from rlcourse.envs.fetch import gripper_position, true_goals
from rlcourse.envs.spec import EnvSpec, make

Labeller = Callable[[Any, dict[str, np.ndarray]], "str | None"]
Observer = Callable[[Any, dict[str, np.ndarray], int], None]


def progress_enabled(requested: bool) -> bool:
    """Show a progress bar if asked for, unless ``RLCOURSE_PROGRESS=0`` (set by the book build and CI)."""
    import os

    return requested and os.environ.get("RLCOURSE_PROGRESS", "1") != "0"


def _delivered(env: Any, fallback: np.ndarray) -> np.ndarray:
    try:
        delivered = env.get_wrapper_attr("delivered_action")
    except AttributeError:
        delivered = None
    return np.asarray(fallback if delivered is None else delivered, dtype=np.float64)


def path_jerk(positions: Any, dt: float) -> float:
    """RMS of the third finite difference of a path (rows are positions at steps 0..T) over ``dt``³; 0 if T < 3."""
    p = np.asarray(positions, dtype=np.float64)
    if len(p) < 4:
        return 0.0
    third = p[3:] - 3 * p[2:-1] + 3 * p[1:-2] - p[:-3]
    return float(np.sqrt(np.mean(np.sum(third**2, axis=1)))) / dt**3


def overshoot(achieved: Any, goal: Any) -> float:
    """How far a path (rows: achieved positions at steps 0..T) went past ``goal`` along its initial direction to
    the goal, metres; 0 for a path that starts at the goal or never passes it."""
    x, g = np.asarray(achieved, dtype=np.float64), np.asarray(goal, dtype=np.float64)
    start = g - x[0]
    norm = float(np.linalg.norm(start))
    if norm == 0.0:
        return 0.0
    return max(0.0, float(np.max((x - g) @ (start / norm))))


def settling_time(successes: Any) -> int | None:
    """The first step (1-based) from which every step is successful to the end; None if the last one is not."""
    flags = [bool(s) for s in successes]
    if not flags or not flags[-1]:
        return None
    t = len(flags)
    while t > 1 and flags[t - 2]:
        t -= 1
    return t


def run_episode(env: Any, policy: Policy, seed: int, deterministic: bool = True, labeller: Labeller | None = None,
                observer: Observer | None = None) -> dict[str, Any]:
    """Roll out one episode from ``env.reset(seed=seed)`` and return its metrics record.

    ``labeller(env, obs)`` is called after the reset and names the episode's stratum; ``observer(env, obs, t)`` is
    called after the reset (t = 0) and after every step (e.g. to grab frames for a GIF)."""
    if isinstance(policy, RandomPolicy):
        policy.reseed(seed)
    obs, info = env.reset(seed=seed)
    label = labeller(env, obs) if labeller else None
    if observer:
        observer(env, obs, 0)
    low, high = env.action_space.low, env.action_space.high
    total, steps, first_success = 0.0, 0, None
    prev: np.ndarray | None = None
    jerk: list[float] = []
    peak, energy, path = 0.0, 0.0, 0.0
    pos = gripper_position(env)
    gripper_path, (start, goal) = [pos], true_goals(env)
    achieved, successes = [start], []
    dt = float(getattr(env.unwrapped, "dt", 1.0))
    terminated = truncated = False
    while not (terminated or truncated):
        action, _ = policy.predict(obs, deterministic=deterministic)
        action = np.asarray(action, dtype=np.float64)
        if action.size != int(np.prod(env.action_space.shape)) or not np.all(np.isfinite(action)):
            raise RLCourseError(f"the policy returned an unusable action {action.ravel()[:8]} at step {steps + 1} of the "
                                f"episode with seed {seed} (expected {env.action_space.shape[0]} finite numbers)")
        action = np.clip(action.reshape(env.action_space.shape), low, high)
        obs, reward, terminated, truncated, info = env.step(action.astype(env.action_space.dtype))
        steps += 1
        total += float(reward)
        sent = _delivered(env, action)
        if prev is not None:
            jerk.append(float(np.sum((sent - prev) ** 2)))
        prev = sent
        peak = max(peak, float(np.max(np.abs(sent))))
        energy += float(np.sum(sent**2))
        new_pos = gripper_position(env)
        path += float(np.linalg.norm(new_pos - pos))
        pos = new_pos
        gripper_path.append(pos)
        achieved.append(true_goals(env)[0])
        successes.append(bool(info.get("is_success", False)))
        if first_success is None and successes[-1]:
            first_success = steps
        if observer:
            observer(env, obs, steps)
    record = {
        "seed": int(seed),
        "return": total,
        "length": steps,
        "success": bool(info.get("is_success", False)),
        "time_to_success": first_success,
        "final_distance": float(np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"])),
        "smoothness": float(np.mean(jerk)) if jerk else 0.0,
        "peak_action": peak,
        "path_length": path,
        "action_energy": energy,
        "jerk": path_jerk(gripper_path, dt),
        "overshoot": overshoot(achieved, goal),
        "settling_time": settling_time(successes),
    }
    if labeller:
        record["label"] = label
    return record


def evaluate(
    policy: Policy | str,
    spec: EnvSpec | str | dict[str, Any],
    n_episodes: int = 100,
    seed: int = DEFAULT_EVAL_SEED,
    deterministic: bool = True,
    progress: bool = False,
    labeller: Labeller | None = None,
    observer: Observer | None = None,
    render: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run ``n_episodes`` episodes of ``policy`` on the environment ``spec`` (a spec, its JSON, or a bare task id),
    episode ``i`` seeded ``seed + i``, and return their metric records.

    ``policy`` is anything with ``predict`` or the string ``"random"``. With ``render`` (e.g. ``{"width": 240,
    "height": 240}``) the environment renders RGB frames, which an ``observer`` can grab with ``env.render()``."""
    n_episodes = check_int("n_episodes", n_episodes, 1, 100_000)
    seed = check_int("seed", seed, 0, MAX_SEED - n_episodes)
    if not (isinstance(policy, str) or callable(getattr(policy, "predict", None))):
        raise RLCourseError(f"a policy needs a predict(observation, deterministic) method; got {type(policy).__name__}")
    if isinstance(policy, str) and policy != "random":
        raise RLCourseError(f"unknown policy {policy!r}; pass a model or 'random'")
    spec = EnvSpec.coerce(spec).validate()
    env = make(spec) if render is None else make(spec, render_mode="rgb_array", **render)
    try:
        if isinstance(policy, str):
            policy = RandomPolicy(env.action_space, seed)
        seeds: Iterable[int] = range(seed, seed + n_episodes)
        if progress_enabled(progress):
            from tqdm.auto import tqdm

            seeds = tqdm(seeds, desc=f"eval {spec.label()}", unit="ep", leave=False)
        return [run_episode(env, policy, s, deterministic, labeller, observer) for s in seeds]
    finally:
        env.close()


def summarize(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate episode records: success rate with a 95% Wilson interval, means (and std where useful)."""
    if not episodes:
        raise ValueError("summarize needs at least one episode")

    def col(key: str) -> np.ndarray:
        return np.array([e[key] for e in episodes], dtype=np.float64)

    n, k = len(episodes), sum(bool(e["success"]) for e in episodes)
    lo, hi = wilson_interval(k, n)
    tts = [e["time_to_success"] for e in episodes if e["time_to_success"] is not None]
    out = {
        "n_episodes": n,
        "success_rate": k / n,
        "success_ci95": [lo, hi],
        "return_mean": float(col("return").mean()),
        "return_std": float(col("return").std()),
        "length_mean": float(col("length").mean()),
        "final_distance_mean": float(col("final_distance").mean()),
        "final_distance_std": float(col("final_distance").std()),
        "time_to_success_mean": float(np.mean(tts)) if tts else None,
        "smoothness_mean": float(col("smoothness").mean()),
        "peak_action_mean": float(col("peak_action").mean()),
        "path_length_mean": float(col("path_length").mean()),
        "action_energy_mean": float(col("action_energy").mean()),
    }
    if all("jerk" in e for e in episodes):  # evaluations written before these metrics existed lack them
        settled = [e["settling_time"] for e in episodes if e["settling_time"] is not None]
        out.update(jerk_mean=float(col("jerk").mean()), overshoot_mean=float(col("overshoot").mean()),
                   settling_time_mean=float(np.mean(settled)) if settled else None)
    return out


def summarize_by_label(episodes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """:func:`summarize` per episode label (episodes without a label are left out)."""
    labels = sorted({e["label"] for e in episodes if e.get("label") is not None})
    return {lab: summarize([e for e in episodes if e.get("label") == lab]) for lab in labels}


def summarize_strata(episodes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{"all": summarize(episodes), <label>: summarize(that stratum), ...}``."""
    return {"all": summarize(episodes), **summarize_by_label(episodes)}


def protocol(spec: EnvSpec, n_episodes: int, seed: int, deterministic: bool) -> dict[str, Any]:
    """What makes two evaluations comparable. ``rlcourse eval`` keeps a committed eval.json made under another
    protocol unless told to replace it."""
    return {"env_spec": spec.to_json(), "n_episodes": n_episodes, "seed": seed, "deterministic": deterministic}


def eval_report(run_id: str, spec: EnvSpec | str, episodes: list[dict[str, Any]], policy: str, deterministic: bool,
                checkpoint: dict[str, Any] | None = None) -> dict[str, Any]:
    """The eval.json document (schema ``eval``) for a list of episode records on ``spec``."""
    spec = EnvSpec.coerce(spec).validate()
    doc = {
        "schema": EVAL_SCHEMA,
        "run_id": run_id,
        "checkpoint": checkpoint,
        "env_id": spec.id,
        "env_spec": spec.to_json(),
        "protocol": protocol(spec, len(episodes), int(episodes[0]["seed"]), deterministic),
        "policy": policy,
        "deterministic": deterministic,
        "n_episodes": len(episodes),
        "seeds": [e["seed"] for e in episodes],
        "episodes": episodes,
        "aggregate": summarize(episodes),
    }
    strata = summarize_by_label(episodes)
    if strata:
        doc["strata"] = strata
    return doc
