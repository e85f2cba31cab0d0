"""The pick-and-place lab: goal strata, phases measured on real episodes, the scripted controller."""

import numpy as np
import pytest

from rlcourse.core.errors import RLCourseError
from rlcourse.contract.evaluate import evaluate, summarize_by_label
from rlcourse.envs.spec import make
from rlcourse.labs.pick import (PHASES, Geometry, ScriptedPickPlace, first_steps, goal_stratum, phase_counts,
                                phase_of, stress_specs, table_height, trace_phases)


def test_strata_follow_the_tasks_own_branch():
    env = make("FetchPickAndPlace-v4")
    h = table_height(env)
    labels = []
    for seed in range(200):
        obs, _ = env.reset(seed=seed)
        label = goal_stratum(env)
        labels.append(label)
        assert label == goal_stratum(env, obs["desired_goal"])
        if label == "table":
            assert obs["desired_goal"][2] == pytest.approx(h, abs=1e-9)  # table goals sit exactly at the block's height
        else:
            assert h < obs["desired_goal"][2] <= h + 0.45
    assert 0.4 <= labels.count("air") / len(labels) <= 0.6  # the task lifts a goal with probability one half
    push = make("FetchPush-v4")
    assert {goal_stratum(push) for _ in range(20) if push.reset()} == {"table"}  # Push never lifts its goals


def test_strata_need_a_task_with_an_object():
    with pytest.raises(RLCourseError, match="object"):
        goal_stratum(make("FetchReach-v4"))


def _obs(grip, obj, goal, fingers=(0.05, 0.05), obj_step=(0, 0, 0)):
    o = np.zeros(25)
    o[0:3], o[3:6], o[6:9] = grip, obj, np.subtract(obj, grip)
    o[9:11], o[20:23] = fingers, obj_step  # gripper velocity; the object's relative velocity left at 0
    return {"observation": o, "desired_goal": np.asarray(goal, dtype=float), "achieved_goal": np.asarray(obj)}


def test_phase_rules_on_hand_made_states():
    g = Geometry(table=0.42)
    block, goal = [1.3, 0.7, 0.42], [1.4, 0.8, 0.6]
    assert phase_of(_obs([1.2, 0.7, 0.6], block, goal), g) == "approach"
    assert phase_of(_obs([1.3, 0.7, 0.5], block, goal), g) == "descend"
    assert phase_of(_obs(block, block, goal), g) == "grasp"
    assert phase_of(_obs(block, block, goal, obj_step=(0.01, 0, 0)), g) == "carry"  # dragged along the table
    up = [1.3, 0.7, 0.45]
    assert phase_of(_obs(up, up, goal, obj_step=(0.002, 0, 0.01)), g) == "lift"
    assert phase_of(_obs(up, up, goal, obj_step=(0.01, 0, 0.002)), g) == "carry"
    assert phase_of(_obs(goal, goal, goal), g) == "place"
    assert phase_of(_obs([1.0, 0.5, 0.8], [1.39, 0.8, 0.6], goal), g) == "place"  # judged on the block alone


def test_phase_counts_and_first_steps():
    phases = ["approach", "approach", "descend", "grasp", "lift", "carry", "lift", "place"]
    assert phase_counts(phases) == {"approach": 2, "descend": 1, "grasp": 1, "lift": 2, "carry": 1, "place": 1}
    assert first_steps(phases) == {"approach": 1, "descend": 3, "grasp": 4, "lift": 5, "carry": 6, "place": 8}
    assert first_steps(["approach"])["place"] is None and list(phase_counts([])) == list(PHASES)


@pytest.fixture(scope="module")
def scripted_episodes():
    return trace_phases(ScriptedPickPlace(), n_episodes=40, seed=0)


def test_scripted_controller_picks_and_places_in_both_strata(scripted_episodes):
    strata = summarize_by_label(scripted_episodes)
    assert set(strata) == {"air", "table"} and all(s["n_episodes"] >= 8 for s in strata.values())
    assert all(s["success_rate"] >= 0.9 for s in strata.values()), strata
    assert all(len(e["phases"]) == e["length"] == 50 for e in scripted_episodes)


