"""SAC from scratch (rlcourse.labs.sac): each piece against its definition, the log-probability against
stable-baselines3, and a short run that learns."""

import copy
import math

import numpy as np
import pytest
import torch

from rlcourse.labs import sac

OBS, ACT = 10, 4


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # small MLPs: threads cost more than they gain, more so on a shared machine
    yield
    torch.set_num_threads(previous)


def random_batch(n=32, seed=0, dones=None):
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.randn(n, OBS, generator=g), "actions": torch.rand(n, ACT, generator=g) * 2 - 1,
            "rewards": -torch.rand(n, generator=g), "next_obs": torch.randn(n, OBS, generator=g),
            "dones": torch.zeros(n) if dones is None else dones}


def test_replay_buffer_is_circular_and_flattens_dicts_in_sorted_key_order():
    buf = sac.ReplayBuffer(OBS, ACT, capacity=100, seed=0)
    for i in range(100):
        buf.add(np.full(OBS, i), np.zeros(ACT), -i, np.full(OBS, i + 1), False)
    b = buf.sample(32)
    assert b["obs"].shape == (32, OBS) and b["actions"].shape == (32, ACT) and b["rewards"].shape == (32,)
    assert b["obs"].dtype == torch.float32 and len(buf) == 100 and buf.ptr == 0
    assert torch.equal(b["next_obs"][:, 0], b["obs"][:, 0] + 1)
    buf.add(np.full(OBS, 999), np.zeros(ACT), 0.0, np.full(OBS, 999), True)  # overwrites the oldest (index 0)
    assert buf.obs[0, 0] == 999 and buf.dones[0] == 1 and buf.ptr == 1 and len(buf) == 100
    obs = {"observation": np.arange(10.0), "desired_goal": np.array([20.0, 21, 22]),
           "achieved_goal": np.array([10.0, 11, 12])}
    assert sac.flatten_obs(obs).tolist() == [10, 11, 12, 20, 21, 22, *range(10)]
    batched = {k: np.stack([v, v]) for k, v in obs.items()}
    assert sac.flatten_obs(batched).shape == (2, 16)


def test_networks_have_the_right_shapes_and_squashed_actions_stay_inside_the_box():
    torch.manual_seed(0)
    policy, q = sac.SquashedGaussian(OBS, ACT, (64, 64)), sac.TwinQ(OBS, ACT, (64, 64))
    obs = torch.randn(512, OBS) * 3
    a, logp = policy(obs)
    q1, q2 = q(obs, a)
    assert a.shape == (512, ACT) and logp.shape == q1.shape == q2.shape == (512,)
    assert torch.all(a.abs() < 1) and torch.isfinite(logp).all() and torch.isfinite(q1).all()
    assert not torch.equal(q1, q2)  # two independent critics
    det, _ = policy(obs, deterministic=True)
    mean, _ = policy.dist_params(obs)
    assert torch.equal(det, torch.tanh(mean))


def test_stable_tanh_correction_equals_the_naive_formula_and_stays_finite():
    u = torch.linspace(-5, 5, 101, dtype=torch.float64)
    assert torch.allclose(sac.tanh_log_det(u), torch.log(1 - torch.tanh(u) ** 2), atol=1e-9)
    big = torch.tensor([30.0, -30.0])
    assert torch.isfinite(sac.tanh_log_det(big)).all() and not torch.isfinite(torch.log(1 - torch.tanh(big) ** 2)).all()


