"""Shared fixtures: one tiny trained run for the whole session (a few seconds of PPO)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

TINY_PPO = {"n_steps": 64, "batch_size": 64, "n_epochs": 2}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A complete PPO run folder on FetchReachDense-v4: 256 steps, 2 envs, 3 evaluation episodes."""
    from rlcourse.training.train import TrainConfig, train

    out = tmp_path_factory.mktemp("runs")
    return train(TrainConfig(algo="ppo", env_id="FetchReachDense-v4", seed=3, total_steps=256, n_envs=2,
                             hyperparameters=TINY_PPO, out_dir=str(out), final_eval_episodes=3,
                             tensorboard=False, command="pytest tiny_run"))
