"""rlcourse.algos.pixelsac: frames stored once, the encoder trained by the critic only, and a run through the contract."""

import numpy as np
import pytest
import torch

from rlcourse.algos import fastsac, pixelsac
from rlcourse.contract.config import TrainConfig
from rlcourse.contract.evaluate import evaluate
from rlcourse.core.errors import RLCourseError
from rlcourse.envs.spec import EnvSpec, make
from rlcourse.training.train import train

SMALL = {"hidden": 16, "batch_size": 8, "feature_dim": 8, "width": 4, "learning_starts": 50}


def agent(frames=2, size=24, **changes):
    cfg = pixelsac.pixel_config_from({**SMALL, **changes})
    return pixelsac.PixelAgent((3, size, size), frames, 3, 4, cfg)


def test_the_buffer_stores_each_frame_once_and_returns_the_stacks_the_policy_saw():
    env = make(EnvSpec("FetchReach-v4").with_wrappers("pixels:size=24,frames=3"))
    backend = pixelsac.PixelSACBackend()
    buf = backend.new_buffer(env, capacity=2, k=4)
    assert buf.obs.shape == (2, 51, 3, 24, 24) and buf.obs.dtype == np.uint8  # one frame per step, not three
    o, _ = env.reset(seed=0)
    seen, stored, ag = [o["pixels"]], [backend.stored(o)], [o["achieved_goal"]]
    rng = np.random.default_rng(0)
    for _ in range(50):
        o, *_ = env.step(rng.uniform(-1, 1, 4))
        seen.append(o["pixels"]), stored.append(backend.stored(o)), ag.append(o["achieved_goal"])
    buf.add(np.array(stored), np.array(ag), o["desired_goal"], np.zeros((50, 4)))
    t = np.arange(51)
    assert np.array_equal(buf.observations(np.zeros(51, int), t), np.array(seen))
    batch = buf.sample(64, rng, env.unwrapped.compute_reward)
    assert batch["obs"].shape == (64, 9, 24, 24) and batch["next_obs"].dtype == np.uint8
    env.close()


def test_the_actor_puts_no_gradient_into_the_encoder():
    a = agent()
    rng = np.random.default_rng(1)
    batch = {"obs": rng.integers(0, 256, (8, 6, 24, 24), dtype=np.uint8),
             "next_obs": rng.integers(0, 256, (8, 6, 24, 24), dtype=np.uint8),
             "goal": rng.normal(size=(8, 3)), "act": rng.uniform(-1, 1, (8, 4)).astype(np.float32),
             "reward": -np.ones(8, np.float32)}
    before = [p.detach().clone() for p in a.encoder.parameters()]
    a.critic_step = lambda x, act, y: a.critic(x, act).detach()  # only the actor may act on the encoder now
    a.update(batch)
    assert all(p.grad is None for p in a.encoder.parameters())
    assert all(torch.equal(p, q) for p, q in zip(before, a.encoder.parameters()))
    b = agent()
    before = [p.detach().clone() for p in b.encoder.parameters()]
    b.update(batch)  # the critic's loss does train it
    assert any(not torch.equal(p, q) for p, q in zip(before, b.encoder.parameters()))


def test_the_policy_reads_the_frames_and_the_desired_goal_only():
    a = agent(frames=1)
    rng = np.random.default_rng(2)
    obs = {"pixels": rng.integers(0, 256, (3, 24, 24), dtype=np.uint8), "desired_goal": rng.normal(size=3),
           "achieved_goal": rng.normal(size=3)}
    act, _ = a.predict(obs)
    assert act.shape == (4,)
    assert np.array_equal(a.predict({**obs, "achieved_goal": obs["achieved_goal"] + 1})[0], act)
    assert not np.array_equal(a.predict({**obs, "pixels": 255 - obs["pixels"]})[0], act)


