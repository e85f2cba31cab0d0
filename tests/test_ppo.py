"""Tests for rlcourse.labs.ppo: every piece of PPO from scratch, its bridge to stable-baselines3, and checks that fail when
the piece is wrong."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlcourse.labs import ppo
from rlcourse.envs import make_env

ENV = "FetchReachDense-v4"


def random_rollout(seed: int = 0, T: int = 64, n_envs: int = 4, p_done: float = 0.1):
    """Random float32 rewards/values/last values and episode ends in the middle of the rollout."""
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(T, n_envs)).astype(np.float32)
    v = rng.normal(size=(T, n_envs)).astype(np.float32)
    d = (rng.random((T, n_envs)) < p_done).astype(np.float32)
    d[T // 2, :] = 1.0  # at least one boundary in the middle of every column
    d[-1, 0], d[-1, 1] = 1.0, 0.0  # the last step both ends and does not end an episode
    return r, v, d, rng.normal(size=n_envs).astype(np.float32)


def broken_gae(rewards, values, dones, last_value, gamma=0.99, lam=0.95):
    """GAE that masks the bootstrap but lets the advantage leak across episode boundaries (a classic bug)."""
    r, v, d = (torch.as_tensor(x) for x in (rewards, values, dones))
    adv, last = torch.zeros_like(r), torch.zeros_like(r[0])
    for t in reversed(range(len(r))):
        nxt = torch.as_tensor(last_value) if t == len(r) - 1 else v[t + 1]
        delta = r[t] + gamma * nxt * (1 - d[t]) - v[t]
        last = delta + gamma * lam * last  # the bug: no (1 - d[t]) here
        adv[t] = last
    return adv, adv + v


# --- observations and the network -------------------------------------------------------------------------------


def test_obs_to_tensor_flattens_in_sorted_key_order():
    env = make_env(ENV)
    try:
        obs, _ = env.reset(seed=0)
    finally:
        env.close()
    x = ppo.obs_to_tensor(obs)
    assert x.shape == (16,) and x.dtype == torch.float32
    np.testing.assert_allclose(x[:3].numpy(), obs["achieved_goal"], rtol=1e-6)
    np.testing.assert_allclose(x[3:6].numpy(), obs["desired_goal"], rtol=1e-6)
    np.testing.assert_allclose(x[6:].numpy(), obs["observation"], rtol=1e-6)
    batch = {k: np.stack([v, v]) for k, v in obs.items()}
    assert ppo.obs_to_tensor(batch).shape == (2, 16)
    assert torch.equal(ppo.obs_to_tensor([obs, obs, obs]), x.expand(3, 16))
    assert ppo.obs_to_tensor(np.zeros((5, 7))).shape == (5, 7)


def test_actor_critic_shapes_and_parameter_counts_match_the_book_and_sb3():
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    shared = ppo.ActorCritic(16, 4, shared=True)
    assert ppo.n_parameters(shared) == 5_577  # the source book's lab network
    separate = ppo.ActorCritic(16, 4)
    dist, value = separate(torch.randn(3, 16))
    assert dist.mean.shape == (3, 4) and value.shape == (3,)
    assert torch.all(dist.stddev == 1.0)  # log σ starts at 0, independent of the state
    venv = make_vec_env(lambda: make_env(ENV), n_envs=1)
    try:
        sb3 = PPO("MultiInputPolicy", venv, device="cpu", seed=0)
        assert ppo.n_parameters(separate) == ppo.n_parameters(sb3.policy) == 10_825
        obs = {k: np.repeat(v, 5, axis=0) for k, v in venv.reset().items()}
        obs["desired_goal"] = obs["desired_goal"] + np.random.default_rng(0).normal(0, 0.1, (5, 3))
        actions = torch.randn(5, 4)
        sb3_values, sb3_log_prob, sb3_entropy = sb3.policy.evaluate_actions(sb3.policy.obs_to_tensor(obs)[0], actions)
        separate.copy_from_sb3(sb3.policy)
        dist, values = separate(ppo.obs_to_tensor(obs))
        torch.testing.assert_close(values, sb3_values.flatten(), atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(dist.log_prob(actions).sum(-1), sb3_log_prob, atol=1e-5, rtol=1e-6)
        torch.testing.assert_close(dist.entropy().sum(-1), sb3_entropy, atol=1e-6, rtol=1e-6)
        with pytest.raises(ValueError):
            shared.copy_from_sb3(sb3.policy)
    finally:
        venv.close()
    env = make_env(ENV)
    try:
        net = ppo.ActorCritic.for_env(env)
        action, _ = net.predict(env.reset(seed=0)[0])
    finally:
        env.close()
    assert (net.obs_dim, net.act_dim) == (16, 4) and action.shape == (4,)


# --- GAE --------------------------------------------------------------------------------------------------------


def test_gae_by_hand_on_three_steps():
    # episode ends after step 1; step 2 starts a new episode and is bootstrapped from last_value
    r, v, d, last = [1.0, 2.0, 3.0], [0.5, 1.0, 1.5], [0.0, 1.0, 0.0], 2.0
    g, lam = 0.9, 0.5
    d2 = 3.0 + g * 2.0 - 1.5
    d1 = 2.0 - 1.0  # no bootstrap: the episode ended
    d0 = 1.0 + g * 1.0 - 0.5
    expected = [d0 + g * lam * d1, d1, d2]  # nothing flows from step 2 back into step 1
    adv, ret = ppo.compute_gae(torch.tensor(r, dtype=torch.float64), v, d, last, gamma=g, lam=lam)
    np.testing.assert_allclose(adv.numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(ret.numpy(), np.array(expected) + v, atol=1e-12)


def test_gae_terminal_reward_gives_positive_last_advantage():
    r = torch.zeros(10)
    r[-1] = 1.0
    d = torch.zeros(10)
    d[-1] = 1.0
    adv, ret = ppo.compute_gae(r, torch.zeros(10), d, torch.tensor(100.0))  # a huge last value must be ignored
    assert adv[-1] == 1.0 and torch.all(adv > 0) and torch.isfinite(ret).all()


def test_gae_lambda_zero_is_one_step_td_and_lambda_one_is_monte_carlo():
    r, v, d, last = (torch.as_tensor(x, dtype=torch.float64) for x in random_rollout(1))
    gamma = 0.99
    next_v = torch.cat([v[1:], last[None]])
    td = r + gamma * next_v * (1 - d) - v
    adv0, _ = ppo.compute_gae(r, v, d, last, gamma, lam=0.0)
    torch.testing.assert_close(adv0, td)
    # Monte Carlo: discounted reward-to-go within the episode, bootstrapped only where the rollout cuts it
    mc = torch.zeros_like(r)
    running = last.clone()
    for t in reversed(range(len(r))):
        running = r[t] + gamma * (1 - d[t]) * running
        mc[t] = running
    adv1, ret1 = ppo.compute_gae(r, v, d, last, gamma, lam=1.0)
    torch.testing.assert_close(adv1, mc - v)
    torch.testing.assert_close(ret1, mc)


@pytest.mark.parametrize("n_envs", [1, 4])
def test_gae_matches_sb3_rollout_buffer(n_envs):
    r, v, d, last = random_rollout(2, n_envs=max(n_envs, 2))
    r, v, d, last = r[:, :n_envs], v[:, :n_envs], d[:, :n_envs], last[:n_envs]
    if n_envs == 1:
        r, v, d, last = r[:, 0], v[:, 0], d[:, 0], last[0]
    adv, ret = ppo.compute_gae(r, v, d, last, 0.99, 0.95)
    sb3_adv, sb3_ret = ppo.sb3_gae(r, v, d, last, 0.99, 0.95)
    assert sb3_adv.shape == adv.shape
    assert np.abs(adv.numpy() - sb3_adv).max() < 1e-6
    assert np.abs(ret.numpy() - sb3_ret).max() < 1e-6
    assert d[1:-1].sum() > 0  # the comparison really crossed episode boundaries


def test_sb3_feeding_is_aligned_independently_of_our_gae():
    # with λ = 0 SB3's advantage is the one-step TD error, which we can write down without compute_gae
    r, v, d, last = random_rollout(3)
    next_v = np.concatenate([v[1:], last[None]])
    td = r + 0.99 * next_v * (1 - d) - v
    sb3_adv, _ = ppo.sb3_gae(r, v, d, last, 0.99, 0.0)
    assert np.abs(sb3_adv - td).max() < 1e-5


def test_a_broken_gae_fails_the_bridge():
    r, v, d, last = random_rollout(4)
    sb3_adv, sb3_ret = ppo.sb3_gae(r, v, d, last)
    bad_adv, bad_ret = broken_gae(r, v, d, last)
    assert np.abs(bad_adv.numpy() - sb3_adv).max() > 1e-2
    assert np.abs(bad_ret.numpy() - sb3_ret).max() > 1e-2


def test_gae_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape mismatch"):
        ppo.compute_gae(torch.zeros(5, 2), torch.zeros(5, 2), torch.zeros(5, 2), torch.zeros(3))


# --- losses -----------------------------------------------------------------------------------------------------


def make_batch(n: int = 512, seed: int = 0, model: ppo.ActorCritic | None = None) -> tuple[ppo.ActorCritic, ppo.Batch]:
    torch.manual_seed(seed)
    model = model or ppo.ActorCritic(16, 4)
    obs = torch.randn(n, 16)
    with torch.no_grad():
        dist, values = model(obs)
        actions = dist.sample()
        log_probs = dist.log_prob(actions).sum(-1)
    return model, ppo.Batch(obs, actions, log_probs, values, torch.randn(n), torch.randn(n))


def test_ratio_is_exactly_one_before_any_update():
    model, b = make_batch()
    dist, _ = model(b.obs)
    loss, info = ppo.ppo_loss(dist.log_prob(b.actions).sum(-1), b.log_probs, b.advantages,
                              entropy=dist.entropy().sum(-1))
    assert info["ratio_mean"] == 1.0 and info["clip_fraction"] == 0.0 and info["approx_kl"] == 0.0
    assert info["entropy"] == pytest.approx(4 * 0.5 * np.log(2 * np.pi * np.e), rel=1e-6)  # σ = 1 in 4 dims
    assert loss.item() == pytest.approx(-b.advantages.mean().item(), abs=1e-6)  # ρ = 1: the plain mean of Â


def test_clipped_objective_inside_and_outside_the_clip_range():
    eps = 0.2
    for a in (2.0, -2.0):
        for rho in np.linspace(0.31, 2.01, 35):
            log_rho = torch.tensor(np.log(rho), dtype=torch.float64, requires_grad=True)
            loss, info = ppo.ppo_loss(log_rho, torch.tensor(0.0, dtype=torch.float64),
                                      torch.tensor(a, dtype=torch.float64), eps)
            loss.backward()
            d_obj_d_rho = -log_rho.grad.item() / rho  # objective = −loss; dρ = ρ d log ρ
            inside = 1 - eps <= rho <= 1 + eps
            flat = (a > 0 and rho > 1 + eps) or (a < 0 and rho < 1 - eps)
            if inside:
                assert -loss.item() == pytest.approx(rho * a) and d_obj_d_rho == pytest.approx(a)
            elif flat:  # the side where the update would help: capped, no gradient
                assert -loss.item() == pytest.approx((1 + eps if a > 0 else 1 - eps) * a) and d_obj_d_rho == 0.0
                assert info["clip_fraction"] == 1.0
            else:  # the side where the update hurts: the unclipped (pessimistic) term still pulls back
                assert -loss.item() == pytest.approx(rho * a) and d_obj_d_rho == pytest.approx(a)


def test_the_book_worked_example():
    # π_old = 0.3 → π_new = 0.6, A = 2: unclipped 4.0, clipped 2.4
    loss, info = ppo.ppo_loss(torch.log(torch.tensor(0.6)), torch.log(torch.tensor(0.3)), torch.tensor(2.0))
    assert -loss.item() == pytest.approx(2.4) and info["ratio_mean"] == pytest.approx(2.0)


def test_value_loss_has_no_half_and_matches_sb3_quantities():
    from stable_baselines3.common.utils import explained_variance as sb3_ev

    torch.manual_seed(0)
    returns = torch.randn(20_000)
    values = 1e-3 * torch.randn(20_000)
    loss, info = ppo.value_loss(values, returns)
    assert loss.item() == pytest.approx(torch.nn.functional.mse_loss(returns, values).item(), rel=1e-6)
    assert info["value_loss"] == pytest.approx(1.0, abs=0.05)  # with a ½ it would be 0.5
    assert abs(info["explained_variance"]) < 0.01
    assert info["explained_variance"] == pytest.approx(sb3_ev(values.numpy(), returns.numpy()), abs=1e-5)
    assert ppo.value_loss(returns.clone(), returns)[1]["explained_variance"] == 1.0
    assert np.isnan(ppo.explained_variance(torch.zeros(3), torch.ones(3)))


# --- the update -------------------------------------------------------------------------------------------------


def test_value_loss_falls_and_kl_stays_small_over_updates_on_a_fixed_batch():
    model, b = make_batch(n=256)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4, eps=1e-5)
    before = [p.detach().clone() for p in model.parameters()]
    logs = [ppo.ppo_step(model, opt, b) for _ in range(10)]
    assert logs[0]["ratio_mean"] == 1.0 and logs[0]["clip_fraction"] == 0.0  # measured before the first step
    assert logs[-1]["value_loss"] < logs[0]["value_loss"]
    assert all(row["approx_kl"] < 0.05 for row in logs)
    assert all(row["grad_norm"] > 0 for row in logs)
    assert any(not torch.equal(p, q) for p, q in zip(before, model.parameters()))


def test_the_critic_regresses_on_the_gae_return_and_a_reward_target_is_caught():
    """The critic's target is Ĝ = Â + V. A falling value loss does not show it: regressing on one step's reward (the
    source book's listing) falls too. Two checks do: the batch's returns equal advantages + values, and before the
    first step, while the critic still predicts the collection-time V, ppo_step's value loss is exactly E[Â²]."""
    import copy
    import dataclasses

    torch.manual_seed(0)
    pool = ppo.EnvPool(ENV, n_envs=2, seed=0)
    try:
        net = ppo.ActorCritic.for_env(pool.envs[0])
        ro = ppo.collect_rollout(pool, net, n_steps=60)
    finally:
        pool.close()
    batch = ppo.rollout_to_batch(ro)
    bug = dataclasses.replace(batch, returns=ro.rewards.reshape(-1))  # the critic's target: one step's reward

    def steps(b, n=1):
        model = copy.deepcopy(net)
        opt = torch.optim.Adam(model.parameters(), lr=3e-4, eps=1e-5)
        return [ppo.ppo_step(model, opt, b)["value_loss"] for _ in range(n)]

    mean_adv_sq = batch.advantages.pow(2).mean().item()
    torch.testing.assert_close(batch.returns, batch.advantages + batch.values)
    assert steps(batch)[0] == pytest.approx(mean_adv_sq, rel=1e-5)
    # the bug fails both checks ...
    assert (bug.returns - (bug.advantages + bug.values)).abs().max().item() > 0.1
    assert steps(bug)[0] != pytest.approx(mean_adv_sq, rel=0.1)
    # ... while its loss falls like a healthy one, so a falling loss alone would not have caught it
    bug_losses = steps(bug, n=10)
    assert bug_losses[-1] < bug_losses[0]


def test_ppo_update_runs_epochs_of_minibatches():
    model, b = make_batch(n=300)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4, eps=1e-5)
    out = ppo.ppo_update(model, opt, b, n_epochs=3, batch_size=128, generator=torch.Generator().manual_seed(0))
    assert out["n_minibatches"] == 3 * 3  # 128 + 128 + 44 per epoch
    assert {"policy_loss", "value_loss", "entropy", "entropy_loss", "approx_kl", "clip_fraction", "ratio_mean",
            "grad_norm", "explained_variance"} <= set(out)
    assert out["entropy_loss"] == pytest.approx(-out["entropy"], rel=1e-6)
    assert 0 <= out["clip_fraction"] <= 1 and out["approx_kl"] >= 0


