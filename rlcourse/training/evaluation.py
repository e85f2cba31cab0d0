"""Evaluating a finished run: on the spec it was trained on, or on another one (a stress test, a sweep).

:func:`evaluate_run` loads the run (its model verified against meta.json), builds the requested spec and runs the
one evaluation loop. A run's own ``eval.json`` is only replaced by an evaluation under the same protocol (same spec,
episodes, first seed, deterministic flag) unless ``replace`` is set; evaluations on other specs go to ``out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlcourse.core.errors import RLCourseError
from rlcourse.core.io import check_writable_file
from rlcourse.contract.config import DEFAULT_EVAL_SEED, check_int
from rlcourse.contract.evaluate import Labeller, eval_report, evaluate, protocol
from rlcourse.contract.runs import env_spec_json, load_run, read_json, resolve_run_dir, write_json
from rlcourse.contract.writer import evaluation_spec
from rlcourse.envs.spec import EnvSpec
from rlcourse.algos.base import load_policy


def trained_spec(meta: dict[str, Any]) -> EnvSpec:
    """The environment spec a run trained on (the bare task for runs recorded before specs existed)."""
    return EnvSpec.from_json(env_spec_json(meta))


def eval_protocol(doc: dict[str, Any]) -> dict[str, Any]:
    """The protocol of an eval.json document (derived from its fields for documents written before it was
    recorded)."""
    if "protocol" in doc:
        return doc["protocol"]
    spec = EnvSpec.coerce(doc.get("env_spec") or doc["env_id"]).validate()
    return protocol(spec, doc["n_episodes"], doc["seeds"][0], doc["deterministic"])


def _check_compatible(trained: EnvSpec, spec: EnvSpec) -> None:
    """A policy can only be evaluated where its observations and actions have the shapes it was trained on."""
    from rlcourse.envs.spec import make

    a, b = make(trained), make(spec)
    try:
        shapes = lambda env: ({k: s.shape for k, s in env.observation_space.spaces.items()}, env.action_space.shape)
        if shapes(a) != shapes(b):
            raise RLCourseError(f"the run was trained on {trained.label()}, whose observations and actions do not "
                                f"match {spec.label()}'s")
    finally:
        a.close()
        b.close()


def evaluate_run(
    run: Path | str,
    n_episodes: int = 100,
    seed: int = DEFAULT_EVAL_SEED,
    deterministic: bool = True,
    spec: EnvSpec | str | dict[str, Any] | None = None,
    out: Path | str | None = None,
    replace: bool = False,
    progress: bool = False,
    labeller: Labeller | None = None,
) -> dict[str, Any]:
    """Evaluate a run folder's policy on ``spec`` (default: its training spec without training-only wrappers) and
    write the report to ``out`` (default: the run's eval.json, under the rules in the module docstring)."""
    check_int("n_episodes", n_episodes, 1)
    check_int("seed", seed, 0)
    folder = resolve_run_dir(run)
    r = load_run(folder)  # the model's SHA-256 is checked here, before anything else
    trained = trained_spec(r.meta)
    target = evaluation_spec(trained) if spec is None else EnvSpec.coerce(spec).validate()
    if target != trained and target != evaluation_spec(trained):
        _check_compatible(trained, target)
    if out is None and target != evaluation_spec(trained):
        raise RLCourseError(f"{target.label()} is not the spec the run is evaluated on ({evaluation_spec(trained).label()});"
                            " write this evaluation elsewhere with --out")
    dest = Path(out) if out else folder / "eval.json"
    if out is not None:
        check_writable_file(dest, what="--out")
    if out is None and dest.is_file() and not replace:
        old = eval_protocol(read_json(dest))
        new = protocol(target, n_episodes, seed, deterministic)
        if old != new:
            raise RLCourseError(f"{dest} was made under another protocol ({old['n_episodes']} episodes from seed "
                                f"{old['seed']} on {EnvSpec.from_json(old['env_spec']).label()}); write this "
                                "evaluation elsewhere with --out, or pass --replace")
    policy = load_policy(r)
    checkpoint = None if r.meta["algo"] == "random" else {
        "path": f"{folder.name}/{r.meta['model']['file']}", "sha256": r.meta["model"]["sha256"]}
    episodes = evaluate(policy, target, n_episodes=n_episodes, seed=seed, deterministic=deterministic,
                        progress=progress, labeller=labeller)
    doc = eval_report(r.run_id, target, episodes, policy=r.meta["algo"], deterministic=deterministic,
                      checkpoint=checkpoint)
    write_json(dest, doc, "eval")
    return doc
