"""The speed benchmark's bookkeeping (the benchmark itself runs for an hour and is not part of make test)."""

import importlib.util
import json

import pytest

from rlcourse.core.paths import project_root
from rlcourse.contract.runs import Run, read_json


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("her_push_speed", project_root() / "benchmarks" / "her_push_speed.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
