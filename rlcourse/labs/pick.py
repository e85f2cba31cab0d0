"""Pick-and-place, taken apart: goal strata, the task's phases, and a scripted controller.

Everything here reads the Fetch observation the way the task builds it (``_get_obs`` of Gymnasium-Robotics):

======  ==============================================================================================
0:3     gripper position (world frame, metres)
3:6     object (block) position
6:9     object position minus gripper position
9:11    the two finger joints (metres each; about 0.05 fully open, 0 closed)
11:14   object rotation (Euler angles)
14:17   object linear velocity minus the gripper's, times the control period (metres per step)
17:20   object angular velocity times the control period
20:23   gripper linear velocity times the control period (metres per step)
23:25   finger joint velocities times the control period
======  ==============================================================================================

Strata. PickAndPlace samples each goal on the table (its height is the block's start height, the task's
``height_offset``) or, with probability one half, lifted by U(0, 0.45) m. :func:`goal_stratum` names the branch:
``air`` when the goal lies above ``height_offset``, ``table`` otherwise.

Phases. :func:`phase_of` names what the state shows, for any policy: ``approach`` (the gripper is not above the
block), ``descend`` (above it, not yet around it), ``grasp`` (around it, the block still and on the table),
``lift`` (block off the table, moving more up than sideways), ``carry`` (block moving sideways, in the air or
dragged along the table, or held still in the air) and ``place`` (block within the success distance of the
goal). :class:`ScriptedPickPlace` is a controller written
from the same decomposition; it draws no random numbers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlcourse.core.errors import RLCourseError
from rlcourse.contract.config import DEFAULT_EVAL_SEED

PHASES = ("approach", "descend", "grasp", "lift", "carry", "place")
"""The task's phases, in the order a successful pick-and-place passes through them."""

FINGER_OPEN = 0.05
"""A finger joint's position when fully open (metres); the block is 0.05 m wide, so a grasp holds each finger
near 0.025."""


def _task(env: Any) -> Any:
    base = env.unwrapped
    if not getattr(base, "has_object", False) or not hasattr(base, "height_offset"):
        raise RLCourseError(f"needs a Fetch task with an object (Push, Slide, PickAndPlace), not {type(base).__name__}")
    return base


def table_height(env: Any) -> float:
    """The height at which the task puts table goals and the block's centre at rest: ``height_offset``."""
    return float(_task(env).height_offset)


def goal_stratum(env: Any, goal: Any = None, tol: float = 1e-6) -> str:
    """``air`` if the goal (default: the current one) lies more than ``tol`` above :func:`table_height`, else
    ``table``."""
    z = float(np.asarray(_task(env).goal if goal is None else goal)[2])
    return "air" if z > table_height(env) + tol else "table"


def stratum_labeller(env: Any, obs: dict[str, np.ndarray]) -> str:
    """A labeller for :func:`rlcourse.contract.evaluate.evaluate`: the episode's goal stratum."""
    return goal_stratum(env, obs["desired_goal"])


# ---------------------------------------------------------------------------------------------------------------
# Phases
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """Tolerances that decide the phase of a state (metres)."""

    table: float
    """The block's centre height when it rests on the table (the task's ``height_offset``)."""
    success: float = 0.05
    """The task's success distance (``distance_threshold``)."""
    aligned: float = 0.02
    """The gripper counts as above the block within this horizontal distance."""
    around: float = 0.02
    """... and as around it (fingers at the block's height) within this vertical distance."""
    lifted: float = 0.01
    """The block is off the table when its centre is this much above its resting height."""
    still: float = 0.002
    """A block on the table moving less than this per step (5 cm/s) is being grasped, not dragged."""

    @classmethod
    def of(cls, env: Any) -> Geometry:
        """The tolerances for ``env``'s task (its table height and success distance)."""
        base = _task(env)
        return cls(table=float(base.height_offset), success=float(base.distance_threshold))


