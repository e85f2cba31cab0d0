import shutil
from pathlib import Path

import numpy as np
import pytest

from rlcourse.analysis import report
from rlcourse.contract.evaluate import eval_report
from rlcourse.contract.runs import Run, validate
from rlcourse.core import stats
from rlcourse.core.errors import RLCourseError

COMPARISONS = Path(__file__).resolve().parent.parent / "checkpoints" / "comparisons"


def fake_run(run_id, successes=100, n=100, env_id="FetchPush-v4", returns=None, distance=0.05, seed=0,
             curve_rows=((0, 0.0), (10, 1.0)), wall=10.0, steps_done=1000, length=50):
    """A run with a schema-valid eval.json of ``n`` episode records, the first ``successes`` of them successful."""
    episodes = []
    for i in range(n):
        ok = i < successes
        ret = returns[i] if returns is not None else (-5.0 if ok else -float(length))
        episodes.append({"seed": 1000 + i, "return": float(ret), "length": length, "success": ok,
                         "time_to_success": 5 if ok else None, "final_distance": distance, "smoothness": 0.01,
                         "peak_action": 0.9, "path_length": 0.3, "action_energy": 5.0})
    ev = eval_report(run_id, env_id, episodes, policy="fake", deterministic=True)
    meta = {"run_id": run_id, "env_id": env_id, "seed": seed, "wall_clock_s": wall, "steps_per_s": 100.0,
            "steps_done": steps_done}
    curve = {"columns": ["timesteps", "success_rate"], "rows": [list(r) for r in curve_rows]}
    return Run(path=None, meta=meta, eval=ev, curve=curve)


def curve_run(run_id, curve_rows):
    return fake_run(run_id, curve_rows=curve_rows)


def returns_with_mean(mean, n=100):
    """``n`` integer (sparse) returns whose mean is ``mean`` (to two decimals)."""
    lo = np.floor(mean)
    k = round((lo + 1 - mean) * n)  # episodes at lo; the rest at lo + 1
    return [lo] * k + [lo + 1] * (n - k)


def summary(groups, metrics):
    return {(r["group"], r["metric"]): r for r in report.seed_summary(groups, metrics)}


def cells(groups, metrics):
    by_label = {row["metric"]: row for row in report.comparison_table(groups, metrics)}
    return {key: by_label[report.METRIC_LABELS[key]] for key in metrics}


# --- the four outputs quoted in the issue, reproduced from synthetic runs --------------------------------------

def test_success_of_100_percent_on_every_seed_is_not_1_1_1():
    """Was "1 [1, 1]" (a zero-width t interval over three per-seed rates of 1.0)."""
    runs = [fake_run(f"r{s}", 100, seed=s, env_id="FetchReach-v4") for s in range(3)]
    assert cells({"A": runs}, ["success_rate"])["success_rate"]["A"] == "1 [0.987, 1] (300/300 episodes; every seed 1)"
    row = summary({"A": runs}, ["success_rate"])[("A", "success_rate")]
    assert (row["successes"], row["n_episodes"], row["interval"]) == (300, 300, "wilson_pooled")
    assert row["ci95_lo"] == pytest.approx(0.987357, abs=1e-6) and row["ci95_hi"] == 1.0


def test_success_of_9_percent_on_every_seed_is_not_a_point():
    """Was "0.09 [0.09, 0.09]"."""
    runs = [fake_run(f"r{s}", 9, seed=s) for s in range(3)]
    assert cells({"A": runs}, ["success_rate"])["success_rate"]["A"] == \
        "0.09 [0.0626, 0.128] (27/300 episodes; every seed 0.09)"


