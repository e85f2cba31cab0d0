import numpy as np
import pytest

from rlcourse.core.errors import RLCourseError
from rlcourse.contract.evaluate import evaluate, summarize
from rlcourse.envs.spec import make
from rlcourse.labs import controllers
from rlcourse.labs.controllers import ProportionalPush, ProportionalReach, closed_loop, planning_vs_control


def test_one_unit_of_action_moves_the_gripper_target_by_action_step(monkeypatch):
    env = make("FetchReach-v4")
    env.reset(seed=0)
    utils = env.unwrapped._utils  # the task hands the scaled move to mocap_set_action: record it on the way
    seen = []
    original = utils.mocap_set_action
    monkeypatch.setattr(utils, "mocap_set_action", lambda m, d, a: (seen.append(np.array(a)), original(m, d, a))[1])
    env.step(np.array([1.0, -0.5, 0.0, 0.0], dtype=np.float32))
    assert seen[-1][:3] == pytest.approx([controllers.ACTION_STEP, -0.5 * controllers.ACTION_STEP, 0.0], abs=1e-9)


def test_closed_loop_regimes_follow_from_the_gain():
    assert closed_loop(10)["ratio"] == pytest.approx(0.5) and closed_loop(10)["regime"] == "monotone"
    dead = closed_loop(1 / controllers.ACTION_STEP)
    assert dead["regime"] == "dead-beat" and dead["steps_to_tolerance"] == 1 and dead["first_overshoot"] == 0
    over = closed_loop(30, error=0.1)
    assert over["regime"] == "overshooting" and over["first_overshoot"] == pytest.approx(0.05)
    assert closed_loop(40)["regime"] == "unstable" and closed_loop(40)["steps_to_tolerance"] is None
    # r = 0.5 halves the error: from 10 cm, 3 steps to get below 1.5 cm (5, 2.5, 1.25)
    assert closed_loop(10, error=0.1, tolerance=0.015)["steps_to_tolerance"] == 3
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(RLCourseError, match="positive finite"):
            ProportionalReach(bad)


def test_the_proportional_rules_solve_their_tasks():
    reach = summarize(evaluate(ProportionalReach(10), "FetchReach-v4", n_episodes=5, seed=0))
    assert reach["success_rate"] == 1.0
    push = evaluate(ProportionalPush(20), "FetchPush-v4", n_episodes=10, seed=1000)
    assert sum(e["success"] for e in push) >= 8
    assert all(e["peak_action"] <= 1.0 for e in push)


def test_the_push_rule_approaches_from_behind_before_it_pushes():
    rule = ProportionalPush()
    obj, goal = np.array([1.3, 0.75, 0.425]), np.array([1.4, 0.75, 0.425])  # the goal lies in +x
    assert rule.phase(np.array([1.3, 0.75, 0.6]), obj, goal) == "approach"  # high above the block
    assert rule.phase(np.array([1.24, 0.75, 0.5]), obj, goal) == "descend"  # above the point behind it
    assert rule.phase(np.array([1.245, 0.75, 0.425]), obj, goal) == "push"   # behind it, at its height
    assert rule.phase(np.array([1.355, 0.75, 0.425]), obj, goal) == "approach"  # on the goal's side: go round
    obs = {"observation": np.concatenate([[1.245, 0.75, 0.425], obj, np.zeros(19)]), "desired_goal": goal}
    action, _ = rule.predict(obs)
    assert action[0] > 0 and abs(action[1]) < 1e-6  # pushing means moving towards the goal


def test_planning_vs_control_gap_and_interval():
    learned = {"success_rate": 0.9, "n_episodes": 100}
    rule = {"success_rate": 0.5, "n_episodes": 100}
    d = planning_vs_control(learned, rule)
    assert d["gap"] == pytest.approx(0.4) and -1 <= d["gap_ci95"][0] < 0.4 < d["gap_ci95"][1] <= 1
    same = planning_vs_control(rule, rule)
    assert same["gap"] == 0 and same["gap_ci95"][0] < 0 < same["gap_ci95"][1]