def phase_of(obs: dict[str, np.ndarray], geometry: Geometry) -> str:
    """The phase (one of :data:`PHASES`) that an observation shows; see the module docstring."""
    o = np.asarray(obs["observation"], dtype=np.float64)
    obj, rel = o[3:6], o[6:9]
    if np.linalg.norm(obj - np.asarray(obs["desired_goal"], dtype=np.float64)) < geometry.success:
        return "place"
    if np.linalg.norm(rel[:2]) > geometry.aligned:
        return "approach"
    if abs(rel[2]) > geometry.around:
        return "descend"
    velocity = o[14:17] + o[20:23]  # the block's own displacement in the last step (metres)
    if obj[2] < geometry.table + geometry.lifted:  # on the table: still while the fingers close, then dragged
        return "grasp" if np.linalg.norm(velocity[:2]) < geometry.still else "carry"
    return "lift" if velocity[2] > np.linalg.norm(velocity[:2]) else "carry"


def phase_counts(phases: list[str]) -> dict[str, int]:
    """Steps spent in each phase, every phase listed (0 if never visited)."""
    counts = Counter(phases)
    return {p: counts.get(p, 0) for p in PHASES}


def first_steps(phases: list[str]) -> dict[str, int | None]:
    """The first step (1-based, after that many actions) at which each phase was seen; None if never."""
    out: dict[str, int | None] = dict.fromkeys(PHASES)
    for t, p in enumerate(phases, start=1):
        if out[p] is None:
            out[p] = t
    return out


# ---------------------------------------------------------------------------------------------------------------
# A scripted controller
# ---------------------------------------------------------------------------------------------------------------