def test_log_prob_is_the_change_of_variables_density():
    """Monte-Carlo check in 1-D: π(a) integrates to one over (−1, 1) and matches a histogram of samples."""
    mean, log_std = torch.tensor([[0.3]]), torch.tensor([[-0.2]])
    a = torch.linspace(-0.999, 0.999, 4001).reshape(-1, 1)
    u = torch.atanh(a)
    dens = sac.squashed_log_prob(mean.expand_as(u), log_std.expand_as(u), u).exp()
    assert abs(torch.trapezoid(dens, a[:, 0]).item() - 1) < 5e-3
    samples = torch.tanh(mean + log_std.exp() * torch.randn(200_000, 1, generator=torch.Generator().manual_seed(0)))
    hist, edges = np.histogram(samples.numpy(), bins=20, range=(-0.9, 0.9), density=False)
    centres = torch.tensor((edges[:-1] + edges[1:]) / 2, dtype=torch.float32).reshape(-1, 1)
    pred = sac.squashed_log_prob(mean, log_std, torch.atanh(centres)).exp().numpy() * (edges[1] - edges[0])
    assert np.allclose(hist / 200_000, pred, atol=3e-3)


# --------------------------------------------------------------------------------------------- SB3 bridge


@pytest.fixture(scope="module")
def sb3_pair():
    """An SB3 SAC actor on FetchReachDense-v4, our policy with its weights, real observations, pre-squash noise."""
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rlcourse.envs import make_env

    venv = make_vec_env(lambda: make_env("FetchReachDense-v4"), n_envs=1, seed=0, vec_env_cls=DummyVecEnv)
    model = SAC("MultiInputPolicy", venv, policy_kwargs={"net_arch": [64, 64]}, seed=0, device="cpu")
    env = make_env("FetchReachDense-v4")
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    seen = []
    for _ in range(128):
        obs, *_ = env.step(env.action_space.sample())
        seen.append(obs)
    env.close()
    batch = {k: np.stack([o[k] for o in seen]) for k in seen[0]}
    obs_t, _ = model.policy.obs_to_tensor(batch)
    ours = sac.load_sb3_actor(sac.SquashedGaussian(16, 4, (64, 64)), model.actor)
    flat = torch.as_tensor(sac.flatten_obs(batch))
    with torch.no_grad():
        mean, log_std = ours.dist_params(flat)
        u = mean + log_std.exp() * torch.randn(mean.shape, generator=torch.Generator().manual_seed(1))
    yield model, ours, flat, obs_t, u
    venv.close()


TOL = 1e-3  # nats; see test_log_prob_matches_sb3


def test_log_prob_matches_sb3(sb3_pair):
    """Same weights, same observations, same pre-squash sample u: the two log π(a|s) agree within TOL.

    SB3 subtracts log(1 − tanh² u + 1e-6) instead of log(1 − tanh² u), so ours − SB3 = Σ_i log(1 + 1e-6 / (1 −
    tanh² u_i)) ≥ 0 exactly. For the policy's own samples here (|u| < 4) that is below 4 × 1e-6 / (1 − tanh² 4)
    ≈ 3e-3 and usually far less; TOL = 1e-3 holds with margin for |u| < 3, and the remainder after subtracting the
    exact ε term is float32 round-off (< 1e-4)."""
    model, ours, flat, obs_t, u = sb3_pair
    with torch.no_grad():
        mine = ours.log_prob(flat, u)
        m2, l2, _ = model.actor.get_action_dist_params(obs_t)
        mean, log_std = ours.dist_params(flat)
    theirs = sac.sb3_log_prob(model.actor, obs_t, u)
    assert torch.equal(mean, m2) and torch.equal(log_std, l2)  # the weights were copied, the inputs agree
    diff = mine - theirs
    assert u.abs().max() < 4
    small = u.abs().max(-1).values < 3
    assert small.sum() > 100 and diff[small].abs().max() < TOL
    assert (diff.double() - sac.sb3_epsilon_gap(u)).abs().max() < 1e-4  # the ε term explains the rest
    assert diff.min() > -1e-4  # and it has the predicted sign


def test_the_bridge_catches_a_missing_tanh_correction(sb3_pair):
    """The comparison is not vacuous: a log-prob without the change-of-variables term fails it by far."""
    model, ours, flat, obs_t, u = sb3_pair
    with torch.no_grad():
        mean, log_std = ours.dist_params(flat)
        broken = sac.gaussian_log_prob(mean, log_std, u)  # forgot − Σ log(1 − tanh² u)
    diff = (broken - sac.sb3_log_prob(model.actor, obs_t, u)).abs()
    assert diff.max() > 100 * TOL and diff.mean() > 1.0


