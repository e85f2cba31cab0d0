"""The environment-anatomy labs of chapter 1: what a Fetch task observes, what its actions do, what its reward computes.

Every function builds its own environment through :func:`rlcourse.envs.make_env`, measures something, closes the
environment and returns plain data (dicts, arrays, a dataclass) that the notebook tabulates, plots and asserts on.
Nothing here trusts a number from a book: layouts are checked against the MuJoCo state, bounds are measured, and
the reward is recomputed three ways.

Facts read from the Gymnasium-Robotics 1.4.2 source (``envs/fetch/fetch_env.py``) and used below:

- ``observation`` is ``concatenate([grip_pos, object_pos, object_rel_pos, gripper_state, object_rot, object_velp,
  object_velr, grip_velp, gripper_vel])``; the object terms are empty for Reach. Velocities are multiplied by the
  control period ``dt = n_substeps * timestep`` (0.04 s), so they are displacements per control step, not m/s, and
  ``object_velp`` is relative to the gripper.
- ``achieved_goal`` is ``grip_pos`` for Reach and ``object_pos`` for tasks with an object.
- ``compute_reward``: dense ``-d``; sparse ``-(d > distance_threshold)`` as float32. Success is ``d < threshold``.
- An action's first three components are scaled by 0.05 and added to the gripper's mocap target (metres); the
  fourth drives both fingers, and is ignored where ``block_gripper`` is set (Reach, Push, Slide).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlcourse.envs.fetch import flatten_obs, goal_distance, make_env
from rlcourse.core.stats import wilson_interval

MOCAP_STEP = 0.05  # metres of mocap-target motion per unit action per step (fetch_env._set_action)
AIR_HEIGHT = 0.45  # PickAndPlace lifts half of its goals by U(0, 0.45) m above the table (fetch_env._sample_goal)
AXES = ("x", "y", "z")


# ---------------------------------------------------------------------------------------------------------------
# (a) The observation vector, index by index
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A named slice ``[start, stop)`` of ``obs["observation"]``."""

    name: str
    start: int
    stop: int
    meaning: str
    units: str
    components: tuple[str, ...]

    @property
    def size(self) -> int:
        return self.stop - self.start


def _layout(parts: Sequence[tuple[str, str, str, tuple[str, ...]]]) -> tuple[Segment, ...]:
    segments, start = [], 0
    for name, meaning, units, comps in parts:
        segments.append(Segment(name, start, start + len(comps), meaning, units, comps))
        start += len(comps)
    return tuple(segments)


_PER_STEP = "m per control step (velocity × dt)"
_GRIP = ("grip_pos", "gripper (grip site) position, world frame", "m", AXES)
_FINGERS = ("gripper_state", "finger joint positions (right, left)", "m", ("right", "left"))
_GRIP_VEL = ("grip_velp", "gripper linear velocity × dt", _PER_STEP, AXES)
_FINGER_VEL = ("gripper_vel", "finger joint velocities × dt", _PER_STEP, ("right", "left"))

OBS_LAYOUT: dict[int, tuple[Segment, ...]] = {
    10: _layout([_GRIP, _FINGERS, _GRIP_VEL, _FINGER_VEL]),
    25: _layout([
        _GRIP,
        ("object_pos", "object (object0 site) position, world frame", "m", AXES),
        ("object_rel_pos", "object_pos − grip_pos", "m", AXES),
        _FINGERS,
        ("object_rot", "object orientation, Euler angles (relative xyz)", "rad", AXES),
        ("object_velp", "object linear velocity relative to the gripper × dt", _PER_STEP, AXES),
        ("object_velr", "object angular velocity × dt", "rad per control step", AXES),
        _GRIP_VEL,
        _FINGER_VEL,
    ]),
}
"""Observation layout by vector length: 10 for Reach, 25 for the tasks with an object (Push, PickAndPlace, Slide)."""


def obs_layout(dim: int) -> tuple[Segment, ...]:
    """The layout of an observation vector of length ``dim`` (10 or 25)."""
    if dim not in OBS_LAYOUT:
        raise ValueError(f"no Fetch observation layout has {dim} entries (known: {sorted(OBS_LAYOUT)})")
    return OBS_LAYOUT[dim]


