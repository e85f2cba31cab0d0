"""Sweeps: a grid of trainings and evaluations, run on a local process pool or on a Ray cluster.

A sweep is a small spec (a YAML file or a dict)::

    name: push_obs_noise                 # letters, digits, "_" and "-"; names the summary
    out: runs/sweeps/push_obs_noise      # evaluations and summary.json (relative paths: the project root)
    grid:                                # every combination is one grid point
      seed: [0, 1, 2]
      sigma: [0.0, 0.01, 0.02]
    train:                               # optional: one TrainConfig per grid point; equal ones train once
      recipe: fast                       # optional: a recipe of rlcourse.training.recipes
      env_id: FetchPush-v4
      seed: "{seed}"
      total_steps: 200000
      run_id: "fastsac_her_FetchPush-v4_seed{seed}"
      out_dir: checkpoints
    evaluate:                            # optional: one evaluation per grid point
      run: "{run}"                       # a run folder; {run} is the folder this grid point's training writes
      spec: {id: FetchPush-v4, wrappers: ["obs_noise:sigma={sigma}"]}
      episodes: 100                      # optional: 100; seed optional: the course's evaluation seed
      labeller: rlcourse.labs.pick:stratum_labeller   # optional; only names inside rlcourse

``{key}`` in any string is replaced by the grid point's value; a string that is only ``{key}`` becomes the value
itself (a number stays a number). Everything is checked before anything runs: unknown keys, empty or repeated grid
values, placeholders without a grid key, invalid training configs and environment specs are one-line errors.

Execution. :func:`run_sweep` first trains what is missing (a run folder with ``meta.json`` is finished; an
interrupted run resumes, as with :func:`~rlcourse.training.train.train_many`), then evaluates what is missing (an
evaluation file under the same protocol is finished) and writes ``summary.json`` (schema ``sweep``). Each job runs
in its own process: on the local backend a spawned process per job, ``jobs`` at a time; on the Ray backend a Ray
task per job, on a cluster joined by ``address`` or on a local instance started for the sweep. A job that fails,
raises or kills its process is reported in one line and the sweep goes on; evaluations of a failed training are
skipped. Running the same command again finishes an interrupted sweep.
"""

from __future__ import annotations

import importlib
import itertools
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rlcourse.core.errors import RLCourseError

SPEC_KEYS = {"name", "out", "grid", "train", "evaluate"}
EVAL_KEYS = {"run", "spec", "episodes", "seed", "labeller"}
BACKENDS = ("local", "ray")
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class Job:
    """One unit of work: a training (``kind="train"``, ``payload`` a TrainConfig) or an evaluation (``kind="eval"``,
    ``payload`` the arguments of :func:`~rlcourse.training.evaluation.evaluate_run`)."""

    kind: str
    id: str
    payload: Any
    points: list[dict[str, Any]] = field(default_factory=list)  # the grid points it serves
    needs: str | None = None  # an evaluation's training job, if the sweep trains it


# ---------------------------------------------------------------------------------------------------------------
# Reading a spec
# ---------------------------------------------------------------------------------------------------------------


def load_spec(path: Path | str) -> dict[str, Any]:
    """A sweep spec from a YAML (or JSON) file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise RLCourseError(f"sweep spec {path} not found")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RLCourseError(f"sweep spec {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return doc


def grid_points(grid: Any) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in the order the keys and values are listed."""
    if not isinstance(grid, dict) or not grid:
        raise RLCourseError("a sweep's grid must map at least one key to a list of values")
    for key, values in grid.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise RLCourseError(f"grid key {key!r} must be an identifier")
        if not isinstance(values, list) or not values:
            raise RLCourseError(f"grid key {key!r} must list at least one value")
        if len({repr(v) for v in values}) != len(values):
            raise RLCourseError(f"grid key {key!r} lists a value twice")
        for v in values:
            if not isinstance(v, (str, int, float, bool)) or (isinstance(v, float) and v != v):
                raise RLCourseError(f"grid key {key!r}: values must be numbers, strings or booleans, got {v!r}")
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def fill(template: Any, values: dict[str, Any]) -> Any:
    """``template`` with ``{key}`` replaced by ``values[key]`` in every string (recursively)."""
    if isinstance(template, str):
        whole = _FIELD.fullmatch(template)
        if whole:
            return _value(whole.group(1), values)
        return _FIELD.sub(lambda m: str(_value(m.group(1), values)), template)
    if isinstance(template, list):
        return [fill(t, values) for t in template]
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    return template