def test_a_saved_agent_loads_without_code_and_acts_the_same(tmp_path):
    a = agent()
    fastsac.save_agent(a, tmp_path / "m.pt")
    again = pixelsac.load_pixel_agent(tmp_path / "m.pt")
    frames = np.random.default_rng(3).integers(0, 256, (2, 6, 24, 24), dtype=np.uint8)
    goal = np.zeros((2, 3))
    assert np.array_equal(a.act(frames, goal, True), again.act(frames, goal, True))
    with pytest.raises(RLCourseError, match="not a fastsac agent"):
        fastsac.load_agent(tmp_path / "m.pt")  # a pixel agent is not a state agent


def test_bad_settings_are_refused_before_work_starts(tmp_path):
    base = dict(algo="pixelsac", env_id="FetchReach-v4", seed=0, total_steps=100, her=True, out_dir=str(tmp_path),
                hyperparameters=SMALL, tensorboard=False)
    with pytest.raises(RLCourseError, match="pixels wrapper"):
        train(TrainConfig(**base))
    with pytest.raises(RLCourseError, match="pad"):
        train(TrainConfig(**{**base, "wrappers": ["pixels:size=24"], "hyperparameters": {**SMALL, "pad": -1}}))
    with pytest.raises(RLCourseError, match="unknown hyperparameter"):
        pixelsac.pixel_config_from({"frame_skip": 2})
    assert not any(tmp_path.iterdir())


def test_a_short_pixel_run_through_the_contract(tmp_path):
    cfg = TrainConfig(algo="pixelsac", env_id="FetchReach-v4", seed=0, total_steps=200, n_envs=2, her=True,
                      wrappers=["pixels:size=24,frames=2"], hyperparameters=SMALL, out_dir=str(tmp_path),
                      final_eval_episodes=2, torch_threads=1, tensorboard=False, checkpoint_every=100)
    run = train(cfg)
    assert run.meta["algo"] == "pixelsac" and run.meta["steps_done"] == 200
    assert run.meta["policy"] == "rlcourse.algos.pixelsac.PixelAgent"
    policy = pixelsac.load_pixel_agent(run.verified("model"))
    assert policy.frames == 2 and policy.goal_norm.count == (200 // 50) * 51 + 200 // 50
    result = evaluate(policy, EnvSpec("FetchReach-v4").with_wrappers("pixels:size=24,frames=2"), n_episodes=2)
    assert len(result) == 2


def test_replay_memory_is_one_frame_per_step_and_what_the_run_allocates():
    assert pixelsac.replay_bytes(100_000, 64, n_envs=4) == (2000 + 5) * 51 * 3 * 64 * 64
    env = make(EnvSpec("FetchReach-v4").with_wrappers("pixels:size=24,frames=3"))
    capacity = fastsac.buffer_episodes(1000, 50, 2)
    buf = pixelsac.PixelSACBackend().new_buffer(env, capacity, k=4)
    assert buf.obs.nbytes == pixelsac.replay_bytes(1000, 24, n_envs=2)  # the frames, stored once
    env.close()
    two = make(EnvSpec("FetchReach-v4").with_wrappers("pixels:size=24,camera=front_side"))
    buf = pixelsac.PixelSACBackend().new_buffer(two, capacity, k=4)
    assert buf.obs.nbytes == pixelsac.replay_bytes(1000, 24, n_envs=2, views=2)  # two views: twice the bytes
    two.close()


@pytest.mark.parametrize("bad", [{"views": 0}, {"views": -1}, {"size": 0}, {"n_envs": 0}, {"episode_steps": 0},
                                 {"total_steps": -50}, {"views": 1.5}, {"views": True}])
def test_replay_bytes_refuses_counts_that_are_not_counts(bad):
    args = {"total_steps": 1000, "size": 24, "n_envs": 2, **bad}
    with pytest.raises(RLCourseError, match=next(iter(bad))):
        pixelsac.replay_bytes(**args)


def test_an_agent_on_two_views_acts_on_the_montage():
    two = pixelsac.PixelAgent((3, 24, 48), 1, 3, 4, pixelsac.pixel_config_from(SMALL))
    action, _ = two.predict({"pixels": np.zeros((3, 24, 48), np.uint8), "desired_goal": np.zeros(3)})
    assert action.shape == (4,) and np.all(np.abs(action) <= 1)
