"""Shared fixtures and settings for the whole test session.

- One torch thread: the networks here are tiny, and two threads on a 2-core machine make some tests 25x slower.
- Progress bars off, a non-interactive matplotlib backend.
- ``tiny_run``: one complete PPO run folder (a few seconds) shared by every test that only reads a run."""

from __future__ import annotations

import os

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