def label_observation(vec: Any) -> list[dict[str, Any]]:
    """One row per index of an observation vector: index, segment, component, value, units, meaning."""
    vec = np.asarray(vec, dtype=np.float64).ravel()
    rows = []
    for seg in obs_layout(vec.size):
        for i, comp in enumerate(seg.components):
            idx = seg.start + i
            rows.append({"index": idx, "segment": seg.name, "component": comp, "value": float(vec[idx]),
                         "units": seg.units, "meaning": seg.meaning})
    return rows


def _space_info(space: Any) -> dict[str, Any]:
    return {"shape": tuple(space.shape), "dtype": str(space.dtype),
            "low": np.asarray(space.low).tolist(), "high": np.asarray(space.high).tolist()}


def describe_observation(env_id: str, seed: int = 0) -> dict[str, Any]:
    """Reset ``env_id`` once and describe each key of the observation dict and the action space.

    Returns ``{"env_id", "keys": {key: {shape, dtype, min, max, finite}}, "spaces": {...}, "action_space": {...},
    "observation": the raw vector, "table": label_observation(...)}``.
    """
    env = make_env(env_id)
    try:
        obs, _ = env.reset(seed=seed)
        keys = {}
        for key, value in obs.items():
            arr = np.asarray(value)
            keys[key] = {"shape": arr.shape, "dtype": str(arr.dtype), "min": float(arr.min()),
                         "max": float(arr.max()), "finite": bool(np.all(np.isfinite(arr)))}
        return {
            "env_id": env_id,
            "keys": keys,
            "spaces": {k: _space_info(s) for k, s in env.observation_space.spaces.items()},
            "action_space": _space_info(env.action_space),
            "observation": np.array(obs["observation"]),
            "table": label_observation(obs["observation"]),
        }
    finally:
        env.close()


def simulator_values(env: Any) -> dict[str, np.ndarray]:
    """Each observation segment read straight from the MuJoCo state, independently of the environment's code.

    Positions come from site and joint positions, linear/angular site velocities from the site Jacobian times
    ``qvel`` (``mujoco.mj_jacSite``, world frame), orientation from ``scipy``'s intrinsic-xyz Euler angles;
    velocities are multiplied by ``dt``. (The Jacobian form matters: after ``env.step`` MuJoCo's cached body
    velocities can lag ``qvel`` by one substep when the environment does not call ``mj_forward`` again, as in
    PickAndPlace.)
    """
    import mujoco
    from scipy.spatial.transform import Rotation

    u = env.unwrapped
    m, d, dt = u.model, u.data, float(u.dt)

    def site_velocity(name: str) -> tuple[np.ndarray, np.ndarray]:
        jacp, jacr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        mujoco.mj_jacSite(m, d, jacp, jacr, m.site(name).id)
        return jacp @ d.qvel, jacr @ d.qvel  # linear, angular

    fingers = ("robot0:r_gripper_finger_joint", "robot0:l_gripper_finger_joint")
    grip_pos = d.site("robot0:grip").xpos.copy()
    grip_lin, _ = site_velocity("robot0:grip")
    out = {
        "grip_pos": grip_pos,
        "gripper_state": np.array([d.joint(j).qpos[0] for j in fingers]),
        "grip_velp": grip_lin * dt,
        "gripper_vel": np.array([d.joint(j).qvel[0] for j in fingers]) * dt,
    }
    if u.has_object:
        obj_pos = d.site("object0").xpos.copy()
        obj_lin, obj_ang = site_velocity("object0")
        out.update({
            "object_pos": obj_pos,
            "object_rel_pos": obj_pos - grip_pos,
            "object_rot": Rotation.from_matrix(d.site("object0").xmat.reshape(3, 3)).as_euler("XYZ"),
            "object_velp": (obj_lin - grip_lin) * dt,
            "object_velr": obj_ang * dt,
        })
    return out


