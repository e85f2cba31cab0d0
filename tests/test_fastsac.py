"""rlcourse.algos.fastsac: its replay buffer against the HER lab (and through it SB3), the normaliser, the fused critics,
the clipped targets, and training through the contract (run folder, re-evaluation, resume after a kill)."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from rlcourse.algos import fastsac
from rlcourse.labs import her
from rlcourse.core.errors import RLCourseError
from rlcourse.training.train import TrainConfig, train, validate_config

from .conftest import kill_after_first_checkpoint_then_rerun


@pytest.fixture(scope="module")
def filled(reach):
    """A buffer holding three random episodes, and the episodes themselves."""
    eps = [her.collect_episode(reach, seed=s) for s in (1, 2, 3)]
    buf = fastsac.EpisodeBuffer(5, 50, 10, 3, 4, k=4)
    for e in eps:
        buf.add(e.observations, e.achieved_goals, e.desired_goal, e.actions)
    return buf, eps


def locate(buf, eps, batch):
    """(episode, step) of every sampled transition, found by its action."""
    out = []
    for a in batch["act"]:
        for i, e in enumerate(eps):
            hit = np.flatnonzero((e.actions.astype(np.float32) == a).all(axis=1))
            if len(hit):
                out.append((i, int(hit[0])))
                break
    return out


def test_sampled_rewards_equal_the_her_lab_and_goals_are_future(reach, filled):
    buf, eps = filled
    batch = buf.sample(3000, np.random.default_rng(0), reach.unwrapped.compute_reward)
    where = locate(buf, eps, batch)
    assert len(where) == 3000
    for (i, t), g, r, rel in zip(where, batch["goal"], batch["reward"], batch["relabelled"]):
        e = eps[i]
        assert r == her.relabel_rewards(e, np.array([t]), g[None].astype(np.float64), reach.unwrapped.compute_reward)[0]
        if rel:
            idx = np.flatnonzero((e.achieved_goals.astype(np.float32) == g).all(axis=1))
            assert (idx >= t + 1).any()  # an achieved goal after this step, as her.GoalStrategy.FUTURE
        else:
            assert np.array_equal(g, e.desired_goal.astype(np.float32))
    assert abs(batch["relabelled"].mean() - 0.8) < 0.03  # k / (k + 1)
    assert (batch["reward"][batch["relabelled"]] == 0).mean() > (batch["reward"][~batch["relabelled"]] == 0).mean()


def test_no_her_means_no_relabelling(reach, filled):
    buf, eps = filled
    plain = fastsac.EpisodeBuffer(5, 50, 10, 3, 4, k=0)
    plain.add(eps[0].observations, eps[0].achieved_goals, eps[0].desired_goal, eps[0].actions)
    batch = plain.sample(500, np.random.default_rng(0), reach.unwrapped.compute_reward)
    assert not batch["relabelled"].any() and (batch["goal"] == eps[0].desired_goal.astype(np.float32)).all()


def test_normalizer_statistics_floor_clip_and_state():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(3.0, 2.0, 5000), np.full(5000, 7.0)])  # the second input never varies
    n = fastsac.Normalizer(2, eps=0.01, clip=5.0)
    n.update(x[:2000])
    n.update(x[2000:])
    np.testing.assert_allclose(n.mean, x.mean(0), atol=1e-9)
    assert abs(n.std[0] - x[:, 0].std()) < 1e-9 and n.std[1] == 0.01  # floored, not 1e-8
    assert n(np.array([3.0, 7.5]))[1] == 5.0  # 50 standard deviations, clipped
    m = fastsac.Normalizer.from_state(n.state())
    np.testing.assert_array_equal(m(x[:10]), n(x[:10]))


def test_twin_critic_is_two_independent_mlps():
    torch.manual_seed(0)
    c = fastsac.TwinCritic(5, 2, 8)
    x, a = torch.randn(7, 5), torch.randn(7, 2)
    q = c(x, a)
    for i in range(2):
        z = torch.cat([x, a], -1)
        for layer in (c.l1, c.l2):
            z = torch.relu(z @ layer.weight[i] + layer.bias[i])
        torch.testing.assert_close(q[i], (z @ c.l3.weight[i] + c.l3.bias[i]).squeeze(-1))
    assert not torch.equal(q[0], q[1])


def test_update_clips_targets_and_moves_the_networks():
    torch.manual_seed(0)
    agent = fastsac.Agent(10, 3, 4, fastsac.FastSACConfig(hidden=16, batch_size=32))
    rng = np.random.default_rng(0)
    batch = {"obs": rng.normal(size=(32, 10)).astype(np.float32), "goal": rng.normal(size=(32, 3)).astype(np.float32),
             "act": rng.uniform(-1, 1, (32, 4)).astype(np.float32), "reward": -np.ones(32, np.float32),
             "next_obs": rng.normal(size=(32, 10)).astype(np.float32)}
    before = [p.clone() for p in agent.actor.parameters()]
    for _ in range(300):
        out = agent.update(batch)
    assert all(not torch.equal(a, b) for a, b in zip(before, agent.actor.parameters()))
    # all rewards -1: the critic heads for the clipped fixed point -1/(1-gamma) = -20 and never below it
    assert -20.5 < out["q_min_mean"] < -1.0
    x = agent.inputs(batch["next_obs"], batch["goal"])
    with torch.no_grad():
        a2, lp = agent.actor(x)
        y = (-1 + 0.95 * (agent.target(x, a2).min(0).values - 0.05 * lp)).clamp(-20, 0)
    assert (y >= -20).all() and (y <= 0).all()


def _random_batch(n=32, reward=-1.0):
    rng = np.random.default_rng(0)
    return {"obs": rng.normal(size=(n, 10)).astype(np.float32), "goal": rng.normal(size=(n, 3)).astype(np.float32),
            "act": rng.uniform(-1, 1, (n, 4)).astype(np.float32), "reward": np.full(n, reward, np.float32),
            "next_obs": rng.normal(size=(n, 10)).astype(np.float32)}


def test_automatic_temperature_moves_alpha_towards_the_target_entropy_and_survives_a_save(tmp_path):
    """With auto_ent_coef, α follows the sign of H_target - H(π): a fresh policy (σ near 1 on 4 dimensions) has
    far more entropy than the target -4 nats, so α must fall; the fixed recipe keeps α where it was set."""
    torch.manual_seed(0)
    auto = fastsac.Agent(10, 3, 4, fastsac.FastSACConfig(hidden=16, batch_size=32, auto_ent_coef=True))
    fixed = fastsac.Agent(10, 3, 4, fastsac.FastSACConfig(hidden=16, batch_size=32))
    batch = _random_batch()
    with torch.no_grad():
        _, logp = auto.actor(auto.inputs(batch["obs"], batch["goal"]))
    assert -logp.mean() > auto.target_entropy  # the entropy starts above the target ...
    outs = [auto.update(batch) for _ in range(50)]
    assert outs[0]["alpha"] == pytest.approx(0.05) and outs[-1]["alpha"] < 0.05 * 0.97  # ... so α shrinks
    assert all(b["alpha"] <= a["alpha"] for a, b in zip(outs, outs[1:]))
    assert all(fixed.update(batch)["alpha"] == 0.05 for _ in range(5))
    fastsac.save_agent(auto, tmp_path / "m.pt")
    again = fastsac.load_agent(tmp_path / "m.pt")
    assert again.alpha == pytest.approx(auto.alpha) and again.alpha_opt is not None
    assert again.update(batch)["alpha"] == pytest.approx(auto.update(batch)["alpha"])


def test_normalize_off_feeds_the_raw_inputs():
    agent = fastsac.Agent(10, 3, 4, fastsac.FastSACConfig(hidden=16, normalize=False))
    batch = _random_batch()
    agent.obs_norm.update(batch["obs"] * 100)  # statistics exist but are not used
    x = agent.inputs(batch["obs"], batch["goal"])
    assert torch.equal(x, torch.as_tensor(np.concatenate([batch["obs"], batch["goal"]], -1)))
    normed = fastsac.Agent(10, 3, 4, fastsac.FastSACConfig(hidden=16))
    normed.obs_norm.update(batch["obs"] * 100)
    assert not torch.allclose(normed.inputs(batch["obs"], batch["goal"]), x)


def test_bad_settings_are_rejected():
    with pytest.raises(RLCourseError, match="unknown hyperparameter 'n_steps' for fastsac"):
        validate_config(TrainConfig(algo="fastsac", env_id="FetchReach-v4", hyperparameters={"n_steps": 5}))
    with pytest.raises(RLCourseError, match="expects bool"):
        fastsac.config_from({"clip_target": 1})
    with pytest.raises(RLCourseError, match="out of range"):
        fastsac.config_from({"gamma": 1.0})
    with pytest.raises(RLCourseError, match="positive start"):
        fastsac.config_from({"auto_ent_coef": True, "ent_coef": 0.0})
    with pytest.raises(RLCourseError, match="expects bool"):
        fastsac.config_from({"normalize": 0})
    with pytest.raises(RLCourseError, match="normalises its inputs"):
        validate_config(TrainConfig(algo="fastsac", env_id="FetchReach-v4", normalize_obs=True))


def test_a_run_through_the_contract_reproduces_its_evaluation(tmp_path):
    from rlcourse.training.evaluation import evaluate_run
    from rlcourse.algos.base import load_policy

    run = train(TrainConfig(algo="fastsac", env_id="FetchReach-v4", seed=0, total_steps=800, n_envs=2, her=True,
                            hyperparameters={"hidden": 32, "batch_size": 64, "learning_starts": 200},
                            out_dir=str(tmp_path), eval_every=400, curve_eval_episodes=2, final_eval_episodes=3,
                            diagnostics=True, torch_threads=1, tensorboard=False))
    assert run.meta["algo"] == "fastsac" and run.meta["model"]["file"] == "model.pt"
    assert run.meta["hyperparameters"]["hidden"] == 32 and run.meta["hyperparameters"]["gamma"] == 0.95
    assert isinstance(load_policy(run), fastsac.Agent)
    doc = evaluate_run(run.path, n_episodes=3, out=tmp_path / "again.json")
    assert doc["episodes"] == run.eval["episodes"]
    cols = run.curve["columns"]
    last = dict(zip(cols, run.curve["rows"][-1]))
    assert last["timesteps"] == 800 and -20 <= last["q_min_mean"] <= 0 and last["ent_coef"] == 0.05
    assert any(r[cols.index("eval_success_rate")] is not None for r in run.curve["rows"])


@pytest.mark.slow
def test_fastsac_resumes_after_a_kill(tmp_path):
    run = kill_after_first_checkpoint_then_rerun(
        ["train", "--algo", "fastsac", "--env", "FetchReach-v4", "--her", "--total-steps", "3000", "--n-envs", "2",
         "--checkpoint-every", "400", "--hp", "hidden=32", "--hp", "batch_size=64", "--hp", "learning_starts=200",
         "--eval-episodes", "1", "--out", str(tmp_path), "--run-id", "killed", "--no-progress",
         "--torch-threads", "1"], tmp_path)
    assert run.meta["resumed"] == 1 and run.meta["steps_done"] == 3000
    steps = [r[0] for r in run.curve["rows"]]
    assert steps == sorted(steps) and steps[-1] == 3000


def test_its_tanh_correction_is_the_one_derived_in_chapter_3():
    """fastsac writes the squashed-Gaussian log-density itself (production code never imports a chapter lab); it
    must agree with the ch03 lab's, including far in the tails where the naive log(1 − tanh²) overflows."""
    from rlcourse.labs.sac import squashed_log_prob as lab

    g = torch.Generator().manual_seed(0)
    mu, log_std = torch.randn(256, 4, generator=g), torch.randn(256, 4, generator=g).clamp(-3, 1)
    u = mu + 3 * torch.randn(256, 4, generator=g) * log_std.exp()
    u[0] = 30.0  # saturated
    assert torch.allclose(fastsac.squashed_log_prob(mu, log_std, u), lab(mu, log_std, u), atol=1e-5)
    assert torch.isfinite(fastsac.squashed_log_prob(mu, log_std, u)).all()


