import numpy as np
import pytest

from rlcourse.core.errors import RLCourseError
from rlcourse.contract.evaluate import eval_report, evaluate, summarize
from rlcourse.contract.policies import FunctionPolicy
from rlcourse.envs.spec import EnvSpec
from rlcourse.training.evaluation import evaluate_run
from rlcourse.contract.runs import validate


def p_controller(obs):
    """Drive the gripper straight at the goal: a proportional controller that solves Reach."""
    err = obs["desired_goal"] - obs["observation"][:3]
    return np.append(np.clip(10.0 * err, -1, 1), 0.0)


def test_a_controller_that_reaches_the_goal_counts_as_success():
    eps = evaluate(FunctionPolicy(p_controller), "FetchReach-v4", n_episodes=4, seed=0)
    assert all(e["success"] and e["final_distance"] < 0.05 for e in eps)
    assert all(1 <= e["time_to_success"] <= e["length"] == 50 for e in eps)
    assert all(-50 <= e["return"] <= 0 for e in eps)  # sparse reward: 0 or -1 per step


def test_action_metrics_on_known_action_sequences():
    zero = evaluate(FunctionPolicy(lambda o: np.zeros(4)), "FetchReachDense-v4", n_episodes=1, seed=5)[0]
    assert zero["smoothness"] == 0 and zero["action_energy"] == 0 and zero["peak_action"] == 0

    state = {"sign": 1.0}

    def alternating(obs):
        state["sign"] *= -1
        return np.array([0.5 * state["sign"], 0, 0, 0])

    alt = evaluate(FunctionPolicy(alternating), "FetchReachDense-v4", n_episodes=1, seed=5)[0]
    assert alt["smoothness"] == pytest.approx(1.0)  # |0.5 - (-0.5)|^2 at every step
    assert alt["action_energy"] == pytest.approx(50 * 0.25)
    assert alt["peak_action"] == pytest.approx(0.5)

    big = evaluate(FunctionPolicy(lambda o: np.array([3.0, 0, 0, 0])), "FetchReachDense-v4", n_episodes=1, seed=5)[0]
    assert big["peak_action"] == 1.0  # actions are clipped to the box before being sent and recorded
    assert big["path_length"] > zero["path_length"]


def test_dense_return_is_minus_the_sum_of_distances_and_seeds_repeat():
    a = evaluate("random", "FetchReachDense-v4", n_episodes=3, seed=11)
    b = evaluate("random", "FetchReachDense-v4", n_episodes=3, seed=11)
    assert a == b  # same seeds, same episodes, bit for bit
    assert [e["seed"] for e in a] == [11, 12, 13]
    assert all(e["return"] < 0 for e in a)


def test_summarize_and_report_validate():
    eps = evaluate("random", "FetchReach-v4", n_episodes=5, seed=0)
    agg = summarize(eps)
    assert agg["success_rate"] == sum(e["success"] for e in eps) / 5
    lo, hi = agg["success_ci95"]
    assert 0 <= lo <= agg["success_rate"] <= hi <= 1
    validate(eval_report("r", "FetchReach-v4", eps, "random", False), "eval")
    with pytest.raises(RLCourseError):
        evaluate("random", "FetchReach-v4", n_episodes=0)
    with pytest.raises(RLCourseError, match="unknown policy"):
        evaluate("greedy", "FetchReach-v4", n_episodes=1)


def test_evaluate_run_is_deterministic_and_refuses_another_env(tiny_run, tmp_path):
    a = evaluate_run(tiny_run.path, n_episodes=2, out=tmp_path / "a.json")
    b = evaluate_run(tiny_run.path, n_episodes=2, out=tmp_path / "b.json")
    assert a["episodes"] == b["episodes"]
    with pytest.raises(RLCourseError, match="trained on FetchReachDense-v4"):
        evaluate_run(tiny_run.path, n_episodes=1, spec="FetchPush-v4", out=tmp_path / "c.json")
    assert not (tmp_path / "c.json").exists()


def test_labelled_episodes_give_stratified_aggregates():
    """A labeller names each episode's stratum (here: is PickAndPlace's goal in the air?); eval.json then holds
    one aggregate per label, whose episode counts add up, next to the overall one."""
    from rlcourse.contract.runs import validate

    def air_or_table(env, obs):  # goals on the table sit at the object's resting height, height_offset
        return "air" if obs["desired_goal"][2] > env.unwrapped.height_offset + 1e-6 else "table"

    eps = evaluate("random", "FetchPickAndPlace-v4", n_episodes=12, seed=0, labeller=air_or_table)
    doc = eval_report("strata", "FetchPickAndPlace-v4", eps, "random", deterministic=False)
    validate(doc, "eval")
    labels = [e["label"] for e in eps]
    assert set(doc["strata"]) == set(labels) == {"air", "table"}  # PickAndPlace lifts about half its goals
    assert sum(s["n_episodes"] for s in doc["strata"].values()) == doc["aggregate"]["n_episodes"] == 12
    for label, agg in doc["strata"].items():
        assert agg["n_episodes"] == labels.count(label)
    from rlcourse.contract.evaluate import summarize_strata

    assert summarize_strata(eps) == {"all": doc["aggregate"], **doc["strata"]}
    assert "strata" not in eval_report("plain", "FetchReach-v4", evaluate("random", "FetchReach-v4", 2), "random", False)


