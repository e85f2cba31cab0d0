"""rlcourse.labs.robustness: degradation curves, σ*, AUC and recovery on curves with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlcourse.core.errors import RLCourseError
from rlcourse.core.stats import difference_interval
from rlcourse.labs import robustness as rb


def test_critical_sigma_interpolates_the_first_crossing():
    s = [0.0, 0.05, 0.1, 0.2]
    # 1.0 -> 0.8 -> 0.4: the line from (0.05, 0.8) to (0.1, 0.4) meets 0.5 three quarters of the way along
    assert rb.critical_sigma(s, [1.0, 0.8, 0.4, 0.0]) == pytest.approx(0.05 + 0.75 * 0.05)
    assert rb.critical_sigma(s, [1.0, 0.5, 0.9, 0.0]) == pytest.approx(0.05)  # the first crossing, not a later one
    assert rb.critical_sigma(s, [1.0, 0.9, 0.8, 0.6]) is None                # never within the sweep
    assert rb.critical_sigma(s, [0.4, 0.3, 0.2, 0.1]) == 0.0                 # nothing to lose
    assert rb.critical_sigma(s, [1.0, 0.9, 0.8, 0.6], level=0.7) == pytest.approx(0.1 + 0.5 * 0.1)


def test_auc_is_the_normalised_area_of_the_piecewise_linear_curve():
    s = [0.0, 0.05, 0.1]
    assert rb.robustness_auc(s, [1.0, 1.0, 1.0]) == 1.0
    assert rb.robustness_auc(s, [0.7, 0.7, 0.7]) == pytest.approx(0.7)  # untouched by noise: the clean success
    # the origin's grounding example: raw trapezoid 0.075, over a width of 0.1
    assert rb.robustness_auc(s, [1.0, 0.8, 0.4]) == pytest.approx(0.75)
    dense = np.linspace(0, 0.1, 1001)
    assert rb.robustness_auc(dense, 1 - 5 * dense) == pytest.approx(0.75)  # a straight line: exact
    # unequal spacing is weighted by width, not by count
    assert rb.robustness_auc([0.0, 0.01, 0.1], [1.0, 1.0, 0.0]) == pytest.approx((0.01 + 0.09 / 2) / 0.1)


@pytest.mark.parametrize("sigmas, rates", [
    ([0.0], [1.0]), ([0.0, 0.1], [1.0]), ([0.01, 0.1], [1.0, 0.5]), ([0.0, 0.1, 0.1], [1, 1, 1]),
    ([0.0, 0.2, 0.1], [1, 1, 1]), ([0.0, 0.1], [1.0, 1.2]), ([0.0, 0.1], [1.0, math.nan]), ([0.0, math.inf], [1, 1]),
])
def test_bad_curves_are_refused(sigmas, rates):
    with pytest.raises(RLCourseError):
        rb.critical_sigma(sigmas, rates)
    with pytest.raises(RLCourseError):
        rb.robustness_auc(sigmas, rates)


def test_curve_summary_brackets_the_point_estimates_and_stays_in_range():
    counts = {0.0: [(100, 100)] * 3, 0.01: [(90, 100)] * 3, 0.02: [(60, 100), (50, 100), (55, 100)],
              0.05: [(10, 100)] * 3}
    curve = rb.degradation_curve(counts)
    assert [c["sigma"] for c in curve] == [0.0, 0.01, 0.02, 0.05]
    assert curve[2]["successes"] == 165 and curve[2]["n_episodes"] == 300
    out = rb.curve_summary(curve)
    lo, hi = out["critical_sigma_range"]
    assert lo <= out["critical_sigma"] <= hi <= out["sigma_max"]
    assert 0.0 <= out["auc_range"][0] <= out["auc"] <= out["auc_range"][1] <= 1.0
    # shuffled input gives the same curve
    assert rb.degradation_curve(dict(reversed(list(counts.items())))) == curve


def test_recovery_states_loss_gain_and_a_verdict_from_the_intervals():
    r = rb.recovery((300, 300), (150, 300), (270, 300))
    assert r["loss"] == pytest.approx(0.5) and r["gain"] == pytest.approx(0.4)
    assert r["recovered"] == pytest.approx(0.8) and r["verdict"] == "yes"
    assert r["gain_ci95"] == pytest.approx(list(difference_interval(270, 300, 150, 300)))
    assert rb.recovery((300, 300), (150, 300), (155, 300))["verdict"] == "no"
    assert rb.recovery((30, 30), (15, 30), (22, 30))["verdict"] == "undecided"  # too few episodes to say
    assert rb.recovery((150, 300), (150, 300), (150, 300))["recovered"] is None  # nothing lost
    with pytest.raises(RLCourseError):
        rb.recovery((1, 1), (1, 1), (1, 1), share=0.0)


def test_noise_gain_is_the_gain_of_a_proportional_rule_and_zero_when_saturated():
    from rlcourse.contract.policies import FunctionPolicy
    from rlcourse.labs.controllers import ProportionalReach

    goal = np.array([1.3, 0.7, 0.5])
    near = [{"observation": np.r_[goal + d, np.zeros(7)].astype(np.float32), "desired_goal": goal.astype(np.float32),
             "achieved_goal": (goal + d).astype(np.float32)} for d in ([0.01, 0, 0], [0, -0.02, 0.01])]
    for k in (5.0, 20.0):
        assert rb.noise_gain(ProportionalReach(k), near) == pytest.approx([k, k], rel=1e-3)
    far = [{**near[0], "observation": np.r_[goal + 0.5, np.zeros(7)].astype(np.float32)}]
    assert rb.noise_gain(ProportionalReach(10.0), far) == pytest.approx([0.0], abs=1e-6)  # clipped on every axis
    w = np.random.default_rng(0).normal(size=(4, 10))
    linear = FunctionPolicy(lambda obs: w @ np.asarray(obs["observation"], dtype=np.float64))
    assert rb.noise_gain(linear, near) == pytest.approx(np.linalg.norm(w[:3]) / np.sqrt(3), rel=1e-3)
    with pytest.raises(RLCourseError):
        rb.noise_gain(linear, near, eps=0.0)
    with pytest.raises(RLCourseError):
        rb.noise_gain(linear, [])


def test_segment_gains_locate_the_gain_and_add_up_in_squares():
    from rlcourse.contract.policies import FunctionPolicy
    from rlcourse.labs.anatomy import obs_layout

    w = np.zeros((4, 10))
    w[0, 3], w[1, 4] = 30.0, -40.0          # only the finger entries (gripper_state) move the command
    w[2, 0] = 3.0                           # and a little of the gripper's x position
    policy = FunctionPolicy(lambda obs: w @ np.asarray(obs["observation"], dtype=np.float64))
    obs = [{"observation": np.linspace(0, 1, 10).astype(np.float32), "desired_goal": np.zeros(3, np.float32)}]
    seg = rb.segment_gains(policy, obs, obs_layout(10))
    assert seg["gripper_state"] == pytest.approx(50 / np.sqrt(3), rel=1e-3)
    assert seg["grip_pos"] == pytest.approx(3 / np.sqrt(3), rel=1e-3)
    assert seg["grip_velp"] == pytest.approx(0.0, abs=1e-6) and seg["gripper_vel"] == pytest.approx(0.0, abs=1e-6)
    total = rb.noise_gain(policy, obs)[0]
    assert total ** 2 == pytest.approx(sum(v ** 2 for v in seg.values()), rel=1e-6)
    assert rb.jacobian(policy, obs[0]).shape == (3, 10)
