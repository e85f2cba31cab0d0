"""The command line: every bad input is one line on stderr, exit code 2, and nothing written."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rlcourse.cli import main, parse_assignments, parse_value
from rlcourse.core.errors import RLCourseError

BAD_INPUTS = [
    (["run", "ch99"], "unknown chapter 'ch99'"),
    (["run", "ch00", "--profile", "huge"], "unknown profile 'huge'"),
    (["run", "ch00", "-p", "epochs=3"], "no parameter(s) ['epochs']"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v9"], "unknown environment 'FetchReach-v9'"),
    (["train", "--algo", "a2c", "--env", "FetchReach-v4"], "unknown algorithm 'a2c'"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--hp", "n_step=5"], "unknown hyperparameter 'n_step'"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--hp", "gamma"], "malformed --hp 'gamma'"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--hp", "gamma=[0.9"], "malformed value"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--hp", "gamma=fast"], "expects a number"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--total-steps", "lots"], "is not an integer"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--her"], "off-policy"),
    (["train", "--algo", "sac", "--env", "FetchReach-v4", "--her-goals", "4"], "need --her"),
    (["eval", "no/such/run"], "no such checkpoint"),
    (["eval", "random"], "needs --env"),
    (["eval", "random", "--env", "FetchPsh-v4"], "unknown environment"),
    (["repro", "--algo", "ppo", "--env", "Nope-v0"], "unknown environment"),
    (["repro", "--algo", "ppo", "--env", "FetchReachDense-v4", "--out",
      str(Path(__file__).resolve().parents[1] / "checkpoints" / "comparisons" / "ch00_repro.json")],
     "exists; pass --replace"),
    (["train", "--algo", "fastsac", "--env", "FetchReach-v4", "--hp", "auto_ent_coef=1"], "expects bool"),
    (["train", "--algo", "fastsac", "--env", "FetchReach-v4", "--hp", "normalize=nan"], "expects bool"),
    (["train", "--algo", "fastsac", "--env", "FetchReach-v4", "--hp", "auto_ent_coef=True", "--hp", "ent_coef=0"],
     "positive start"),
    (["frobnicate"], "invalid choice"),
    # found by a hostile reading of the command line (contract v2)
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--eval-every", "-1"], "must not be negative"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--checkpoint-every", "-5"], "must not be negative"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--seed", "-1"], "must not be negative"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--eval-episodes", "-1"], "must not be negative"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--hp", "gamma=2"], "out of range"),
    (["train", "--algo", "sac", "--env", "FetchReach-v4", "--hp", "batch_size=0"], "must be at least 1"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--hp", "n_steps=64.5"], "expects an integer"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--hp", "learning_rate=1e999"], "not a finite number"),
    (["train", "--algo", "fastsac", "--env", "FetchReach-v4", "--hp", "batch_size=2.5"], "expects an integer"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--stop-at-success", "1e999"], "in [0, 1]"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--wrap", "obs_noise:sigma=-1"], "obs_noise.sigma"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--wrap", "teleport:x=1"], "unknown wrapper"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--wrap", "obs_noise:sigma=nan"], "obs_noise"),
    (["train", "--recipe", "turbo", "--env", "FetchReach-v4"], "unknown recipe 'turbo'"),
    (["train", "--recipe", "fast", "--algo", "ppo", "--env", "FetchReach-v4"], "contradicts recipe"),
    (["train", "--env", "FetchReach-v4"], "give --algo"),
    (["train", "--algo", "ppo", "--env-spec", "no/such/spec.json"], "spec.json"),
    (["run", "ch01", "-p", "profile=5"], "set the profile with --profile"),
    (["train", "--algo", "sac", "--env", "FetchReach-v4", "--hp", "ent_coef=-5"], "out of range"),
    (["train", "--algo", "sac", "--env", "FetchReach-v4", "--hp", "ent_coef=high"], "ent_coef is a number or 'auto'"),
    (["train", "--algo", "sac", "--env", "FetchReach-v4", "--hp", "train_freq=1.5"], "expects an integer"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--hp", "policy_kwargs=5"], "expects a dict"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--out", "/dev/null/runs"], "is a file, not a folder"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--out", "/proc/rlcourse-runs"], "cannot write into /proc"),
    (["eval", "random", "--env", "FetchReach-v4", "--out-dir", "/dev/null/runs"], "is a file, not a folder"),
    (["run", "ch00", "--out", "/dev/null/ch00.ipynb"], "is a file, not a folder"),
    # found by a second hostile pass
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--out", ""], "out_dir must be a folder path"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--run-id", ""], "run_id is empty"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--run-id", "r" * 300], "invalid run id"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--seed", "4294967296"], "at most"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--seed", "\u0661\u0662"], "is not an integer"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--wrap", "obs_noise:sigma=\u0661"], "cannot read value"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v4", "--hp", "learning_rate=" + "9" * 400], "out of range"),
    (["train", "--algo", "sac", "--env", "FetchReach-v4", "--her", "--hp", "learning_starts=16"], "one episode"),
    (["train", "--algo", "sac", "--env", "FetchReach-v4", "--her", "--hp", "replay_buffer_kwargs=dict(n_sampled_goal=-3)"],
     "her_kwargs"),
    (["train", "--algo", "sac", "--env", "FetchReach-v4", "--hp", "target_entropy=nan"], "target_entropy"),
    (["train", "--algo", "fastsac", "--env", "FetchReach-v4", "--hp", "batch_size=1000000000"], "out of range"),
    (["train", "--algo", "fastsac", "--env", "FetchReach-v4", "--hp", "updates_per_step=1000000"], "out of range"),
    (["train", "--algo", "sac", "--env", "FetchReach-v4", "--hp", "buffer_size=10000000000000"], "at most"),
    (["train", "--algo", "ppo", "--env", "FetchReach-v1"], "unknown environment"),
    (["eval", "random", "--env", "FetchReach-v4", "--out", "r.json"], "writes a run folder"),
    (["train", "--recipe", "origin", "--env", "FetchReach-v4", "--hp", "buffer_size=abc"], "expects an integer"),
    (["sweep", "/no/such/sweep.yaml"], "sweep spec /no/such/sweep.yaml not found"),
    (["sweep", "/no/such/sweep.yaml", "--backend", "slurm"], "unknown backend 'slurm'"),
    (["sweep", "/no/such/sweep.yaml", "--address", "10.0.0.5:6379"], "--address joins a Ray cluster"),
    (["sweep", "/no/such/sweep.yaml", "--jobs", "0"], "--jobs"),
    (["sweep", "/no/such/sweep.yaml", "--backend", "ray", "--gpus-per-job", "nan"], "gpus_per_job must be"),
]


def _planned_chapter() -> str | None:
    from rlcourse.chapters import CHAPTERS

    return next((c.id for c in CHAPTERS.values() if not c.written), None)


def test_a_planned_chapter_is_refused(capsys):
    chapter = _planned_chapter()
    if chapter is None:
        pytest.skip("every chapter is written")
    assert main(["run", chapter]) == 2
    assert "not written yet" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("RLCOURSE_ROOT", str(tmp_path))  # nothing may be written anywhere we care about
    monkeypatch.chdir(tmp_path)
    if argv[0] == "run":
        monkeypatch.delenv("RLCOURSE_ROOT")  # chapters live in the real project
    with pytest.raises(SystemExit) as exc:
        sys.exit(main(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rlcourse: error: "), err
    assert message in err
    assert list(tmp_path.iterdir()) == []


def _copy(run, tmp_path):
    dst = tmp_path / run.path.name
    shutil.copytree(run.path, dst)
    return dst


@pytest.mark.parametrize("damage,message", [
    ("flip_model", "is corrupt"),
    ("drop_model", "file is missing"),
    ("truncate_meta", "corrupt JSON"),
    ("schema_meta", "fails the schema"),
    ("drop_meta", "not a run folder"),
])
def test_damaged_checkpoints_are_refused(tiny_run, tmp_path, capsys, damage, message):
    run = _copy(tiny_run, tmp_path)
    before = (run / "eval.json").read_bytes()
    if damage == "flip_model":
        data = bytearray((run / "model.zip").read_bytes()); data[100] ^= 1; (run / "model.zip").write_bytes(bytes(data))
    elif damage == "drop_model":
        (run / "model.zip").unlink()
    elif damage == "truncate_meta":
        (run / "meta.json").write_text((run / "meta.json").read_text()[:200])
    elif damage == "schema_meta":
        meta = json.loads((run / "meta.json").read_text()); meta["seed"] = "zero"
        (run / "meta.json").write_text(json.dumps(meta))
    elif damage == "drop_meta":
        (run / "meta.json").unlink()
    assert main(["eval", str(run), "--n-episodes", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert (run / "eval.json").read_bytes() == before  # the old report was not touched


def test_mismatched_env_is_refused(tiny_run, capsys):
    assert main(["eval", str(tiny_run.path), "--env", "FetchPush-v4", "--n-episodes", "1"]) == 2
    assert "trained on FetchReachDense-v4" in capsys.readouterr().err


def test_eval_writes_a_valid_report(tiny_run, tmp_path, capsys):
    out = tmp_path / "e.json"
    assert main(["eval", str(tiny_run.path / "model.zip"), "--n-episodes", "2", "--out", str(out),
                 "--no-progress"]) == 0
    from rlcourse.contract.runs import read_json

    doc = read_json(out, "eval")
    assert doc["n_episodes"] == 2 and doc["seeds"] == [1000, 1001]
    assert "success" in capsys.readouterr().out


def test_versions_and_chapters(capsys):
    assert main(["versions"]) == 0
    snap = json.loads(capsys.readouterr().out)
    assert snap["versions"]["gymnasium-robotics"] == "1.4.2" and snap["gl_backend"] in ("egl", "osmesa", None)
    assert isinstance(snap["gl_renderer"], str) and snap["gl_renderer"]  # e.g. "llvmpipe ...": software rendering
    assert main(["chapters"]) == 0
    out = capsys.readouterr().out
    from rlcourse.chapters import CHAPTERS

    for c in CHAPTERS.values():
        assert f"{c.id} " in out and c.title in out and ("written" if c.written else "planned") in out


def test_console_script_entry_point_exits_2():
    exe = shutil.which("rlcourse", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert exe, "the rlcourse console script is not installed"
    proc = subprocess.run([exe, "run", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("rlcourse: error: unknown chapter")


def test_parse_values():
    assert parse_value("3e-4") == 3e-4 and parse_value("[256, 256]") == [256, 256]
    assert parse_value("dict(net_arch=[64, 64])") == {"net_arch": [64, 64]}
    assert parse_value("future") == "future" and parse_value("True") is True
    assert parse_assignments(["a=1", "b = (1, 'episode')"]) == {"a": 1, "b": (1, "episode")}
    with pytest.raises(RLCourseError):
        parse_assignments(["=3"])
