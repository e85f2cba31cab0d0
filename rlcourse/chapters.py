"""The chapter registry and the profiles.

Each chapter is one notebook. Its ``parameters`` cell sets ``profile = "quick"`` by default; the notebook then asks
:func:`settings` for the numbers that profile means (steps, episodes, seeds). Keeping the table here, not in the
notebooks, lets the command line reject a bad chapter or profile before papermill starts a kernel, and lets the
tests see every profile.

- ``quick``: CPU-only, minutes; what nbval, ``make test`` and the book build run. Shows real learning where that
  fits in minutes, and loads the committed reference runs for the full results.
- ``full``: produces the reference runs under ``checkpoints/`` (hours on a CPU for the later chapters).

A chapter states its quick settings once, in full, and the full profile only as what changes: :func:`merge_profile`
applies the changes key by key (nested dicts recursively) and refuses a change whose type differs from the value it
replaces (a typo'd key or a string where a number belongs fails when the registry is imported, not hours into a run).
Keys that only the full profile needs (e.g. the Push runs of chapter 4) are added by it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlcourse.core.errors import RLCourseError
from rlcourse.core.paths import project_root

PROFILES = ("quick", "full")


def _kind(value: Any) -> str:
    """The type a setting must keep: ints and floats are both numbers; lists, dicts, strings, bools as such."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def merge_profile(base: dict[str, Any], changes: dict[str, Any], where: str = "") -> dict[str, Any]:
    """``base`` with ``changes`` applied: nested dicts merged, every replaced value of the same kind."""
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if key in base:
            if _kind(value) != _kind(base[key]):
                raise TypeError(f"profile setting {where}{key}: {_kind(base[key])} in quick, {_kind(value)} in full")
            if isinstance(value, dict):
                value = merge_profile(base[key], value, f"{where}{key}.")
        merged[key] = copy.deepcopy(value)
    return merged


@dataclass(frozen=True)
class Chapter:
    """One chapter: id, title, syllabus week, notebook file (None while unwritten), its quick settings and what the
    full profile changes."""

    id: str
    title: str
    week: str
    notebook: str | None
    quick: dict[str, Any] = field(default_factory=dict)
    full: dict[str, Any] = field(default_factory=dict)

    @property
    def written(self) -> bool:
        return self.notebook is not None

    @property
    def profiles(self) -> dict[str, dict[str, Any]]:
        """Every profile's complete settings (none while the chapter is unwritten)."""
        if not self.quick:
            return {}
        return {"quick": copy.deepcopy(self.quick), "full": merge_profile(self.quick, self.full, f"{self.id}: ")}

    def notebook_path(self) -> Path:
        if self.notebook is None:
            raise RLCourseError(f"{self.id} ({self.title}) is planned but not written yet; see the syllabus page")
        return project_root() / "notebooks" / self.notebook


