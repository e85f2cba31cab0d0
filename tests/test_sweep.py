"""The sweep runner: grids expand into jobs, finished jobs are skipped, failures are one line, and the local
process pool and a local Ray instance give the same results."""

from pathlib import Path

import pytest

from rlcourse.contract.runs import read_json
from rlcourse.core.errors import RLCourseError
from rlcourse.training import sweep


def test_grid_points_and_placeholders():
    points = sweep.grid_points({"seed": [0, 1], "sigma": [0.0, 0.01]})
    assert points == [{"seed": 0, "sigma": 0.0}, {"seed": 0, "sigma": 0.01}, {"seed": 1, "sigma": 0.0},
                      {"seed": 1, "sigma": 0.01}]
    filled = sweep.fill({"seed": "{seed}", "id": "run_s{seed}_n{sigma}", "w": ["obs_noise:sigma={sigma}"]},
                        points[1])
    assert filled == {"seed": 0, "id": "run_s0_n0.01", "w": ["obs_noise:sigma=0.01"]}  # a lone {key} keeps its type
    with pytest.raises(RLCourseError, match=r"placeholder \{alpha\} names no grid key"):
        sweep.fill("x{alpha}", points[0])


def _spec(tmp_path, out="out", **changes):
    spec = {"name": "tiny", "out": str(tmp_path / out), "grid": {"seed": [0, 1], "sigma": [0.0, 0.05]},
            "train": {"algo": "fastsac", "env_id": "FetchReach-v4", "seed": "{seed}", "total_steps": 400, "n_envs": 2,
                      "her": True, "hyperparameters": {"hidden": 16, "batch_size": 32, "learning_starts": 200},
                      "run_id": "tiny_seed{seed}", "out_dir": str(tmp_path / out / "runs"), "eval_every": 400,
                      "curve_eval_episodes": 1, "final_eval_episodes": 2, "torch_threads": 1, "tensorboard": False},
            "evaluate": {"run": "{run}", "spec": {"id": "FetchReach-v4", "wrappers": ["obs_noise:sigma={sigma}"]},
                         "episodes": 3}}
    spec.update(changes)
    return spec


@pytest.mark.parametrize("change, message", [
    ({"grdi": {}}, "unknown sweep key 'grdi'"),
    ({"name": "a b"}, "letters, digits"),
    ({"grid": {"seed": []}}, "at least one value"),
    ({"grid": {"seed": [1, 1]}}, "twice"),
    ({"evaluate": {"run": "x"}}, "evaluate needs run and spec"),
    ({"evaluate": {"run": "x", "spec": "FetchReach-v4", "labeller": "os:system"}}, "must be rlcourse"),
    ({"evaluate": {"run": "x", "spec": "FetchReach-v4", "episods": 3}}, "unknown evaluate key 'episods'"),
    ({"evaluate": {"run": "x", "spec": "FetchWalk-v4"}}, "FetchWalk"),
    ({"evaluate": {"run": "x", "spec": "FetchReach-v4", "episodes": 0}}, "evaluate episodes"),
    ({"evaluate": {"run": "x", "spec": "FetchReach-v4", "episodes": 2.5}}, "evaluate episodes"),
    ({"evaluate": {"run": "x", "spec": "FetchReach-v4", "episodes": float("nan")}}, "evaluate episodes"),
    ({"evaluate": {"run": "x", "spec": "FetchReach-v4", "seed": "ten"}}, "evaluate seed"),
    ({"evaluate": {"run": "x", "spec": "FetchReach-v4", "seed": -1}}, "evaluate seed"),
    ({"train": {"algo": "fastsac", "env_id": "FetchReach-v4", "seed": 0, "total_steps": -5}}, "total_steps"),
    ({"train": {"algo": "fastsac", "env_id": "FetchReach-v4", "seed": "{seed}", "total_steps": 400,
                "run_id": "same"}}, "different settings"),
])
def test_bad_specs_are_one_line_errors_before_anything_runs(tmp_path, change, message):
    with pytest.raises(RLCourseError, match=message):
        sweep.run_sweep(_spec(tmp_path, **change), progress=None)
    assert not (tmp_path / "out").exists()


def _results(doc):
    """What must not depend on where the jobs ran: each job's id, kind, grid points and outcome."""
    keep = ("id", "kind", "points", "n_episodes", "success_rate", "success_ci95")
    return [{k: j.get(k) for k in keep} for j in doc["jobs"]]


def _episodes(doc):
    return {j["id"]: read_json(sweep.job_path(j), "eval")["episodes"] for j in doc["jobs"] if j["kind"] == "eval"}


@pytest.mark.slow
def test_local_and_ray_backends_give_the_same_sweep_and_a_rerun_reuses_everything(tmp_path):
    pytest.importorskip("ray")
    local = sweep.run_sweep(_spec(tmp_path, "local"), backend="local", jobs=2, progress=None)
    assert local["counts"] == {"done": 6, "reused": 0, "failed": 0, "skipped": 0}  # 2 trainings, 4 evaluations
    assert [j["kind"] for j in local["jobs"]] == ["train"] * 2 + ["eval"] * 4
    assert read_json(tmp_path / "local" / "summary.json", "sweep") == local
    remote = sweep.run_sweep(_spec(tmp_path, "ray"), backend="ray", jobs=2, progress=None)
    assert remote["backend"] == "ray" and remote["counts"]["done"] == 6
    assert _results(remote) == _results(local)
    assert _episodes(remote) == _episodes(local)  # episode by episode
    (tmp_path / "local" / "evals" / sorted(p.name for p in (tmp_path / "local" / "evals").iterdir())[0]).unlink()
    again = sweep.run_sweep(_spec(tmp_path, "local"), backend="local", progress=None)
    assert again["counts"] == {"done": 1, "reused": 5, "failed": 0, "skipped": 0}  # only what was missing
    assert _results(again) == _results(local)
    before = (tmp_path / "local" / "summary.json").read_bytes()
    lines = []
    assert sweep.run_sweep(_spec(tmp_path, "local"), backend="local", progress=lines.append) == again
    assert (tmp_path / "local" / "summary.json").read_bytes() == before  # nothing to do: the record is kept
    assert lines == [f"sweep tiny: every job was finished; kept {tmp_path / 'local' / 'summary.json'}"]


