"""The speed benchmark's bookkeeping (the benchmark itself runs for an hour and is not part of make test)."""

import importlib.util
import json

import pytest

from rlcourse.core.paths import project_root
from rlcourse.contract.runs import Run, read_json


def _script(name):
    """A benchmark script, imported as a module (its main() is not run)."""
    spec = importlib.util.spec_from_file_location(name, project_root() / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def bench():
    return _script("her_push_speed")


def test_summary_reads_thresholds_from_the_curve(bench):
    curve = {"columns": ["timesteps", "wall_s", "eval_success_rate"],
             "rows": [[10_000, 60.0, 0.1], [20_000, 120.0, 0.6], [30_000, 180.0, 0.95]]}
    run = Run(path=None, meta={"run_id": "x", "steps_done": 30_000, "wall_clock_s": 185.0, "steps_per_s": 162.0},
              eval={"aggregate": {"success_rate": 0.97, "success_ci95": [0.92, 0.99]}}, curve=curve)
    row = bench.summarize_run("fast", run)
    assert row["steps_to_0.5"] == 20_000 and row["minutes_to_0.5"] == 2.0
    assert row["steps_to_0.9"] == 30_000 and row["minutes_to_0.9"] == 3.0
    assert bench.ratio(6.0, 3.0) == 2.0 and bench.ratio(None, 3.0) is None and bench.ratio(1.0, 0) is None


def test_costs_only_writes_a_valid_document(bench, tmp_path):
    assert bench.main(["--costs-only", "--fill-steps", "800", "--repeats", "3", "--out", str(tmp_path)]) == 0
    doc = read_json(tmp_path / "her_push_speed_costs.json", "benchmark")
    assert [c["recipe"] for c in doc["costs"]] == ["origin", "fast"]
    by = {c["recipe"]: c for c in doc["costs"]}
    assert by["origin"]["updates_per_env_step"] == 1 / 8 and by["fast"]["updates_per_env_step"] == 0.5
    assert doc["recipes"]["fast"]["total_steps"] == 300_000
    json.dumps(doc)


@pytest.fixture(scope="module")
def speed():
    return _script("offpolicy_speed")


def test_speed_arms_are_valid_fastsac_settings(speed):
    from rlcourse.algos.fastsac import config_from
    from rlcourse.training.recipes import recipe

    assert list(speed.ARMS)[0] == "fast" and speed.ARMS["fast"] == {}
    for task in speed.TASKS:
        for arm in speed.ARMS:
            config_from({**recipe("fast")["hyperparameters"], **speed.changes(arm, task)})
    for task, name in (("push", "push_demos"), ("pick", "pick_demos")):  # each task's own demonstrations
        assert {**recipe("fast")["hyperparameters"], **speed.changes("demos", task)} == recipe(name)["hyperparameters"]
    assert speed.changes("demos", "push")["demonstrations"] != speed.changes("demos", "pick")["demonstrations"]
    assert speed.changes("worker", "push") == {"env_worker": True}


def test_speed_medians_count_misses_and_ratios_favour_the_faster(speed):
    rows = [{"recipe": arm, "seed": s, "steps_per_s": sps, "steps_to_0.5": 1, "minutes_to_0.5": 1,
             "steps_to_0.9": st, "minutes_to_0.9": mi}
            for arm, sps, runs in (("fast", 200.0, [(100, 10.0), (150, 12.0), (200, 14.0)]),
                                   ("worker", 300.0, [(100, 6.0), (160, 8.0), (None, None)]),
                                   ("batch512", 150.0, [(None, None), (None, None), (90, 5.0)]))
            for s, (st, mi) in enumerate(runs)]
    arms = speed.summarize_arms(rows, ["fast", "worker", "batch512"])
    assert arms["fast"]["minutes_to_0.9_median"] == 12.0
    assert arms["worker"]["minutes_to_0.9_median"] == 8.0  # the miss counts as infinitely slow, not as absent
    assert arms["worker"]["ratios"] == {"minutes_to_0.9_fast_over_arm": 1.5, "steps_to_0.9_fast_over_arm": 0.9375,
                                        "steps_per_s_arm_over_fast": 1.5}
    assert arms["batch512"]["minutes_to_0.9_median"] is None and arms["batch512"]["reached_0.9"] == 1
    assert arms["batch512"]["ratios"]["minutes_to_0.9_fast_over_arm"] is None
    flat = speed.flat_ratios(arms)  # what the benchmark schema's "ratios" accepts: names to numbers or null
    assert flat["worker: minutes_to_0.9_fast_over_arm"] == 1.5 and len(flat) == 9
    assert all(v is None or isinstance(v, float) for v in flat.values())


@pytest.mark.parametrize("argv, message", [(["--arms", "fast,warp"], "unknown arm 'warp'"),
                                           (["--seeds", "0,x"], "non-negative integers"),
                                           (["--seeds", "1,1"], "distinct"), (["--stop-at", "1.5"], "--stop-at"),
                                           (["--tag", "Big-Tag"], "--tag must be"),
                                           (["--run-suffix", "a/b"], "--run-suffix must be")])
def test_speed_bad_arguments_are_one_line_errors(speed, argv, message):
    from rlcourse.core.errors import RLCourseError

    with pytest.raises(RLCourseError, match=message):
        speed.main(argv)


def test_speed_reuses_a_finished_run_without_its_model_and_refuses_one_with_other_settings(speed, tmp_path,
                                                                                           monkeypatch):
    from rlcourse.core.errors import RLCourseError

    monkeypatch.setattr(speed, "CALIBRATION_STEPS", 50)  # a short calibration; its score is only compared here
    monkeypatch.setattr(speed, "CALIBRATION_TOLERANCE", 10.0)  # a machine this noisy in the tests stays "the same"

    argv = ["--task", "push", "--arms", "fast", "--seeds", "0", "--steps", "400", "--eval-every", "200",
            "--eval-episodes", "1", "--out", str(tmp_path)]
    assert speed.main(argv) == 0
    from rlcourse.core.provenance import hardware

    folder = tmp_path / "offpolicy_speed" / speed.host_tag(hardware()) / "offpolicy_speed_fast_FetchPush-v4_seed0"
    (folder / "model.pt").unlink()  # what a fresh checkout of the committed records holds
    stamp = (folder / "meta.json").stat().st_mtime_ns
    assert speed.main(argv) == 0  # summarised again from the records, nothing retrained
    assert (folder / "meta.json").stat().st_mtime_ns == stamp and not (folder / "model.pt").exists()
    doc = read_json(tmp_path / "offpolicy_speed_push.json", "benchmark")
    assert [r["run_id"] for r in doc["results"]] == [folder.name]
    before = (tmp_path / "offpolicy_speed_push.json").read_bytes()
    with pytest.raises(RLCourseError, match="would drop \\(fast seed 0\\).*--tag"):  # a summary is never shrunk
        speed.main([*argv[:5], "1", *argv[6:]])
    assert (tmp_path / "offpolicy_speed_push.json").read_bytes() == before
    assert speed.main([*argv, "--tag", "again"]) == 0  # a second summary of the same (reused) run
    again = read_json(tmp_path / "offpolicy_speed_push_again.json", "benchmark")
    assert again["name"] == "offpolicy_speed_push_again" and again["results"] == doc["results"]
    assert (folder / "meta.json").stat().st_mtime_ns == stamp
    assert speed.main([*argv, "--tag", "apart", "--run-suffix", "apart"]) == 0  # a new run beside the old one
    apart = read_json(tmp_path / "offpolicy_speed_push_apart.json", "benchmark")
    assert [r["run_id"] for r in apart["results"]] == [folder.name + "_apart"] and (folder / "meta.json").is_file()
    assert doc["results"][0]["calibration"] > 0 and doc["calibration"]["score"] > 0
    calibration = json.loads((folder / "calibration.json").read_text())
    (folder / "calibration.json").write_text(json.dumps({**calibration, "score": 1e9}))  # a much faster machine
    with pytest.raises(RLCourseError, match="another speed"):
        speed.main([*argv, "--tag", "again"])
    (folder / "calibration.json").unlink()
    with pytest.raises(RLCourseError, match="another speed.*missing"):
        speed.main([*argv, "--tag", "again"])
    (folder / "calibration.json").write_text(json.dumps(calibration))
    with pytest.raises(RLCourseError, match="other settings.*eval_every"):
        speed.main([a if a != "200" else "100" for a in argv])
    meta = json.loads((folder / "meta.json").read_text())
    meta["hardware"]["cpu"] = "Another CPU"
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(RLCourseError, match="another host"):
        speed.main(argv)


@pytest.fixture(scope="module")
def render():
    return _script("render_speed")


def test_render_benchmark_writes_every_path_and_ratio(render, tmp_path):
    assert render.main(["--sizes", "24", "--frames", "2", "--repeats", "1", "--steps", "5", "--out", str(tmp_path)]) == 0
    doc = read_json(tmp_path / "render_speed.json", "benchmark")
    frames = {r["recipe"]: r for r in doc["results"] if r["kind"] == "frame"}
    assert list(frames) == list(render.PATHS) and all(r["ms_per_frame"] > 0 for r in frames.values())
    assert set(doc["ratios"]) == {f"{p}@24: gymnasium_over_path" for p in ("camera", "fast", "lean")} | {
        "steps@24: state_over_pixels"}
    assert all(isinstance(v, str) and v for v in doc["gl_renderer"].values())
    assert (tmp_path / "render_speed.png").stat().st_size > 0


@pytest.mark.parametrize("argv", [["--sizes", "8"], ["--sizes", "64,64"], ["--sizes", "big"], ["--frames", "0"]])
def test_render_benchmark_refuses_bad_settings(render, argv, tmp_path):
    from rlcourse.core.errors import RLCourseError

    with pytest.raises(RLCourseError):
        render.main([*argv, "--out", str(tmp_path)])
    assert not any(tmp_path.iterdir())