def test_layer_norm_critics_normalise_each_hidden_layer_per_critic():
    torch.manual_seed(0)
    c = fastsac.TwinCritic(5, 2, 8, layer_norm=True)
    with torch.no_grad():
        c.n1.weight[1].mul_(3.0)  # give the second critic its own gain
    x, a = torch.randn(7, 5) * 100, torch.randn(7, 2)
    q = c(x, a)
    for i in range(2):
        z = torch.cat([x, a], -1)
        for layer, norm in ((c.l1, c.n1), (c.l2, c.n2)):
            h = z @ layer.weight[i] + layer.bias[i]
            h = (h - h.mean(-1, keepdim=True)) / torch.sqrt(h.var(-1, unbiased=False, keepdim=True) + 1e-5)
            z = torch.relu(h * norm.weight[i] + norm.bias[i])
        torch.testing.assert_close(q[i], (z @ c.l3.weight[i] + c.l3.bias[i]).squeeze(-1))
    plain = fastsac.TwinCritic(5, 2, 8)
    assert not any("n1" in k for k in plain.state_dict())  # runs saved before the option load unchanged


def test_layer_norm_agent_survives_a_save(tmp_path):
    agent = fastsac.Agent(10, 3, 4, fastsac.FastSACConfig(hidden=16, batch_size=32, layer_norm=True))
    batch = _random_batch()
    agent.update(batch)
    fastsac.save_agent(agent, tmp_path / "m.pt")
    again = fastsac.load_agent(tmp_path / "m.pt")
    assert again.cfg.layer_norm and isinstance(again.critic.n1, torch.nn.Module)
    x = again.inputs(batch["obs"], batch["goal"])
    a = torch.as_tensor(batch["act"])
    torch.testing.assert_close(again.critic(x, a), agent.critic(agent.inputs(batch["obs"], batch["goal"]), a))


