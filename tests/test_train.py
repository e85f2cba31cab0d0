import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlcourse.core.errors import RLCourseError
from rlcourse.training.repro import compare_reports, repro_check, write_repro
from rlcourse.contract.runs import read_json
from rlcourse.algos.sb3 import hyperparameter_defaults
from rlcourse.training.train import TrainConfig, random_run, train, validate_config

from .conftest import TINY_PPO, kill_after_first_checkpoint_then_rerun


def test_meta_records_every_hyperparameter_and_provenance(tiny_run):
    m = tiny_run.meta
    assert (m["algo"], m["env_id"], m["seed"], m["n_envs"]) == ("ppo", "FetchReachDense-v4", 3, 2)
    assert m["steps_done"] == 256 and m["steps_per_s"] > 0 and m["wall_clock_s"] > 0
    hp = m["hyperparameters"]
    assert set(hyperparameter_defaults("ppo")) <= set(hp)   # every SB3 argument is recorded ...
    assert hp["n_steps"] == 64 and hp["gae_lambda"] == 0.95  # ... ours, and SB3's defaults
    assert m["versions"]["stable-baselines3"] and m["versions"]["mujoco"].startswith("3.")
    assert m["command"] == "pytest tiny_run" and m["device"] == "cpu"
    assert len(tiny_run.eval["episodes"]) == 3
    assert not any(p.name.endswith(".partial") for p in tiny_run.path.parent.iterdir())


@pytest.mark.parametrize("change,match", [
    ({"algo": "dqn"}, "unknown algorithm"),
    ({"env_id": "FetchReach-v9"}, "unknown environment"),
    ({"hyperparameters": {"learning_rat": 1e-3}}, "unknown hyperparameter 'learning_rat'"),
    ({"hyperparameters": {"gamma": "high"}}, "expects a number"),
    ({"total_steps": 0}, "total_steps"),
    ({"her": True}, "off-policy"),
    ({"algo": "sac", "her": True, "her_kwargs": {"k": 4}}, "unknown HER option"),
    ({"run_id": "../escape"}, "invalid run id"),
])
def test_bad_config_is_rejected_before_anything_is_written(tmp_path, change, match):
    cfg = TrainConfig(**{"algo": "ppo", "env_id": "FetchReachDense-v4", "out_dir": str(tmp_path), **change})
    with pytest.raises(RLCourseError, match=match):
        train(cfg)
    assert list(tmp_path.iterdir()) == []


def test_bad_value_caught_by_sb3_is_one_clean_error(tmp_path):
    cfg = TrainConfig(algo="ppo", env_id="FetchReachDense-v4", out_dir=str(tmp_path),
                      hyperparameters={"policy_kwargs": {"net_arch": "wide"}})
    with pytest.raises(RLCourseError, match="cannot build ppo"):
        train(cfg)
    assert list(tmp_path.iterdir()) == []


def test_existing_run_needs_overwrite(tiny_run):
    cfg = TrainConfig(algo="ppo", env_id="FetchReachDense-v4", seed=3, out_dir=str(tiny_run.path.parent))
    with pytest.raises(RLCourseError, match="already exists"):
        train(cfg)


def test_same_seed_gives_equal_reports_and_another_seed_does_not(tmp_path):
    cfg = TrainConfig(algo="ppo", env_id="FetchReachDense-v4", seed=0, total_steps=256, n_envs=2,
                      hyperparameters=TINY_PPO)
    same = repro_check(cfg, n_episodes=2, workdir=tmp_path)
    assert same["equal"] and same["max_abs_diff"] == 0.0
    doc = read_json(write_repro(tmp_path / "repro.json", same, "rlcourse repro --algo ppo"), "repro")
    assert doc["equal"] and doc["git"]["commit"] is not None and doc["command"] == "rlcourse repro --algo ppo"
    other = train(TrainConfig(**{**cfg.__dict__, "seed": 1, "out_dir": str(tmp_path), "final_eval_episodes": 2,
                                 "tensorboard": False}))
    first = train(TrainConfig(**{**cfg.__dict__, "out_dir": str(tmp_path), "final_eval_episodes": 2,
                                 "tensorboard": False}))
    diff = compare_reports(first.eval, other.eval)
    assert not diff["equal"] and diff["max_abs_diff"] > 1e-6  # the comparison can fail: it is not vacuous


