"""The solutions to chapter 1's exercises (solutions/ch01.py), run small: each test checks what the chapter's hidden
solution tells the reader to expect, so a solution that stops working, or a claim that stops holding, fails here."""

from __future__ import annotations

import numpy as np

from rlcourse.contract import runs
from solutions import ch01


def test_exercise_1_seeds_fix_goals_and_unseeded_resets_continue_the_stream():
    r = ch01.exercise_1(seeds=(0, 1, 2), n_unseeded=3)
    assert r["same_seed_same_goal"] and r["distinct_across_seeds"]
    assert r["unseeded_all_distinct"] and r["unseeded_reproducible"]
    assert r["unseeded_shifted_by_extra_reset"], "an unseeded goal should depend on the number of earlier resets"
    assert not r["unseeded_equals_next_seeds"], "an unseeded reset is not a reset with the next seed"


def test_exercise_2_sparse_is_the_thresholded_dense_reward_on_one_trajectory():
    r = ch01.exercise_2(seed=0, n_steps=50)
    assert r["same_trajectory"], "the reward type must not change the dynamics"
    assert r["mismatches"] == 0
    dense, sparse = r["dense_rewards"], r["sparse_rewards"]
    assert np.all(dense < 0) and set(np.unique(sparse)) <= {0.0, -1.0}
    assert r["fraction_sparse_zero"] <= 0.1, "random actions should seldom end a step within epsilon"
    assert r["sparse_return"] == -(50 - r["steps_with_sparse_zero"])
    assert r["dense_return"] == dense.sum() < 0


def test_exercise_3_the_block_moves_only_on_contact():
    r = ch01.exercise_3(seed=0, n_steps=20)
    assert r["idle_block_displacement"] < 1e-6, "a zero action must leave the block where it is"
    assert 1e-4 < r["idle_gripper_drift"] < 1e-2, "the gripper drifts by millimetres under a zero action"
    assert r["contact_step"] is not None and r["contact_step"] < 10 and r["block_displacement"] > 0.05
    # relative terms change as soon as the gripper moves; the block's own terms only at contact
    assert {"object_rel_pos", "object_velp"} <= set(r["changed_before_contact"])
    assert not {"object_pos", "object_rot", "object_velr"} & set(r["changed_before_contact"])
    assert {"object_pos", "object_velr"} <= set(r["new_at_contact"])


def test_exercise_4_every_reach_goal_is_reachable_and_air_goals_are_within_the_arms_height():
    r = ch01.exercise_4(n_resets=30, seed=0)
    eps = r["epsilon"]
    assert r["n_below_table"] >= 1, "seed 0 puts the first Reach goal below the table top"
    assert r["table_z"] < r["lowest_gripper_z"]
    assert 0 < r["largest_vertical_gap"] <= r["deepest_possible_gap"] < eps, "no Reach goal is too deep to reach"
    assert np.all(r["final_distance_below_table"] < eps) and r["steered_success_rate"] == 1.0
    assert r["pnp_highest_goal_z"] < r["pnp_highest_gripper_z"]


def test_exercise_5_random_success_in_push_is_decided_at_reset(tmp_path):
    r = ch01.exercise_5(n_episodes=10, out_dir=tmp_path)
    push, reach = r["FetchPushDense-v4"], r["FetchReachDense-v4"]
    assert push["share_distance_unchanged"] >= 0.5, "in most Push episodes random actions never touch the block"
    assert push["share_success_as_at_reset"] >= 0.8
    assert reach["share_distance_unchanged"] == 0.0, "in Reach the achieved goal is the gripper, which always moves"
    for env_id, s in r.items():
        run = runs.load_run(s["run_path"])  # a complete, valid run folder
        assert run.meta["algo"] == "random" and run.meta["env_id"] == env_id and run.eval["n_episodes"] == 10
        lo, hi = s["success_ci95"]
        assert 0.0 <= lo <= s["success_rate"] <= hi <= 1.0