def test_distance_with_two_seeds_has_no_interval_and_never_a_negative_one():
    """Was "0.0969 [-0.441, 0.635]": a t interval from two seeds, below the smallest possible distance."""
    d = [0.05455546437176301, 0.1391968699538394]
    runs = [fake_run(f"r{s}", 85, distance=d[s], seed=s) for s in range(2)]
    assert cells({"k = 2": runs}, ["final_distance_mean"])["final_distance_mean"]["k = 2"] == \
        "0.0969 (CI n/a; 2 seeds: 0.0546 to 0.139)"
    row = summary({"k = 2": runs}, ["final_distance_mean"])[("k = 2", "final_distance_mean")]
    assert row["ci95_lo"] is None and row["ci95_hi"] is None and row["interval"] == "none"
    assert row["mean"] == pytest.approx(0.0968762, abs=1e-7) and row["per_seed"] == pytest.approx(d)
    # the old numbers, for the record: what a two-seed t interval would say, and that the range would clip it
    mean, lo, hi = stats.t_interval(d, min_n=2)
    assert (round(lo, 3), round(hi, 3)) == (-0.441, 0.635)
    assert stats.t_interval(d, min_n=2, bounds=stats.metric_bounds("final_distance_mean"))[1] == 0.0


def test_sparse_return_with_two_seeds_has_no_interval():
    """Was "-27.4 [-118, 63.3]": a two-seed t interval far outside the possible [-50, 0]."""
    runs = [fake_run(f"r{s}", 50, returns=returns_with_mean(m), seed=s) for s, m in enumerate([-20.3, -34.58])]
    assert [r.eval["aggregate"]["return_mean"] for r in runs] == pytest.approx([-20.3, -34.58])
    assert cells({"k = 2": runs}, ["return_mean"])["return_mean"]["k = 2"] == "-27.4 (CI n/a; 2 seeds: -34.6 to -20.3)"


def test_sparse_return_interval_stays_in_minus_T_to_0_with_three_seeds():
    runs = [fake_run(f"r{s}", 50, returns=returns_with_mean(m), seed=s) for s, m in enumerate([-2.0, -30.0, -49.0])]
    row = summary({"A": runs}, ["return_mean"])[("A", "return_mean")]
    assert (row["mean"], row["ci95_lo"], row["ci95_hi"], row["interval"]) == (-27.0, -50.0, 0.0, "t")
    assert cells({"A": runs}, ["return_mean"])["return_mean"]["A"] == "-27 [-50, 0]"
    dists = [fake_run(f"d{s}", 50, distance=x, seed=s) for s, x in enumerate([0.01, 0.3, 0.02])]
    row = summary({"A": dists}, ["final_distance_mean"])[("A", "final_distance_mean")]
    assert row["ci95_lo"] == 0.0 and row["ci95_hi"] > row["mean"]


# --- the rest of the statistics convention -------------------------------------------------------------------

def test_success_is_pooled_over_episodes_with_the_per_seed_range():
    runs = [fake_run("a", 85, seed=0), fake_run("b", 43, seed=1), fake_run("c", 30, n=50, seed=2)]
    row = summary({"A": runs}, ["success_rate"])[("A", "success_rate")]
    assert (row["successes"], row["n_episodes"]) == (158, 250) and row["mean"] == 158 / 250  # not the mean of rates
    assert (row["ci95_lo"], row["ci95_hi"]) == stats.wilson_interval(158, 250)
    assert row["per_seed"] == [0.85, 0.43, 0.6] and row["n_seeds"] == 3
    assert cells({"A": runs}, ["success_rate"])["success_rate"]["A"] == \
        "0.632 [0.571, 0.689] (158/250 episodes; seeds 0.43 to 0.85)"
    one = cells({"one": [fake_run("x", 3, n=3)]}, ["success_rate"])["success_rate"]["one"]
    assert one == "1 [0.439, 1] (3/3 episodes; 1 seed)"


