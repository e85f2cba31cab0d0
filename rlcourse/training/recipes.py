"""Named SAC + HER training recipes for the sparse Fetch tasks (chapter 4 and the speed benchmark).

``"origin"`` is the recipe of the project this course grew out of: stable-baselines3 SAC with ``HerReplayBuffer``,
8 environments, gamma 0.95, a fixed entropy coefficient of 0.05, batch 256, learning rate 3e-4, k = 4 "future"
goals, everything else stable-baselines3's default. ``"fast"`` is :mod:`rlcourse.algos.fastsac` (normalised inputs,
clipped targets, fused twin critics) with 4 environments, 128 x 128 networks, batch 256, learning rate 1e-3,
tau 0.05 and one gradient step per two environment steps. ``benchmarks/her_push_speed.py`` trains both on
FetchPush-v4 side by side. ``"fast_worker"`` is ``"fast"`` with the environments stepped in a second process while
the learner updates (``env_worker``, chapter 5's speed study, ``benchmarks/offpolicy_speed.py``). ``"pick_demos"`` is
``"fast_worker"`` with 100 episodes of chapter 5's scripted controller in the replay buffer from the start
(:data:`PICK_DEMONSTRATIONS`, made by ``rlcourse.labs.pick.demonstrations``): the recipe that solves
FetchPickAndPlace. ``"push_demos"`` is the same with 100 episodes of chapter 3's Push controller
(:data:`PUSH_DEMONSTRATIONS`). ``"pixels"`` is :mod:`rlcourse.algos.pixelsac` on 64 x 64 frames of the ``front`` camera (one
frame, no stack) with DrQ's shift of 4 pixels, 16-channel convolutions and batch 64, otherwise ``"fast"``'s settings
(chapter 8: sizes chosen for what one CPU core can update). A recipe may carry wrappers (the camera); a wrapper of the
same name in the run's own spec replaces the recipe's (:func:`with_recipe_wrappers`). :func:`recipe_config` turns a
recipe into a :class:`~rlcourse.training.train.TrainConfig`.
"""

from __future__ import annotations

import copy
from typing import Any

from rlcourse.core.errors import RLCourseError

HER_FUTURE_4 = {"n_sampled_goal": 4, "goal_selection_strategy": "future"}

PICK_DEMONSTRATIONS = {"file": "checkpoints/demonstrations/scripted_FetchPickAndPlace-v4_n100.npz",
                       "sha256": "626d1ca8452033496d830a2f61bfd5a3287cca15495cac874329a54de3b6ac8b",
                       "episodes": 100, "first_seed": 50_000}
"""The committed demonstrations of ``"pick_demos"``: ``rlcourse.labs.pick.demonstrations(100, seed=50_000)`` saved
with ``rlcourse.labs.pick.save_demonstrations`` (byte-for-byte reproducible)."""

PUSH_DEMONSTRATIONS = {"file": "checkpoints/demonstrations/scripted_FetchPush-v4_n100.npz",
                       "sha256": "3fbba3c8ef8fb566e7ecc06ed30e8088a14a923293fe8360fe804ff4a5c80e5b",
                       "episodes": 100, "first_seed": 50_000}
"""The committed demonstrations of ``"push_demos"``: ``rlcourse.labs.pick.demonstrations(100, seed=50_000,
policy=rlcourse.labs.controllers.ProportionalPush(), spec="FetchPush-v4")`` saved the same way (chapter 3's
two-phase rule: not every episode succeeds, and HER learns from the others too)."""