def test_the_comparison_reads_every_field_an_episode_records():
    """Chapter 6's controller metrics (jerk, overshoot, settling time) and labels count as much as the first ones."""
    ep = {"seed": 1, "return": -3.0, "length": 50, "success": True, "time_to_success": 7, "final_distance": 0.01,
          "jerk": 0.5, "overshoot": 0.0, "settling_time": 9, "label": "air"}
    doc = lambda **change: {"episodes": [{**ep, **change}]}
    assert compare_reports(doc(), doc())["equal"]
    for change in ({"jerk": 0.6}, {"settling_time": 10}, {"label": "table"}, {"overshoot": float("nan")}):
        result = compare_reports(doc(), doc(**change))
        assert not result["equal"] and next(iter(change)) in result["mismatches"][0], change
    lacking = {"episodes": [{k: v for k, v in ep.items() if k != "jerk"}]}
    assert "one report only" in compare_reports(doc(), lacking)["mismatches"][0]


def test_random_run_is_a_run_folder_without_model(tmp_path):
    run = random_run("FetchReach-v4", n_episodes=4, seed=0, out_dir=tmp_path)
    assert run.meta["algo"] == "random" and run.meta["model"] is None and run.model_path is None
    assert run.eval["n_episodes"] == 4 and run.eval["deterministic"] is False
    with pytest.raises(RLCourseError, match="already exists"):
        random_run("FetchReach-v4", n_episodes=4, seed=0, out_dir=tmp_path)


@pytest.mark.slow
def test_training_resumes_after_a_kill(tmp_path):
    """Kill a CLI training run after its first resume checkpoint; the same command then finishes it."""
    run = kill_after_first_checkpoint_then_rerun(
        ["train", "--algo", "ppo", "--env", "FetchReachDense-v4", "--total-steps", "6144", "--n-envs", "2",
         "--checkpoint-every", "512", "--hp", "n_steps=128", "--hp", "batch_size=128", "--hp", "n_epochs=1",
         "--eval-episodes", "1", "--out", str(tmp_path), "--run-id", "killed", "--no-progress"], tmp_path)
    assert run.meta["resumed"] == 1 and run.meta["steps_done"] == 6144
    assert not (tmp_path / "killed.partial").exists() and not (Path(run.path) / "resume").exists()
    steps = [r[0] for r in run.curve["rows"]]
    assert steps == sorted(steps) and steps[-1] == 6144