def _value(key: str, values: dict[str, Any]) -> Any:
    if key not in values:
        raise RLCourseError(f"placeholder {{{key}}} names no grid key (grid keys: {', '.join(values) or 'none'})")
    return values[key]


def _labeller(name: str | None) -> Callable[..., str] | None:
    """A labeller named ``module:function`` inside the rlcourse package."""
    if name is None:
        return None
    module, _, attr = str(name).partition(":")
    if not module.startswith("rlcourse.") or not attr:
        raise RLCourseError(f"labeller {name!r} must be rlcourse.<module>:<function>")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        raise RLCourseError(f"labeller {name!r} not found") from None


def plan(spec: dict[str, Any]) -> tuple[dict[str, Any], list[Job], list[Job]]:
    """Check ``spec`` and expand it into training and evaluation jobs. Returns (normalised header, trains, evals)."""
    from rlcourse.core.paths import project_root
    from rlcourse.contract.config import DEFAULT_EVAL_SEED, MAX_SEED, TrainConfig, check_int
    from rlcourse.envs.spec import EnvSpec
    from rlcourse.training import recipes
    from rlcourse.training.train import validate_config

    if not isinstance(spec, dict):
        raise RLCourseError("a sweep spec must be a mapping with name, out, grid and train and/or evaluate")
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise RLCourseError(f"unknown sweep key {unknown[0]!r}; keys are {', '.join(sorted(SPEC_KEYS))}")
    for key in ("name", "out", "grid"):
        if key not in spec:
            raise RLCourseError(f"a sweep spec needs {key!r}")
    if not isinstance(spec["name"], str) or not _NAME.fullmatch(spec["name"]):
        raise RLCourseError(f"sweep name {spec['name']!r} must be letters, digits, '_' or '-'")
    if "train" not in spec and "evaluate" not in spec:
        raise RLCourseError("a sweep needs train, evaluate or both")
    if not isinstance(spec["out"], str) or not spec["out"]:
        raise RLCourseError(f"a sweep's out must be a folder path, got {spec['out']!r}")
    out = Path(spec["out"])
    out = out if out.is_absolute() else project_root() / out
    if out.exists() and not out.is_dir():
        raise RLCourseError(f"sweep out {out} exists and is not a folder")
    points = grid_points(spec["grid"])

    trains: dict[str, Job] = {}
    run_of: list[str | None] = []  # per grid point: the run folder its training writes, and that job's id
    train_of: list[str | None] = []
    if "train" in spec:
        if not isinstance(spec["train"], dict):
            raise RLCourseError("train must be a mapping of TrainConfig fields (and optionally recipe)")
        for point in points:
            fields = fill(spec["train"], point)
            recipe = fields.pop("recipe", None)
            if "out_dir" in fields and not Path(str(fields["out_dir"])).is_absolute():
                fields["out_dir"] = str(project_root() / str(fields["out_dir"]))
            try:
                if recipe is not None:
                    need = [k for k in ("env_id", "seed", "total_steps") if k not in fields]
                    if need:
                        raise RLCourseError(f"train with a recipe needs {', '.join(need)}")
                    cfg = recipes.recipe_config(recipe, fields.pop("env_id"), fields.pop("seed"),
                                                fields.pop("total_steps"), **fields)
                else:
                    cfg = TrainConfig(**fields)
            except TypeError as exc:
                raise RLCourseError(f"train: {exc}") from None
            job_id = cfg.resolved_run_id()
            folder = str((Path(cfg.out_dir) / job_id).resolve())
            if job_id in trains:
                if trains[job_id].payload != cfg:
                    raise RLCourseError(f"two grid points train run {job_id!r} with different settings; put the "
                                        "grid keys they differ in into run_id")
            else:
                validate_config(cfg, preflight=False)
                trains[job_id] = Job("train", job_id, cfg)
            trains[job_id].points.append(point)
            run_of.append(folder)
            train_of.append(job_id)
    else:
        run_of, train_of = [None] * len(points), [None] * len(points)

    evals: list[Job] = []
    if "evaluate" in spec:
        ev = spec["evaluate"]
        if not isinstance(ev, dict) or "run" not in ev or "spec" not in ev:
            raise RLCourseError("evaluate needs run and spec")
        bad = sorted(set(ev) - EVAL_KEYS)
        if bad:
            raise RLCourseError(f"unknown evaluate key {bad[0]!r}; keys are {', '.join(sorted(EVAL_KEYS))}")
        _labeller(ev.get("labeller"))
        for point, folder, train_id in zip(points, run_of, train_of):
            e = fill(ev, {**point, **({"run": folder} if folder else {})})
            s = e["spec"]
            if isinstance(s, dict):
                extra = sorted(set(s) - {"id", "kwargs", "wrappers"})
                if extra or "id" not in s:
                    raise RLCourseError(f"evaluate spec needs id (and optionally kwargs, wrappers), got {sorted(s)}")
                env_spec = EnvSpec(s["id"], dict(s.get("kwargs") or {})).with_wrappers(*(s.get("wrappers") or []))
            else:
                env_spec = EnvSpec.coerce(s)
            env_spec = env_spec.validate()
            run = Path(str(e["run"]))
            run = (run if run.is_absolute() else project_root() / run).resolve()
            episodes = check_int("evaluate episodes", e.get("episodes", 100), 1, 100_000)
            first = check_int("evaluate seed", e.get("seed", DEFAULT_EVAL_SEED), 0, MAX_SEED - episodes)
            name = "eval_" + "_".join(f"{k}-{_slug(v)}" for k, v in point.items())
            job = Job("eval", name, {"run": str(run), "spec": env_spec.to_json(),
                                      "n_episodes": episodes, "seed": first, "labeller": e.get("labeller"),
                                      "out": str(out / "evals" / f"{name}.json")}, [point])
            job.needs = train_id if folder is not None and str(run) == folder else None
            evals.append(job)
    header = {"name": spec["name"], "out": str(out), "grid": spec["grid"]}
    return header, list(trains.values()), evals


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", str(value)).strip("-") or "x"