RECIPES: dict[str, dict[str, Any]] = {
    "origin": {
        "algo": "sac",  # stable-baselines3 SAC + HerReplayBuffer
        "n_envs": 8,
        "her_kwargs": HER_FUTURE_4,
        "hyperparameters": {"gamma": 0.95, "ent_coef": 0.05, "batch_size": 256, "learning_rate": 3e-4,
                            "learning_starts": 1000, "buffer_size": 1_000_000},
    },
    "fast": {
        "algo": "fastsac",  # rlcourse.algos.fastsac
        "n_envs": 4,
        "her_kwargs": {"n_sampled_goal": 4},
        "hyperparameters": {"hidden": 128, "batch_size": 256, "updates_per_step": 0.5, "learning_rate": 1e-3,
                            "tau": 0.05, "gamma": 0.95, "ent_coef": 0.05, "learning_starts": 1000},
    },
}
RECIPES["fast_worker"] = {**RECIPES["fast"], "hyperparameters": {**RECIPES["fast"]["hyperparameters"], "env_worker": True}}
for _name, _demos in (("pick_demos", PICK_DEMONSTRATIONS), ("push_demos", PUSH_DEMONSTRATIONS)):
    RECIPES[_name] = {**RECIPES["fast_worker"], "hyperparameters": {
        **RECIPES["fast_worker"]["hyperparameters"], "demonstrations": _demos["file"],
        "demonstrations_sha256": _demos["sha256"]}}
del _name, _demos
RECIPES["pixels"] = {
    "algo": "pixelsac",  # rlcourse.algos.pixelsac
    "n_envs": 4,
    "her_kwargs": {"n_sampled_goal": 4},
    "wrappers": ["pixels:size=64,frames=1"],
    "hyperparameters": {**RECIPES["fast"]["hyperparameters"], "batch_size": 64, "width": 16, "pad": 4},
}


def with_recipe_wrappers(name: str, wrappers: list[Any]) -> list[Any]:
    """``wrappers`` (strings, dicts or :class:`~rlcourse.envs.spec.WrapperSpec`) followed by recipe ``name``'s own
    wrappers, leaving out each recipe wrapper whose name ``wrappers`` already uses (the run's choice wins)."""
    from rlcourse.envs.spec import WrapperSpec, parse_wrap

    def name_of(w: Any) -> str:
        return (parse_wrap(w) if isinstance(w, str) else w if isinstance(w, WrapperSpec)
                else WrapperSpec.from_json(w)).name

    taken = {name_of(w) for w in wrappers}
    return [*wrappers, *(w for w in recipe(name).get("wrappers", []) if name_of(w) not in taken)]


def recipe(name: str) -> dict[str, Any]:
    """A fresh copy of recipe ``name`` (SB3 writes into the dicts it is given)."""
    try:
        return copy.deepcopy(RECIPES[name])
    except KeyError:
        raise RLCourseError(f"unknown recipe {name!r}; recipes are {', '.join(RECIPES)}") from None


def changes_from(name: str, base: str = "fast") -> dict[str, Any]:
    """The hyperparameters in which recipe ``name`` differs from ``base`` (what a benchmark arm records)."""
    other = recipe(base)["hyperparameters"]
    return {k: v for k, v in recipe(name)["hyperparameters"].items() if other.get(k) != v}


def recipe_config(name: str, env_id: str, seed: int, total_steps: int, her: bool = True,
                  n_sampled_goal: int | None = None, run_id: str | None = None,
                  changes: dict[str, Any] | None = None, **fields: Any):
    """A :class:`~rlcourse.training.train.TrainConfig` for recipe ``name``; ``her=False`` drops the relabelling and keeps
    everything else, ``n_sampled_goal`` overrides k, ``changes`` replaces some of the recipe's hyperparameters (or adds
    ones it leaves at the algorithm's default), and ``fields`` set any other TrainConfig field."""
    from rlcourse.contract.config import TrainConfig

    r = recipe(name)
    her_kwargs = dict(r["her_kwargs"]) if her else {}
    if her and n_sampled_goal is not None:
        her_kwargs["n_sampled_goal"] = int(n_sampled_goal)
    hp = {**r["hyperparameters"], **(changes or {})}
    if "buffer_size" in hp:
        hp["buffer_size"] = min(int(hp["buffer_size"]), max(int(total_steps), 1))  # never allocate more than is used
    fields["wrappers"] = with_recipe_wrappers(name, list(fields.get("wrappers", [])))
    return TrainConfig(algo=r["algo"], env_id=env_id, seed=seed, total_steps=total_steps, n_envs=r["n_envs"], her=her,
                       her_kwargs=her_kwargs, hyperparameters=hp, run_id=run_id, **fields)
