"""Environment specs and the wrapper registry: JSON, the compact CLI form, validation without building, and what
each wrapper does to the actions and observations (checked against the plain task)."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from rlcourse.core.errors import RLCourseError
from rlcourse.envs import spec as spec_module
from rlcourse.envs.fetch import gripper_position
from rlcourse.envs.spec import EnvSpec, WrapperSpec, load_spec_file, make, parse_wrap
from rlcourse.envs.wrappers import WRAPPERS, CurriculumState, ParamSpec, WrapperInfo, build


def one_line_error(fn, *args, **kwargs) -> str:
    with pytest.raises(RLCourseError) as exc:
        fn(*args, **kwargs)
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


def rollout(env, seed: int, actions) -> list:
    """Observations (reset first), rewards and delivered actions of one seeded rollout."""
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, reward, *_ = env.step(a)
        out.append((obs, reward, env.get_wrapper_attr("delivered_action")))
    return out


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    if isinstance(a, tuple):
        return all(same(x, y) for x, y in zip(a, b, strict=True))
    return np.array_equal(a, b)


ACTIONS = np.random.default_rng(7).uniform(-1.2, 1.2, size=(6, 4)).astype(np.float32)


# --- specs as data -----------------------------------------------------------------------------------------------


def test_json_round_trip_is_exact_and_deterministic():
    spec = EnvSpec("FetchPush-v4", {"max_episode_steps": 60}).with_wrappers(
        "goal_curriculum:mode=success,window=20", "obs_noise:sigma=1,keys=desired_goal+observation")
    doc = spec.to_json()
    assert json.loads(json.dumps(doc)) == doc
    assert EnvSpec.from_json(json.loads(json.dumps(doc))) == spec
    noise = doc["wrappers"][1]
    assert noise == {"name": "obs_noise", "params": {"keys": ["desired_goal", "observation"], "sigma": 1.0}}
    assert list(doc["wrappers"][0]["params"]) == sorted(doc["wrappers"][0]["params"])
    # the same spec written differently has the same JSON text and hash (a run identity)
    other = EnvSpec("FetchPush-v4", {"max_episode_steps": 60}).with_wrappers(
        WrapperSpec("goal_curriculum", {"window": 20.0, "mode": "success"}),
        WrapperSpec("obs_noise", {"keys": ["observation", "desired_goal"], "sigma": 1.0}))
    assert json.dumps(other.to_json()) == json.dumps(doc) and hash(other) == hash(spec)
    assert hash(spec.with_wrappers("action_scale:scale=0.5")) != hash(spec)


@pytest.mark.parametrize("doc, words", [
    ([], "JSON object"),
    ({"id": "FetchPush-v4", "wrapers": []}, "wrapers"),
    ({"kwargs": {}}, "needs an id"),
    ({"id": 3}, "id"),
    ({"id": "FetchPush-v4", "kwargs": []}, "kwargs"),
    ({"id": "FetchPush-v4", "wrappers": {"name": "obs_noise"}}, "list"),
    ({"id": "FetchPush-v4", "wrappers": [{"name": "obs_noise", "params": {"sigma": 0.1}, "x": 1}]}, "keys"),
    ({"id": "FetchPush-v4", "wrappers": [{"name": "obs_noise", "params": {"sigma": "big"}}]}, "sigma"),
    ({"id": "FetchPush-v4", "kwargs": {"max_episode_steps": float("nan")}}, "finite"),
    ({"id": "FetchPush-v4", "kwargs": {"render_mode": "rgb_array"}}, "render_mode"),
])
def test_from_json_is_strict(doc, words):
    assert words in one_line_error(EnvSpec.from_json, doc)


def test_coerce_label_plain_and_with_wrappers():
    plain = EnvSpec.coerce("FetchReach-v4")
    assert plain == EnvSpec.coerce({"id": "FetchReach-v4"}) and EnvSpec.coerce(plain) is plain and plain.is_plain
    assert "expected an environment spec" in one_line_error(EnvSpec.coerce, 3)
    spec = plain.with_wrappers(parse_wrap("obs_noise:sigma=0.01")).with_wrappers("action_scale:scale=0.5")
    assert [w.name for w in spec.wrappers] == ["obs_noise", "action_scale"] and not spec.is_plain
    assert spec.label() == "FetchReach-v4+obs_noise(sigma=0.01)+action_scale(scale=0.5)"
    assert EnvSpec("FetchReach-v4", {"max_episode_steps": 10}).label() == "FetchReach-v4[max_episode_steps=10]"
    assert not EnvSpec("FetchReach-v4", {"max_episode_steps": 10}).is_plain


def test_validate_builds_no_environment(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("validate() built an environment")

    monkeypatch.setattr(spec_module, "make_env", boom)
    monkeypatch.setattr(gym, "make", boom)
    spec = EnvSpec("FetchPickAndPlace-v4").with_wrappers("goal_curriculum", "obs_noise:sigma=0.01")
    assert spec.validate() == spec
    assert "FetchPikc-v4" in one_line_error(EnvSpec("FetchPikc-v4").validate)
    late = EnvSpec("FetchPush-v4").with_wrappers("obs_noise:sigma=0.01", "goal_curriculum")
    assert "before obs_noise" in one_line_error(late.validate)
    twice = EnvSpec("FetchPush-v4").with_wrappers("goal_curriculum", "goal_curriculum")
    assert "only once" in one_line_error(twice.validate)


def test_load_spec_file(tmp_path):
    spec = EnvSpec("FetchReach-v4").with_wrappers("action_filter:alpha=0.3")
    good = tmp_path / "spec.json"
    good.write_text(json.dumps(spec.to_json()))
    assert load_spec_file(good) == spec
    assert "does not exist" in one_line_error(load_spec_file, tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\"id\": ")
    assert "not valid JSON" in one_line_error(load_spec_file, bad)
    bad.write_text(json.dumps({"id": "FetchReach-v4", "wrappers": [{"name": "blur"}]}))
    assert "unknown wrapper 'blur'" in one_line_error(load_spec_file, bad)


# --- the compact command-line form -------------------------------------------------------------------------------


def test_parse_wrap_grammar(monkeypatch):
    monkeypatch.setitem(WRAPPERS, "probe", WrapperInfo("probe", object, {
        "f": ParamSpec(float, default=0.0), "i": ParamSpec(int, default=0), "b": ParamSpec(bool, default=False),
        "s": ParamSpec(str, default=""), "l": ParamSpec(list, default=["x"])}, "test"))
    w = parse_wrap(" probe : f = -1.5e-2 , i=3, b=TRUE, s=some.word-1, l=b+a+b ")
    assert w.params == {"b": True, "f": -0.015, "i": 3, "l": ["a", "b"], "s": "some.word-1"}
    assert parse_wrap("probe:f=2,l=only").params["f"] == 2.0 and parse_wrap("probe:l=only").params["l"] == ["only"]
    assert isinstance(parse_wrap("probe:f=2").params["f"], float)
    assert parse_wrap("probe").params == {"b": False, "f": 0.0, "i": 0, "l": ["x"], "s": ""}
    assert "integer" in one_line_error(parse_wrap, "probe:i=2.5")
    assert "true or false" in one_line_error(parse_wrap, "probe:b=1")
    assert parse_wrap("obs_noise:sigma=0.01,keys=observation+desired_goal").params == {
        "keys": ["desired_goal", "observation"], "sigma": 0.01}
    assert parse_wrap("action_filter:alpha=1").params == {"alpha": 1.0}


@pytest.mark.parametrize("text, words", [
    ("blur:sigma=1", "unknown wrapper 'blur'; valid wrappers: action_filter, action_noise"),
    ("obs_noise:sigma=0.1,sgima=2", "no parameter 'sgima'"),
    ("obs_noise:sigma=-0.1", ">= 0"),
    ("obs_noise:sigma=nan", "finite"),
    ("obs_noise:sigma=1e999", "finite"),
    ("obs_noise:sigma=-inf", "finite"),
    ("obs_noise:sigma=0.1,keys=pixels", "pixels"),
    ("obs_noise", "needs parameter sigma"),
    ("action_filter:alpha=0", "(0, 1]"),
    ("action_filter:alpha=1.5", "(0, 1]"),
    ("action_scale:scale=0", "> 0"),
    ("action_scale:scale=big", "number"),
    ("action_scale:scale=0.5,scale=0.6", "twice"),
    ("action_scale:scale", "key=value"),
    ("action_scale:", "key=value"),
    ("action_scale:scale=0.5,", "key=value"),
    ("obs_noise:sigma=0.1,keys=observation++desired_goal", "empty"),
    ("obs_noise:sigma=1_0", "cannot read value"),
    ("obs-noise:sigma=1", "cannot read wrapper"),
    ("", "empty"),
    ("goal_curriculum:start=0.8,end=0.2", "must not exceed"),
    ("goal_curriculum:mode=sometimes", "fixed, steps, success"),
])
def test_parse_wrap_rejects_with_one_line(text, words):
    assert words in one_line_error(parse_wrap, text)


# --- delivered actions and action wrappers -------------------------------------------------------------------------


def test_delivered_action_is_what_the_simulator_received():
    env = make("FetchPush-v4")
    received = []
    base = env.unwrapped
    original = base._set_action
    base._set_action = lambda a: (received.append(np.array(a)), original(a))[1]
    env.reset(seed=0)
    assert env.get_wrapper_attr("delivered_action") is None
    for action in ACTIONS:
        env.step(action)
        delivered = env.get_wrapper_attr("delivered_action")
        assert np.array_equal(delivered, received[-1]) and np.abs(delivered).max() <= 1.0
    assert np.abs(ACTIONS).max() > 1.0  # some actions were clipped on the way
    env.reset()
    assert env.get_wrapper_attr("delivered_action") is None
    env.close()


def test_action_filter_identity_and_step_response():
    env = make(EnvSpec("FetchReach-v4").with_wrappers("action_filter:alpha=1"))
    env.reset(seed=0)
    for action in ACTIONS:
        env.step(action)
        assert np.array_equal(env.get_wrapper_attr("delivered_action"), np.clip(action, -1, 1))
    env = make(EnvSpec("FetchReach-v4").with_wrappers("action_filter:alpha=0.5"))
    for _ in range(2):  # the filter starts from zero again after a reset
        env.reset(seed=0)
        seen = []
        for _ in range(4):
            env.step(np.ones(4, dtype=np.float32))
            seen.append(env.get_wrapper_attr("delivered_action")[0])
        assert np.allclose(seen, [0.5, 0.75, 0.875, 0.9375])


def test_action_scale_halves_and_clips():
    env = make(EnvSpec("FetchReach-v4").with_wrappers("action_scale:scale=0.5"))
    env.reset(seed=0)
    action = np.array([0.4, -0.8, 1.0, -0.2], dtype=np.float32)
    env.step(action)
    assert np.allclose(env.get_wrapper_attr("delivered_action"), action / 2)
    env = make(EnvSpec("FetchReach-v4").with_wrappers("action_scale:scale=3"))
    env.reset(seed=0)
    env.step(action)
    assert np.allclose(env.get_wrapper_attr("delivered_action"), [1.0, -1.0, 1.0, -0.6])


def test_action_noise_changes_delivered_actions_not_the_policys():
    env = make(EnvSpec("FetchPush-v4").with_wrappers("action_noise:sigma=0.2"))
    env.reset(seed=0)
    action = np.array([0.1, -0.2, 0.3, 0.0], dtype=np.float32)
    kept = action.copy()
    env.step(action)
    delivered = env.get_wrapper_attr("delivered_action")
    assert np.array_equal(action, kept) and not np.allclose(delivered, action) and np.abs(delivered).max() <= 1
    plain = rollout(make("FetchPush-v4"), 3, ACTIONS)
    assert all(same(a, b) for a, b in zip(plain, rollout(make(EnvSpec("FetchPush-v4").with_wrappers(
        "action_noise:sigma=0")), 3, ACTIONS), strict=True))


# --- observation noise and its random stream ----------------------------------------------------------------------


def test_obs_noise_zero_sigma_reproduces_the_plain_env():
    plain = rollout(make("FetchPickAndPlace-v4"), 5, ACTIONS)
    zero = rollout(make(EnvSpec("FetchPickAndPlace-v4").with_wrappers(
        "obs_noise:sigma=0,keys=observation+desired_goal+achieved_goal")), 5, ACTIONS)
    assert all(same(a, b) for a, b in zip(plain, zero, strict=True))


def test_obs_noise_touches_only_listed_keys_and_follows_the_seed():
    noisy_spec = EnvSpec("FetchPush-v4").with_wrappers("obs_noise:sigma=0.01,keys=desired_goal")
    plain_env, noisy_env = make("FetchPush-v4"), make(noisy_spec)
    for seed in (1, None, None):  # unseeded resets continue both streams (task and noise) in step
        plain, _ = plain_env.reset(seed=seed)
        noisy, _ = noisy_env.reset(seed=seed)
        assert np.array_equal(plain["observation"], noisy["observation"])
        assert np.array_equal(plain["achieved_goal"], noisy["achieved_goal"])
        gap = noisy["desired_goal"] - plain["desired_goal"]
        assert 0 < np.abs(gap).max() < 0.06
        _, reward_plain, *_ = plain_env.step(ACTIONS[0])
        _, reward_noisy, *_ = noisy_env.step(ACTIONS[0])
        assert reward_plain == reward_noisy  # noise changes what the policy sees, not the task

    def first_noise(seed):
        env = make(noisy_spec)
        obs, _ = env.reset(seed=seed)
        return obs["desired_goal"] - env.unwrapped.goal

    assert np.array_equal(first_noise(4), first_noise(4))
    assert not np.array_equal(first_noise(4), first_noise(5))
    # never seeded: the documented seed-0 stream (the task's goal differs, so compare up to rounding)
    assert np.allclose(first_noise(None), first_noise(0), rtol=0, atol=1e-12)
    env = make(noisy_spec)
    env.reset(seed=4)
    again, _ = env.reset()
    assert not np.array_equal(again["desired_goal"] - env.unwrapped.goal, first_noise(4))


def test_two_noise_layers_do_not_share_a_stream():
    env = make(EnvSpec("FetchReach-v4").with_wrappers("obs_noise:sigma=0.01,keys=desired_goal",
                                                       "obs_noise:sigma=0.01,keys=observation"))
    obs, _ = env.reset(seed=0)
    plain, _ = make("FetchReach-v4").reset(seed=0)
    noise_goal = obs["desired_goal"] - plain["desired_goal"]
    noise_obs = obs["observation"][:3] - plain["observation"][:3]
    assert not np.allclose(noise_goal, noise_obs)


def test_obs_noise_rejects_a_missing_key_at_construction():
    with pytest.raises(RLCourseError, match="does not exist"):
        build(gym.make("CartPole-v1"), WrapperSpec("obs_noise", {"sigma": 0.1}))


# --- goal curriculum ---------------------------------------------------------------------------------------------


def curriculum(env_id: str, params: str = "", state: CurriculumState | None = None, **kwargs):
    wrap = "goal_curriculum" + (f":{params}" if params else "")
    return make(EnvSpec(env_id, kwargs).with_wrappers(wrap), curriculum_state=state)


def test_easy_goals_sit_on_the_object_with_none_in_the_air():
    env = curriculum("FetchPickAndPlace-v4", "mode=fixed,start=0")
    base = env.unwrapped
    assert env.get_wrapper_attr("difficulty") == 0.0
    for seed in range(30):
        obs, _ = env.reset(seed=seed)
        assert np.array_equal(obs["desired_goal"], base.goal)
        assert np.linalg.norm(base.goal - obs["achieved_goal"]) < 0.02  # the object's start is the goal
        assert abs(base.goal[2] - base.height_offset) < 0.005  # on the table, not in the air


def test_full_difficulty_is_exactly_the_task_distribution():
    env = curriculum("FetchPickAndPlace-v4", "mode=fixed,start=1")
    plain = make("FetchPickAndPlace-v4")
    in_air = 0
    for seed in range(100):
        obs, _ = env.reset(seed=seed)
        ref, _ = plain.reset(seed=seed)
        assert same(obs, ref)
        in_air += ref["desired_goal"][2] > plain.unwrapped.height_offset + 0.005
    assert 30 <= in_air <= 70


def test_rewards_follow_the_new_goal():
    env = curriculum("FetchPushDense-v4", "mode=fixed,start=0.5")
    plain = make("FetchPushDense-v4")
    obs, _ = env.reset(seed=2)
    ref, _ = plain.reset(seed=2)
    anchor = ref["achieved_goal"]  # Push: the object's start position
    assert np.allclose(obs["desired_goal"], (anchor + ref["desired_goal"]) / 2)
    for action in ACTIONS:
        obs, reward, _, _, info = env.step(action)
        assert np.array_equal(obs["desired_goal"], env.unwrapped.goal)
        assert reward == env.unwrapped.compute_reward(obs["achieved_goal"], obs["desired_goal"], info)
        assert np.isclose(reward, -np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"]))
    sparse = curriculum("FetchPush-v4", "mode=fixed,start=0")
    sparse.reset(seed=2)
    assert sparse.step(np.zeros(4, dtype=np.float32))[1] == 0.0  # the goal is where the object already is


def test_reach_anchor_is_the_gripper_and_gripper_position_reads_the_grip_site():
    env = curriculum("FetchReach-v4", "mode=fixed,start=0")
    obs, _ = env.reset(seed=3)
    assert np.array_equal(gripper_position(env), obs["observation"][:3])
    assert np.allclose(obs["desired_goal"], gripper_position(env))
    env.step(np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32))
    assert gripper_position(env)[0] > obs["desired_goal"][0] + 0.005


def test_same_seed_same_goals():
    goals = [[curriculum("FetchPush-v4", "mode=fixed,start=0.3").reset(seed=s)[0]["desired_goal"]
              for s in (0, 1)] for _ in range(2)]
    assert np.array_equal(goals[0], goals[1]) and not np.array_equal(goals[0][0], goals[0][1])


def test_steps_mode_counts_the_steps_of_every_sharing_env():
    state = CurriculumState()
    a = curriculum("FetchPush-v4", "steps=10", state)
    b = curriculum("FetchPush-v4", "steps=10", state)
    alone = curriculum("FetchPush-v4", "steps=10")
    for env in (a, b, alone):
        env.reset(seed=0)
    for _ in range(3):
        a.step(np.zeros(4, dtype=np.float32))
        alone.step(np.zeros(4, dtype=np.float32))
    for _ in range(2):
        b.step(np.zeros(4, dtype=np.float32))
    assert a.get_wrapper_attr("difficulty") == b.get_wrapper_attr("difficulty") == 0.5 and state.total_steps == 5
    assert alone.get_wrapper_attr("difficulty") == pytest.approx(0.3)
    obs, _ = a.reset(seed=9)
    ref, _ = make("FetchPush-v4").reset(seed=9)
    assert np.allclose(obs["desired_goal"], (ref["achieved_goal"] + ref["desired_goal"]) / 2)
    for _ in range(20):
        b.step(np.zeros(4, dtype=np.float32))
    assert a.get_wrapper_attr("difficulty") == 1.0
    with pytest.raises(RLCourseError, match="different schedules"):
        curriculum("FetchPush-v4", "steps=20", state)


def test_success_mode_rises_only_when_the_pooled_window_reaches_the_threshold():
    schedule = "mode=success,start=0,end=0.6,increment=0.25,window=4,threshold=0.75"
    state = CurriculumState()
    # at difficulty 0 on Reach the goal is where the gripper starts, so every 2-step episode of zero actions succeeds
    envs = [curriculum("FetchReach-v4", schedule, state, max_episode_steps=2) for _ in range(2)]
    for env in envs:
        env.reset(seed=0)
    for env in envs:
        for _ in range(2):
            for _ in range(2):
                *_, info = env.step(np.zeros(4, dtype=np.float32))
            assert info["is_success"] == 1.0
            env.reset()
        if env is envs[0]:
            assert state.difficulty == 0.0 and state.episodes == 2  # half a window: no rise yet
    assert state.difficulty == 0.25 and state.episodes == 4 and list(state.recent) == []
    for outcome in (True, False, True, False):  # 50% < 75%: stays
        state.record_episode(outcome)
    assert state.difficulty == 0.25
    for outcome in (True, True):  # the sliding window now holds T, F, T, T: 75%
        state.record_episode(outcome)
    assert state.difficulty == 0.5 and list(state.recent) == []
    for outcome in (True, True, True):  # a fresh window is needed before the next rise
        state.record_episode(outcome)
    assert state.difficulty == 0.5
    state.record_episode(True)
    assert state.difficulty == 0.6  # capped at end, not 0.75
    for _ in range(8):
        state.record_episode(True)
    assert state.difficulty == 0.6


def test_curriculum_state_round_trip():
    state = CurriculumState()
    env = curriculum("FetchPush-v4", "mode=success,window=3,threshold=0.9", state, max_episode_steps=2)
    env.reset(seed=0)
    for _ in range(2):  # one 2-step episode, a success at difficulty 0
        env.step(np.zeros(4, dtype=np.float32))
    env.reset()
    env.step(np.zeros(4, dtype=np.float32))
    state.record_episode(False)
    doc = json.loads(json.dumps(state.state_dict()))
    restored = CurriculumState()
    restored.load_state_dict(doc)
    assert restored.state_dict() == state.state_dict() and restored.total_steps == 3 and restored.episodes == 2
    again = curriculum("FetchPush-v4", "mode=success,window=3,threshold=0.9", restored, max_episode_steps=2)
    assert again.get_wrapper_attr("difficulty") == env.get_wrapper_attr("difficulty")
    assert restored.state_dict()["recent"] == [True, False]
    restored.record_episode(True)  # T, F, T: 67% < 90%, so the saved window simply grows
    assert restored.state_dict()["recent"] == state.state_dict()["recent"] + [True]
    bad = dict(doc, total_steps=-1)
    assert "non-negative" in one_line_error(CurriculumState().load_state_dict, bad)
    assert "exactly the keys" in one_line_error(CurriculumState().load_state_dict, {"difficulty": 0.5})
    assert "different schedules" in one_line_error(curriculum, "FetchPush-v4", "mode=steps", restored)


def test_reward_radius_sets_the_training_radius_and_evaluation_strips_it():
    """Within the new radius and beyond it, the reward and is_success follow the wrapper's radius, both through
    compute_reward (what hindsight relabelling calls) and through a real step; the run's evaluation spec drops the
    wrapper and judges by the task's 5 cm; a radius outside (0, 0.2] is a one-line error."""
    from rlcourse.contract.writer import evaluation_spec
    from rlcourse.envs.wrappers import WRAPPERS

    assert WRAPPERS["reward_radius"].kind == "task"
    spec = EnvSpec("FetchReach-v4").with_wrappers("reward_radius:metres=0.02")
    tight, plain = make(spec), make("FetchReach-v4")
    goal = np.zeros((4, 3))
    achieved = np.array([[0.01, 0, 0], [0.03, 0, 0], [0.0, 0.04, 0], [0.06, 0, 0]])
    assert tight.unwrapped.compute_reward(achieved, goal, None).tolist() == [0.0, -1.0, -1.0, -1.0]
    assert plain.unwrapped.compute_reward(achieved, goal, None).tolist() == [0.0, 0.0, 0.0, -1.0]
    obs, _ = tight.reset(seed=0)
    tight.unwrapped.goal = obs["achieved_goal"] + np.array([0.03, 0.0, 0.0])  # 3 cm away: inside 5 cm, outside 2
    _, reward, _, _, info = tight.step(np.zeros(4, dtype=np.float32))
    d = float(np.linalg.norm(tight.unwrapped._get_obs()["achieved_goal"] - tight.unwrapped.goal))
    assert 0.02 < d < 0.05 and reward == -1.0 and info["is_success"] == 0.0
    assert evaluation_spec(spec.validate()) == EnvSpec("FetchReach-v4").validate()
    for bad in ("0", "-0.01", "0.3", "nan"):
        with pytest.raises(RLCourseError, match="metres"):
            EnvSpec("FetchReach-v4").with_wrappers(f"reward_radius:metres={bad}").validate()