# ---------------------------------------------------------------------------------------------------------------
# Running one job (in a worker process: local pool or Ray)
# ---------------------------------------------------------------------------------------------------------------


def execute(job: Job) -> dict[str, Any]:
    """Run one job and return its record; never raises (a failure is a record with ``status: failed``)."""
    try:
        if job.kind == "train":
            from rlcourse.training.train import train

            run = train(job.payload)
            result = {"path": _shown(run.path), **_success(run.eval)}
        else:
            import torch

            from rlcourse.training.evaluation import evaluate_run

            torch.set_num_threads(1)
            p = dict(job.payload)
            doc = evaluate_run(p["run"], n_episodes=p["n_episodes"], seed=p["seed"], spec=p["spec"], out=p["out"],
                               replace=True, labeller=_labeller(p["labeller"]))
            result = {"path": _shown(p["out"]), **_success(doc)}
        return {"id": job.id, "kind": job.kind, "status": "done", **result}
    except Exception as exc:  # reported in one line; the sweep goes on
        if not isinstance(exc, RLCourseError):
            traceback.print_exc()
        return failed(job, f"{type(exc).__name__}: {exc}")


def _shown(path: Path | str) -> str:
    """A job's output as the summary records it: relative to the project root when inside it (a committed summary
    then works in any checkout; resolve it with :func:`job_path`), else absolute."""
    from rlcourse.core.paths import project_root

    try:
        return Path(path).resolve().relative_to(project_root().resolve()).as_posix()
    except ValueError:
        return str(path)


