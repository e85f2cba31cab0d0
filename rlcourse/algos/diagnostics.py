"""Off-policy diagnostics: what the critics believe about the data in the replay buffer.

stable-baselines3 logs the losses (``train/critic_loss``, ``train/actor_loss``) and ``train/ent_coef``, but not
the values the critics assign, nor what the buffer holds. :func:`replay_diagnostics` samples one batch from an SB3
SAC or TD3 model's replay buffer and reports both. With ``TrainConfig(diagnostics=True)`` the training contract
appends these numbers to every learning-curve row (``curve.json``) and logs them to TensorBoard as
``replay/<name>``.

=========================  ==================================================================================
``q1_mean``, ``q2_mean``   mean Q1(s, a), Q2(s, a) over the batch (a = the stored action)
``q_min_mean``             mean min(Q1, Q2): the value the targets and the actor use
``q_gap_mean``             mean |Q1 − Q2|: how much the two critics disagree
``ent_coef``               α, the entropy temperature (SAC; None for TD3)
``replay_reward_*``        mean, min and max of the stored rewards
``replay_goal_dist_mean``  mean ‖achieved_goal − desired_goal‖ of the *next* observations, metres (with
                           ``normalize_obs``, the goals are mapped back to metres first)
``replay_within_eps``      fraction of those within ``eps`` (0.05 m, Fetch's success threshold)
=========================  ==================================================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

DIAGNOSTIC_COLUMNS = ["q1_mean", "q2_mean", "q_min_mean", "q_gap_mean", "ent_coef", "replay_reward_mean",
                      "replay_reward_min", "replay_reward_max", "replay_goal_dist_mean", "replay_within_eps"]
DEFAULT_EPS = 0.05  # Fetch's distance_threshold, metres


def ent_coef(model: Any) -> float | None:
    """The entropy temperature α of an SB3 SAC model (learned: exp(log α); fixed: the constant); None otherwise."""
    log_ent = getattr(model, "log_ent_coef", None)
    if log_ent is not None:
        return float(log_ent.detach().exp().item())
    fixed = getattr(model, "ent_coef_tensor", None)
    return None if fixed is None else float(fixed.item())


def replay_ready(model: Any, batch_size: int = 256) -> bool:
    """True when ``model`` has a replay buffer holding at least ``batch_size`` transitions."""
    buf = getattr(model, "replay_buffer", None)
    return buf is not None and buf.size() >= batch_size


def replay_diagnostics(model: Any, batch_size: int = 256, eps: float = DEFAULT_EPS) -> dict[str, float | None]:
    """Sample ``batch_size`` transitions from an SB3 SAC/TD3 model's (dict-observation) replay buffer and return
    :data:`DIAGNOSTIC_COLUMNS` as floats (None where a quantity does not exist, e.g. α for TD3).

    Sampling uses numpy's global generator, exactly like the learner's own sampling; its state is saved and
    restored, so switching diagnostics on does not change what the learner draws afterwards."""
    import torch

    if not replay_ready(model, batch_size):
        have = 0 if getattr(model, "replay_buffer", None) is None else model.replay_buffer.size()
        raise ValueError(f"the replay buffer holds {have} transitions; need at least {batch_size}")
    state = np.random.get_state()
    vec_norm = getattr(model, "_vec_normalize_env", None)
    try:
        data = model.replay_buffer.sample(batch_size, env=vec_norm)
    finally:
        np.random.set_state(state)
    with torch.no_grad():
        qs = [q.reshape(-1) for q in model.critic(data.observations, data.actions)]
    q1 = qs[0]
    q2 = qs[1] if len(qs) > 1 else None
    rewards = data.rewards.reshape(-1).cpu().numpy()
    nxt = data.next_observations
    dist = None
    if isinstance(nxt, dict) and "achieved_goal" in nxt and "desired_goal" in nxt:
        goals = {k: v.cpu().numpy() for k, v in nxt.items()}
        if vec_norm is not None:  # distances in metres, not in normalised units
            goals = vec_norm.unnormalize_obs(goals)
        dist = np.linalg.norm(goals["achieved_goal"] - goals["desired_goal"], axis=-1)
    return {
        "q1_mean": float(q1.mean()),
        "q2_mean": None if q2 is None else float(q2.mean()),
        "q_min_mean": float((q1 if q2 is None else torch.min(q1, q2)).mean()),
        "q_gap_mean": None if q2 is None else float((q1 - q2).abs().mean()),
        "ent_coef": ent_coef(model),
        "replay_reward_mean": float(rewards.mean()),
        "replay_reward_min": float(rewards.min()),
        "replay_reward_max": float(rewards.max()),
        "replay_goal_dist_mean": None if dist is None else float(dist.mean()),
        "replay_within_eps": None if dist is None else float(np.mean(dist < eps)),
    }