def verify_layout(env_id: str, seed: int = 0, n_steps: int = 20) -> dict[str, float]:
    """Largest |obs slice − simulator value| per segment, over a reset and ``n_steps`` random actions.

    Also checks ``achieved_goal`` against the segment it should equal (``grip_pos`` or ``object_pos``), reported
    under the key ``"achieved_goal"``. Every value should be at floating-point round-off.
    """
    env = make_env(env_id)
    try:
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        phi = "object_pos" if env.unwrapped.has_object else "grip_pos"
        errors: dict[str, float] = {}
        for t in range(n_steps + 1):
            if t:
                obs, *_ = env.step(env.action_space.sample())
            sim = simulator_values(env)
            vec = obs["observation"]
            for seg in obs_layout(vec.size):
                err = float(np.max(np.abs(vec[seg.start:seg.stop] - sim[seg.name])))
                errors[seg.name] = max(errors.get(seg.name, 0.0), err)
            err = float(np.max(np.abs(obs["achieved_goal"] - sim[phi])))
            errors["achieved_goal"] = max(errors.get("achieved_goal", 0.0), err)
        return errors
    finally:
        env.close()


# ---------------------------------------------------------------------------------------------------------------
# (b) The goal space
# ---------------------------------------------------------------------------------------------------------------


def sampling_box(env: Any) -> tuple[np.ndarray, np.ndarray]:
    """The box ``_sample_goal`` draws desired goals from, computed from the environment's own parameters."""
    u = env.unwrapped
    init = np.asarray(u.initial_gripper_xpos[:3], dtype=np.float64)
    r = float(u.target_range)
    if not u.has_object:
        return init - r, init + r
    offset = np.broadcast_to(np.asarray(u.target_offset, dtype=np.float64), (3,))
    low, high = init - r + offset, init + r + offset
    low[2] = high[2] = float(u.height_offset)
    if u.target_in_the_air:
        high[2] += AIR_HEIGHT
    return low, high


def table_top(env: Any) -> dict[str, Any]:
    """The table's top face, from the ``table0`` geom of the MuJoCo model: x/y extent and height (m)."""
    u = env.unwrapped
    body = u.model.body("table0").id
    g = int(np.flatnonzero(u.model.geom_bodyid == body)[0])
    pos, size = u.data.geom_xpos[g], u.model.geom_size[g]
    return {"x": (float(pos[0] - size[0]), float(pos[0] + size[0])),
            "y": (float(pos[1] - size[1]), float(pos[1] + size[1])),
            "z": float(pos[2] + size[2])}


def goal_space(env_id: str, n_resets: int = 100, seed: int = 0) -> dict[str, Any]:
    """Desired goals over ``n_resets`` resets (reset ``i`` seeded ``seed + i``), their measured bounds, the box they
    are drawn from, and the φ check: is ``achieved_goal`` the gripper (``obs[:3]``) or the object (``obs[3:6]``)?"""
    env = make_env(env_id)
    try:
        goals, start, grip_match, obj_match = [], [], [], []
        for i in range(n_resets):
            obs, _ = env.reset(seed=seed + i)
            vec, ag = obs["observation"], obs["achieved_goal"]
            goals.append(obs["desired_goal"].copy())
            start.append(float(goal_distance(ag, obs["desired_goal"])))
            grip_match.append(bool(np.array_equal(ag, vec[:3])))
            obj_match.append(bool(vec.size == 25 and np.array_equal(ag, vec[3:6])))
        u = env.unwrapped
        box_low, box_high = sampling_box(env)
        g = np.array(goals)
        eps = float(u.distance_threshold)
        return {
            "env_id": env_id,
            "n_resets": n_resets,
            "goals": g,
            "low": g.min(axis=0),
            "high": g.max(axis=0),
            "box_low": box_low,
            "box_high": box_high,
            "inside_box": bool(np.all((g >= box_low - 1e-9) & (g <= box_high + 1e-9))),
            "distinct_goals": int(len(np.unique(np.round(g, 9), axis=0))),
            "initial_gripper_xpos": np.array(u.initial_gripper_xpos[:3]),
            "table": table_top(env),
            "ag_is_grip_pos": float(np.mean(grip_match)),
            "ag_is_object_pos": float(np.mean(obj_match)),
            "start_distance": np.array(start),
            "success_at_reset": float(np.mean(np.array(start) < eps)),
        }
    finally:
        env.close()