def job_path(record: dict[str, Any]) -> Path:
    """The output of a job record of ``summary.json`` (a run folder or an evaluation file) as a path."""
    from rlcourse.core.paths import project_root

    path = Path(record["path"])
    return path if path.is_absolute() else project_root() / path


def failed(job: Job, message: str) -> dict[str, Any]:
    return {"id": job.id, "kind": job.kind, "status": "failed", "error": " ".join(str(message).split())[:500]}


def _success(doc: dict[str, Any] | None) -> dict[str, Any]:
    if not doc:
        return {}
    agg = doc["aggregate"]
    out = {"n_episodes": agg["n_episodes"], "success_rate": agg["success_rate"], "success_ci95": agg["success_ci95"]}
    if doc.get("strata"):
        out["strata"] = {k: {"n_episodes": v["n_episodes"], "success_rate": v["success_rate"]}
                         for k, v in doc["strata"].items()}
    return out


def finished(job: Job) -> dict[str, Any] | None:
    """The record of a job whose output already exists (a complete run folder; an evaluation file made under the
    same protocol), else None."""
    from rlcourse.contract.evaluate import protocol
    from rlcourse.contract.runs import load_run, read_json
    from rlcourse.envs.spec import EnvSpec
    from rlcourse.training.evaluation import eval_protocol

    try:
        if job.kind == "train":
            folder = Path(job.payload.out_dir) / job.id
            if not (folder / "meta.json").is_file():
                return None
            run = load_run(folder)
            return {"id": job.id, "kind": "train", "status": "reused", "path": _shown(folder), **_success(run.eval)}
        p = job.payload
        if not Path(p["out"]).is_file():
            return None
        doc = read_json(p["out"], "eval")
        want = protocol(EnvSpec.from_json(p["spec"]), p["n_episodes"], p["seed"], True)
        if eval_protocol(doc) != want or (p["labeller"] and "strata" not in doc):
            return None
        return {"id": job.id, "kind": "eval", "status": "reused", "path": _shown(p["out"]), **_success(doc)}
    except RLCourseError:
        return None  # a damaged output is made again


# ---------------------------------------------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------------------------------------------


def _worker(job: Job, conn: Any) -> None:
    conn.send(execute(job))
    conn.close()


def run_local(jobs_: list[Job], jobs: int) -> list[dict[str, Any]]:
    """Each job in a spawned process, ``jobs`` at a time (:func:`rlcourse.core.procs.in_processes`); a process that
    dies is a failed job, not a failed sweep."""
    from contextlib import closing

    from rlcourse.core.procs import in_processes

    records = {}
    with closing(in_processes(jobs_, _worker, jobs, name=lambda j: f"sweep {j.id}")) as done:
        for job, code, record in done:
            records[job.id] = record or failed(job, f"its process exited with code {code}")
    return [records[j.id] for j in jobs_]