def _worker_run(tmp_path, run_id, worker, steps=600, **hp):
    return train(TrainConfig(algo="fastsac", env_id="FetchPush-v4", seed=1, total_steps=steps, n_envs=2, her=True,
                             hyperparameters={"hidden": 32, "batch_size": 64, "learning_starts": 300,
                                              "env_worker": worker, **hp},
                             out_dir=str(tmp_path), run_id=run_id, eval_every=300, curve_eval_episodes=1,
                             final_eval_episodes=2, torch_threads=1, tensorboard=False, checkpoint_every=300))


@pytest.mark.slow
def test_a_worker_process_steps_the_same_environments(tmp_path):
    """Before learning starts the actions do not depend on the learner, so stepping in a worker process must
    collect exactly the episodes stepping inline does; afterwards the runs differ only in when the gradient steps
    run (during the next simulation instead of before it), so both must still train and evaluate."""
    inline = _worker_run(tmp_path, "inline", False, steps=300, learning_starts=10_000)
    worker = _worker_run(tmp_path, "worker", True, steps=300, learning_starts=10_000)
    cols = inline.curve["columns"]
    keep = [i for i, c in enumerate(cols) if c not in ("wall_s", "fps")]
    assert [[r[i] for i in keep] for r in inline.curve["rows"]] == [[r[i] for i in keep] for r in worker.curve["rows"]]
    learned = _worker_run(tmp_path, "learned", True)
    assert learned.meta["hyperparameters"]["env_worker"] is True and learned.meta["steps_done"] == 600
    assert learned.eval["n_episodes"] == 2