def test_dense_reward_gives_minus_the_distance_in_training_only():
    """compute_reward (what relabelling calls) and a real step's reward become -d; is_success keeps the task's
    radius; the run's evaluation spec drops the wrapper; it takes no parameters."""
    from rlcourse.contract.writer import evaluation_spec
    from rlcourse.envs.wrappers import WRAPPERS

    assert WRAPPERS["dense_reward"].kind == "task"
    spec = EnvSpec("FetchReach-v4").with_wrappers("dense_reward")
    dense, plain = make(spec), make("FetchReach-v4")
    goal = np.zeros((3, 3))
    achieved = np.array([[0.01, 0, 0], [0.0, 0.03, 0.04], [0.06, 0, 0]])
    assert np.allclose(dense.unwrapped.compute_reward(achieved, goal, None), [-0.01, -0.05, -0.06])
    assert plain.unwrapped.compute_reward(achieved, goal, None).tolist() == [0.0, 0.0, -1.0]
    obs, _ = dense.reset(seed=0)
    dense.unwrapped.goal = obs["achieved_goal"] + np.array([0.03, 0.0, 0.0])
    _, reward, _, _, info = dense.step(np.zeros(4, dtype=np.float32))
    d = float(np.linalg.norm(dense.unwrapped._get_obs()["achieved_goal"] - dense.unwrapped.goal))
    assert d < 0.05 and np.isclose(reward, -d) and info["is_success"] == 1.0
    assert evaluation_spec(spec.validate()) == EnvSpec("FetchReach-v4").validate()
    with pytest.raises(RLCourseError, match="dense_reward"):
        EnvSpec("FetchReach-v4").with_wrappers("dense_reward:scale=2").validate()