def test_phases_come_in_the_tasks_order(scripted_episodes):
    lifted = []
    for e in scripted_episodes:
        if not e["success"] or e["phases"][0] == "place":  # failed, or solved at reset without moving
            continue
        first = first_steps(e["phases"])
        assert first["approach"] == 1 and first["descend"] < first["grasp"] < first["place"]
        assert e["phases"][-1] == "place" and e["time_to_success"] is not None
        assert sum(e["phase_steps"].values()) == e["length"]
        if e["label"] == "air":  # the block must move (up or sideways) between grasp and place
            assert any(p in ("lift", "carry") for p in e["phases"][first["grasp"]:first["place"]])
            lifted.append(first["lift"] is not None and first["grasp"] < first["lift"] < first["place"])
    assert np.mean(lifted) >= 0.5  # most air goals are reached through a lift (low ones by a diagonal carry)


def test_a_controller_that_never_holds_the_block_fails_in_the_air():
    """The strata separate what a broken grasp costs: without holding, only goals the block already sits near
    can succeed."""
    clumsy = ScriptedPickPlace(held_width=0.0)  # closes, but never believes it holds the block
    strata = summarize_by_label(evaluate(clumsy, "FetchPickAndPlace-v4", n_episodes=30, seed=0,
                                         labeller=lambda env, obs: goal_stratum(env)))
    assert strata["air"]["success_rate"] == 0.0


def test_stress_specs_perturb_one_thing_each():
    from rlcourse.envs.spec import EnvSpec

    specs = stress_specs("FetchPickAndPlace-v4", 0.01, 0.05, 0.2)
    assert specs["clean"] == EnvSpec("FetchPickAndPlace-v4")
    assert [[(w.name, w.params) for w in s.validate().wrappers] for s in list(specs.values())[1:]] == [
        [("obs_noise", {"sigma": 0.01, "keys": ["observation"]})], [("action_noise", {"sigma": 0.05})],
        [("sample_ranges", {"obj_range": 0.2, "target_range": 0.2})]]


def test_the_committed_demonstrations_are_the_scripted_controllers_episodes(tmp_path):
    """recipes.PICK_DEMONSTRATIONS is what pick.demonstrations makes from its recorded seeds, byte for byte, and
    every episode of it succeeds."""
    from rlcourse.core.io import sha256
    from rlcourse.core.paths import project_root
    from rlcourse.labs.pick import demonstrations, save_demonstrations
    from rlcourse.training.recipes import PICK_DEMONSTRATIONS as D

    assert sha256(project_root() / D["file"]) == D["sha256"]
    eps = demonstrations(D["episodes"], seed=D["first_seed"])
    assert save_demonstrations(tmp_path / "again.npz", eps) == D["sha256"]
    assert all(e.rewards[-1] == 0.0 for e in eps)


def test_the_committed_push_demonstrations_are_the_push_controllers_episodes(tmp_path):
    """recipes.PUSH_DEMONSTRATIONS is chapter 3's Push rule on its recorded seeds, byte for byte; most of its
    episodes end on the goal (the rule is imperfect, and the failures are still useful data for HER)."""
    from rlcourse.core.io import sha256
    from rlcourse.core.paths import project_root
    from rlcourse.labs.controllers import ProportionalPush
    from rlcourse.labs.pick import demonstrations, save_demonstrations
    from rlcourse.training.recipes import PUSH_DEMONSTRATIONS as D

    assert sha256(project_root() / D["file"]) == D["sha256"]
    eps = demonstrations(D["episodes"], seed=D["first_seed"], policy=ProportionalPush(), spec="FetchPush-v4")
    assert save_demonstrations(tmp_path / "again.npz", eps) == D["sha256"]
    assert eps[0].observations.shape[-1] == 25 and np.all(eps[0].actions[:, 3] == 0.0)  # Push: fingers unused
    assert sum(e.rewards[-1] == 0.0 for e in eps) >= 0.7 * len(eps)