def test_saturated_samples_show_sb3s_epsilon(sb3_pair):
    """Far in the tails the ε dominates: SB3's correction bottoms out near log(1e-6) per component."""
    model, ours, flat, obs_t, u = sb3_pair
    big = u.sign() * (u.abs() + 8)  # |u| > 8: tanh saturates in float32
    with torch.no_grad():
        diff = ours.log_prob(flat, big) - sac.sb3_log_prob(model.actor, obs_t, big)
    assert diff.min() > 1.0  # a large, one-signed gap: the reason to keep samples moderate when comparing


# --------------------------------------------------------------------------------------------- losses and updates


def test_soft_target_takes_the_min_of_the_target_critics_and_masks_terminals():
    r = torch.tensor([-0.5, -0.5, -0.5])
    d = torch.tensor([0.0, 0.0, 1.0])
    tq1, tq2 = torch.tensor([-1.0, -3.0, -1.0]), torch.tensor([-2.0, -2.0, -2.0])
    logp = torch.tensor([0.5, 0.5, 0.5])
    y = sac.soft_target(r, d, tq1, tq2, logp, gamma=0.9, alpha=0.2)
    expected = torch.tensor([-0.5 + 0.9 * (-2.0 - 0.1), -0.5 + 0.9 * (-3.0 - 0.1), -0.5])
    assert torch.allclose(y, expected)


def test_critic_loss_uses_the_min_of_the_two_target_critics():
    torch.manual_seed(0)
    policy, q = sac.SquashedGaussian(OBS, ACT, (32, 32)), sac.TwinQ(OBS, ACT, (32, 32))
    q_target = copy.deepcopy(q)
    with torch.no_grad():  # make target Q2 far larger than Q1 everywhere: the min must pick Q1
        q_target.q2[-1].bias.fill_(100.0)
        q_target.q1[-1].bias.fill_(-100.0)
    batch = random_batch()
    torch.manual_seed(1)
    loss, info = sac.critic_loss(q, q_target, policy, batch, gamma=0.99, alpha=0.0)
    assert info["target_mean"] < -90 and torch.isfinite(loss)
    terminal = random_batch(dones=torch.ones(32))
    _, info_t = sac.critic_loss(q, q_target, policy, terminal, gamma=0.99, alpha=0.0)
    assert math.isclose(info_t["target_mean"], terminal["rewards"].mean().item(), rel_tol=1e-6)