@pytest.mark.slow
def test_a_curriculum_in_the_worker_reports_its_schedule(tmp_path):
    """The curriculum lives with the environments in the worker; its state comes back after every step, so the
    run's curve records the difficulty the worker's environments saw."""
    run = train(TrainConfig(algo="fastsac", env_id="FetchPush-v4", seed=0, total_steps=600, n_envs=2, her=True,
                            wrappers=["goal_curriculum:mode=steps,start=0,end=1,steps=400"],
                            hyperparameters={"hidden": 32, "batch_size": 64, "learning_starts": 300, "env_worker": True},
                            out_dir=str(tmp_path), run_id="cur", eval_every=200, curve_eval_episodes=1,
                            final_eval_episodes=1, torch_threads=1, tensorboard=False))
    cols = run.curve["columns"]
    rows = [dict(zip(cols, r)) for r in run.curve["rows"]]
    assert [r["difficulty"] for r in rows] == [pytest.approx(min(1.0, r["timesteps"] / 400)) for r in rows]


def test_a_worker_that_cannot_build_its_environments_says_why():
    from rlcourse.algos.stepper import WorkerEnvs

    with pytest.raises(RLCourseError, match="environment worker failed"):
        WorkerEnvs({"id": "FetchPush-v4", "kwargs": {"no_such_argument": 1}, "wrappers": []}, 1)


