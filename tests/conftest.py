"""Shared fixtures and settings for the whole test session.

- One torch thread: the networks here are tiny, and two threads on a 2-core machine make some tests 25x slower.
- Progress bars off, a non-interactive matplotlib backend.
- ``tiny_run``: one complete PPO run folder (a few seconds) shared by every test that only reads a run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["RLCOURSE_PROGRESS"] = "0"


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_num_threads(1)

TINY_PPO = {"n_steps": 64, "batch_size": 64, "n_epochs": 2}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A complete PPO run folder on FetchReachDense-v4: 256 steps, 2 envs, 3 evaluation episodes."""
    from rlcourse.training.train import TrainConfig, train

    out = tmp_path_factory.mktemp("runs")
    return train(TrainConfig(algo="ppo", env_id="FetchReachDense-v4", seed=3, total_steps=256, n_envs=2,
                             hyperparameters=TINY_PPO, out_dir=str(out), final_eval_episodes=3,
                             tensorboard=False, command="pytest tiny_run"))


@pytest.fixture(scope="session")
def reach():
    """One sparse FetchReach-v4 environment for the tests that only reset and step it with their own seeds."""
    from rlcourse.envs import make_env

    env = make_env("FetchReach-v4")
    yield env
    env.close()


def kill_after_first_checkpoint_then_rerun(argv: list[str], out: Path) -> Any:
    """Run ``rlcourse <argv>`` (which must train into ``out`` with ``--run-id killed``), SIGKILL it as soon as its
    first resume checkpoint exists, check that no complete run appeared, run the same command again and return the
    finished run."""
    import signal
    import subprocess
    import sys
    import time

    from rlcourse.contract.runs import load_run

    cmd = [sys.executable, "-m", "rlcourse", *argv]
    env = {**os.environ, "RLCOURSE_ROOT": str(out)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state = out / "killed.partial" / "resume" / "state.json"
    deadline = time.time() + 120
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert state.exists(), "no resume checkpoint appeared"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "killed").exists()  # the complete folder appears only at the end
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return load_run(out / "killed")