def test_continuous_metrics_need_three_seeds_and_equal_seeds_are_not_a_point_interval():
    three = [fake_run(f"r{s}", 90, seed=s, wall=10.0 + s, steps_done=200_000) for s in range(3)]
    rows = summary({"A": three, "B": three[:1]}, ["wall_clock_s", "steps_done"])
    wall = rows[("A", "wall_clock_s")]
    assert wall["interval"] == "t" and wall["mean"] == 11.0 and wall["ci95_lo"] < 11.0 < wall["ci95_hi"]
    assert rows[("A", "steps_done")]["ci95_lo"] == rows[("A", "steps_done")]["ci95_hi"] == 200_000
    assert rows[("B", "wall_clock_s")]["ci95_lo"] is None
    table = cells({"A": three, "B": three[:1]}, ["wall_clock_s", "steps_done"])
    assert table["steps_done"] == {"metric": "environment steps", "A": "200,000 (3 seeds, all equal)", "B": "200,000 (1 seed)"}
    assert table["wall_clock_s"]["A"] == "11 [8.52, 13.5]" and table["wall_clock_s"]["B"] == "10 (1 seed)"


def test_no_table_cell_is_a_point_interval_or_leaves_the_possible_range():
    rng = np.random.default_rng(0)
    groups = {}
    for g in range(6):
        n_seeds = 1 + g % 4
        groups[f"g{g}"] = [fake_run(f"g{g}s{s}", int(rng.integers(0, 101)), seed=s, distance=float(rng.uniform(0, .2)),
                                    returns=list(-rng.integers(0, 51, size=100)), wall=float(rng.uniform(1, 9)))
                           for s in range(n_seeds)]
    groups["same"] = [fake_run(f"same{s}", 100, seed=s, env_id="FetchReach-v4") for s in range(3)]
    metrics = ["success_rate", "return_mean", "final_distance_mean", "time_to_success_mean", "wall_clock_s",
               "steps_done"]
    for row in report.seed_summary(groups, metrics):
        if row["ci95_lo"] is None:
            assert row["n_seeds"] < 3 and row["metric"] != "success_rate"
            continue
        b = stats.metric_bounds(report.METRICS[row["metric"]][2], env_id="FetchPush-v4")
        assert row["ci95_lo"] in b and row["ci95_hi"] in b and row["ci95_lo"] <= row["mean"] <= row["ci95_hi"]
        if row["metric"] == "success_rate":
            assert row["ci95_hi"] > row["ci95_lo"]
    text = report.markdown_table(report.comparison_table(groups, metrics))
    for cell in text.split("|"):
        if "[" in cell:
            lo, hi = cell[cell.index("[") + 1:cell.index("]")].split(", ")
            assert lo != hi, cell


def test_a_value_outside_its_possible_range_is_an_error():
    bad = [fake_run(f"r{s}", 50, seed=s) for s in range(3)]
    bad[1].eval["aggregate"]["final_distance_mean"] = -0.01
    with pytest.raises(RLCourseError, match="outside its possible range"):
        report.seed_summary({"A": bad}, ["final_distance_mean"])


def test_success_counts_come_from_the_episode_records():
    run = fake_run("r", 7, n=20)
    assert report.success_counts(run) == (7, 20)
    no_episodes = Run(path=None, meta={"run_id": "x"}, eval={"n_episodes": 10, "aggregate": {"success_rate": 0.3}},
                      curve=None)
    assert report.success_counts(no_episodes) == (3, 10)
    with pytest.raises(RLCourseError, match="no evaluation episodes"):
        report.success_counts(Run(path=None, meta={"run_id": "y"}, eval=None, curve=None))


def test_fake_eval_documents_are_schema_valid():
    validate(fake_run("r", 3, returns=returns_with_mean(-20.3)).eval, "eval")


# --- curves ---------------------------------------------------------------------------------------------------

def test_curve_band_interpolates_on_the_common_range_and_clips_rates():
    a = curve_run("a", [[0, 0.0], [100, 1.0]])
    b = curve_run("b", [[0, 0.0], [50, 0.5], [80, 0.8], [120, 1.2]])  # the same line, sampled elsewhere
    c = curve_run("c", [[0, 0.1], [100, 1.0]])
    band = report.curve_band([a, b, c], n_points=5)
    assert band["x"][0] == 0 and band["x"][-1] == 100  # only where all runs have data
    np.testing.assert_allclose(band["per_run"][0], band["x"] / 100, atol=1e-12)
    assert band["n_runs"] == 3 and np.all(band["lo"] >= 0) and np.all(band["hi"] <= 1)
    assert band["hi"][-1] == 1.0  # would be above 1 unclipped


