"""The one training entry point: :func:`train` turns a :class:`~rlcourse.contract.config.TrainConfig` into a
complete run folder, whatever the algorithm.

Everything is checked before any environment is built: the config's numbers, the environment spec, the backend's
hyperparameters, the output folder. The backend (:mod:`rlcourse.algos`) then trains through a
:class:`~rlcourse.contract.writer.RunWriter`, which owns the run folder: staging, the lock, resume checkpoints,
the learning curve, meta.json, the final evaluation and the atomic rename. Running the same command again after a
kill resumes from the last checkpoint. :func:`train_many` trains several runs in parallel processes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rlcourse.core.errors import RLCourseError
from rlcourse.core.threads import torch_threads
from rlcourse.contract.config import DEFAULT_EVAL_SEED, TrainConfig, validate_common
from rlcourse.contract.evaluate import eval_report, evaluate
from rlcourse.contract.runs import Run, load_run
from rlcourse.contract.writer import RunWriter
from rlcourse.algos.base import get_backend


def validate_config(cfg: TrainConfig, preflight: bool = True) -> None:
    """Every check that needs no environment: the config's fields, the spec, the backend's hyperparameters and
    (with ``preflight``) the output folder. Bad input ends here, in one line, before anything is built or
    written."""
    backend = get_backend(cfg.algo)
    validate_common(cfg)
    backend.validate(cfg)
    if preflight:
        RunWriter.preflight(cfg)


def train(cfg: TrainConfig) -> Run:
    """Train (or resume, or finish renaming) the run ``cfg`` describes and return its complete folder."""
    validate_config(cfg)
    backend = get_backend(cfg.algo)
    algo_meta = {"hyperparameters": backend.hyperparameters(cfg), "policy": backend.policy_name(cfg)}
    writer = RunWriter(cfg, algo_meta, backend.extra_columns(cfg))
    with writer:
        if writer.finished_already:
            return writer.complete()
        with torch_threads(cfg.torch_threads):
            return backend.train(cfg, writer)


def random_run(
    env_id: str,
    n_episodes: int = 100,
    seed: int = 0,
    out_dir: str | Path | None = None,
    run_id: str | None = None,
    overwrite: bool = False,
    progress: bool = False,
    eval_seed: int | None = None,
    command: str | None = None,
) -> Run:
    """The uniform-random baseline as a run folder (meta.json with ``algo: random`` and no model, plus eval.json),
    so that it is read, compared and plotted exactly like a trained policy.

    It is evaluated on the same episode seeds as every trained policy (``eval_seed``, default 1000, onwards); the
    random actions of episode ``i`` are seeded with that episode's seed, so ``seed`` only names the run."""
    from rlcourse.contract.config import check_int

    from rlcourse.core.paths import checkpoints_dir

    eval_seed = DEFAULT_EVAL_SEED if eval_seed is None else eval_seed
    out_dir = checkpoints_dir() if out_dir is None else out_dir
    check_int("n_episodes", n_episodes, 1)
    cfg = TrainConfig(algo="random", env_id=env_id, seed=seed, total_steps=1, out_dir=str(out_dir),
                      run_id=run_id or f"random_{env_id}_seed{seed}", final_eval_episodes=n_episodes,
                      eval_seed=eval_seed, overwrite=overwrite, command=command)
    validate_common(cfg)
    RunWriter.preflight(cfg)
    writer = RunWriter(cfg, {"hyperparameters": {}, "policy": "random"})
    with writer:
        t0 = time.perf_counter()
        episodes = evaluate("random", writer.eval_spec, n_episodes, seed=eval_seed, progress=progress)
        from rlcourse.contract.runs import write_json

        write_json(writer.partial / "eval.json",
                   eval_report(writer.run_id, writer.eval_spec, episodes, "random", deterministic=False), "eval")
        meta = writer.meta(0, time.perf_counter() - t0, "cpu", {})
        meta["total_steps"] = 0
        write_json(writer.partial / "meta.json", meta, "meta")
        return writer.complete()


def _train_in_worker(cfg: TrainConfig, report: Any) -> None:
    """A spawned worker of :func:`train_many`: train one run and send back a one-line error if it fails (it ends
    early, and the run resumes next time, if the process that started it disappears: :mod:`rlcourse.core.procs`)."""
    try:
        train(cfg)
    except BaseException as exc:
        if not isinstance(exc, (RLCourseError, KeyboardInterrupt)):
            import traceback

            traceback.print_exc()  # an unexpected error: the whole story goes to the worker's stderr
        report.send(f"{type(exc).__name__}: {exc}")
        raise SystemExit(1) from None
    finally:
        report.close()


def train_many(configs: list[TrainConfig], jobs: int = 1, skip_existing: bool = True) -> list[Run]:
    """Train several runs, ``jobs`` at a time in separate processes (each run keeps its own ``torch_threads``).

    Every config is validated before anything starts. With ``skip_existing`` a run whose folder is already complete
    is loaded instead of retrained; an interrupted one resumes. Returns the runs in the order of ``configs``.
    The workers are started with "spawn", which re-imports the calling script: in a script, call this under
    ``if __name__ == "__main__":`` (notebooks need nothing). An interrupt or a failed run stops every worker, and
    workers exit on their own if this process is killed; the unfinished runs resume when called again."""
    ids = [cfg.resolved_run_id() for cfg in configs]
    if len(set(ids)) != len(ids):
        raise RLCourseError(f"train_many got the same run id twice: {sorted(i for i in ids if ids.count(i) > 1)}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise RLCourseError(f"jobs must be a positive integer, got {jobs!r}")
    todo = [c for c, i in zip(configs, ids) if not (skip_existing and (Path(c.out_dir) / i / "meta.json").is_file())]
    for cfg in configs:
        validate_config(cfg, preflight=cfg in todo)
    if todo and (jobs == 1 or len(todo) == 1):
        for cfg in todo:
            train(cfg)
    elif todo:
        _run_workers(todo, jobs)
    return [load_run(Path(c.out_dir) / i) for c, i in zip(configs, ids)]


def _run_workers(todo: list[TrainConfig], jobs: int) -> None:
    """Train ``todo`` in spawned processes, ``jobs`` at a time. Whatever ends this early (a failed run, Ctrl-C, a
    notebook's stop button) terminates the workers still running before it propagates."""
    from contextlib import closing

    from rlcourse.core.procs import in_processes

    with closing(in_processes(todo, _train_in_worker, jobs, name=lambda c: f"train {c.resolved_run_id()}")) as done:
        for cfg, code, message in done:
            if code != 0:
                raise RLCourseError(f"run {cfg.resolved_run_id()} failed: "
                                    f"{message or f'its worker exited with code {code}'}")
