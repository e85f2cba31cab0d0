"""The solutions to chapter 2's exercises (solutions/ch02.py), run small, checked against what the chapter's solution
text says."""

from __future__ import annotations

import itertools
import math

import pytest

from rlcourse.labs import ppo
from solutions import ch02

SMALL_BATCH = {"n_envs": 4, "n_steps": 64}  # 64 steps: every copy crosses an episode boundary


def test_exercise_1_advantages_spread_more_as_lambda_grows():
    spread = ch02.exercise_1_spread((0.0, 0.5, 0.95, 1.0), **SMALL_BATCH)
    values = list(spread.values())
    assert all(a < b for a, b in itertools.pairwise(values)), spread
    assert spread[1.0] > 10 * spread[0.0], spread  # Monte Carlo sums up to 50 rewards; TD(0) holds one


@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_exercise_1_the_from_scratch_agent_trains_with_either_limit(lam):
    out = ch02.exercise_1_train(lam, total_steps=512, n_envs=2, n_steps=64, n_epochs=2, eval_episodes=2)
    assert 0.0 <= out["success_rate"] <= 1.0 and math.isfinite(out["return_mean"]) and out["last_train_return"] < 0


def test_exercise_2_the_clip_range_sets_how_far_one_update_moves_the_policy():
    out = ch02.exercise_2((0.0, 0.2, 1e6))  # the batch of Build It (c): 8 copies x 64 steps
    kl = {eps: row["approx_kl"] for eps, row in out.items()}
    assert kl[0.0] < 1e-3 < kl[0.2] < 0.05 < kl[1e6], kl  # ε = 0 barely moves; no clip passes the warning level
    assert out[0.2]["max_ratio_change"] > 0.2  # clipping removes the incentive; it is not a hard limit on ρ
    assert out[1e6]["clipped_during_update"] == 0.0  # a huge ε never binds ...
    assert out[0.0]["clipped_during_update"] > 0.9  # ... ε = 0 binds for (nearly) every sample
    assert out[0.2]["outside_watch"] < out[1e6]["outside_watch"]


def test_exercise_3_same_updates_for_every_number_of_copies(tmp_path):
    out = ch02.exercise_3(tmp_path, n_envs_list=(1, 4), total_steps=1024, rollout=256,
                          ppo_settings={"n_epochs": 2}, eval_episodes=2)
    assert out[1]["updates"] == out[4]["updates"] == 4
    assert all(row["steps_per_s"] > 0 and 0 <= row["success_rate"] <= 1 for row in out.values())


def test_exercise_4_trains_in_chunks_and_records_every_update():
    out = ch02.exercise_4(threshold=1.01, max_steps=1024, chunk=512, eval_episodes=2, n_envs=2, n_steps=64,
                          n_epochs=2)
    assert out["steps_to_threshold"] is None and [s for s, _ in out["evals"]] == [512, 1024]
    assert len(out["history"]) == 1024 // 128 and all(h["approx_kl"] >= 0 for h in out["history"])


def test_exercise_4_achieved_goal_repeats_the_observation_on_reach():
    assert ch02.achieved_goal_is_in_the_observation(n_steps=60) == 0.0


def test_exercise_5_sb3_gets_the_same_settings(tmp_path):
    cfg = ppo.PPOConfig(total_steps=512, n_envs=2, n_steps=64, batch_size=64, n_epochs=2)
    hp = ch02.sb3_hyperparameters(cfg)
    out = ch02.exercise_5(tmp_path, seeds=(0,), eval_episodes=2, total_steps=512, n_envs=2, n_steps=64,
                          batch_size=64, n_epochs=2)
    assert len(out["from scratch"]) == len(out["stable-baselines3"]) == 1
    from rlcourse.contract.runs import load_run

    meta = load_run(tmp_path / "ppo_sb3_match_seed0").meta
    for key in ("n_steps", "batch_size", "n_epochs", "learning_rate", "gamma", "gae_lambda", "clip_range", "vf_coef",
                "ent_coef", "max_grad_norm"):
        assert meta["hyperparameters"][key] == hp[key] == pytest.approx(getattr(cfg, {
            "vf_coef": "value_coef", "ent_coef": "entropy_coef"}.get(key, key))), key


def test_exercise_4_with_the_clip_the_learning_rate_barely_sets_the_size_of_one_update():
    kl = {lr: ch02.exercise_2((0.2,), learning_rate=lr)[0.2]["approx_kl"] for lr in (3e-4, 1e-3)}
    assert kl[1e-3] < 2 * kl[3e-4] and kl[3e-4] < 2 * kl[1e-3], kl  # a 3.3-fold rate, far less than 3.3-fold KL