def test_action_metrics_are_measured_on_what_the_robot_received():
    """With an action scale of 0.5 wrapped around the task, a policy that always outputs 1 delivers 0.5: the
    peak and energy are those of the delivered actions, not of the policy's output."""
    full = FunctionPolicy(lambda o: np.array([1.0, 0.0, 0.0, 0.0]))
    scaled = {"id": "FetchReach-v4", "kwargs": {}, "wrappers": [{"name": "action_scale", "params": {"scale": 0.5}}]}
    plain_ep = evaluate(full, "FetchReach-v4", n_episodes=1, seed=3)[0]
    scaled_ep = evaluate(full, scaled, n_episodes=1, seed=3)[0]
    assert plain_ep["peak_action"] == 1.0 and scaled_ep["peak_action"] == 0.5
    assert scaled_ep["action_energy"] == pytest.approx(plain_ep["action_energy"] / 4)
    assert scaled_ep["path_length"] < plain_ep["path_length"]  # the gripper (found by name) moved less


# --- the controller metrics: known answers on hand-made paths, and what the simulator received -------------------


def test_path_jerk_overshoot_and_settling_time_on_hand_made_paths():
    from rlcourse.contract.evaluate import overshoot, path_jerk, settling_time

    t = np.arange(10.0)[:, None]
    c = np.array([[0.001, -0.002, 0.0005]])
    assert path_jerk(t * c, dt=0.04) == pytest.approx(0.0, abs=1e-9)  # constant velocity: no jerk
    assert path_jerk(t**2 * c, dt=0.04) == pytest.approx(0.0, abs=1e-6)  # constant acceleration: none either
    assert path_jerk(t**3 * c, dt=0.04) == pytest.approx(6 * np.linalg.norm(c) / 0.04**3)  # Δ³(t³) = 6
    assert path_jerk(t[:3] ** 3 * c, dt=0.04) == 0.0  # too short to have a third difference

    goal = np.array([1.0, 0.0, 0.0])
    past = np.array([[0, 0, 0], [0.6, 0, 0], [1.2, 0, 0], [1.0, 0, 0]], dtype=float)
    assert overshoot(past, goal) == pytest.approx(0.2)
    assert overshoot(past[:2], goal) == 0.0  # stopped short
    sideways = np.array([[0, 0, 0], [1.0, 0.5, 0]], dtype=float)
    assert overshoot(sideways, goal) == pytest.approx(0.0)  # a miss to the side is not an overshoot
    assert overshoot(np.array([goal, goal + 0.1]), goal) == 0.0  # started at the goal: no direction to pass it in

    assert settling_time([False, True, False, True, True]) == 4
    assert settling_time([True, True]) == 1
    assert settling_time([True, False]) is None and settling_time([]) is None


def p_gain(gain):
    def act(obs):
        return np.append(np.clip(gain * (obs["desired_goal"] - obs["observation"][:3]), -1, 1), 0.0)
    return FunctionPolicy(act)


def test_a_high_gain_overshoots_and_settles_later():
    calm = evaluate(p_gain(10.0), "FetchReach-v4", n_episodes=5, seed=0)
    wild = evaluate(p_gain(60.0), "FetchReach-v4", n_episodes=5, seed=0)
    assert all(e["settling_time"] is not None and e["settling_time"] >= e["time_to_success"] for e in calm)
    assert max(e["overshoot"] for e in calm) < 0.005  # half the error per step: it never passes the goal
    assert np.mean([e["overshoot"] for e in wild]) > 2 * np.mean([e["overshoot"] for e in calm]) + 0.002
    assert np.mean([e["jerk"] for e in wild]) > np.mean([e["jerk"] for e in calm])
    agg = summarize(wild)
    assert agg["overshoot_mean"] == pytest.approx(np.mean([e["overshoot"] for e in wild]))


def test_controller_metrics_are_computed_on_the_delivered_actions():
    """The same policy through action wrappers: the metrics follow what the simulator received, so a loop that
    read the policy's raw output (bypassing the wrappers) would fail every line below."""
    const = FunctionPolicy(lambda o: np.array([0.8, 0.0, 0.0, 0.0]))
    raw = evaluate(const, "FetchReach-v4", n_episodes=1, seed=3)[0]
    half = evaluate(const, EnvSpec("FetchReach-v4").with_wrappers("action_scale:scale=0.5"), n_episodes=1, seed=3)[0]
    assert raw["peak_action"] == pytest.approx(0.8) and half["peak_action"] == pytest.approx(0.4)
    assert half["action_energy"] == pytest.approx(raw["action_energy"] / 4)
    smooth = evaluate(const, EnvSpec("FetchReach-v4").with_wrappers("action_filter:alpha=0.5"), n_episodes=1,
                      seed=3)[0]
    assert raw["smoothness"] == 0.0 < smooth["smoothness"]  # the filter ramps up from zero: the command changes
    assert half["path_length"] < raw["path_length"]