def test_temperature_moves_towards_the_target_entropy():
    for logp_value, direction in ((-10.0, -1), (+5.0, +1)):  # entropy 10 > −H̄ = 4 → α falls; −5 < 4 → α rises
        log_alpha = torch.tensor(0.0, requires_grad=True)
        opt = torch.optim.Adam([log_alpha], lr=0.01)
        for _ in range(10):
            loss, _ = sac.temperature_loss(log_alpha, torch.full((64,), logp_value), target_entropy=-4.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert direction * log_alpha.item() > 0.05, (logp_value, log_alpha.item())


def test_one_polyak_step_moves_the_target_by_exactly_tau():
    torch.manual_seed(0)
    online, target = sac.TwinQ(OBS, ACT, (16,)), sac.TwinQ(OBS, ACT, (16,))
    before = [p.detach().clone() for p in target.parameters()]
    sac.polyak_update(online, target, tau=0.005)
    for p, tb, ta in zip(online.parameters(), before, target.parameters()):
        assert torch.allclose(ta - tb, 0.005 * (p - tb), atol=1e-7)
    sac.polyak_update(online, target, tau=1.0)
    assert all(torch.equal(p, t) for p, t in zip(online.parameters(), target.parameters()))


def test_sac_update_changes_alpha_and_stays_finite():
    agent = sac.make_agent(OBS, ACT, (64, 64), seed=0)
    assert agent.alpha == 1.0 and agent.target_entropy == -ACT
    target_before = [p.clone() for p in agent.q_target.parameters()]
    for i in range(20):
        info = sac.sac_update(agent, random_batch(64, seed=i))
    assert agent.updates == 20 and agent.alpha != 1.0 and agent.alpha > 0
    assert all(math.isfinite(v) for v in info.values())
    assert any(not torch.equal(a, b) for a, b in zip(target_before, agent.q_target.parameters()))
    fixed = sac.make_agent(OBS, ACT, (16,), init_alpha=0.2, auto_alpha=False, seed=0)
    sac.sac_update(fixed, random_batch())
    assert math.isclose(fixed.alpha, 0.2, rel_tol=1e-6) and fixed.alpha_opt is None


def test_sac_from_scratch_learns_pendulum():
    """4,000 steps (about 15 s on one core): the last episodes are far better than the random ones."""
    import gymnasium as gym

    agent, hist = sac.train_sac(lambda: gym.make("Pendulum-v1"), total_steps=4000, seed=0, hidden=(64, 64),
                                lr=1e-3, batch_size=128, learning_starts=600)
    returns = np.array(hist.episode_returns)
    assert len(returns) == 20 and hist.updates
    assert returns[-3:].mean() > returns[:3].mean() + 300, returns.round()
    assert agent.alpha < 1.0


def test_train_sac_takes_its_gradient_steps_from_the_update_it_is_given():
    import gymnasium as gym

    batches = []

    def update(agent, batch):  # e.g. an ablation's variant of sac_update; this one changes no weight
        batches.append(len(batch["obs"]))
        agent.updates += 1
        return {"marker": 1.0}

    agent = sac.make_agent(3, 1, (8,), seed=0)
    before = [p.detach().clone() for p in agent.q.parameters()]
    agent, hist = sac.train_sac(lambda: gym.make("Pendulum-v1"), total_steps=60, seed=0, batch_size=16,
                                learning_starts=40, log_every=5, agent=agent, update=update)
    assert batches == [16] * 20 and agent.updates == 20
    assert [row["marker"] for row in hist.updates] == [1.0] * 4
    assert all(torch.equal(a, b) for a, b in zip(before, agent.q.parameters()))  # sac_update never ran


def test_offset_bias_tells_a_repeated_offset_from_scatter():
    rng = np.random.default_rng(0)
    n = 20
    fits = [sac.offset_bias(x) for x in rng.normal(0.0, 5.0, size=(3000, n, 3))]  # scatter, no bias
    assert abs(np.mean([f["biased"] for f in fits]) - 0.05) < 0.01  # t rule: 5% false alarms per axis
    assert abs(np.mean([f["share"] for f in fits]) * math.sqrt(n) - 1) < 0.03  # scatter alone: share ≈ 1/√n
    assert fits[0]["t"] == pytest.approx(2.093, abs=1e-3) and fits[0]["scatter_share"] == pytest.approx(n ** -0.5)
    biased = sac.offset_bias(rng.normal(0.0, 5.0, size=(n, 3)) + [8.0, 0.0, 0.0])  # 8 mm along x, σ 5 mm
    assert biased["biased"].tolist() == [True, False, False] and biased["share"] > 2 / math.sqrt(n)
    with pytest.raises(ValueError):
        sac.offset_bias(np.zeros((1, 3)))


def test_final_offsets_reproduce_the_recorded_final_distances(tiny_run):
    offsets, tail = sac.final_offsets(tiny_run, 3)
    recorded = [e["final_distance"] for e in tiny_run.eval["episodes"][:3]]
    assert offsets.shape == (3, 3) and np.allclose(np.linalg.norm(offsets, axis=1), recorded, atol=1e-6)
    assert 0.0 <= tail <= 1.0
