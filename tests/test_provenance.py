"""Provenance: the git state recorded with every run."""

import subprocess

from rlcourse.core.provenance import command_line, git_info, host_tag


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})


def test_dirty_means_the_code_changed_not_the_artifacts_runs_write(tmp_path):
    for path in ("rlcourse/x.py", "checkpoints/r/meta.json", "figures/f.png", "benchmarks/results/b.json"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("1")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "c")
    clean = git_info(tmp_path)
    assert len(clean["commit"]) == 40 and clean["dirty"] is False
    for path in ("checkpoints/r/meta.json", "figures/f.png", "benchmarks/results/b.json"):
        (tmp_path / path).write_text("2")  # a full-profile run replaced its outputs
    assert git_info(tmp_path)["dirty"] is False
    (tmp_path / "rlcourse/x.py").write_text("2")  # the code that made them changed
    assert git_info(tmp_path)["dirty"] is True


def test_command_line_names_the_rlcourse_command():
    assert command_line(["/x/.venv/bin/rlcourse", "train", "--env", "a b"]) == "rlcourse train --env 'a b'"


def test_host_tag_names_the_cpu_model_and_count():
    assert host_tag({"cpu": "Intel(R) Xeon(R) Processor", "cpu_count": 2}) == "intel-r-xeon-r-processor-x2"
    assert host_tag({"cpu": "AMD EPYC", "cpu_count": 16}) == "amd-epyc-x16"
