"""The solutions to chapter 5's exercises (solutions/ch05.py), run small: each test checks what the chapter's hidden
solution tells the reader, so a solution that stops working, or a claim that stops holding, fails here."""

from __future__ import annotations

import numpy as np
import pytest

from solutions import ch05


def test_exercise_1_noise_changes_what_the_controller_sees_and_what_happens():
    out = ch05.exercise_1(n_episodes=20)
    assert out["clean, seen"] == {k: v for k, v in out["clean, true"].items() if k != "success"}  # no noise: one view
    seen, true = out["noisy, seen"], out["noisy, true"]
    assert true["success"] < out["clean, true"]["success"] - 0.4
    assert true["grasp"] > 2 * out["clean, true"]["grasp"]  # it stays at the block, opening and closing
    assert true["lift"] < out["clean, true"]["lift"]  # and lifts less
    assert seen["carry"] > 2 * true["carry"]  # noisy velocities make a still block look carried


def test_exercise_2_filtering_and_hysteresis_restore_the_controller():
    out = ch05.exercise_2(n_episodes=30)
    assert out["filtered, clean"]["all"]["success_rate"] >= 0.9
    assert out["filtered, noisy"]["all"]["success_rate"] >= out["plain, noisy"]["all"]["success_rate"] + 0.4
    assert out["filtered, noisy"]["air"]["success_rate"] > out["plain, noisy"]["air"]["success_rate"]
    # the plain controller's air collapse and the filtered one's recovery are separated by their intervals
    assert out["filtered, noisy"]["air"]["success_ci95"][0] > out["plain, noisy"]["air"]["success_ci95"][1]


def test_filtered_controller_starts_fresh_at_every_episode():
    policy = ch05.FilteredPickPlace()
    obs = {"observation": np.zeros(25), "desired_goal": np.ones(3), "achieved_goal": np.zeros(3)}
    policy.action(obs)
    obs2 = {**obs, "observation": np.full(25, 0.5), "desired_goal": np.full(3, 2.0)}
    policy.action(obs2)  # a new goal: a new episode, so the estimate is the reading itself, not an average
    assert np.array_equal(policy.estimate[:6], np.full(6, 0.5)) and not policy.holding


@pytest.mark.parametrize("d", [0.0, 0.1, 0.25, 0.5, 1.0])
def test_exercise_3_formula(d):
    expected = 0.0 if d * ch05.MAX_LIFT <= 0.05 else 0.5 * (1 - 0.05 / (d * ch05.MAX_LIFT))
    assert ch05.predicted_high_share(d, 0.05) == pytest.approx(expected)


def test_exercise_3_prediction_matches_the_wrapper():
    rows = ch05.exercise_3(difficulties=(0.1, 0.5, 1.0), n=600)
    assert rows[0]["sampled"] == rows[0]["predicted"] == 0.0  # d * 0.45 < 0.05: nothing needs a real lift
    for row in rows[1:]:
        sd = np.sqrt(row["predicted"] * (1 - row["predicted"]) / 600)
        assert abs(row["sampled"] - row["predicted"]) < 4 * sd, row
    assert ch05.schedule_share_below(0.5, 100_000, 400_000) == 0.125
    assert ch05.schedule_share_below(0.5, 1_000_000, 400_000) == 1.0


def test_exercise_4_demonstrations_give_her_air_goals_that_random_play_never_does():
    out = ch05.exercise_4(n=20)
    assert out["random"] == 0.0
    assert out["demonstrations"] > 0.2 and out["demo_success"] >= 0.9