class ScriptedPickPlace:
    """A pick-and-place controller written by hand: hover above the block, descend with open fingers, close, carry
    the block to the goal and hold it there. Stateless (each action depends on the current observation only) and
    deterministic, so it satisfies the policy protocol and serves as a baseline and a demonstrator.

    Every move is proportional, ``a = clip(gain * (target - position))``; the task moves the gripper by 0.05 m per
    unit of action, so ``gain = 10`` closes half the remaining distance per step.
    """

    def __init__(self, gain: float = 10.0, hover: float = 0.05, held_width: float = 0.07,
                 aligned: float = 0.01, around: float = 0.01):
        self.gain, self.hover, self.held_width = float(gain), float(hover), float(held_width)
        self.aligned, self.around = float(aligned), float(around)

    def _move(self, delta: np.ndarray, fingers: float) -> np.ndarray:
        return np.clip(np.append(self.gain * delta, fingers), -1.0, 1.0).astype(np.float32)

    def action(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The action for one observation (fingers: +1 opens, -1 closes)."""
        o = np.asarray(obs["observation"], dtype=np.float64)
        rel = o[6:9]
        holding = self.around_block(rel) and o[9] + o[10] < self.held_width
        return self.decide(o[0:3], o[3:6], rel, np.asarray(obs["desired_goal"], dtype=np.float64), holding)

    def around_block(self, rel: np.ndarray) -> bool:
        """The fingers are around the block: ``rel`` (block minus gripper) within twice the tolerances."""
        return bool(np.linalg.norm(rel[:2]) < 2 * self.aligned and abs(rel[2]) < 2 * self.around)

    def decide(self, grip: np.ndarray, obj: np.ndarray, rel: np.ndarray, goal: np.ndarray, holding: bool) -> np.ndarray:
        """The rule itself, given positions, the block's offset ``rel`` and whether the block is held."""
        if holding:  # take it to the goal
            return self._move(goal - obj, -1.0)
        if np.linalg.norm(rel[:2]) < self.aligned and abs(rel[2]) < self.around:  # around it: close
            return self._move(rel, -1.0)
        if np.linalg.norm(rel[:2]) < 2 * self.aligned and rel[2] < 0:  # above it: descend, fingers open
            return self._move(rel, 1.0)
        return self._move(obj + np.array([0.0, 0.0, self.hover]) - grip, 1.0)  # hover above the block

    def predict(self, observation: dict[str, np.ndarray], deterministic: bool = True) -> tuple[np.ndarray, None]:
        """The policy protocol's entry point."""
        return self.action(observation), None


# ---------------------------------------------------------------------------------------------------------------
# Phases of real episodes, through the one evaluation loop
# ---------------------------------------------------------------------------------------------------------------


def trace_phases(policy: Any, spec: Any = "FetchPickAndPlace-v4", n_episodes: int = 10,
                 seed: int = DEFAULT_EVAL_SEED) -> list[dict[str, Any]]:
    """Evaluate ``policy`` (:func:`rlcourse.contract.evaluate.evaluate`, episode ``i`` seeded ``seed + i``) and
    return each episode's record with its goal stratum as ``label`` and two more fields: ``phases``, the phase
    after each step, and ``phase_steps``, the steps spent in each phase."""
    from rlcourse.contract.evaluate import evaluate

    traces: list[list[str]] = []
    geometry: list[Geometry] = []

    def observe(env: Any, obs: dict[str, np.ndarray], t: int) -> None:
        if t == 0:
            traces.append([])
            geometry[:] = [Geometry.of(env)]
        else:
            traces[-1].append(phase_of(obs, geometry[0]))

    episodes = evaluate(policy, spec, n_episodes=n_episodes, seed=seed, labeller=stratum_labeller, observer=observe)
    for record, phases in zip(episodes, traces, strict=True):
        record["phases"] = phases
        record["phase_steps"] = phase_counts(phases)
    return episodes


def stress_specs(env_id: str, obs_noise: float, action_noise: float, ranges: float) -> dict[str, Any]:
    """The chapter's evaluation specs by name: the task itself (``clean``) and three perturbations of it, each one
    named wrapper: Gaussian noise of ``obs_noise`` metres on the ``observation`` vector only (the goals stay exact),
    Gaussian noise of ``action_noise`` on every action component, and object starts and goals drawn from boxes of
    half-width ``ranges`` metres instead of the task's 0.15."""
    from rlcourse.envs.spec import EnvSpec

    base = EnvSpec(env_id)
    return {"clean": base,
            "obs noise": base.with_wrappers(f"obs_noise:sigma={obs_noise}"),
            "action noise": base.with_wrappers(f"action_noise:sigma={action_noise}"),
            "wider ranges": base.with_wrappers(f"sample_ranges:obj_range={ranges},target_range={ranges}")}


def demonstrations(n: int, seed: int = 0, policy: Any = None, spec: Any = "FetchPickAndPlace-v4") -> list[Any]:
    """``n`` whole episodes (:class:`rlcourse.labs.her.Episode`) of ``policy`` on ``spec`` (a policy-protocol object,
    acting deterministically; default: the scripted pick-and-place controller; ``False``: random actions), episode
    ``i`` seeded ``seed + i``: data for the replay buffer (chapter 5)."""
    from rlcourse.envs.spec import make
    from rlcourse.labs.her import collect_episode

    env = make(spec)
    try:
        controller = ScriptedPickPlace() if policy is None else policy
        act = None if controller is False else (lambda obs: controller.predict(obs, deterministic=True)[0])
        return [collect_episode(env, act, seed=seed + i) for i in range(n)]
    finally:
        env.close()


def save_demonstrations(path: Any, episodes: list[Any]) -> str:
    """Write ``episodes`` as a demonstrations file for fastsac (``rlcourse.algos.fastsac.save_demonstrations``);
    returns its SHA-256, which a run's ``demonstrations_sha256`` hyperparameter must repeat."""
    from rlcourse.algos.fastsac import save_demonstrations as save

    return save(path, np.stack([e.observations for e in episodes]), np.stack([e.achieved_goals for e in episodes]),
                np.stack([e.desired_goal for e in episodes]), np.stack([e.actions for e in episodes]))