def _eval_only(tmp_path, name="tiny"):
    """A sweep that evaluates a random-policy run folder and a folder that holds no run."""
    from rlcourse.training.train import random_run

    if not (tmp_path / "present").exists():
        random_run("FetchReach-v4", n_episodes=2, out_dir=str(tmp_path), run_id="present")
    (tmp_path / "absent").mkdir(exist_ok=True)
    return {"name": name, "out": str(tmp_path / "out"), "grid": {"run": ["present", "absent"]},
            "evaluate": {"run": str(tmp_path / "{run}"), "spec": "FetchReach-v4", "episodes": 2}}


def test_a_failing_job_is_one_line_and_the_sweep_goes_on(tmp_path):
    lines = []
    doc = sweep.run_sweep(_eval_only(tmp_path), jobs=2, progress=lines.append)
    by = {j["points"][0]["run"]: j for j in doc["jobs"]}
    assert by["present"]["status"] == "done" and by["present"]["n_episodes"] == 2
    assert by["absent"]["status"] == "failed" and "\n" not in by["absent"]["error"]
    assert "absent" in by["absent"]["error"]
    assert doc["counts"] == {"done": 1, "reused": 0, "failed": 1, "skipped": 0}
    assert [line.split()[0] for line in lines if line.endswith(by["absent"]["error"])] == ["eval_run-absent"]
    again = sweep.run_sweep(_eval_only(tmp_path), progress=None)  # the finished job is reused, the failed retried
    assert again["counts"] == {"done": 0, "reused": 1, "failed": 1, "skipped": 0}


def test_an_out_folder_of_another_sweep_is_refused(tmp_path):
    sweep.run_sweep(_eval_only(tmp_path, "first"), progress=None)
    with pytest.raises(RLCourseError, match="belongs to sweep 'first'"):
        sweep.run_sweep(_eval_only(tmp_path, "second"), progress=None)


def test_backend_arguments_are_checked(tmp_path):
    with pytest.raises(RLCourseError, match="unknown backend"):
        sweep.run_sweep(_eval_only(tmp_path), backend="slurm", progress=None)
    with pytest.raises(RLCourseError, match="--address"):
        sweep.run_sweep(_eval_only(tmp_path), address="10.0.0.1:6379", progress=None)
    with pytest.raises(RLCourseError, match="jobs"):
        sweep.run_sweep(_eval_only(tmp_path), jobs=0, progress=None)


def test_the_example_sweep_plans_nine_evaluations_of_committed_runs():
    from rlcourse.core.paths import project_root

    header, trains, evals = sweep.plan(sweep.load_spec(project_root() / "sweeps" / "reach_obs_noise.yaml"))
    assert header["name"] == "reach_obs_noise" and trains == [] and len(evals) == 9
    assert all((project_root() / "checkpoints" / f"fastsac_her_FetchReach-v4_seed{s}").is_dir() for s in (0, 1, 2))
    assert evals[1].payload["spec"]["wrappers"] == [{"name": "obs_noise",
                                                     "params": {"keys": ["observation"], "sigma": 0.01}}]


def test_an_out_that_is_not_a_folder_is_a_one_line_error(tmp_path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(RLCourseError, match="is not a folder"):
        sweep.run_sweep({**_eval_only(tmp_path), "out": str(tmp_path / "taken")}, progress=None)
    with pytest.raises(RLCourseError, match="must be a folder path"):
        sweep.run_sweep({**_eval_only(tmp_path), "out": ""}, progress=None)


def test_summary_paths_are_relative_inside_the_project_so_a_committed_summary_travels(tmp_path):
    from rlcourse.core.paths import project_root

    inside = project_root() / "checkpoints" / "sweeps" / "x" / "evals" / "a.json"
    assert sweep._shown(inside) == "checkpoints/sweeps/x/evals/a.json"
    assert sweep.job_path({"path": sweep._shown(inside)}) == inside
    assert sweep._shown(tmp_path / "a.json") == str((tmp_path / "a.json").resolve())  # outside: absolute
    assert sweep.job_path({"path": str(tmp_path / "a.json")}) == tmp_path / "a.json"



SPECS = sorted((Path(__file__).resolve().parents[1] / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_committed_sweep_spec_plans_and_names_itself(path):
    """A committed spec is a chapter's reference experiment: it must plan (every wrapper, config and placeholder
    valid), its name must be its file's, and each evaluation must find its run (committed, or trained by the
    sweep itself)."""
    from rlcourse.core.paths import project_root

    header, trains, evals = sweep.plan(sweep.load_spec(path))
    assert header["name"] == path.stem and (evals or trains)
    trained = {str(Path(t.payload.out_dir) / t.payload.run_id) for t in trains}
    for e in evals:
        run = str(e.payload["run"])
        assert run in trained or (project_root() / run).is_dir(), run