def test_sample_ranges_widens_the_boxes_and_nothing_else():
    """The default ranges reproduce the plain task reset for reset; wider ones reach further from the gripper's start
    (max |offset| over resets beyond the default half-width) and stay within the new one."""
    from rlcourse.envs.wrappers import WRAPPERS

    assert WRAPPERS["sample_ranges"].kind == "scene"
    plain, same = make("FetchPickAndPlace-v4"), make(EnvSpec("FetchPickAndPlace-v4").with_wrappers("sample_ranges"))
    for s in range(5):
        a, b = plain.reset(seed=s)[0], same.reset(seed=s)[0]
        assert all(np.array_equal(a[k], b[k]) for k in a)
    wide = make(EnvSpec("FetchPickAndPlace-v4").with_wrappers("sample_ranges:obj_range=0.2,target_range=0.2"))
    start = wide.unwrapped.initial_gripper_xpos[:2]
    obj, goal = [], []
    for s in range(300):
        o = wide.reset(seed=s)[0]
        obj.append(np.abs(o["achieved_goal"][:2] - start).max())
        goal.append(np.abs(o["desired_goal"][:2] - start).max())
    assert 0.15 < max(obj) <= 0.2 + 1e-6 and 0.15 < max(goal) <= 0.2 + 1e-6
    with pytest.raises(RLCourseError, match=r"obj_range must be in \[0, 0.2\]"):
        EnvSpec("FetchPush-v4").with_wrappers("sample_ranges:obj_range=0.3").validate()
