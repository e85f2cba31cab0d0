"""Replay diagnostics (rlcourse.algos.diagnostics) on their own and inside the training contract."""

import copy
import math

import numpy as np
import pytest

from rlcourse.algos.diagnostics import DIAGNOSTIC_COLUMNS, replay_diagnostics
from rlcourse.core.errors import RLCourseError
from rlcourse.contract.runs import curve_table
from rlcourse.contract.writer import CURVE_COLUMNS
from rlcourse.training.train import TrainConfig, train

TINY_SAC = {"learning_starts": 100, "batch_size": 32, "buffer_size": 2000, "policy_kwargs": {"net_arch": [32, 32]}}


def tiny():
    """A fresh copy: SB3 writes into the policy_kwargs dict it is given (SAC adds use_sde)."""
    return copy.deepcopy(TINY_SAC)


@pytest.fixture(scope="module")
def diag_run(tmp_path_factory):
    """SAC through the contract, 400 steps, diagnostics on: 20 curve rows, the first few before learning starts."""
    import torch

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("diag")
    return train(TrainConfig(algo="sac", env_id="FetchReachDense-v4", seed=0, total_steps=400,
                             hyperparameters=tiny(), out_dir=str(out), curve_points=20, final_eval_episodes=2,
                             tensorboard=False, diagnostics=True, command="pytest diag_run"))


def test_curve_carries_the_diagnostic_columns(diag_run):
    assert diag_run.curve["columns"] == CURVE_COLUMNS + DIAGNOSTIC_COLUMNS
    t = curve_table(diag_run.curve)
    steps = np.array(t["timesteps"])
    before = steps <= TINY_SAC["learning_starts"]
    assert before.any() and (~before).sum() >= 10
    for c in DIAGNOSTIC_COLUMNS:
        col = [v for v, b in zip(t[c], before) if b]
        assert all(v is None for v in col), c  # nothing is reported before learning starts
        after = [v for v, b in zip(t[c], before) if not b]
        assert all(v is not None and math.isfinite(v) for v in after), c
    assert all(v > 0 for v, b in zip(t["ent_coef"], before) if not b)
    assert all(0 <= v <= 1 for v, b in zip(t["replay_within_eps"], before) if not b)
    assert all(-1.5 < v <= 0 for v, b in zip(t["replay_reward_mean"], before) if not b)  # dense Reach: −distance
    assert diag_run.meta["config"]["diagnostics"] is True


def test_replay_diagnostics_on_a_model_and_the_rng_is_left_alone(diag_run):
    from stable_baselines3.common.env_util import make_vec_env

    from rlcourse.envs import make_env
    from rlcourse.algos.base import load_model

    model = load_model(diag_run, env=make_vec_env(lambda: make_env("FetchReachDense-v4"), n_envs=1, seed=5))
    with pytest.raises(ValueError, match="replay buffer holds 0"):
        replay_diagnostics(model, batch_size=32)  # a loaded model has an empty buffer
    model.learn(200)  # refill (learning_starts is counted from zero again)
    state = np.random.get_state()[1].copy()
    d = replay_diagnostics(model, batch_size=64)
    assert np.array_equal(np.random.get_state()[1], state)
    assert set(d) == set(DIAGNOSTIC_COLUMNS)
    assert d["q_min_mean"] <= min(d["q1_mean"], d["q2_mean"]) + 1e-6 and d["q_gap_mean"] >= 0
    assert d["replay_reward_min"] <= d["replay_reward_mean"] <= d["replay_reward_max"] <= 0
    assert math.isclose(d["replay_reward_mean"], -d["replay_goal_dist_mean"], rel_tol=1e-4)  # r = −‖ag' − g‖


def test_td3_has_no_temperature(tmp_path):
    run = train(TrainConfig(algo="td3", env_id="FetchReachDense-v4", seed=0, total_steps=200,
                            hyperparameters=tiny(), out_dir=str(tmp_path), curve_points=4, final_eval_episodes=1,
                            tensorboard=False, diagnostics=True))
    t = curve_table(run.curve)
    assert t["ent_coef"][-1] is None and t["q_gap_mean"][-1] is not None


def test_diagnostics_are_refused_for_ppo(tmp_path):
    with pytest.raises(RLCourseError, match="off-policy"):
        train(TrainConfig(algo="ppo", env_id="FetchReachDense-v4", out_dir=str(tmp_path), diagnostics=True))
    assert list(tmp_path.iterdir()) == []


def test_goal_distances_are_in_metres_with_normalized_observations(tmp_path):
    """With normalize_obs the buffer's goals come out normalised; the diagnostics map them back, so the dense
    reward (−distance in metres, never normalised) still equals minus the reported distance."""
    run = train(TrainConfig(algo="sac", env_id="FetchReachDense-v4", seed=0, total_steps=300, hyperparameters=tiny(),
                            normalize_obs=True, out_dir=str(tmp_path), curve_points=5, final_eval_episodes=1,
                            tensorboard=False, diagnostics=True))
    t = curve_table(run.curve)
    pairs = [(r, d) for r, d in zip(t["replay_reward_mean"], t["replay_goal_dist_mean"]) if r is not None]
    assert pairs
    for r, d in pairs:
        assert math.isclose(r, -d, rel_tol=1e-3)