def test_validate_config_accepts_her_for_sac():
    validate_config(TrainConfig(algo="sac", env_id="FetchReach-v4", her=True,
                                her_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"}))


@pytest.mark.parametrize("algo,her", [("sac", True), ("td3", False)])
def test_off_policy_runs_through_the_same_contract(tmp_path, algo, her):
    cfg = TrainConfig(algo=algo, env_id="FetchReach-v4", seed=0, total_steps=200, n_envs=2, her=her,
                      her_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"} if her else {},
                      hyperparameters={"learning_starts": 100, "batch_size": 32, "buffer_size": 1000,
                                       "policy_kwargs": {"net_arch": [32, 32]}},
                      out_dir=str(tmp_path), final_eval_episodes=2, tensorboard=False)
    run = train(cfg)
    hp = run.meta["hyperparameters"]
    assert run.meta["her"] is her and run.meta["steps_done"] == 200
    assert hp["replay_buffer_class"] == ("stable_baselines3.her.her_replay_buffer.HerReplayBuffer" if her else None)
    if her:
        assert hp["replay_buffer_kwargs"] == {"n_sampled_goal": 4, "goal_selection_strategy": "future"}
    assert not list(tmp_path.glob("**/replay_buffer*.pkl"))  # replay buffers never land in a run folder
    from rlcourse.training.evaluation import evaluate_run

    doc = evaluate_run(run.path, n_episodes=1, out=tmp_path / "again.json")  # loading a HER model needs an env
    assert doc["episodes"][0]["length"] == 50


def test_curve_rows_stay_spaced_when_ppo_overshoots_the_budget(tmp_path):
    """PPO finishes its rollout past total_steps; the curve must not gain a row on every one of those steps."""
    run = train(TrainConfig(algo="ppo", env_id="FetchReachDense-v4", total_steps=300, n_envs=2, curve_points=10,
                            hyperparameters=TINY_PPO, out_dir=str(tmp_path), final_eval_episodes=1,
                            tensorboard=False))
    steps = [r[0] for r in run.curve["rows"]]
    assert run.meta["steps_done"] == 384  # three rollouts of 64 x 2
    assert steps == sorted(set(steps))
    assert len(steps) <= run.meta["steps_done"] // 30 + 2  # one row per 30 steps, plus the one at the budget


def test_normalized_observations_travel_with_the_run(tmp_path):
    """normalize_obs: the statistics are saved next to the model, checksummed, and applied when evaluating; the
    re-evaluation reproduces the run's eval.json, and a policy without them acts differently."""
    import numpy as np

    from rlcourse.contract.evaluate import evaluate
    from rlcourse.contract.policies import NormalizedPolicy
    from rlcourse.training.evaluation import evaluate_run
    from rlcourse.contract.runs import NORMALIZER_FILE, load_run
    from rlcourse.algos.base import load_model, load_policy

    cfg = TrainConfig(algo="sac", env_id="FetchReach-v4", seed=0, total_steps=300, n_envs=2, her=True,
                      hyperparameters={"learning_starts": 100, "batch_size": 32, "buffer_size": 1000,
                                       "policy_kwargs": {"net_arch": [32, 32]}},
                      normalize_obs=True, torch_threads=1, out_dir=str(tmp_path), final_eval_episodes=3,
                      tensorboard=False)
    run = train(cfg)
    assert (run.path / NORMALIZER_FILE).is_file() and run.meta["normalizer"]["file"] == NORMALIZER_FILE
    policy = load_policy(run)
    assert isinstance(policy, NormalizedPolicy)
    doc = evaluate_run(run.path, n_episodes=3, out=tmp_path / "again.json")
    assert doc["episodes"] == run.eval["episodes"]
    raw = evaluate(load_model(run), "FetchReach-v4", 3)  # the same weights fed raw observations
    assert [e["final_distance"] for e in raw] != [e["final_distance"] for e in run.eval["episodes"]]
    stats = np.frombuffer((run.path / NORMALIZER_FILE).read_bytes(), dtype=np.uint8).copy()
    stats[-20:] ^= 0xFF
    (run.path / NORMALIZER_FILE).write_bytes(stats.tobytes())
    with pytest.raises(RLCourseError, match="corrupt"):
        load_run(run.path)


def test_torch_threads_is_restored_and_validated(tmp_path):
    import torch

    before = torch.get_num_threads()
    with pytest.raises(RLCourseError, match="torch_threads"):
        validate_config(TrainConfig(algo="sac", env_id="FetchReach-v4", torch_threads=-1))
    train(TrainConfig(algo="sac", env_id="FetchReach-v4", total_steps=100, hyperparameters={"learning_starts": 50},
                      torch_threads=1, out_dir=str(tmp_path), final_eval_episodes=1, tensorboard=False))
    assert torch.get_num_threads() == before


@pytest.mark.slow
def test_train_many_runs_in_parallel_and_skips_finished_runs(tmp_path):
    from rlcourse.training.train import train_many

    base = dict(algo="sac", env_id="FetchReach-v4", total_steps=100, hyperparameters={"learning_starts": 50},
                torch_threads=1, out_dir=str(tmp_path), final_eval_episodes=1, tensorboard=False)
    cfgs = [TrainConfig(seed=s, **base) for s in (0, 1)]
    runs = train_many(cfgs, jobs=2)
    assert [r.meta["seed"] for r in runs] == [0, 1]
    stamp = (runs[0].path / "meta.json").stat().st_mtime_ns
    again = train_many(cfgs, jobs=2)  # complete runs are loaded, not retrained
    assert (again[0].path / "meta.json").stat().st_mtime_ns == stamp
    with pytest.raises(RLCourseError, match="same run id twice"):
        train_many([cfgs[0], cfgs[0]])
    with pytest.raises(RLCourseError, match="unknown hyperparameter"):
        train_many([TrainConfig(seed=5, **{**base, "hyperparameters": {"nope": 1}})])
    assert not (tmp_path / "sac_FetchReach-v4_seed5").exists()
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("")  # a file where the output folder should be: refused before any worker starts
    with pytest.raises(RLCourseError, match="is a file, not a folder"):
        train_many([TrainConfig(seed=6, **base), TrainConfig(seed=7, **{**base, "out_dir": str(blocked)})], jobs=2)
    assert not (tmp_path / "sac_FetchReach-v4_seed6").exists()
    wide = {**base, "hyperparameters": {**base["hyperparameters"], "policy_kwargs": {"net_arch": "wide"}}}
    with pytest.raises(RLCourseError, match=r"run sac_FetchReach-v4_seed7 failed: RLCourseError: cannot build sac"):
        train_many([TrainConfig(seed=6, **base), TrainConfig(seed=7, **wide)], jobs=2)  # SB3 refuses it in the worker


TRAIN_MANY_SCRIPT = """
import signal
import sys
from rlcourse.training.train import TrainConfig, train_many

if __name__ == "__main__":
    # a background job (make in CI, nohup ... &) inherits SIGINT ignored; an interactive Ctrl-C does not
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cfgs = [TrainConfig(algo="fastsac", env_id="FetchReach-v4", seed=s, total_steps=10_000_000, her=True,
                        torch_threads=1, out_dir=sys.argv[1], tensorboard=False, progress=False) for s in (0, 1)]
    train_many(cfgs, jobs=2)
"""


def _workers_of(pid: int) -> list[int]:
    """The multiprocessing workers (spawned children) of process ``pid``, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["parent-killed", "parent-interrupted"])
def test_train_many_workers_do_not_outlive_their_parent(tmp_path, how):
    """Killing or interrupting the process that called train_many ends its workers too (no orphans training on)."""
    script = tmp_path / "many.py"
    script.write_text(TRAIN_MANY_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "runs")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while len(_workers_of(proc.pid)) < 2 or len(list((tmp_path / "runs").glob("*.partial"))) < 2:
            assert time.time() < deadline and proc.poll() is None, "the workers did not start"
            time.sleep(0.2)
        workers = _workers_of(proc.pid)
        os.kill(proc.pid, how)  # the parent only, not its process group
        proc.wait(timeout=60)
        deadline = time.time() + 60
        while any(_alive(w) for w in workers) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(_alive(w) for w in workers), "train_many workers outlived their parent"
    finally:
        os.killpg(proc.pid, signal.SIGKILL) if proc.poll() is None else None


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["sac", "fastsac"])
def test_stop_at_success_ends_training_at_the_first_evaluation_that_reaches_it(tmp_path, monkeypatch, algo):
    import rlcourse.contract.writer as ev
    from rlcourse.contract.runs import curve_table

    real, calls = ev.summarize, []

    def scripted(episodes):  # the first in-training evaluation fails, every later one succeeds
        calls.append(1)
        return {**real(episodes), "success_rate": 0.0 if len(calls) == 1 else 1.0}

    monkeypatch.setattr(ev, "summarize", scripted)
    cfg = TrainConfig(algo=algo, env_id="FetchReach-v4", her=True, total_steps=5000, eval_every=500, curve_eval_episodes=1,
                      stop_at_success=0.9, hyperparameters=SMALL[algo], torch_threads=1,
                      out_dir=str(tmp_path), final_eval_episodes=1, tensorboard=False)
    run = train(cfg)
    assert run.meta["steps_done"] == 1000  # the second evaluation, not the first and not the budget
    curve = curve_table(run.curve)
    assert curve["timesteps"][-1] == 1000 and curve["eval_success_rate"][-1] == 1.0
    assert run.eval is not None  # the final evaluation still runs


SMALL = {"sac": {"learning_starts": 200, "batch_size": 64, "policy_kwargs": {"net_arch": [32, 32]}},
         "fastsac": {"learning_starts": 200, "batch_size": 64, "hidden": 32}}


def test_stop_at_success_is_validated():
    base = dict(algo="sac", env_id="FetchReach-v4")
    with pytest.raises(RLCourseError, match=r"\[0, 1\]"):
        validate_config(TrainConfig(stop_at_success=1.5, eval_every=100, **base))
    with pytest.raises(RLCourseError, match="eval_every"):
        validate_config(TrainConfig(stop_at_success=0.9, **base))
    assert TrainConfig(stop_at_success=0.9, eval_every=100, **base).identity() != TrainConfig(**base).identity()


@pytest.mark.parametrize("algo", ["sac", "fastsac"])
def test_every_evaluation_gets_its_own_curve_row(tmp_path, algo):
    """Evaluations that fall between the regular rows are recorded at their own step, none is dropped."""
    from rlcourse.contract.runs import curve_table

    cfg = TrainConfig(algo=algo, env_id="FetchReach-v4", total_steps=1000, curve_points=3, eval_every=250,
                      curve_eval_episodes=1, hyperparameters={"learning_starts": 900}, torch_threads=1,
                      out_dir=str(tmp_path), final_eval_episodes=0, tensorboard=False)
    curve = curve_table(train(cfg).curve)
    evaluated = [t for t, s in zip(curve["timesteps"], curve["eval_success_rate"]) if s is not None]
    assert evaluated == [250, 500, 750, 1000]
    assert {333, 666, 999} <= set(curve["timesteps"])  # the regular rows are still there