# --- the loop ---------------------------------------------------------------------------------------------------


def test_rollout_marks_truncations_and_bootstraps_them():
    pool = ppo.EnvPool(ENV, n_envs=2, seed=0)
    try:
        model = ppo.ActorCritic.for_env(pool.envs[0])
        with torch.no_grad():  # a critic that always says 5.0
            model.value_head.weight.zero_()
            model.value_head.bias.fill_(5.0)
        ro = ppo.collect_rollout(pool, model, n_steps=60, gamma=0.99)
    finally:
        pool.close()
    assert ro.obs.shape == (60, 2, 16) and ro.actions.shape == (60, 2, 4) and ro.last_value.shape == (2,)
    assert torch.equal(ro.dones.sum(0), torch.ones(2)) and torch.all(ro.dones[49] == 1)  # 50-step episodes
    assert torch.all(ro.rewards[ro.dones == 0] <= 0)  # dense rewards are negative distances
    assert torch.all((ro.rewards[49] > 4.0) & (ro.rewards[49] < 0.99 * 5.0))  # −d + γ·5 at the time limit
    assert len(pool.finished) == 2 and torch.allclose(ro.values, torch.full((60, 2), 5.0))


def test_train_ppo_smoke_and_evaluation_through_the_course_loop():
    from rlcourse.contract.evaluate import evaluate

    cfg = ppo.PPOConfig(total_steps=256, n_envs=2, n_steps=64, n_epochs=2, batch_size=64, seed=1)
    threads = torch.get_num_threads()
    model, history = ppo.train_ppo(cfg)
    assert torch.get_num_threads() == threads  # restored
    assert [h["timesteps"] for h in history] == [128, 256]
    assert history[-1]["episodes"] == 2 and history[-1]["ep_return_mean"] < 0
    assert all(np.isfinite(h["value_loss"]) and h["approx_kl"] >= 0 for h in history)
    episodes = evaluate(model, ENV, n_episodes=2)
    assert len(episodes) == 2 and all(e["length"] == 50 for e in episodes)
