"""Throughput against n_envs (rlcourse.analysis.throughput): a tiny measurement, the schema, the bookkeeping."""

import copy

import pytest

from rlcourse.core.errors import RLCourseError
from rlcourse.contract.runs import validate
from rlcourse.analysis import throughput
from rlcourse.analysis.throughput import default_path, load_throughput, measure_throughput

TINY = {"learning_starts": 50, "batch_size": 32, "buffer_size": 2000, "policy_kwargs": {"net_arch": [32, 32]}}


def test_tiny_measurement_validates_and_counts_gradient_steps(tmp_path):
    out = tmp_path / "tp.json"
    doc = measure_throughput("sac", "FetchReachDense-v4", n_envs_list=(1, 2), steps=200, warmup_steps=100,
                             hyperparameters=copy.deepcopy(TINY), torch_threads=1, out=out, command="pytest")
    assert load_throughput(out) == doc
    validate(doc, "throughput")
    assert [r["n_envs"] for r in doc["results"]] == [1, 2]
    for r in doc["results"]:
        assert r["steps_per_s"] > 0 and r["steps"] >= 200 and r["wall_s"] > 0
        # train_freq=1, gradient_steps=1: one gradient step per vector step, i.e. per n_envs transitions
        assert r["gradient_steps"] == r["steps"] // r["n_envs"]
        assert r["transitions_per_gradient_step"] == r["n_envs"]
    assert doc["torch_threads"] == 1 and doc["hyperparameters"]["learning_starts"] == 50
    assert doc["hardware"]["cpu_count"] >= 1 and doc["versions"]["stable-baselines3"]


def test_bad_requests_are_one_line_errors():
    with pytest.raises(RLCourseError, match="off-policy"):
        measure_throughput("ppo", n_envs_list=(1,))
    with pytest.raises(RLCourseError, match="warmup_steps"):
        measure_throughput("sac", n_envs_list=(1,), warmup_steps=10, hyperparameters={"learning_starts": 100})
    with pytest.raises(RLCourseError, match="unknown hyperparameter"):
        measure_throughput("sac", n_envs_list=(1,), hyperparameters={"learning_rat": 1})


def test_a_broken_document_fails_the_schema():
    doc = {"schema": "rlcourse.throughput/1", "algo": "sac", "results": []}
    with pytest.raises(RLCourseError, match="throughput document fails the schema"):
        validate(doc, "throughput")


def test_default_paths():
    assert default_path("full").parts[-3:] == ("checkpoints", "throughput", "sac_FetchReachDense-v4.json")
    assert default_path("quick").parts[-4:] == ("runs", "quick", "throughput", "sac_FetchReachDense-v4.json")


@pytest.mark.parametrize("recipe", ["origin", "fast"])
def test_measure_costs_splits_a_training_step(recipe):
    from rlcourse.training.recipes import recipe_config

    cfg = recipe_config(recipe, "FetchReach-v4", seed=0, total_steps=1000, torch_threads=1)
    if cfg.algo == "sac":
        cfg.hyperparameters.update(batch_size=64, policy_kwargs={"net_arch": [32, 32]})
        utd = 1 / 8  # one gradient step per vector step of 8 environments
    else:
        cfg.hyperparameters.update(batch_size=64, hidden=32)
        utd = 0.5
    c = throughput.measure_costs(cfg, fill_steps=400, repeats=5)
    assert all(c[k] > 0 for k in ("env_step_ms", "sample_ms", "gradient_step_ms"))
    assert c["updates_per_env_step"] == utd and 0 < c["sample_share_of_gradient_step"] < 1
    expected = 1000 / (c["env_step_ms"] + c["updates_per_env_step"] * c["gradient_step_ms"])
    assert abs(c["predicted_steps_per_s"] - expected) < 1e-6 * expected
