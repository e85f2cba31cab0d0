"""Chapter 3's worked solutions (solutions/ch03.py), run with small settings. Each test checks a claim the
solution text in the notebook makes; the long trainings the exercises ask for are the defaults, not run here."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from rlcourse.labs import sac
from solutions import ch03

TINY_SAC = {"learning_starts": 200, "batch_size": 64, "buffer_size": 5_000}  # the chapter's recipe, cut short


def _batch(n: int = 32, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.randn(n, 3, generator=g), "actions": torch.rand(n, 1, generator=g) * 2 - 1,
            "rewards": -torch.rand(n, generator=g), "next_obs": torch.randn(n, 3, generator=g),
            "dones": torch.zeros(n)}


def _lower_second_critic(agent: sac.SACAgent, by: float = 100.0) -> sac.SACAgent:
    """A copy of ``agent`` whose Q2 and target Q̄2 are another function (output layer negated) and ``by`` lower
    everywhere, so that min(Q1, Q2) is Q2 and its gradient with respect to the action differs from Q1's."""
    other = copy.deepcopy(agent)
    with torch.no_grad():
        for critic in (other.q.q2, other.q_target.q2):
            critic[-1].weight.mul_(-1.0)
            critic[-1].bias.sub_(by)
    return other


def _step(update, agent, batch):
    torch.manual_seed(1)  # the same sampled actions in both agents
    info = update(agent, batch)
    return info, torch.cat([p.detach().ravel() for p in agent.policy.parameters()])


def test_the_one_critic_update_never_reads_the_second_critic():
    agent = sac.make_agent(3, 1, (16, 16), lr=1e-3, gamma=0.9, seed=0)
    batch = _batch()
    info, actor = _step(ch03.single_critic_update, copy.deepcopy(agent), batch)
    info_low, actor_low = _step(ch03.single_critic_update, _lower_second_critic(agent), batch)
    assert info["target_mean"] == pytest.approx(info_low["target_mean"], abs=1e-6)  # the target uses Q̄1 only
    assert torch.allclose(actor, actor_low)  # the actor follows Q1 only
    # the check is not vacuous: the clipped update takes the minimum, so a lower Q2 changes its target and actor
    clipped, clipped_actor = _step(sac.sac_update, copy.deepcopy(agent), batch)
    clipped_low, clipped_actor_low = _step(sac.sac_update, _lower_second_critic(agent), batch)
    assert clipped_low["target_mean"] < clipped["target_mean"] - 10
    assert not torch.allclose(clipped_actor, clipped_actor_low)


def test_the_soft_return_of_one_step_is_pendulums_reward():
    agent = sac.make_agent(3, 1, (16, 16), gamma=0.99, seed=0)
    theta, theta_dot, action = 0.5, -1.0, 0.3  # the torque is 2 · action
    expected = -(theta**2 + 0.1 * theta_dot**2 + 0.001 * (2 * action) ** 2)
    assert ch03.pendulum_soft_return(agent, np.array([theta, theta_dot]), action, horizon=1) == \
        pytest.approx(expected, rel=1e-5)
    # longer horizons add discounted rewards (≤ 0) and entropy terms: finite, and not above the entropy's ceiling
    long = ch03.pendulum_soft_return(agent, np.array([theta, theta_dot]), action, horizon=30,
                                     generator=torch.Generator().manual_seed(0))
    assert math.isfinite(long) and long < expected + 30 * agent.alpha * math.log(2)


def test_exercise_1_runs_both_variants_and_compares_them_with_monte_carlo():
    rows = ch03.exercise_1(total_steps=450, n_states=2, rollouts=1, horizon=20, learning_starts=250, batch_size=64)
    assert [r["variant"] for r in rows] == ["clipped double-Q (min of two)", "one critic (Q1 only)"]
    for r in rows:
        assert all(math.isfinite(v) for k, v in r.items() if k != "variant")
        assert r["Q1 − soft return"] == pytest.approx(r["Q1 on visited states"] - r["Monte Carlo soft return"])


def test_exercise_2_fixed_temperatures_stay_put_and_automatic_ones_fall_from_a_broad_start():
    rows = ch03.exercise_2(total_steps=400, fixed=(0.2,), targets=(-1.0,), learning_starts=200, batch_size=64)
    fixed, auto = rows
    assert fixed["final α"] == pytest.approx(0.2) and fixed["target entropy"] is None
    assert auto["target entropy"] == -1.0
    # the initial policy is broad (entropy above every target in the exercise), so α first falls
    assert auto["final entropy"] > max(-0.5, -1.0, -2.0) and auto["final α"] < 1.0
    hist = sac.SACHistory(episode_steps=[200, 400, 600], episode_returns=[-900.0, -150.0, -100.0])
    assert ch03.first_solved(hist) == 400 and ch03.first_solved(hist, threshold=-50.0) is None


def test_exercise_3_counts_gradient_steps_per_transition(tmp_path):
    rows = ch03.exercise_3(total_steps=600, n_envs=4, out_dir=tmp_path, eval_every=0, eval_episodes=2,
                           hyperparameters=TINY_SAC, tensorboard=False)
    ratios = {(r["n_envs"], r["gradient_steps"]): r["gradient steps per transition"] for r in rows}
    assert ratios == {(1, 1): pytest.approx(1.0), (4, 1): pytest.approx(0.25), (4, 4): pytest.approx(1.0)}
    assert all(r["environment steps"] == 600 for r in rows)


def test_exercise_4_saves_and_applies_the_normaliser(tmp_path):
    from rlcourse import load_policy
    from rlcourse.contract.policies import NormalizedPolicy

    (row,) = ch03.exercise_4(total_steps=400, seeds=(0,), out_dir=tmp_path, offset_episodes=3, eval_episodes=3,
                             eval_every=0, hyperparameters=TINY_SAC, tensorboard=False)
    run = row["run"]
    assert run.meta["normalizer"] and isinstance(load_policy(run), NormalizedPolicy)
    recorded = [1000 * e["final_distance"] for e in run.eval["episodes"][:3]]
    assert np.allclose(np.linalg.norm(row["final offsets (mm)"], axis=1), recorded, atol=1.0)
    assert row["scatter-only share"] == pytest.approx(1 / math.sqrt(3)) and 0 <= row["bias share"] <= 1


def test_exercise_5_the_temperature_cannot_fall_faster_than_its_learning_rate_allows(tmp_path):
    assert ch03.updates_to_reach(0.01, 3e-4) == pytest.approx(math.log(100) / 3e-4)
    res = ch03.exercise_5(total_steps=1300, out_dir=tmp_path, eval_every=0, eval_episodes=2,
                          hyperparameters={"learning_starts": 1000}, tensorboard=False)
    hp = res["run"].meta["hyperparameters"]
    assert hp["learning_rate"] == 3e-4 and hp["gamma"] == 0.99 and hp["policy_kwargs"]["net_arch"] == [256, 256]
    assert len(res["alpha"]) >= 3 and np.all(res["alpha"] >= 0.98 * res["line"])  # never below exp(−lr · n)
    assert res["alpha"][-1] > 0.98 * math.exp(-3e-4 * 300)  # 300 updates at the book's rate: α has barely moved
