"""Tests for rlcourse.labs.anatomy: each check must pass on the real simulator and must fail when the belief is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from rlcourse.labs import anatomy
from rlcourse.labs.anatomy import OBS_LAYOUT, Segment
from rlcourse.envs import make_env

REACH, REACH_DENSE = "FetchReach-v4", "FetchReachDense-v4"
PUSH, PUSH_DENSE, PNP = "FetchPush-v4", "FetchPushDense-v4", "FetchPickAndPlace-v4"


# --- (a) observation layout -----------------------------------------------------------------------------------


def test_layouts_are_contiguous_and_complete():
    for dim, layout in OBS_LAYOUT.items():
        assert layout[0].start == 0 and layout[-1].stop == dim
        assert all(a.stop == b.start for a, b in zip(layout, layout[1:]))
        assert all(s.size == len(s.components) for s in layout)
    assert [s.name for s in OBS_LAYOUT[10]] == ["grip_pos", "gripper_state", "grip_velp", "gripper_vel"]
    assert [(s.name, s.start) for s in OBS_LAYOUT[25]][1:3] == [("object_pos", 3), ("object_rel_pos", 6)]
    rows = anatomy.label_observation(np.arange(25.0))
    assert [r["index"] for r in rows] == list(range(25)) and rows[23]["segment"] == "gripper_vel"
    with pytest.raises(ValueError):
        anatomy.obs_layout(7)


@pytest.mark.parametrize("env_id", [REACH, PUSH, PNP])
def test_layout_matches_simulator_state(env_id):
    errors = anatomy.verify_layout(env_id, seed=3, n_steps=10)
    assert set(errors) >= {"grip_pos", "gripper_state", "grip_velp", "gripper_vel", "achieved_goal"}
    assert max(errors.values()) < 1e-12, errors


def test_layout_check_detects_a_wrong_layout(monkeypatch):
    # the order printed in the source book's chapter 1 prose: position, linear velocity, fingers, finger velocities
    wrong = anatomy._layout([anatomy._GRIP, anatomy._GRIP_VEL, anatomy._FINGERS, anatomy._FINGER_VEL])
    monkeypatch.setitem(anatomy.OBS_LAYOUT, 10, wrong)
    errors = anatomy.verify_layout(REACH, seed=0, n_steps=10)
    assert errors["grip_pos"] < 1e-12
    assert errors["grip_velp"] > 1e-3 and errors["gripper_state"] > 1e-3


def test_push_observation_relations_by_hand():
    env = make_env(PUSH)
    try:
        env.action_space.seed(0)
        obs, _ = env.reset(seed=0)
        for _ in range(5):
            obs, *_ = env.step(env.action_space.sample())
        vec, u = obs["observation"], env.unwrapped
        assert vec.shape == (25,)
        np.testing.assert_array_equal(vec[0:3], u.data.site("robot0:grip").xpos)
        np.testing.assert_array_equal(vec[3:6], obs["achieved_goal"])
        np.testing.assert_array_equal(vec[3:6], u.data.site("object0").xpos)
        np.testing.assert_allclose(vec[6:9], vec[3:6] - vec[0:3], atol=1e-15)
        assert not np.allclose(obs["achieved_goal"], vec[:3])
    finally:
        env.close()


def test_describe_observation_reach():
    d = anatomy.describe_observation(REACH_DENSE, seed=0)
    shapes = {k: v["shape"] for k, v in d["keys"].items()}
    assert shapes == {"observation": (10,), "achieved_goal": (3,), "desired_goal": (3,)}
    assert all(v["finite"] and v["dtype"] == "float64" for v in d["keys"].values())
    assert d["action_space"]["shape"] == (4,)
    assert d["action_space"]["low"] == [-1.0] * 4 and d["action_space"]["high"] == [1.0] * 4
    assert len(d["table"]) == 10 and d["table"][0]["value"] == d["observation"][0]


# --- (b) goal space ------------------------------------------------------------------------------------------


def test_goal_space_phi_and_bounds():
    n = 60
    reach, push, pnp = (anatomy.goal_space(e, n_resets=n, seed=0) for e in (REACH, PUSH, PNP))
    assert reach["ag_is_grip_pos"] == 1.0 and reach["ag_is_object_pos"] == 0.0
    for g in (push, pnp):
        assert g["ag_is_grip_pos"] == 0.0 and g["ag_is_object_pos"] == 1.0
    for g in (reach, push, pnp):
        assert g["goals"].shape == (n, 3) and g["inside_box"] and g["distinct_goals"] == n
        width = g["box_high"] - g["box_low"]
        assert np.all(g["high"][:2] - g["low"][:2] > 0.8 * width[:2]), "goals should fill the sampling box in x, y"
    assert np.ptp(push["goals"][:, 2]) == 0.0, "Push goals lie on the table: one height"
    assert pnp["high"][2] > pnp["low"][2] + 0.1, "half of PickAndPlace goals are in the air"
    assert reach["table"]["z"] < reach["low"][2] + 0.05


# --- (c) actions -----------------------------------------------------------------------------------------------


def test_action_axes_move_the_gripper_positively():
    m = anatomy.measure_actions(REACH, seed=0, magnitudes=(0.5, 1.0, 2.0))
    disp = m["axis_response"]
    for i in range(3):
        assert disp[i, i] > 0.01, f"action +{anatomy.AXES[i]} should move the gripper along +{anatomy.AXES[i]}"
        others = np.delete(disp[i], i)
        assert np.all(np.abs(others) < 0.1 * disp[i, i])
    resp = m["response"]
    np.testing.assert_allclose(resp[:, 2], resp[:, 1], atol=1e-12)  # 2.0 is clipped to 1.0
    assert np.all((m["gain"] > 0.3) & (m["gain"] < 1.0)), "the gripper covers only part of the commanded 5 cm"


def test_gripper_command_only_matters_for_pick_and_place():
    for env_id in (REACH, PUSH):
        g = anatomy.measure_gripper(env_id, n_steps=5)
        assert g["block_gripper"]
        np.testing.assert_allclose(g["open_cmd"]["fingers"], g["close_cmd"]["fingers"], atol=1e-9)
    g = anatomy.measure_gripper(PNP, n_steps=10)
    assert not g["block_gripper"]
    assert g["open_cmd"]["finger_gap"] > g["close_cmd"]["finger_gap"] + 0.05, "+1 opens the fingers"
    assert np.all(g["open_cmd"]["fingers"] > 0.04) and np.all(g["close_cmd"]["fingers"] < 0.005)


def test_hold_action_path_shape_and_table_contact():
    path = anatomy.hold_action(REACH, [0, 0, -1, 0], n_steps=20)
    assert path.shape == (21, 3)
    assert path[-1, 2] > 0.40 and np.ptp(path[-5:, 2]) < 1e-3, "the table stops the gripper"


# --- (d) rewards -------------------------------------------------------------------------------------------------


def test_dense_reward_is_exactly_minus_distance():
    env = make_env(REACH_DENSE)
    try:
        env.action_space.seed(1)
        env.reset(seed=1)
        for _ in range(60):
            obs, reward, *_ = env.step(env.action_space.sample())
            d = np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"])
            assert abs(float(reward) + d) <= 1e-10
    finally:
        env.close()
    rc = anatomy.reward_check(REACH_DENSE, n_steps=120, n_relabel=3, seed=0, atol=1e-10)
    assert rc.ok and rc.total_mismatches == 0 and max(rc.max_abs_error.values()) <= 1e-10
    assert np.all(rc.step_reward <= 0) and rc.non_binary is None


def test_sparse_reward_is_binary_with_the_right_boundary():
    rc = anatomy.reward_check(REACH, n_steps=120, n_relabel=3, seed=0)
    assert rc.ok and rc.non_binary == 0 and rc.threshold == 0.05
    assert set(np.unique(rc.step_reward)) <= {0.0, -1.0}
    assert set(np.unique(rc.relabel_reward)) == {0.0, -1.0}, "relabelling must hit both branches"
    b = anatomy.boundary_rewards(REACH, offsets=(0.0, 0.1))
    assert b[0.0] == 0.0 and b[0.1] == -1.0
    d = anatomy.boundary_rewards(REACH_DENSE, offsets=(0.0, 0.1))
    assert d[0.0] == 0.0 and abs(d[0.1] + 0.1) < 1e-12


@pytest.mark.parametrize("env_id", [REACH_DENSE, REACH, PUSH_DENSE, PUSH])
def test_relabelled_goals_have_zero_mismatches(env_id):
    rc = anatomy.reward_check(env_id, n_steps=60, n_relabel=3, seed=2)
    assert rc.checks["relabel_vs_manual"] == 60 * 6 == rc.checks["batch_vs_manual"]
    assert rc.ok, rc.mismatches


@pytest.mark.parametrize("wrong_eps", [0.04, 0.06])
def test_a_wrong_threshold_is_detected(wrong_eps):
    rc = anatomy.reward_check(REACH, n_steps=50, n_relabel=1, seed=0, threshold=wrong_eps)
    assert rc.mismatches["relabel_vs_manual"] > 0 and not rc.ok


def test_a_wrong_formula_is_detected():
    half = anatomy.reward_check(REACH_DENSE, n_steps=30, n_relabel=1, formula=lambda d, t, e: -0.5 * np.asarray(d))
    assert half.mismatches["step_vs_manual"] == 30 and half.mismatches["step_vs_compute"] == 0

    def plus_minus_one(d, reward_type, eps):  # the common misreading: +1 on success
        return np.where(np.asarray(d) > eps, -1.0, 1.0)

    pm = anatomy.reward_check(REACH, n_steps=30, n_relabel=1, formula=plus_minus_one)
    assert pm.mismatches["relabel_vs_manual"] >= 30, "every relabel with g' = ag must be flagged"


def test_a_buggy_environment_reward_is_detected(monkeypatch):
    from gymnasium_robotics.envs.fetch.reach import MujocoFetchReachEnv

    original = MujocoFetchReachEnv.compute_reward
    monkeypatch.setattr(MujocoFetchReachEnv, "compute_reward", lambda self, a, g, info: 2 * original(self, a, g, info))
    rc = anatomy.reward_check(REACH_DENSE, n_steps=20, n_relabel=1)
    assert rc.mismatches["step_vs_manual"] == 20 and rc.mismatches["compute_vs_manual"] == 20
    assert rc.mismatches["step_vs_compute"] == 0  # consistent with itself, wrong against the formula


def test_a_reward_changing_wrapper_is_detected(monkeypatch):
    from gymnasium.wrappers import TransformReward

    monkeypatch.setattr(anatomy, "make_env", lambda env_id: TransformReward(make_env(env_id), lambda r: r - 0.01))
    rc = anatomy.reward_check(REACH_DENSE, n_steps=20, n_relabel=1)
    assert rc.mismatches["step_vs_compute"] == 20 and rc.mismatches["compute_vs_manual"] == 0


# --- (e) across tasks and (f) the SB3 bridge ------------------------------------------------------------------


def test_compare_envs():
    rows = {r["env_id"]: r for r in anatomy.compare_envs([REACH, REACH_DENSE, PUSH, PNP])}
    assert rows[REACH]["obs dim"] == 10 and rows[PUSH]["obs dim"] == 25 == rows[PNP]["obs dim"]
    assert rows[REACH]["ag == obs[:3]"] and not rows[PUSH]["ag == obs[:3]"] and not rows[PNP]["ag == obs[:3]"]
    assert rows[REACH]["reward"] == "sparse" and rows[REACH_DENSE]["reward"] == "dense"
    assert all(r["ε (m)"] == 0.05 and r["action dim"] == 4 and r["episode steps"] == 50 for r in rows.values())
    assert [e for e, r in rows.items() if r["gripper usable"]] == [PNP]
    assert rows[REACH]["control Hz"] == 25 and rows[REACH]["physics Hz"] == 500


@pytest.mark.parametrize("env_id, dim", [(REACH, 16), (PUSH_DENSE, 31)])
def test_sb3_bridge(env_id, dim):
    b = anatomy.sb3_bridge(env_id, n_pairs=64)
    assert b["features_dim"] == dim and b["features_equal_concat"]
    assert b["key_order"] == ["achieved_goal", "desired_goal", "observation"]
    assert set(b["extractor_modules"].values()) == {"Flatten"}
    assert b["batch_shape"] == (64,) and b["batch_mismatches"] == 0


# --- reading results -------------------------------------------------------------------------------------------


def test_success_at_thresholds():
    rows = anatomy.success_at_thresholds([0.005, 0.03, 0.05, 0.12, 0.3], thresholds=(0.01, 0.05, 0.2))
    assert [r["successes"] for r in rows] == [1, 2, 4]  # strict: d < threshold, as the environment's is_success
    assert all(0.0 <= r["ci95 low"] <= r["success rate"] <= r["ci95 high"] <= 1.0 for r in rows)


def test_segment_size():
    assert isinstance(Segment("x", 0, 1, "", "", ("a",)).size, int)