def test_demonstrations_round_trip_and_are_checked_before_reading(tmp_path):
    from rlcourse.labs import pick

    eps = pick.demonstrations(2, seed=5)
    path = tmp_path / "demos.npz"
    digest = pick.save_demonstrations(path, eps)
    assert pick.save_demonstrations(tmp_path / "again.npz", eps) == digest  # byte for byte reproducible
    z = fastsac.load_demonstrations(path, digest)
    assert z["observations"].shape == (2, 51, 25) and z["actions"].shape == (2, 50, 4)
    assert np.array_equal(z["achieved_goals"][1], eps[1].achieved_goals.astype(np.float32))
    with pytest.raises(RLCourseError, match="corrupt or was modified"):
        fastsac.load_demonstrations(path, "0" * 64)
    with pytest.raises(RLCourseError, match="not found"):
        fastsac.load_demonstrations(tmp_path / "none.npz", digest)
    with pytest.raises(RLCourseError, match="expected finite arrays"):
        fastsac.save_demonstrations(tmp_path / "bad.npz", z["observations"], z["achieved_goals"], z["desired_goals"],
                                    z["actions"][:, :10])
    with pytest.raises(RLCourseError, match="go together"):
        fastsac.config_from({"demonstrations": str(path)})
    with pytest.raises(RLCourseError, match="expects a string"):
        fastsac.config_from({"demonstrations": 3, "demonstrations_sha256": digest})


def test_demonstrations_fill_the_buffer_before_the_first_step(tmp_path):
    """The normaliser has seen every observation that entered the buffer: the demonstrations' and the run's own."""
    from rlcourse.labs import pick

    path = tmp_path / "demos.npz"
    digest = pick.save_demonstrations(path, pick.demonstrations(3))
    hp = {"hidden": 16, "batch_size": 32, "learning_starts": 100, "demonstrations": str(path),
          "demonstrations_sha256": digest}
    cfg = TrainConfig(algo="fastsac", env_id="FetchPickAndPlace-v4", seed=0, total_steps=200, n_envs=2, her=True,
                      hyperparameters=hp, out_dir=str(tmp_path / "runs"), final_eval_episodes=1, torch_threads=1,
                      tensorboard=False)
    run = train(cfg)
    agent = fastsac.load_agent(run.verified("model"))
    assert agent.obs_norm.count == (3 + 200 // 50) * 51
    assert run.meta["hyperparameters"]["demonstrations_sha256"] == digest
    tampered = dict(hp, demonstrations_sha256="f" * 64)
    with pytest.raises(RLCourseError, match="corrupt or was modified"):
        train(TrainConfig(**{**cfg.__dict__, "hyperparameters": tampered, "run_id": "tampered"}))
    assert not (tmp_path / "runs" / "tampered").exists() and not (tmp_path / "runs" / "tampered.partial").exists()
