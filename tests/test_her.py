"""HER lab: relabelling semantics, goal strategies, amplification, and the reward bridge to SB3's HerReplayBuffer."""

from __future__ import annotations

import numpy as np
import pytest

from rlcourse.labs import her
from rlcourse.envs import make_env
from rlcourse.core.errors import RLCourseError


@pytest.fixture(scope="module")
def episode(reach):
    return her.collect_episode(reach, seed=3)


def reward_fn(env):
    return env.unwrapped.compute_reward


def test_episode_shapes_and_original_rewards(reach, episode):
    T = len(episode)
    assert T == 50
    assert episode.observations.shape == (T + 1, 10) and episode.achieved_goals.shape == (T + 1, 3)
    # the stored rewards are the environment's: recomputing them with the original goal changes nothing
    again = her.relabel_rewards(episode, np.arange(T), np.repeat(episode.desired_goal[None], T, 0), reward_fn(reach))
    np.testing.assert_array_equal(again, episode.rewards)


def test_episode_rejects_inconsistent_arrays():
    with pytest.raises(RLCourseError, match="disagree"):
        her.Episode(np.zeros((3, 2)), np.zeros((3, 3)), np.zeros(3), np.zeros((3, 4)), np.zeros(3))


def test_own_achieved_goal_is_success_far_goal_is_failure(reach, episode):
    tr = episode.transition(10)
    assert tr.reward == -1.0  # a random arm does not reach a random goal
    own = her.relabel(tr, tr.next_achieved_goal, reward_fn(reach))
    assert own.reward == 0.0 and own.relabelled
    np.testing.assert_array_equal(own.next_achieved_goal, tr.next_achieved_goal)  # only goal and reward change
    far = her.relabel(tr, tr.next_achieved_goal + np.array([1.0, 1.0, 1.0]), reward_fn(reach))
    assert far.reward == -1.0
    # just inside and just outside the 5 cm threshold: the reward comes from compute_reward, not from "relabelled"
    inside = her.relabel(tr, tr.next_achieved_goal + np.array([0.049, 0.0, 0.0]), reward_fn(reach))
    outside = her.relabel(tr, tr.next_achieved_goal + np.array([0.051, 0.0, 0.0]), reward_fn(reach))
    assert (inside.reward, outside.reward) == (0.0, -1.0)


@pytest.mark.parametrize("strategy", list(her.GoalStrategy))
def test_goal_indices_respect_the_strategy(strategy):
    rng = np.random.default_rng(0)
    T, t = 50, 20
    idx = her.goal_indices(T, t, strategy, 2000, rng)
    assert idx.shape == (2000,)
    if strategy is her.GoalStrategy.FUTURE:
        assert idx.min() == t + 1 and idx.max() == T  # this step's outcome .. the last one, both reachable
    elif strategy is her.GoalStrategy.FINAL:
        assert set(idx.tolist()) == {T}
    else:
        assert idx.min() == 1 and idx.max() == T


def test_future_goal_of_last_transition_is_final_goal(episode):
    goals = her.sample_goals(episode, len(episode) - 1, "future", k=4, rng=np.random.default_rng(0))
    assert goals.shape == (4, 3)
    np.testing.assert_array_equal(goals, np.repeat(episode.achieved_goals[-1][None], 4, 0))


def test_bad_arguments_are_rejected():
    rng = np.random.default_rng(0)
    with pytest.raises(RLCourseError, match="outside"):
        her.goal_indices(50, 50, "future", 4, rng)
    with pytest.raises(RLCourseError, match="k must"):
        her.goal_indices(50, 0, "future", 0, rng)
    with pytest.raises(ValueError):
        her.goal_indices(50, 0, "random", 4, rng)


def test_amplification_and_success_fraction(reach, episode):
    rng = np.random.default_rng(0)
    sizes, fracs = [], []
    for _ in range(200):
        out = her.process_episode(episode, reward_fn(reach), "future", k=4, her_ratio=0.8, rng=rng)
        sizes.append(len(out))
        fracs.append(her.success_fraction(out))
    ratio = np.mean(sizes) / len(episode)
    assert abs(ratio - 4.2) < 0.05  # E = 1 + 0.8 * 4, the standard error over 200 episodes is ~0.01
    assert her.success_fraction(episode.transitions()) == 0.0
    assert np.mean(fracs) > 0.1  # the originals all fail; a share of the relabelled copies succeed (~0.23 here)
    plain = her.process_episode(episode, reward_fn(reach), k=4, her_ratio=0.0, rng=rng)
    assert len(plain) == len(episode) and not any(tr.relabelled for tr in plain)


