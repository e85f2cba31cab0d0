"""Evaluating a finished run: on the spec it was trained on, or on another one (a stress test, a sweep).

:func:`evaluate_run` loads the run (its model verified against meta.json), builds the requested spec and runs the
one evaluation loop. A run's own ``eval.json`` is only replaced by an evaluation under the same protocol (same spec,
episodes, first seed, deterministic flag) unless ``replace`` is set; evaluations on other specs go to ``out``, which
may not lie inside a run folder, may not be anything but a plain file, and is overwritten only with ``replace``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlcourse.core.errors import RLCourseError
from rlcourse.core.io import check_writable_file
from rlcourse.contract.config import DEFAULT_EVAL_SEED, MAX_SEED, check_int
from rlcourse.contract.evaluate import Labeller, eval_report, evaluate, protocol
from rlcourse.contract.runs import Run, env_spec_json, read_json, resolve_run_dir, write_json
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


def _check_same_protocol(path: Path, new: dict[str, Any]) -> None:
    """A run's own eval.json is replaced only by an evaluation under the same protocol."""
    try:
        old = eval_protocol(read_json(path, "eval"))
    except RLCourseError as exc:
        raise RLCourseError(f"{exc}; pass --replace to write a new report over it") from None
    if old != new:
        raise RLCourseError(f"{path} was made under another protocol ({old['n_episodes']} episodes from seed "
                            f"{old['seed']} on {EnvSpec.from_json(old['env_spec']).label()}); write this "
                            "evaluation elsewhere with --out, or pass --replace")


def check_report_destination(dest: Path, replace: bool) -> None:
    """A report file outside a run's own eval.json (``--out`` of eval and repro): never inside a run folder (its model, meta or curve), never over something that is not
    a plain file, and over an existing file only with ``replace``."""
    check_writable_file(dest, what="--out")
    parent = dest.parent if dest.parent.exists() else None
    if parent is not None and ((parent / "meta.json").is_file() or parent.name.endswith(".partial")):
        raise RLCourseError(f"--out {dest} is inside the run folder {parent}; write evaluations outside run folders")
    if dest.is_symlink() or (dest.exists() and not dest.is_file()):
        raise RLCourseError(f"--out {dest} exists and is not a plain file")
    if dest.exists() and not replace:
        raise RLCourseError(f"--out {dest} exists; pass --replace to overwrite it, or choose another file")


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
    check_int("n_episodes", n_episodes, 1, 100_000)
    check_int("seed", seed, 0, MAX_SEED - n_episodes)
    folder = resolve_run_dir(run)
    r = Run(path=folder, meta=read_json(folder / "meta.json", "meta"), eval=None, curve=None)
    for key in ("model", "normalizer"):  # checked before anything else; a damaged eval.json does not block this
        if r.meta.get(key):
            r.verified(key)
    trained = trained_spec(r.meta)
    own_spec = evaluation_spec(trained)
    target = own_spec if spec is None else EnvSpec.coerce(spec).validate()
    if target != trained and target != own_spec:
        _check_compatible(trained, target)
    own = folder / "eval.json"
    if out is not None and not str(out):
        raise RLCourseError("--out is empty; give a file name")
    dest = own if out is None else Path(out)
    if dest.resolve() == own.resolve():
        if target != own_spec:
            raise RLCourseError(f"{target.label()} is not the spec the run is evaluated on ({own_spec.label()}); "
                                "write this evaluation elsewhere with --out")
        if own.exists() and not replace:
            _check_same_protocol(own, protocol(target, n_episodes, seed, deterministic))
    else:
        check_report_destination(dest, replace)
    policy = load_policy(r)
    checkpoint = None if r.meta["algo"] == "random" else {
        "path": f"{folder.name}/{r.meta['model']['file']}", "sha256": r.meta["model"]["sha256"]}
    episodes = evaluate(policy, target, n_episodes=n_episodes, seed=seed, deterministic=deterministic,
                        progress=progress, labeller=labeller)
    doc = eval_report(r.run_id, target, episodes, policy=r.meta["algo"], deterministic=deterministic,
                      checkpoint=checkpoint)
    write_json(dest, doc, "eval")
    return doc
