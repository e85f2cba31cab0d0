import numpy as np
import pytest

from rlcourse.analysis import report
from rlcourse.core.errors import RLCourseError
from rlcourse.contract.runs import Run


def fake_run(run_id, success, curve_rows, wall=10.0):
    meta = {"run_id": run_id, "wall_clock_s": wall, "steps_per_s": 100.0, "steps_done": 1000}
    ev = {"aggregate": {"success_rate": success, "return_mean": -success, "final_distance_mean": 0.01}}
    curve = {"columns": ["timesteps", "success_rate"], "rows": curve_rows}
    return Run(path=None, meta=meta, eval=ev, curve=curve)


def test_seed_summary_means_and_clips_rates():
    runs = [fake_run(f"r{i}", s, [[0, 0.0], [10, 1.0]]) for i, s in enumerate([1.0, 0.9, 1.0])]
    rows = {r["metric"]: r for r in report.seed_summary({"A": runs})}
    s = rows["success_rate"]
    assert s["mean"] == pytest.approx(29 / 30) and s["n_seeds"] == 3 and s["ci95_hi"] == 1.0
    assert s["per_seed"] == [1.0, 0.9, 1.0]
    assert rows["wall_clock_s"]["mean"] == 10.0 and rows["wall_clock_s"]["ci95_lo"] == 10.0


def test_curve_band_interpolates_on_the_common_range():
    a = fake_run("a", 1, [[0, 0.0], [100, 1.0]])
    b = fake_run("b", 1, [[0, 0.0], [50, 0.5], [80, 0.8], [120, 1.2]])  # the same line, sampled elsewhere
    band = report.curve_band([a, b], n_points=5)
    assert band["x"][0] == 0 and band["x"][-1] == 100  # only where both runs have data
    np.testing.assert_allclose(band["mean"], band["x"] / 100, atol=1e-12)
    assert np.all(band["lo"] >= 0) and np.all(band["hi"] <= 1)


def test_curve_band_skips_missing_values_and_rejects_empty_curves():
    a = fake_run("a", 1, [[0, None], [10, 0.2], [20, 0.4]])
    band = report.curve_band([a], n_points=3)
    assert band["x"][0] == 10 and np.all(band["lo"] == band["mean"])
    with pytest.raises(RLCourseError, match="fewer than two points"):
        report.curve_band([fake_run("e", 1, [[0, None]])])


def test_load_group_and_tables(tiny_run):
    runs = report.load_group("ppo_*", root=tiny_run.path.parent)
    assert [r.run_id for r in runs] == [tiny_run.run_id]
    with pytest.raises(RLCourseError, match="no runs matching"):
        report.load_group("sac_*", root=tiny_run.path.parent)
    table = report.comparison_table({"PPO": runs}, metrics=["success_rate", "steps_per_s"])
    assert [r["metric"] for r in table] == ["success_rate", "steps_per_s"] and "PPO" in table[0]
    text = report.markdown_table(table)
    assert text.splitlines()[0] == "| metric | PPO |"


def test_plot_and_save_only_in_full_profile(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    runs = [fake_run(f"r{i}", 1, [[0, 0.0], [10, 0.5 + 0.1 * i], [20, 1.0]]) for i in range(3)]
    ax = report.plot_curves({"A": runs})
    assert len(ax.lines) == 4 and len(ax.collections) == 1  # three seeds, the mean and the band
    assert len(report.plot_curves({"A": runs}, band=False).collections) == 0
    monkeypatch.setenv("RLCOURSE_ROOT", str(tmp_path))
    assert report.save_figure(ax.figure, "x.png", profile="quick") is None
    path = report.save_figure(ax.figure, "x.png", profile="full")
    assert path == tmp_path / "figures" / "x.png" and path.stat().st_size > 1000


def test_tb_scalars_reads_what_sb3_wrote(tmp_path, monkeypatch):
    from rlcourse.training.train import TrainConfig, train

    monkeypatch.setenv("RLCOURSE_ROOT", str(tmp_path))  # TensorBoard logs go to <root>/runs/tb

    run = train(TrainConfig(algo="ppo", env_id="FetchReachDense-v4", total_steps=256, n_envs=2,
                            hyperparameters={"n_steps": 64, "batch_size": 64, "n_epochs": 1},
                            out_dir=str(tmp_path / "runs"), final_eval_episodes=1))
    tb = report.tb_scalars(run.run_id)
    steps, values = tb["train/approx_kl"]
    assert len(steps) == len(values) >= 1 and np.all(np.isfinite(values))
    with pytest.raises(RLCourseError, match="no TensorBoard log"):
        report.tb_scalars("nope", log_dir=tmp_path)


def test_markdown_table_formats_and_escapes():
    text = report.markdown_table([{"a": 1, "b": 0.123456, "c": None}, {"a": 2, "b": [1.0, 2.0], "c": "x"}])
    lines = text.splitlines()
    assert lines[0] == "| a | b | c |" and lines[2] == "| 1 | 0.1235 | — |" and lines[3] == "| 2 | [1, 2] | x |"
    assert report.markdown_table([{"max |e|": "a|b"}]).splitlines()[::2] == ["| max \\|e\\| |", "| a\\|b |"]
    assert report.markdown_table([]) == ""


def test_first_reaching_reads_the_first_evaluation_at_the_threshold():
    curve = {"columns": ["timesteps", "wall_s", "eval_success_rate"],
             "rows": [[1000, 5.0, None], [2000, 10.0, 0.4], [3000, 15.0, 0.95], [4000, 20.0, 0.85], [5000, 25.0, 1.0]]}
    run = Run(path=None, meta={"run_id": "r"}, eval=None, curve=curve)
    assert report.first_reaching(run, 0.9) == {"timesteps": 3000.0, "wall_s": 15.0}
    assert report.first_reaching(run, 0.4) == {"timesteps": 2000.0, "wall_s": 10.0}
    assert report.first_reaching(run, 1.01) is None
    with pytest.raises(RLCourseError, match="no curve column"):
        report.first_reaching(run, 0.5, y="nope")


def test_write_comparison_is_schema_checked_and_reads_back(tmp_path):
    from rlcourse.contract.runs import read_json

    runs = [fake_run(f"r{i}", s, [[0, 0.0], [10, 1.0]]) for i, s in enumerate([1.0, 0.8])]
    doc = report.write_comparison(tmp_path / "c.json", {"A": runs}, "test", metrics=["success_rate"])
    back = read_json(tmp_path / "c.json", "comparison")
    assert back["groups"] == {"A": ["r0", "r1"]} and back["rows"][0]["mean"] == pytest.approx(0.9)
    assert doc["rows"] == back["rows"]


def test_format_number_writes_large_numbers_out():
    assert report.format_number(200_000.0) == "200,000" and report.format_number(1049.6) == "1,050"
    assert report.format_number(0.98765) == "0.988" and report.format_number(-12.34) == "-12.3"
    assert report.format_number(float("nan")) == "nan" and report.format_number(999.0) == "999"
    table = report.markdown_table([{"steps": 2_000_000, "seed": 3, "ok": True, "rate": 0.5}], digits=3)
    assert table.splitlines()[-1] == "| 2,000,000 | 3 | True | 0.5 |"