# ---------------------------------------------------------------------------------------------------------------
# (c) Action semantics
# ---------------------------------------------------------------------------------------------------------------


def _one_step(env: Any, seed: int, action: np.ndarray) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    before = obs["observation"][:3].copy()
    obs, *_ = env.step(action.astype(env.action_space.dtype))
    return obs["observation"][:3] - before


DEFAULT_MAGNITUDES = (-2.0, -1.5, -1.0, -0.75, -0.5, -0.25, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def measure_actions(env_id: str, seed: int = 0, magnitudes: Sequence[float] = DEFAULT_MAGNITUDES) -> dict[str, Any]:
    """Gripper displacement (``obs[:3]``) after one step from the reset state.

    - ``axis_response[i]``: the xyz displacement for the one-hot action ``+1`` on axis ``i`` (rows x, y, z);
    - ``response[i, k]``: the displacement along axis ``i`` for action ``magnitudes[k]`` on that axis alone;
    - ``gain``: ``response / (MOCAP_STEP * clip(magnitude, -1, 1))``, the fraction of the commanded motion achieved.
    """
    env = make_env(env_id)
    try:
        axis_response = np.zeros((3, 3))
        mags = np.asarray(magnitudes, dtype=np.float64)
        response = np.zeros((3, mags.size))
        for i in range(3):
            a = np.zeros(4)
            a[i] = 1.0
            axis_response[i] = _one_step(env, seed, a)
            for k, mag in enumerate(mags):
                a = np.zeros(4)
                a[i] = mag
                response[i, k] = _one_step(env, seed, a)[i]
        return {
            "env_id": env_id,
            "action_space": _space_info(env.action_space),
            "axis_response": axis_response,
            "magnitudes": mags,
            "response": response,
            "gain": response / (MOCAP_STEP * np.clip(mags, -1.0, 1.0)),
        }
    finally:
        env.close()


def hold_action(env_id: str, action: Sequence[float], n_steps: int = 50, seed: int = 0) -> np.ndarray:
    """Gripper positions (``n_steps + 1`` × 3) while holding one constant action from the reset state."""
    env = make_env(env_id)
    try:
        obs, _ = env.reset(seed=seed)
        a = np.asarray(action, dtype=env.action_space.dtype)
        path = [obs["observation"][:3].copy()]
        for _ in range(n_steps):
            obs, *_ = env.step(a)
            path.append(obs["observation"][:3].copy())
        return np.array(path)
    finally:
        env.close()


def measure_gripper(env_id: str, seed: int = 0, n_steps: int = 10) -> dict[str, Any]:
    """Finger joint positions (``obs[3:5]`` or ``obs[9:11]``) and the distance between the two finger bodies after
    holding the gripper command at +1 and at −1 for ``n_steps`` steps."""
    env = make_env(env_id)
    try:
        u = env.unwrapped
        seg = next(s for s in obs_layout(env.observation_space["observation"].shape[0]) if s.name == "gripper_state")
        out: dict[str, Any] = {"env_id": env_id, "block_gripper": bool(u.block_gripper)}
        for label, cmd in (("open_cmd", 1.0), ("close_cmd", -1.0)):
            obs, _ = env.reset(seed=seed)
            for _ in range(n_steps):
                obs, *_ = env.step(np.array([0, 0, 0, cmd], dtype=env.action_space.dtype))
            left = u.data.body("robot0:l_gripper_finger_link").xpos
            right = u.data.body("robot0:r_gripper_finger_link").xpos
            out[label] = {"fingers": obs["observation"][seg.start:seg.stop].copy(),
                          "finger_gap": float(np.linalg.norm(left - right))}
        return out
    finally:
        env.close()


# ---------------------------------------------------------------------------------------------------------------
# (d) Rewards and the critical invariant
# ---------------------------------------------------------------------------------------------------------------


def manual_reward(distance: Any, reward_type: str, threshold: float) -> np.ndarray:
    """The Fetch reward written out: dense ``-d``; sparse ``-1`` if ``d > threshold`` else ``0``."""
    d = np.asarray(distance, dtype=np.float64)
    if reward_type == "dense":
        return -d
    if reward_type == "sparse":
        return -(d > threshold).astype(np.float64)
    raise ValueError(f"unknown reward type {reward_type!r}")


RewardFormula = Callable[[np.ndarray, str, float], np.ndarray]

CHECK_KINDS = ("step_vs_manual", "compute_vs_manual", "step_vs_compute", "relabel_vs_manual", "batch_vs_manual")


@dataclass
class RewardCheck:
    """The result of :func:`reward_check`. ``mismatches``/``max_abs_error``/``checks`` are keyed by CHECK_KINDS."""

    env_id: str
    reward_type: str
    threshold: float
    atol: float
    n_steps: int
    relabel_per_step: int
    checks: dict[str, int]
    mismatches: dict[str, int]
    max_abs_error: dict[str, float]
    non_binary: int | None  # sparse: step rewards outside {0, -1}; None for dense
    reward_dtypes: list[str]
    distance: np.ndarray = field(repr=False)  # per step: ‖ag − dg‖
    step_reward: np.ndarray = field(repr=False)  # per step: the reward env.step returned
    relabel_distance: np.ndarray = field(repr=False)  # per relabel check: ‖ag − g'‖
    relabel_reward: np.ndarray = field(repr=False)  # per relabel check: compute_reward(ag, g', info)

    @property
    def total_checks(self) -> int:
        return sum(self.checks.values())

    @property
    def total_mismatches(self) -> int:
        return sum(self.mismatches.values()) + (self.non_binary or 0)

    @property
    def ok(self) -> bool:
        return self.total_mismatches == 0

    def row(self) -> dict[str, Any]:
        """A one-line summary for a table."""
        return {"env_id": self.env_id, "reward": self.reward_type, "ε": self.threshold, "steps": self.n_steps,
                "checks": self.total_checks, "mismatches": self.total_mismatches,
                "max |error|": max(self.max_abs_error.values()), "non-binary": self.non_binary}


def relabel_goals(ag: np.ndarray, n_random: int, threshold: float, centre: np.ndarray, half_width: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Goals to relabel one transition with: ``n_random`` uniform in the cube ``centre ± half_width``, the achieved
    goal itself (d = 0, the success branch), and two goals at 0.9 ε and 1.1 ε in a random direction (the boundary)."""
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    probes = [ag, ag + 0.9 * threshold * direction, ag + 1.1 * threshold * direction]
    uniform = rng.uniform(centre - half_width, centre + half_width, size=(n_random, 3))
    return np.vstack([uniform, *probes])


def reward_check(
    env_id: str,
    n_steps: int = 500,
    n_relabel: int = 3,
    seed: int = 0,
    atol: float = 1e-10,
    formula: RewardFormula = manual_reward,
    threshold: float | None = None,
    half_width: float = 0.3,
) -> RewardCheck:
    """Verify the reward three ways over ``n_steps`` random-action steps, and under hindsight relabelling.

    Per step: the manual formula, ``env.unwrapped.compute_reward(ag, dg, info)`` and the reward ``env.step``
    returned must agree within ``atol``. Per step also, for each goal of :func:`relabel_goals` (``n_relabel`` random
    goals in a ``half_width`` cube around the gripper's start, plus three probes), ``compute_reward(ag, g', info)``
    must equal the formula; and finally ``compute_reward`` on all relabelled pairs at once (a batch, as HER calls
    it) must equal the formula element-wise. ``formula`` and ``threshold`` (default: the env's
    ``distance_threshold``) exist so that a wrong belief about the reward can be shown to be caught.
    Episodes are reset with seed ``seed + episode``.
    """
    env = make_env(env_id)
    try:
        u = env.unwrapped
        reward_type = str(u.reward_type)
        true_eps = float(u.distance_threshold)
        eps = true_eps if threshold is None else float(threshold)
        rng = np.random.default_rng(seed)
        env.action_space.seed(seed)
        episode = 0
        obs, _ = env.reset(seed=seed)
        centre = np.asarray(u.initial_gripper_xpos[:3], dtype=np.float64)
        err: dict[str, list[float]] = {k: [] for k in CHECK_KINDS}
        dist, step_r, dtypes, non_binary = [], [], set(), 0
        pairs_ag, pairs_g, infos = [], [], []
        for _ in range(n_steps):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            ag, dg = obs["achieved_goal"], obs["desired_goal"]
            d = goal_distance(ag, dg)
            manual = float(formula(d, reward_type, eps))
            computed = float(u.compute_reward(ag, dg, info))
            err["step_vs_manual"].append(abs(float(reward) - manual))
            err["compute_vs_manual"].append(abs(computed - manual))
            err["step_vs_compute"].append(abs(float(reward) - computed))
            dist.append(float(d))
            step_r.append(float(reward))
            dtypes.add(type(reward).__name__)
            if reward_type == "sparse" and float(reward) not in (0.0, -1.0):
                non_binary += 1
            for g in relabel_goals(ag, n_relabel, true_eps, centre, half_width, rng):
                r = float(u.compute_reward(ag, g, info))
                err["relabel_vs_manual"].append(abs(r - float(formula(goal_distance(ag, g), reward_type, eps))))
                pairs_ag.append(ag.copy())
                pairs_g.append(g)
                infos.append(info)
            if terminated or truncated:
                episode += 1
                obs, _ = env.reset(seed=seed + episode)
        ag_b, g_b = np.array(pairs_ag), np.array(pairs_g)
        d_b = goal_distance(ag_b, g_b)
        batch = np.asarray(u.compute_reward(ag_b, g_b, infos), dtype=np.float64)
        if batch.shape != d_b.shape:
            raise AssertionError(f"compute_reward on a batch returned shape {batch.shape}, expected {d_b.shape}")
        err["batch_vs_manual"] = list(np.abs(batch - formula(d_b, reward_type, eps)))
        relabel_reward = batch  # identical to the per-pair values when the batch check passes
        return RewardCheck(
            env_id=env_id,
            reward_type=reward_type,
            threshold=eps,
            atol=atol,
            n_steps=n_steps,
            relabel_per_step=n_relabel + 3,
            checks={k: len(v) for k, v in err.items()},
            mismatches={k: int(np.sum(np.asarray(v) > atol)) for k, v in err.items()},
            max_abs_error={k: float(np.max(v)) if len(v) else 0.0 for k, v in err.items()},
            non_binary=non_binary if reward_type == "sparse" else None,
            reward_dtypes=sorted(dtypes),
            distance=np.array(dist),
            step_reward=np.array(step_r),
            relabel_distance=d_b,
            relabel_reward=relabel_reward,
        )
    finally:
        env.close()


def boundary_rewards(env_id: str, offsets: Sequence[float] = (0.0, 0.1), seed: int = 0) -> dict[float, float]:
    """``compute_reward(ag, ag + offset·e_x, {})`` after one reset, for each offset in metres."""
    env = make_env(env_id)
    try:
        obs, _ = env.reset(seed=seed)
        ag = obs["achieved_goal"]
        return {float(o): float(env.unwrapped.compute_reward(ag, ag + np.array([o, 0.0, 0.0]), {})) for o in offsets}
    finally:
        env.close()


# ---------------------------------------------------------------------------------------------------------------
# (e) Across tasks, and (f) the bridge to stable-baselines3
# ---------------------------------------------------------------------------------------------------------------

DEFAULT_TASKS = ("FetchReach-v4", "FetchReachDense-v4", "FetchPush-v4", "FetchPickAndPlace-v4")


def compare_envs(env_ids: Sequence[str] = DEFAULT_TASKS, seed: int = 0) -> list[dict[str, Any]]:
    """One row per environment: dimensions, threshold, reward type, φ, gripper, timing, episode length."""
    rows = []
    for env_id in env_ids:
        env = make_env(env_id)
        try:
            obs, _ = env.reset(seed=seed)
            u = env.unwrapped
            ag, vec = obs["achieved_goal"], obs["observation"]
            rows.append({
                "env_id": env_id,
                "obs dim": int(vec.size),
                "ag dim": int(ag.size),
                "dg dim": int(obs["desired_goal"].size),
                "action dim": int(env.action_space.shape[0]),
                "ε (m)": float(u.distance_threshold),
                "reward": str(u.reward_type),
                "ag == obs[:3]": bool(np.array_equal(ag, vec[:3])),
                "gripper usable": not bool(u.block_gripper),
                "goal in air": bool(u.target_in_the_air) and bool(u.has_object),
                "control Hz": round(1.0 / float(u.dt), 6),
                "physics Hz": round(1.0 / float(u.model.opt.timestep), 6),
                "episode steps": int(env.spec.max_episode_steps),
            })
        finally:
            env.close()
    return rows


def sb3_bridge(env_id: str, n_pairs: int = 256, seed: int = 0) -> dict[str, Any]:
    """What stable-baselines3 does with this environment, checked on the real classes.

    - ``CombinedExtractor`` on the observation space: its key order, ``features_dim``, and whether its output on a
      real observation equals the plain concatenation of the keys in sorted order (it flattens; no per-key MLP);
    - ``DummyVecEnv.env_method("compute_reward", ag, g, infos, indices=[0])``, the call ``HerReplayBuffer`` makes,
      on ``n_pairs`` random goal pairs, against the manual formula.
    """
    import torch as th
    from stable_baselines3.common.torch_layers import CombinedExtractor
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([lambda: make_env(env_id)])
    try:
        space = venv.observation_space
        extractor = CombinedExtractor(space)
        obs = venv.reset()
        with th.no_grad():
            features = extractor({k: th.as_tensor(v) for k, v in obs.items()}).numpy()[0]
        concat = flatten_obs({k: v[0] for k, v in obs.items()})
        u = venv.envs[0].unwrapped
        rng = np.random.default_rng(seed)
        centre = np.asarray(u.initial_gripper_xpos[:3])
        ag = rng.uniform(centre - 0.3, centre + 0.3, size=(n_pairs, 3))
        g = rng.uniform(centre - 0.3, centre + 0.3, size=(n_pairs, 3))
        g[: n_pairs // 4] = ag[: n_pairs // 4]  # a quarter of the pairs are successes
        infos = [{} for _ in range(n_pairs)]  # what HerReplayBuffer passes unless copy_info_dict=True
        rewards = np.asarray(venv.env_method("compute_reward", ag, g, infos, indices=[0])[0], dtype=np.float64)
        expected = manual_reward(goal_distance(ag, g), str(u.reward_type), float(u.distance_threshold))
        return {
            "env_id": env_id,
            "key_order": list(extractor.extractors.keys()),
            "key_dims": {k: int(np.prod(s.shape)) for k, s in space.spaces.items()},
            "extractor_modules": {k: type(m).__name__ for k, m in extractor.extractors.items()},
            "features_dim": int(extractor.features_dim),
            "features_equal_concat": bool(np.allclose(features, concat, atol=1e-6)),
            "batch_shape": tuple(rewards.shape),
            "batch_mismatches": int(np.sum(np.abs(rewards - expected) > 1e-10)),
        }
    finally:
        venv.close()


# ---------------------------------------------------------------------------------------------------------------
# Reading the random baseline
# ---------------------------------------------------------------------------------------------------------------

DEFAULT_THRESHOLDS = (0.01, 0.02, 0.05, 0.10, 0.15, 0.20)


def success_at_thresholds(final_distances: Sequence[float],
                          thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> list[dict[str, Any]]:
    """What the success rate would be if success meant ``final_distance < threshold``, with 95% Wilson intervals."""
    d = np.asarray(final_distances, dtype=np.float64)
    rows = []
    for eps in thresholds:
        k = int(np.sum(d < eps))
        lo, hi = wilson_interval(k, d.size)
        lo = 0.0 if k == 0 else lo  # the exact bound at 0/n; wilson_interval can leave round-off there
        rows.append({"threshold (m)": float(eps), "successes": k, "episodes": int(d.size),
                     "success rate": k / d.size, "ci95 low": lo, "ci95 high": hi})
    return rows