def test_future_beats_episode_and_final_on_success_share(reach, episode):
    rng = np.random.default_rng(1)
    share = {s: np.mean([her.success_fraction(her.process_episode(episode, reward_fn(reach), s, 4, 1.0, rng))
                         for _ in range(50)]) for s in her.GoalStrategy}
    # future goals are close in time, hence close in space, to the transition's own outcome
    assert share[her.GoalStrategy.FUTURE] > share[her.GoalStrategy.EPISODE]


def test_rewards_match_sb3_her_replay_buffer_exactly(reach, episode):
    """The bridge: every transition SB3's HerReplayBuffer samples from our episode carries the reward our relabel
    gives for the same (transition, goal), and its goal is one our "future" strategy could have drawn."""
    from stable_baselines3 import HerReplayBuffer
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([lambda: make_env("FetchReach-v4")])
    buf = HerReplayBuffer(1000, venv.observation_space, venv.action_space, env=venv, n_sampled_goal=4,
                          goal_selection_strategy="future")
    T = len(episode)
    for t in range(T):
        obs = {"observation": episode.observations[t][None], "achieved_goal": episode.achieved_goals[t][None],
               "desired_goal": episode.desired_goal[None]}
        nxt = {"observation": episode.observations[t + 1][None], "achieved_goal": episode.achieved_goals[t + 1][None],
               "desired_goal": episode.desired_goal[None]}
        last = t == T - 1
        buf.add(obs, nxt, episode.actions[t][None], np.array([episode.rewards[t]]), np.array([last]),
                [{"TimeLimit.truncated": last}])
    np.random.seed(0)
    batch = buf.sample(2000)
    actions = batch.actions.numpy()
    goals = batch.observations["desired_goal"].numpy()
    rewards = batch.rewards.numpy().ravel()
    t = np.array([np.flatnonzero((episode.actions.astype(actions.dtype) == a).all(axis=1))[0] for a in actions])
    ours = her.relabel_rewards(episode, t, goals.astype(np.float64), reward_fn(reach))
    np.testing.assert_array_equal(rewards, ours)  # exact: the same compute_reward on the same numbers
    relabelled = ~(goals == episode.desired_goal.astype(goals.dtype)).all(axis=1)
    assert 0.75 < relabelled.mean() < 0.85  # SB3's her_ratio = 1 - 1/(k + 1) = 0.8 of each batch is virtual
    ag = episode.achieved_goals.astype(goals.dtype)
    for ti, g in zip(t[relabelled], goals[relabelled]):
        matches = np.flatnonzero((ag == g).all(axis=1))
        assert ((matches >= ti + 1) & (matches <= T)).any()  # a "future" goal in our indexing
    assert (rewards[relabelled] == 0.0).mean() > 0.2 and (rewards[~relabelled] == -1.0).all()
    venv.close()


def test_a_reward_bug_fails_the_bridge(reach, episode):
    """Assuming 'relabelled means success' instead of asking compute_reward disagrees with the environment."""
    rng = np.random.default_rng(0)
    t = np.arange(len(episode))
    goals = her.sample_goals(episode, 0, "episode", k=len(episode), rng=rng)
    truth = her.relabel_rewards(episode, t, goals, reward_fn(reach))
    assumed = np.zeros(len(episode))
    assert not np.array_equal(truth, assumed)


def test_plot_relabelling_marks_every_goal(reach, episode):
    import matplotlib

    matplotlib.use("Agg")
    ax, rewards = her.plot_relabelling(episode, 10, reward_fn(reach), k=4, rng=np.random.default_rng(0))
    assert rewards.shape == (4,) and set(rewards.tolist()) <= {0.0, -1.0}
    assert len(ax.patches) == 5  # the original goal's circle and one per relabelled goal
    import matplotlib.pyplot as plt

    plt.close("all")
