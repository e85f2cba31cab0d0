"""The one evaluation loop.

Every number the course reports about a policy comes from :func:`evaluate`: ``n`` episodes, episode ``i`` reset
with seed ``seed + i``, deterministic actions by default, and the metrics below recorded per episode. Success is
``info["is_success"]`` at the final step (the robot must *be* at the goal when the episode ends, not merely pass
through it); time-to-success is the first step at which it was successful.

Per-episode metrics (actions are the ones actually sent to the environment, i.e. clipped to the action box):

=================  =========================================================================================
``return``         undiscounted sum of rewards
``final_distance`` ‖achieved_goal − desired_goal‖ after the last step, metres
``smoothness``     mean over t ≥ 1 of ‖a_t − a_{t−1}‖² (0 = constant command; larger = jerkier)
``peak_action``    max_t max_i |a_t,i| (1.0 means the policy saturates the actuator somewhere)
``path_length``    Σ_t ‖p_{t+1} − p_t‖ of the gripper position p = observation[:3], metres
``action_energy``  Σ_t ‖a_t‖²
=================  =========================================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .envs import make_env
from .errors import RLCourseError
from .stats import wilson_interval

DEFAULT_EVAL_SEED = 1000  # far from the training seeds 0, 1, 2, ...


class Policy(Protocol):
    """Anything with stable-baselines3's ``predict`` signature."""

    def predict(self, observation: Any, deterministic: bool = True) -> tuple[np.ndarray, Any]: ...


class RandomPolicy:
    """Uniform random actions from the action box, seeded per episode for reproducibility."""

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


def run_episode(env: Any, policy: Policy, seed: int, deterministic: bool = True) -> dict[str, Any]:
    """Roll out one episode from ``env.reset(seed=seed)`` and return its metrics record."""
    if isinstance(policy, RandomPolicy):
        policy.reseed(seed)
    obs, info = env.reset(seed=seed)
    low, high = env.action_space.low, env.action_space.high
    total, steps, first_success = 0.0, 0, None
    prev_action: np.ndarray | None = None
    jerk: list[float] = []
    peak, energy, path = 0.0, 0.0, 0.0
    pos = np.asarray(obs["observation"][:3], dtype=np.float64)
    terminated = truncated = False
    while not (terminated or truncated):
        action, _ = policy.predict(obs, deterministic=deterministic)
        action = np.clip(np.asarray(action, dtype=np.float64).reshape(env.action_space.shape), low, high)
        obs, reward, terminated, truncated, info = env.step(action.astype(env.action_space.dtype))
        steps += 1
        total += float(reward)
        if prev_action is not None:
            jerk.append(float(np.sum((action - prev_action) ** 2)))
        prev_action = action
        peak = max(peak, float(np.max(np.abs(action))))
        energy += float(np.sum(action**2))
        new_pos = np.asarray(obs["observation"][:3], dtype=np.float64)
        path += float(np.linalg.norm(new_pos - pos))
        pos = new_pos
        if first_success is None and bool(info.get("is_success", False)):
            first_success = steps
    final_distance = float(np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"]))
    return {
        "seed": int(seed),
        "return": total,
        "length": steps,
        "success": bool(info.get("is_success", False)),
        "time_to_success": first_success,
        "final_distance": final_distance,
        "smoothness": float(np.mean(jerk)) if jerk else 0.0,
        "peak_action": peak,
        "path_length": path,
        "action_energy": energy,
    }


def evaluate(
    policy: Policy | str,
    env_id: str,
    n_episodes: int = 100,
    seed: int = DEFAULT_EVAL_SEED,
    deterministic: bool = True,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Run ``n_episodes`` episodes (episode ``i`` seeded ``seed + i``) and return their metric records.

    ``policy`` is an SB3 model, any object with ``predict``, or the string ``"random"``.
    """
    if n_episodes < 1:
        raise RLCourseError(f"n_episodes must be at least 1, got {n_episodes}")
    env = make_env(env_id)
    try:
        if isinstance(policy, str):
            if policy != "random":
                raise RLCourseError(f"unknown policy {policy!r}; pass a model or 'random'")
            policy = RandomPolicy(env.action_space, seed)
        seeds = range(seed, seed + n_episodes)
        from .train import progress_enabled

        if progress_enabled(progress):
            from tqdm.auto import tqdm

            seeds = tqdm(seeds, desc=f"eval {env_id}", unit="ep", leave=False)
        return [run_episode(env, policy, s, deterministic) for s in seeds]
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
    return {
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


def eval_report(
    run_id: str,
    env_id: str,
    episodes: list[dict[str, Any]],
    policy: str,
    deterministic: bool,
    checkpoint: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The eval.json document (schema ``eval``) for a list of episode records."""
    return {
        "schema": "rlcourse.eval/1",
        "run_id": run_id,
        "checkpoint": checkpoint,
        "env_id": env_id,
        "policy": policy,
        "deterministic": deterministic,
        "n_episodes": len(episodes),
        "seeds": [e["seed"] for e in episodes],
        "episodes": episodes,
        "aggregate": summarize(episodes),
    }


def evaluate_run(
    run: Path | str,
    n_episodes: int = 100,
    seed: int = DEFAULT_EVAL_SEED,
    deterministic: bool = True,
    env_id: str | None = None,
    out: Path | str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate a run folder's model and write ``eval.json`` (into the run folder unless ``out`` is given).

    The environment defaults to the one the model was trained on; asking for a different one is an error because
    the observation layout would not match.
    """
    from .runs import load_run, write_json
    from .train import load_policy

    r = load_run(run)
    trained_on = r.meta["env_id"]
    env_id = env_id or trained_on
    if env_id != trained_on:
        raise RLCourseError(f"checkpoint {r.path} was trained on {trained_on}, not {env_id}; evaluate it on {trained_on}")
    if r.meta["algo"] == "random":
        policy: Policy | str = "random"
        checkpoint = None
    else:
        policy = load_policy(r)
        checkpoint = {"path": r.path.name + "/" + r.meta["model"]["file"], "sha256": r.meta["model"]["sha256"]}
    episodes = evaluate(policy, env_id, n_episodes=n_episodes, seed=seed, deterministic=deterministic, progress=progress)
    doc = eval_report(r.run_id, env_id, episodes, policy=r.meta["algo"], deterministic=deterministic, checkpoint=checkpoint)
    write_json(Path(out) if out else r.path / "eval.json", doc, "eval")
    return doc