def test_curve_band_has_no_band_below_three_runs():
    band = report.curve_band([curve_run("a", [[0, 0.0], [100, 1.0]]), curve_run("b", [[0, 0.2], [100, 0.8]])])
    assert band["lo"] is None and band["hi"] is None and band["n_runs"] == 2
    np.testing.assert_allclose(band["mean"], band["per_run"].mean(axis=0))


def test_curve_band_skips_missing_values_and_rejects_empty_curves():
    a = curve_run("a", [[0, None], [10, 0.2], [20, 0.4]])
    band = report.curve_band([a], n_points=3)
    assert band["x"][0] == 10 and band["lo"] is None
    with pytest.raises(RLCourseError, match="fewer than two points"):
        report.curve_band([curve_run("e", [[0, None]])])
    with pytest.raises(RLCourseError, match="no curve column"):
        report.curve_band([a], y="nope")


def test_plot_and_save_only_in_full_profile(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    runs = [curve_run(f"r{i}", [[0, 0.0], [10, 0.5 + 0.1 * i], [20, 1.0]]) for i in range(3)]
    ax = report.plot_curves({"A": runs})
    assert len(ax.lines) == 4 and len(ax.collections) == 1  # three seeds, the mean and the band
    assert len(report.plot_curves({"A": runs}, band=False).collections) == 0
    assert len(report.plot_curves({"two seeds": runs[:2]}).collections) == 0  # no band below three seeds
    stopped = [curve_run("s0", [[0, 0.0], [10, 0.9]]), curve_run("s1", [[0, 0.0], [10, 0.5], [20, 0.95]])]
    ax = report.plot_curves({"stopped at 0.9": stopped}, mean=False)
    assert [line.get_xdata()[-1] for line in ax.lines] == [10, 20]  # each run to its own last point, no mean
    assert len(ax.collections) == 0 and len(ax.get_legend().get_texts()) == 1
    monkeypatch.setenv("RLCOURSE_ROOT", str(tmp_path))
    assert report.save_figure(ax.figure, "x.png", profile="quick") is None
    path = report.save_figure(ax.figure, "x.png", profile="full")
    assert path == tmp_path / "figures" / "x.png" and path.stat().st_size > 1000


def test_first_reaching_reads_the_first_evaluation_at_the_threshold():
    curve = {"columns": ["timesteps", "wall_s", "eval_success_rate"],
             "rows": [[1000, 5.0, None], [2000, 10.0, 0.4], [3000, 15.0, 0.95], [4000, 20.0, 0.85], [5000, 25.0, 1.0]]}
    run = Run(path=None, meta={"run_id": "r"}, eval=None, curve=curve)
    assert report.first_reaching(run, 0.9) == {"timesteps": 3000.0, "wall_s": 15.0}
    assert report.first_reaching(run, 0.4) == {"timesteps": 2000.0, "wall_s": 10.0}
    assert report.first_reaching(run, 1.01) is None
    with pytest.raises(RLCourseError, match="no curve column"):
        report.first_reaching(run, 0.5, y="nope")


# --- run folders, comparison documents, tables ---------------------------------------------------------------

def test_load_group_and_tables(tiny_run):
    runs = report.load_group("ppo_*", root=tiny_run.path.parent)
    assert [r.run_id for r in runs] == [tiny_run.run_id]
    with pytest.raises(RLCourseError, match="no runs matching"):
        report.load_group("sac_*", root=tiny_run.path.parent)
    table = report.comparison_table({"PPO": runs}, metrics=["success_rate", "steps_per_s"])
    assert [r["metric"] for r in table] == ["success rate", "steps per second"] and "PPO" in table[0]
    assert table[0]["PPO"].endswith("/3 episodes; 1 seed)") and table[1]["PPO"].endswith("(1 seed)")
    text = report.markdown_table(table)
    assert text.splitlines()[0] == "| metric | PPO |"


def test_load_group_verifies_the_model_file(tiny_run, tmp_path):
    root = tmp_path / "checkpoints"
    folder = shutil.copytree(tiny_run.path, root / tiny_run.path.name)
    assert [r.run_id for r in report.load_group("ppo_*", root=root)] == [tiny_run.run_id]
    model = folder / tiny_run.meta["model"]["file"]
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    model.write_bytes(bytes(data))
    with pytest.raises(RLCourseError, match="corrupt") as exc:
        report.load_group("ppo_*", root=root)
    assert "\n" not in str(exc.value) and model.name in str(exc.value)
    model.unlink()
    with pytest.raises(RLCourseError, match="missing"):
        report.load_group("ppo_*", root=root)


def test_write_comparison_is_schema_checked_and_reads_back(tmp_path):
    from rlcourse.contract.runs import read_json

    runs = [fake_run(f"r{i}", k, seed=i) for i, k in enumerate([100, 80])]
    metrics = ["success_rate", "return_mean", "final_distance_mean"]
    doc = report.write_comparison(tmp_path / "c.json", {"A": runs}, "test", metrics=metrics)
    back = read_json(tmp_path / "c.json", "comparison")
    assert back["groups"] == {"A": ["r0", "r1"]} and doc["rows"] == back["rows"]
    rows = {r["metric"]: r for r in back["rows"]}
    assert rows["success_rate"]["mean"] == pytest.approx(0.9) and rows["success_rate"]["successes"] == 180
    assert rows["return_mean"]["ci95_lo"] is None and rows["return_mean"]["interval"] == "none"
    assert rows["return_mean"]["per_seed"] == pytest.approx([-5.0, -14.0])


def test_the_committed_comparisons_follow_the_statistics_rules():
    """Every committed comparison validates, pools success (Wilson) and shows no interval below three seeds; the
    folder's other documents (the reproducibility check) validate as their own kind."""
    from rlcourse.contract.runs import read_json

    files = sorted(COMPARISONS.glob("*.json"))
    kinds = {"rlcourse.comparison/1": "comparison", "rlcourse.repro/1": "repro"}
    assert files, "no committed comparison documents"
    for f in files:
        kind = kinds[read_json(f)["schema"]]
        doc = read_json(f, kind)
        if kind == "repro":
            assert doc["equal"] and doc["max_abs_diff"] <= doc["atol"], f.name
            continue
        for row in doc["rows"]:
            if row["metric"] == "success_rate":
                assert row["interval"] == "wilson_pooled" and row["ci95_lo"] < row["ci95_hi"], (f.name, row)
            elif row["n_seeds"] < 3:
                assert row["ci95_lo"] is None and row["interval"] == "none", (f.name, row)


def test_markdown_table_formats_and_escapes():
    text = report.markdown_table([{"a": 1, "b": 0.123456, "c": None}, {"a": 2, "b": [1.0, 2.0], "c": "x"}])
    lines = text.splitlines()
    assert lines[0] == "| a | b | c |" and lines[2] == "| 1 | 0.1235 | — |" and lines[3] == "| 2 | [1, 2] | x |"
    assert report.markdown_table([{"max |e|": "a|b"}]).splitlines()[::2] == ["| max \\|e\\| |", "| a\\|b |"]
    assert report.markdown_table([]) == ""


def test_format_number_writes_large_numbers_out():
    assert report.format_number is stats.format_number  # moved to rlcourse.core.stats, same function
    assert report.format_number(200_000.0) == "200,000" and report.format_number(1049.6) == "1,050"
    assert report.format_number(0.98765) == "0.988" and report.format_number(-12.34) == "-12.3"
    assert report.format_number(float("nan")) == "nan" and report.format_number(999.0) == "999"
    table = report.markdown_table([{"steps": 2_000_000, "seed": 3, "ok": True, "rate": 0.5}], digits=3)
    assert table.splitlines()[-1] == "| 2,000,000 | 3 | True | 0.5 |"


def test_tb_scalars_reads_what_sb3_wrote(tmp_path, monkeypatch):
    from rlcourse.training.train import TrainConfig, train

    monkeypatch.setenv("RLCOURSE_ROOT", str(tmp_path))  # TensorBoard logs go to <root>/runs/tb

    run = train(TrainConfig(algo="ppo", env_id="FetchReachDense-v4", total_steps=256, n_envs=2,
                            hyperparameters={"n_steps": 64, "batch_size": 64, "n_epochs": 1},
                            out_dir=str(tmp_path / "runs"), final_eval_episodes=1))
    tb = report.tb_scalars(run.run_id)
    steps, values = tb["train/approx_kl"]
    assert len(steps) == len(values) >= 1 and np.all(np.isfinite(values))
    assert report.has_tb_log(run.run_id) and not report.has_tb_log("nope", log_dir=tmp_path)
    with pytest.raises(RLCourseError, match="no TensorBoard log"):
        report.tb_scalars("nope", log_dir=tmp_path)


def test_step_axis_labels_are_short_and_exact():
    labels = [report.steps_label(v) for v in (0, 950, 2500, 200_000, 1_500_000, 20_000_000)]
    assert labels == ["0", "950", "2.5k", "200k", "1.5M", "20M"]


def test_success_drop_is_clean_minus_stressed_with_newcombes_interval():
    from rlcourse.core.stats import difference_interval

    clean = {"success_rate": 56 / 70, "n_episodes": 70}
    stressed = {"success_rate": 48 / 80, "n_episodes": 80}
    d = report.success_drop(clean, stressed)
    assert d["drop"] == 56 / 70 - 48 / 80 and d["drop_ci95"] == list(difference_interval(56, 70, 48, 80))
    assert report.success_drop(stressed, stressed)["drop"] == 0.0
    lo, hi = report.success_drop({"success_rate": 1.0, "n_episodes": 50}, {"success_rate": 0.0, "n_episodes": 50})["drop_ci95"]
    assert 0 < lo < hi <= 1.0  # never outside the possible range [-1, 1]


def test_pooled_strata_pools_counts_per_stratum_and_feeds_success_drop():
    doc = lambda k, n, ka, na: {"n_episodes": n, "aggregate": {"success_rate": k / n},  # as eval.json states them
                                "strata": {"air": {"success_rate": ka / na, "n_episodes": na},
                                           "table": {"success_rate": (k - ka) / (n - na), "n_episodes": n - na}}}
    pooled = report.pooled_strata([doc(90, 100, 40, 50), doc(80, 100, 30, 45)])
    assert (pooled["all"]["successes"], pooled["all"]["n_episodes"]) == (170, 200)
    assert (pooled["air"]["successes"], pooled["air"]["n_episodes"]) == (70, 95)
    assert (pooled["table"]["successes"], pooled["table"]["n_episodes"]) == (100, 105)
    assert pooled["air"]["success_rate"] == 70 / 95 and pooled["air"]["per_seed"] == [0.8, 30 / 45]
    worse = report.pooled_strata([doc(50, 100, 5, 50)])
    assert report.success_drop(pooled["air"], worse["air"])["drop"] == 70 / 95 - 5 / 50
    with pytest.raises(RLCourseError):
        report.pooled_strata([])


def test_ratio_verdict_reads_the_interval_not_the_point():
    assert report.ratio_verdict((1.3, 1.03, 1.63)) == "faster"
    assert report.ratio_verdict((0.7, 0.5, 0.9)) == "slower"
    assert report.ratio_verdict((1.75, 0.98, 3.12)) == "not distinguishable from today's recipe"
    assert report.ratio_verdict((2.0, 1.0, 4.0), "higher", "lower", "same") == "same"  # 1 inside: no verdict
    for bad in ((1.0, 2.0, 1.5), (1.0, float("nan"), 2.0), (1.0, -1.0, 2.0)):
        with pytest.raises(RLCourseError):
            report.ratio_verdict(bad)