def run_ray(jobs_: list[Job], address: str | None, jobs: int, cpus_per_job: float = 1.0,
            gpus_per_job: float = 0.0) -> list[dict[str, Any]]:
    """Each job as a Ray task (no retries), on the cluster at ``address`` or on a local instance with ``jobs`` CPUs.
    Ray hides the GPUs from a task that asks for none, so a sweep that trains on GPUs sets ``gpus_per_job``."""
    ray = ray_module()
    started = not ray.is_initialized()
    if started:
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False,
                         object_store_memory=200 * 1024 * 1024)
        except Exception as exc:  # no cluster at that address, or Ray cannot start here
            raise RLCourseError(f"cannot start or join Ray ({address or 'a local instance'}): "
                                f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None
    try:
        task = ray.remote(num_cpus=cpus_per_job, num_gpus=gpus_per_job, max_retries=0)(execute)
        refs = {task.remote(job): job for job in jobs_}
        records: dict[str, dict[str, Any]] = {}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                job = refs.pop(ref)
                try:
                    records[job.id] = ray.get(ref)
                except Exception as exc:  # the worker died (WorkerCrashedError) or Ray could not run the task
                    records[job.id] = failed(job, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        return [records[j.id] for j in jobs_]
    finally:
        if started:
            ray.shutdown()


def ray_module() -> Any:
    """Ray, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RLCourseError("--backend ray needs Ray: pip install 'ray[default]' (make setup installs it)") from None
    return ray


# ---------------------------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------------------------


def run_sweep(spec: dict[str, Any] | Path | str, backend: str = "local", jobs: int = 1, address: str | None = None,
              progress: Callable[[str], None] | None = print, cpus_per_job: float = 1.0,
              gpus_per_job: float = 0.0) -> dict[str, Any]:
    """Run (or finish) a sweep and write ``<out>/summary.json``; returns the summary. A rerun that finds every job
    finished keeps the summary already there (its command, commit and hardware are those of the run that produced
    the results) and returns it. ``cpus_per_job`` and
    ``gpus_per_job`` are what each Ray task asks for (the local backend runs ``jobs`` processes at a time)."""
    from rlcourse.core.provenance import command_line, git_info, hardware, utc_now, versions
    from rlcourse.contract.runs import read_json, write_json

    if backend not in BACKENDS:
        raise RLCourseError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise RLCourseError(f"jobs must be a positive integer, got {jobs!r}")
    if address is not None and backend != "ray":
        raise RLCourseError("--address joins a Ray cluster; use it with --backend ray")
    for name, value in (("cpus_per_job", cpus_per_job), ("gpus_per_job", gpus_per_job)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1024:
            raise RLCourseError(f"{name} must be a number in [0, 1024], got {value!r}")
    if backend == "ray":
        ray_module()
    header, trains, evals = plan(load_spec(spec) if isinstance(spec, (str, Path)) else spec)
    summary_path = Path(header["out"]) / "summary.json"
    old = read_json(summary_path, "sweep") if summary_path.exists() else None
    if old is not None and old["name"] != header["name"]:
        raise RLCourseError(f"{summary_path} belongs to sweep {old['name']!r}; choose another out folder")
    say = progress or (lambda _: None)
    runner = (lambda todo: run_local(todo, jobs)) if backend == "local" else (lambda todo: run_ray(todo, address, jobs, cpus_per_job, gpus_per_job))

    records: dict[str, dict[str, Any]] = {}
    ran = False
    for stage in (trains, evals):
        todo = []
        for job in stage:
            if job.needs and records.get(job.needs, {}).get("status") == "failed":
                records[job.id] = {"id": job.id, "kind": job.kind, "status": "skipped",
                                   "error": f"its training {job.needs} failed"}
            elif (rec := finished(job)) is not None:
                records[job.id] = rec
            else:
                todo.append(job)
        if todo:
            ran = True
            say(f"sweep {header['name']}: {len(todo)} {stage[0].kind} job(s) on the {backend} backend")
            for rec in runner(todo):
                records[rec["id"]] = rec
                if rec["status"] == "failed":
                    say(f"  {rec['id']} failed: {rec['error']}")
    rows = [{**records[j.id], "points": j.points} for j in trains + evals]
    if (not ran and old is not None and [r["id"] for r in old["jobs"]] == [r["id"] for r in rows]
            and all(r["status"] in ("done", "reused") for r in old["jobs"] + rows)):
        # nothing left to do: the summary of the run that produced these results stays, with its provenance
        say(f"sweep {header['name']}: every job was finished; kept {summary_path}")
        return old
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "reused", "failed", "skipped")}
    doc = {"schema": "rlcourse.sweep/1", "name": header["name"], "created_utc": utc_now(), "command": command_line(),
           "hardware": hardware(), "versions": versions(), "git": git_info(), "backend": backend,
           "grid": header["grid"], "jobs": rows, "counts": counts}
    write_json(summary_path, doc, "sweep")
    say(f"sweep {header['name']}: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f"; wrote {summary_path}")
    return doc