CHAPTERS: dict[str, Chapter] = {
    c.id: c
    for c in [
        Chapter(
            "ch00", "Proof of life", "0", "ch00_proof_of_life.ipynb",
            quick={"env_id": "FetchReachDense-v4", "seed": 0, "total_steps": 4096, "n_envs": 8,
                   "ppo": {"n_steps": 64, "batch_size": 256, "n_epochs": 4},
                   "eval_episodes": 10, "repro_steps": 1024, "repro_episodes": 5},
            # full: the reproducibility check at the syllabus's scale (50k steps, 50 evaluation episodes), written
            #   to checkpoints/studies/ch00_repro.json for the quick profile to read.
            full={"total_steps": 50_000, "ppo": {"n_steps": 1024, "n_epochs": 10},
                  "eval_episodes": 100, "repro_steps": 50_000, "repro_episodes": 50},
        ),
        Chapter(
            "ch01", "Environment anatomy", "1", "ch01_env_anatomy.ipynb",
            quick={"env_id": "FetchReachDense-v4", "seed": 0, "reward_check_steps": 500, "relabel_goals": 3,
                   "atol": 1e-10, "goal_resets": 100, "random_episodes": 30},
            full={"reward_check_steps": 2000, "relabel_goals": 5, "goal_resets": 500, "random_episodes": 100},
        ),
        Chapter(
            "ch02", "PPO on dense Reach", "2", "ch02_ppo_dense_reach.ipynb",
            # quick: one seed with short rollouts and small minibatches (more gradient steps per sample), which
            #   reaches >= 0.90 deterministic success in about a minute of training on 2 CPU cores.
            # full: the source book's hyperparameters on 3 seeds. The book trains 1M steps per seed; 204,800 (25
            #   rollouts of 1024 x 8, so PPO stops exactly at the budget) already shows the plateau of the
            #   deterministic evaluation run every 10k steps, and keeps the three runs near 20 min on 2 CPU cores.
            quick={"env_id": "FetchReachDense-v4", "seeds": [0], "n_envs": 8, "total_steps": 32_768,
                   "ppo": {"n_steps": 256, "batch_size": 64, "n_epochs": 10, "learning_rate": 3e-4,
                           "gamma": 0.99, "gae_lambda": 0.95, "clip_range": 0.2, "ent_coef": 0.0,
                           "vf_coef": 0.5, "max_grad_norm": 0.5},
                   "eval_episodes": 50, "eval_every": 0, "curve_eval_episodes": 10, "min_success": 0.90,
                   "scratch": {"total_steps": 12_288, "n_envs": 8, "n_steps": 128, "n_epochs": 10,
                               "batch_size": 64, "learning_rate": 1e-3},
                   "scratch_eval_episodes": 10, "bridge_steps": 256, "bridge_envs": 4, "torch_threads": 1},
            # full, "grid": is it stable? The quick recipe (its budget and every other setting) on a 3 x 3 grid of
            #   clip range and GAE lambda, two seeds per cell: 18 runs of about a minute and a half each.
            full={"seeds": [0, 1, 2], "total_steps": 204_800, "ppo": {"n_steps": 1024, "batch_size": 256},
                  "eval_episodes": 100, "eval_every": 10_000, "scratch": {"total_steps": 40_960},
                  "scratch_eval_episodes": 50, "bridge_steps": 1024, "bridge_envs": 8,
                  "grid": {"clip_range": [0.1, 0.2, 0.4], "gae_lambda": [0.8, 0.95, 1.0], "seeds": [0, 1],
                           "eval_every": 4096, "curve_eval_episodes": 10, "eval_episodes": 50, "jobs": 2}},
        ),
        Chapter(
            "ch03", "SAC on dense Reach", "3", "ch03_sac_dense_reach.ipynb",
            # One SAC recipe for both profiles (the quick run is the first 10k steps of a reference run): small
            #   networks, learning rate 1e-3 for all three optimisers, gamma 0.95 (50-step episodes), batch 256,
            #   learning_starts 1000; everything else is SB3's default (tau 0.005, ent_coef "auto", target entropy
            #   -4, train_freq 1, gradient_steps 1). On 2 shared CPU cores this runs at about 90-115 steps/s with
            #   one torch thread.
            # quick: 10k steps, enough to leave the random baseline far behind in under 1.5 min of training.
            # full: 3 seeds x 50k steps. The source book trains 1M steps per seed with lr 3e-4, gamma 0.99 and
            #   learning_starts 10k; with this recipe deterministic success reaches 1.0 between 25k and 30k steps
            #   (trial runs), so 50k shows the plateau and keeps the chapter under ~35 min here. With batch 128 one of
            #   three seeds ended ~4 cm short of the goals (a consistent offset); batch 256 removed it in a trial.
            quick={"env_id": "FetchReachDense-v4", "seeds": [0], "n_envs": 1, "total_steps": 10_000,
                   "sac": {"learning_starts": 1000, "learning_rate": 1e-3, "gamma": 0.95, "batch_size": 256,
                           "buffer_size": 100_000, "policy_kwargs": {"net_arch": [64, 64]}},
                   "eval_episodes": 20, "eval_every": 0, "curve_eval_episodes": 10, "curve_points": 50,
                   "torch_threads": 1, "lab_updates": 20, "offset_episodes": 5,
                   "scratch": {"env_id": "Pendulum-v1", "total_steps": 4000, "hidden": [64, 64], "lr": 1e-3,
                               "batch_size": 128, "learning_starts": 600},
                   "throughput": {"n_envs": [1, 4], "steps": 200, "warmup_steps": 150, "learning_starts": 100}},
            full={"seeds": [0, 1, 2], "total_steps": 50_000, "eval_episodes": 100, "eval_every": 2500,
                  "curve_eval_episodes": 20, "curve_points": 100, "offset_episodes": 20,
                  "scratch": {"total_steps": 10_000},
                  "throughput": {"n_envs": [1, 2, 4, 8, 16], "steps": 3000, "warmup_steps": 1000}},
        ),
        Chapter(
            "ch04", "HER on sparse Reach and Push", "4", "ch04_her_sparse_reach_push.ipynb",
            # Both profiles use rlcourse.training.recipes.RECIPES["fast"] (see benchmarks/her_push_speed.py).
            # quick: the labs, and one SAC+HER run on sparse Reach; Push is read from the committed runs.
            # full: Reach and Push, with and without HER, 3 seeds each, and Push with k = 2 and k = 8 relabelled
            #   goals ("ablation"); under two hours with two runs at a time on a 2-core CPU, one torch thread each.
            #   Push: 0.9 after 140k steps on the first seed, so 200k leaves a margin.
            quick={"recipe": "fast", "torch_threads": 1, "jobs": 1, "random_episodes": 30, "lab_passes": 100,
                   "reach": {"seeds": [0], "her": [True], "total_steps": 10_000, "eval_every": 2000,
                             "curve_eval_episodes": 10, "eval_episodes": 50},
                   "min_reach_success": 0.9},
            full={"jobs": 2, "random_episodes": 100, "lab_passes": 400,
                  "reach": {"seeds": [0, 1, 2], "her": [True, False], "total_steps": 20_000, "eval_every": 1000,
                            "curve_eval_episodes": 20, "eval_episodes": 100},
                  "push": {"seeds": [0, 1, 2], "total_steps": 200_000, "eval_every": 10_000,
                           "curve_eval_episodes": 20, "eval_episodes": 100},
                  "ablation": {"k": [2, 8], "seeds": [0, 1, 2]},
                  # Is it stable, and which of the fast recipe's choices buy its speed? Each arm changes one setting
                  #   of the recipe (the hyperparameters below) and is trained on the Push seeds and budget above.
                  #   utd_0.125 and lr_3e-4 put back the origin recipe's update-to-data ratio and learning rate.
                  "studies": {"seeds": [0, 1, 2],
                              "arms": {"auto_alpha": {"auto_ent_coef": True}, "gamma_0.98": {"gamma": 0.98},
                                       "no_norm": {"normalize": False}, "no_clip": {"clip_target": False},
                                       "utd_0.125": {"updates_per_step": 0.125}, "lr_3e-4": {"learning_rate": 3e-4}}},
                  "min_reach_success": 0.95, "gif_episodes": 3},
        ),
        Chapter(
            "ch05", "PickAndPlace", "5", "ch05_pick_and_place.ipynb",
            # quick: the labs, the scripted controller clean and under stress, and a short SAC+HER run (fast recipe);
            #   the reference runs are read from checkpoints/.
            # full: the same measurements on more resets and episodes, and the reference runs ("reference"), each
            #   evaluated by stratum and on the stress specs ("stress": noise sigmas and the wider sampling ranges):
            #   sparse + HER with scripted demonstrations in the replay buffer (recipe pick_demos), the same recipe
            #   without them (fast_worker) and with the goal curriculum instead, on 3 seeds each, and one dense run
            #   without HER. The budgets without demonstrations are twice the demonstrations' budget.
            quick={"env_id": "FetchPickAndPlace-v4", "torch_threads": 1, "strata_resets": 200, "random_episodes": 30,
                   "trace_episodes": 8, "scripted_episodes": 40,
                   "stress": {"obs_noise": 0.01, "action_noise": 0.05, "ranges": 0.2},
                   "curriculum_check": {"resets": 50, "schedule_steps": 400},
                   "run": {"recipe": "fast", "seed": 0, "total_steps": 10_000, "eval_every": 2_500,
                           "curve_eval_episodes": 10, "eval_episodes": 50},
                   "reference": {"seeds": [0, 1, 2], "eval_every": 10_000, "curve_eval_episodes": 20,
                                 "eval_episodes": 100,
                                 # each group: a recipe and budget, optionally env_id, her, seeds, wrappers
                                 "groups": {
                                     "demos": {"recipe": "pick_demos", "total_steps": 100_000},
                                     "her": {"recipe": "fast_worker", "total_steps": 200_000},
                                     "curriculum": {"recipe": "fast_worker", "total_steps": 200_000, "wrappers": [
                                         "goal_curriculum:mode=steps,start=0,end=1,steps=100000"]},
                                     "dense": {"recipe": "fast_worker", "total_steps": 100_000, "seeds": [0],
                                               "env_id": "FetchPickAndPlaceDense-v4", "her": False},
                                 }},
                   # benchmarks/offpolicy_speed.py: its summaries (Push screening of every lever on one seed; Push
                   # with the worker, Push with demonstrations and PickAndPlace with demonstrations, each against
                   # the fast recipe on three seeds) and the targets in minutes and steps to 0.9
                   "speed": {"screening": "offpolicy_speed_push", "push": "offpolicy_speed_push_confirm",
                             "push_demos": "offpolicy_speed_push_demos", "pick": "offpolicy_speed_pick",
                             "targets": {"push_minutes": 6.0, "pick_minutes": 30.0, "pick_steps": 400_000},
                             # the simulator's and the gradient steps' cost on the machine executing the chapter
                             "probe": {"fill_steps": 2000, "repeats": 50}}},
            full={"strata_resets": 2000, "random_episodes": 100, "trace_episodes": 20, "scripted_episodes": 100,
                  "curriculum_check": {"resets": 200},
                  "run": {"total_steps": 50_000, "eval_every": 5_000, "curve_eval_episodes": 20, "eval_episodes": 100},
                  "speed": {"probe": {"fill_steps": 10_000, "repeats": 200}}},
        ),
        Chapter(
            "ch06", "Policies as controllers", "6", "ch06_policies_as_controllers.ipynb",
            # quick: the interface checks, the gain sweep of the proportional controller, the rule against the
            #   chapter 4 policies, and a small interface sweep (seed 0, Reach and Push); the reference sweep (3 seeds,
            #   12 interfaces, 100 episodes) is read from checkpoints/sweeps/ch06_interface.
            # full: the same on more episodes, and the GIFs of learned policy beside the rule.
            quick={"torch_threads": 1, "compare_episodes": 30, "gain_episodes": 30, "rule_episodes": 100,
                   "gains": {"FetchReach-v4": [5, 10, 20, 30, 40, 60, 80, 100], "FetchPush-v4": [5, 10, 20, 40]},
                   "rule_gain": {"FetchReach-v4": 10, "FetchPush-v4": 20},
                   "run_it": {"seed": 0, "episodes": 20, "jobs": 2,
                              "interfaces": ["action_scale:scale=0.5", "action_scale:scale=1", "action_scale:scale=2",
                                             "action_filter:alpha=0.2", "action_filter:alpha=0.5"]},
                   "reference": {"sweep": "sweeps/ch06_interface.yaml", "jerk_ratio": 0.5, "success_cost": 0.02},
                   "gif_seeds": [1000, 1001]},
            full={"compare_episodes": 100, "gain_episodes": 100, "run_it": {"episodes": 100}},
        ),
        Chapter(
            "ch07", "Robustness", "7", "ch07_robustness.ipynb",
            # quick: the noise-placement checks, the noise gains, the linear prediction on the Reach rule, and a small
            #   sweep (seed 0, Push); the reference sweeps and the rules' evaluations are read from checkpoints/.
            # full: more episodes, and the reference sweeps (noise, retraining under noise, the corrupted retraining)
            #   with the rules evaluated under every condition (finished jobs and evaluations are reused).
            quick={"torch_threads": 1, "why_episodes": 30, "why_sigma": {"sensor": 0.01, "goal": 0.02, "actuator": 0.2},
                   "check_sigma": {"sensor": 0.01, "goal": 0.01, "actuator": 0.1}, "gain_episodes": 4,
                   "rule_gain": {"FetchReach-v4": 10, "FetchPush-v4": 20}, "rule_episodes": 30,
                   "linear_sigmas": [0.005, 0.01, 0.02],
                   "run_it": {"env": "FetchPush-v4", "seed": 0, "episodes": 20, "jobs": 2,
                              "noise": ["obs_noise:sigma=0", "obs_noise:sigma=0.01", "obs_noise:sigma=0.05",
                                        "action_noise:sigma=0.2"]},
                   "reference": {"noise_sweep": "sweeps/ch07_noise.yaml", "robust_sweep": "sweeps/ch07_robust.yaml",
                                 "corrupt_sweep": "sweeps/ch07_corrupt.yaml", "level": 0.5, "recovery_sigma": 0.02,
                                 "share": 0.5}},
            full={"why_episodes": 100, "gain_episodes": 20, "rule_episodes": 100, "run_it": {"episodes": 100}},
        ),
        Chapter(
            "ch08", "Pixels I: visual Reach", "8", "ch08_pixels_visual_reach.ipynb",
            # quick: the camera and its cost, the labs (spatial softmax, random shift, the encoder's gradients, the
            #   frame buffer), a short real pixel run, a blind evaluation of one reference policy that must repeat its
            #   committed episodes; the reference runs (sweeps/ch08_pixels.yaml, ch08_pixels_long.yaml,
            #   ch08_pixels_radius.yaml, ch08_pixels_dense.yaml, ch08_pixels_dense_alpha.yaml,
            #   ch08_pixels_two_views.yaml, ch08_state.yaml) are read from checkpoints/; the failed episodes of the DrQ
            #   policies are replayed to see where they end.
            # full: a longer pixel run, the reference sweeps (finished runs and evaluations are reused), the GIF.
            quick={"env_id": "FetchReach-v4", "torch_threads": 1, "view_sizes": [32, 64, 84],
                   "memory_steps": 100_000,
                   "run": {"recipe": "pixels", "seed": 0, "total_steps": 2_000, "eval_every": 1_000,
                           "curve_eval_episodes": 10, "eval_episodes": 20},
                   "blind_episodes": 20,
                   "reference": {"pixel_sweep": "sweeps/ch08_pixels.yaml", "state_sweep": "sweeps/ch08_state.yaml",
                                 "long_sweep": "sweeps/ch08_pixels_long.yaml",
                                 "radius_sweep": "sweeps/ch08_pixels_radius.yaml",
                                 "dense_sweep": "sweeps/ch08_pixels_dense.yaml",
                                 "alpha_sweep": "sweeps/ch08_pixels_dense_alpha.yaml",
                                 "views_sweep": "sweeps/ch08_pixels_two_views.yaml",
                                 "threshold": 0.9, "target": 0.95, "drq_pad": 4, "keypoint_frames": 3},
                   "gif_seeds": [1000, 1001]},
            full={"run": {"total_steps": 10_000, "eval_every": 2_000, "curve_eval_episodes": 20, "eval_episodes": 100},
                  "blind_episodes": 100},
        ),
        Chapter("ch09", "Pixels II: Push from pixels", "9", None),
        Chapter("ch10", "The reality gap", "10", None),
    ]
}


def get(chapter_id: str) -> Chapter:
    """The chapter with this id, or a one-line error listing the ids."""
    try:
        return CHAPTERS[chapter_id]
    except KeyError:
        raise RLCourseError(f"unknown chapter {chapter_id!r}; chapters are {', '.join(CHAPTERS)}") from None


def check_profile(profile: str) -> str:
    """``profile`` if it is a known profile, else a one-line error."""
    if profile not in PROFILES:
        raise RLCourseError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    return profile


def settings(chapter_id: str, profile: str) -> dict[str, Any]:
    """The settings a chapter uses in ``profile`` (a fresh copy; notebooks may adjust it)."""
    ch = get(chapter_id)
    check_profile(profile)
    if profile not in ch.profiles:
        raise RLCourseError(f"{chapter_id} has no settings yet (it is not written)")
    return ch.profiles[profile]
