"""Chapter 6's lab: policies as controllers.

A trained policy is a feedback controller: it maps what the robot senses to a command, 25 times a second. This
module holds what the chapter builds to judge it as one:

* two hand-written **proportional rules** that satisfy the policy protocol: :class:`ProportionalReach` (drive the
  gripper at the goal) and :class:`ProportionalPush` (get behind the block, then push it at the goal);
* the **closed-loop model** of a proportional rule on Fetch (:func:`closed_loop`), which predicts from the gain
  alone how fast the error shrinks and whether it overshoots, for the chapter to hold against measurements;
* the **planning-versus-control decomposition** (:func:`planning_vs_control`): the success a learned policy adds
  over the rule, with an interval.

The interface wrappers the chapter sweeps (``action_scale``, ``action_filter``) live in
:mod:`rlcourse.envs.wrappers`, and every metric comes from the one evaluation loop,
:func:`rlcourse.contract.evaluate.evaluate`, on the actions the simulator received.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rlcourse.core.errors import RLCourseError

ACTION_STEP = 0.05
"""Metres per unit of action: at every step the Fetch tasks put the gripper's target (a mocap body) where the
gripper is and move it by ``0.05 · a[:3]``; the arm then follows the target for one control period, not quite
all the way (chapter 1 measures 3.1 cm for a full unit)."""


def _check_gain(gain: float) -> float:
    gain = float(gain)
    if not (math.isfinite(gain) and gain > 0):
        raise RLCourseError(f"a proportional gain must be a positive finite number, got {gain!r}")
    return gain


class ProportionalReach:
    """``a = clip(gain · (goal − gripper))``, fingers still: the simplest controller that solves Reach.

    ``gain`` is in actions per metre; with :data:`ACTION_STEP` the commanded move per step is
    ``ACTION_STEP · gain`` times the error (see :func:`closed_loop`)."""

    def __init__(self, gain: float = 10.0):
        self.gain = _check_gain(gain)

    def predict(self, observation: dict[str, np.ndarray], deterministic: bool = True) -> tuple[np.ndarray, None]:
        """The policy protocol's entry point (stateless and deterministic)."""
        grip = np.asarray(observation["observation"][:3], dtype=np.float64)
        error = np.asarray(observation["desired_goal"], dtype=np.float64) - grip
        return np.append(np.clip(self.gain * error, -1.0, 1.0), 0.0).astype(np.float32), None


class ProportionalPush:
    """A two-phase rule for Push, proportional in every move.

    Let ``u`` be the horizontal unit vector from the block to the goal. **Approach:** go to the point ``behind``
    metres behind the block on the far side from the goal (at ``clearance`` above the block while still away
    from that point, so the fingers never sweep across the block), then descend to the block's height.
    **Push:** while the gripper sits behind the block (within ``lateral`` of the line through block and goal, at
    the block's height), drive it towards where it would be with the block on the goal, ``g − behind · u``.
    The rule is stateless: a block that slides off the line sends it back to the approach.
    """

    def __init__(self, gain: float = 10.0, behind: float = 0.06, clearance: float = 0.06, lateral: float = 0.015,
                 aligned: float = 0.02):
        self.gain = _check_gain(gain)
        self.behind, self.clearance = float(behind), float(clearance)
        self.lateral, self.aligned = float(lateral), float(aligned)

    def phase(self, grip: np.ndarray, obj: np.ndarray, goal: np.ndarray) -> str:
        """``"push"``, ``"descend"`` or ``"approach"`` for these positions."""
        along, across = self._frame(obj, goal)
        rel = obj[:2] - grip[:2]
        at_height = abs(grip[2] - obj[2]) < 0.015
        if at_height and 0.5 * self.behind <= rel @ along <= 1.5 * self.behind and abs(rel @ across) < self.lateral:
            return "push"
        if np.linalg.norm(grip[:2] - (obj[:2] - self.behind * along)) < self.aligned:
            return "descend"
        return "approach"

    def _frame(self, obj: np.ndarray, goal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = goal[:2] - obj[:2]
        n = float(np.linalg.norm(d))
        along = d / n if n > 1e-9 else np.array([1.0, 0.0])
        return along, np.array([-along[1], along[0]])

    def predict(self, observation: dict[str, np.ndarray], deterministic: bool = True) -> tuple[np.ndarray, None]:
        """The policy protocol's entry point (stateless and deterministic)."""
        o = np.asarray(observation["observation"], dtype=np.float64)
        grip, obj = o[0:3], o[3:6]
        goal = np.asarray(observation["desired_goal"], dtype=np.float64)
        along, _ = self._frame(obj, goal)
        phase = self.phase(grip, obj, goal)
        if phase == "push":
            target = np.append(goal[:2] - self.behind * along, obj[2])
        elif phase == "descend":
            target = np.append(obj[:2] - self.behind * along, obj[2])
        else:
            target = np.append(obj[:2] - self.behind * along, obj[2] + self.clearance)
        return np.append(np.clip(self.gain * (target - grip), -1.0, 1.0), 0.0).astype(np.float32), None


def closed_loop(gain: float, error: float = 0.1, tolerance: float = 0.05, step: float = ACTION_STEP) -> dict[str, Any]:
    """What a proportional rule does to an error if the gripper followed its command exactly, without clipping
    (the real arm lags its target and the action box clips large commands: the chapter measures both).

    The command moves the gripper by ``step · gain · e``, so the error after one step is ``r · e`` with
    ``r = 1 − step · gain``: it shrinks monotonically for ``0 < r < 1``, in one step for ``r = 0`` (the
    *dead-beat* gain ``1/step``), alternates sign, overshooting, for ``r < 0``, and grows for ``|r| > 1``.
    Returns ``r``, the regime, and the steps to bring ``error`` within ``tolerance`` (None if it never does)."""
    gain = _check_gain(gain)
    r = 1.0 - step * gain
    if abs(r) < 1e-12:
        steps: int | None = 1
    elif abs(r) >= 1.0:
        steps = None
    else:
        steps = max(1, math.ceil(math.log(tolerance / error) / math.log(abs(r)))) if error > tolerance else 0
    regime = ("dead-beat" if abs(r) < 1e-12 else "monotone" if r > 0 else "overshooting" if r > -1
              else "unstable")
    return {"gain": gain, "ratio": r, "regime": regime, "steps_to_tolerance": steps,
            "first_overshoot": max(0.0, -r) * error}


def planning_vs_control(learned: dict[str, Any], rule: dict[str, Any]) -> dict[str, Any]:
    """The success a learned policy adds over a hand-written rule, ``gap`` = learned rate − rule rate, with
    Newcombe's 95% interval. ``learned`` and ``rule`` are :func:`~rlcourse.contract.evaluate.summarize` results
    or :func:`~rlcourse.analysis.report.pooled_strata` entries.

    A gap near zero says the task needed only control, which the rule already has; a large gap says the learner
    found a plan (a sequence of sub-goals, such as getting behind the block first) that the rule lacks."""
    from rlcourse.analysis.report import success_drop

    d = success_drop(learned, rule)
    return {"gap": d["drop"], "gap_ci95": d["drop_ci95"]}
