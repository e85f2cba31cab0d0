"""The run writer: the one place that owns a run folder while any backend trains.

A backend (stable-baselines3, fastsac, a pixel SAC later) does only its algorithm's work. Everything else about a
run happens here, identically for all of them:

1. **Before any environment is built** (:meth:`RunWriter.preflight`): the output folder is writable, the run folder
   is free (or ``overwrite`` is set and it is a folder), and no other process trains into it.
2. **Staging and locking** (:meth:`RunWriter.open`): the run is written into ``<run_id>.partial/`` under an
   exclusive ``flock`` on ``<run_id>.partial/.lock`` (released by the kernel if the process dies). A second
   process asking for the same run gets a one-line error instead of sharing the folder.
3. **Resume** (:meth:`RunWriter.save_checkpoint`, :attr:`RunWriter.resume`): a checkpoint is the backend's files,
   written into a new folder ``resume/<steps>/``, then ``resume/state.json`` (counters, curve rows, the curriculum
   state, the folder and the SHA-256 of every file), replaced last; only then is the previous folder removed. A
   kill at any moment leaves the last complete checkpoint usable. On the next start the files are checked against
   their hashes before the backend loads them.
4. **The learning curve** (:meth:`RunWriter.tick`): named columns; a row every ``total/curve_points`` steps and at
   every in-training evaluation, which runs through the one evaluation loop; ``stop_at_success`` ends training.
5. **Finishing** (:meth:`RunWriter.finish`): model files, ``curve.json``, ``meta.json``, the final evaluation in
   ``eval.json``, a ``finished`` marker, then the rename to ``<run_id>/``. If the process dies after the marker and
   before the rename, the next start completes the rename instead of training again.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlcourse.core.errors import RLCourseError
from rlcourse.core.io import atomic_write, check_writable_dir, sha256, verify_sha256
from rlcourse.contract.config import TrainConfig
from rlcourse.contract.evaluate import eval_report, evaluate, progress_enabled, summarize
from rlcourse.contract.runs import CURVE_SCHEMA, META_SCHEMA, Run, file_entry, load_run, read_json, write_json
from rlcourse.envs.spec import EnvSpec

# The columns every curve has, in this order; backends add their own after them (see Backend.extra_columns).
CURVE_COLUMNS = ["timesteps", "wall_s", "ep_return_mean", "ep_length_mean", "success_rate", "fps",
                 "eval_success_rate", "eval_return_mean"]
def evaluation_spec(spec: EnvSpec) -> EnvSpec:
    """The spec a run is evaluated on by default: its training spec without the wrappers of kind "task" (a goal
    curriculum shapes what training asks for; a run is judged on the task's own goals)."""
    from rlcourse.envs.wrappers import wrapper_info

    return EnvSpec(id=spec.id, kwargs=dict(spec.kwargs),
                   wrappers=tuple(w for w in spec.wrappers if wrapper_info(w.name).kind != "task"))


@dataclass
class ResumeState:
    """What a checkpoint restores: the backend's files (already verified), its counters, the curve so far."""

    steps: int
    wall_clock_s: float
    resumed: int
    rows: list[list[Any]]
    files: dict[str, Path]
    extra: dict[str, Any] = field(default_factory=dict)
    curriculum: dict[str, Any] | None = None

    def file(self, name: str) -> Path:
        """A file the backend needs from the checkpoint (verified), or a one-line error if it is not there."""
        if name not in self.files:
            raise RLCourseError(f"the resume checkpoint has no {name}; delete the run's .partial folder to start again")
        return self.files[name]


@dataclass
class Tick:
    """The writer's answer to a backend after a batch of environment steps."""

    stop: bool = False  # stop_at_success was reached
    checkpoint: bool = False  # time to call save_checkpoint


class RunWriter:
    """Owns ``<out_dir>/<run_id>.partial`` for one training run (see the module docstring)."""

    def __init__(self, cfg: TrainConfig, algo_meta: dict[str, Any], extra_columns: list[str] | None = None):
        self.cfg = cfg
        self.spec = cfg.spec.validate()
        self.eval_spec = evaluation_spec(self.spec)
        self.algo_meta = algo_meta  # hyperparameters (effective, JSON), policy name, model file name
        self.run_id = cfg.resolved_run_id()
        self.root = Path(cfg.out_dir)
        self.final, self.partial = self.root / self.run_id, self.root / f"{self.run_id}.partial"
        self.resume_dir = self.partial / "resume"
        self.has_curriculum = any(w.name == "goal_curriculum" for w in self.spec.wrappers)
        self.columns = CURVE_COLUMNS + list(extra_columns or []) + (["difficulty"] if self.has_curriculum else [])
        self.curriculum: Any = None  # a CurriculumState shared by the run's environments, if the spec has one
        self.resume: ResumeState | None = None
        self.finished_already = False
        self.rows: list[list[Any]] = []
        self._lock_fd: int | None = None
        total = cfg.total_steps
        self.record_every = max(total // max(cfg.curve_points, 1), cfg.n_envs)
        self.ckpt_every = cfg.checkpoint_every or max(total // 10, cfg.n_envs)

    # -- before anything is built ------------------------------------------------------------------------------
    @staticmethod
    def preflight(cfg: TrainConfig) -> None:
        """Refuse, in one line, a run that could not be written: a read-only or non-folder output, a finished run
        in the way without ``overwrite``, a file where the run folder should be."""
        root = Path(cfg.out_dir)
        check_writable_dir(root)
        final = root / cfg.resolved_run_id()
        if final.exists() and not (final.is_dir() and (final / "meta.json").is_file()):
            raise RLCourseError(f"{final} exists and is not a run folder; move it away or choose another run id")
        if final.exists() and not cfg.overwrite:
            raise RLCourseError(f"run {final} already exists; pass --overwrite (overwrite=True) or choose another run id")
        partial = root / f"{cfg.resolved_run_id()}.partial"
        if partial.exists() and not partial.is_dir():
            raise RLCourseError(f"{partial} exists and is not a folder; move it away")

    # -- staging -----------------------------------------------------------------------------------------------
    def open(self) -> RunWriter:
        """Take the lock and prepare the staging folder (fresh, resumed, or finished but not yet renamed)."""
        self.preflight(self.cfg)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            self._prepare()
        except BaseException:
            self.close(failed=True)
            raise
        self.t0 = time.perf_counter()
        self.wall0 = self.resume.wall_clock_s if self.resume else 0.0
        self.steps0 = self.resume.steps if self.resume else 0
        self.rows = list(self.resume.rows) if self.resume else []
        steps = self.steps0
        self.next_row = (steps // self.record_every + 1) * self.record_every
        self.next_ckpt = (steps // self.ckpt_every + 1) * self.ckpt_every
        every = self.cfg.eval_every
        self.next_eval = (steps // every + 1) * every if every else None
        self.pending_eval: tuple[Any, Any] = (None, None)
        self.rows_at_total = 0
        self.bar = None
        if progress_enabled(self.cfg.progress) and not self.finished_already:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.cfg.total_steps, initial=steps, unit="step", desc=self.run_id, leave=False)
        return self

    def __enter__(self) -> RunWriter:
        return self.open()

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.close(failed=exc_type is not None)

    def _lock(self) -> None:
        """An exclusive ``flock`` on ``<run_id>.partial/.lock``; the kernel releases it if the process dies."""
        self.partial.mkdir(parents=True, exist_ok=True)
        path = self.partial / ".lock"
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RLCourseError(f"another process is training into {self.partial}; wait for it or choose another "
                                    "run id") from None
            try:  # the file may belong to a folder that was just renamed into place: lock the current one
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._lock_fd = fd
                return
            os.close(fd)
            self.partial.mkdir(parents=True, exist_ok=True)

    def close(self, failed: bool = False) -> None:
        """Release the lock. After a failure, a staging folder with nothing to resume is removed, so that a
        refused or crashed start leaves nothing behind (one with a checkpoint stays, for the resume)."""
        if getattr(self, "bar", None) is not None:
            self.bar.close()
            self.bar = None
        if failed and self._lock_fd is not None and self.partial.is_dir() and not (
                (self.resume_dir / "state.json").is_file() or (self.partial / "finished.json").is_file()):
            shutil.rmtree(self.partial, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _prepare(self) -> None:
        state_file = self.resume_dir / "state.json"
        marker = self.partial / "finished.json"
        stale = self.root / f".{self.run_id}.replaced"
        if stale.exists() and self.final.exists():  # a kill after an overwrite's last rename left the old run
            shutil.rmtree(stale, ignore_errors=True)
        if marker.is_file():
            try:
                identity = read_json(marker).get("identity")
                load_run(self.partial)  # every file written and verified: only the rename is missing
            except RLCourseError:
                identity = None  # an unusable staging folder: start again below
            if identity is not None and identity != self.cfg.identity():
                raise RLCourseError(f"{self.partial} holds a finished run with different settings that was never moved "
                                    "into place; move it away or use another run id")
            if identity is not None:
                self.finished_already = True
                return
        if state_file.is_file():
            saved = read_json(state_file)
            if not isinstance(saved, dict) or saved.get("identity") != self.cfg.identity():
                raise RLCourseError(f"{self.partial} holds an interrupted run with different settings; delete it or "
                                    "use another run id")
            try:
                if not re.fullmatch(r"\d{12}", saved["folder"]):
                    raise ValueError(f"folder {saved['folder']!r}")
                folder = self.resume_dir / saved["folder"]
                files = {}
                for name, digest in saved["files"].items():
                    if "/" in name or name.startswith("."):
                        raise ValueError(f"file name {name!r}")
                    files[name] = verify_sha256(folder / name, digest, what="resume checkpoint file")
                self.resume = ResumeState(steps=int(saved["steps"]), wall_clock_s=float(saved["wall_clock_s"]),
                                          resumed=int(saved["resumed"]) + 1, rows=list(saved["rows"]), files=files,
                                          extra=dict(saved.get("extra") or {}), curriculum=saved.get("curriculum"))
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                raise RLCourseError(f"the resume checkpoint in {self.partial} is malformed ({type(exc).__name__}: "
                                    f"{exc}); delete the folder to start again") from None
            return
        for child in self.partial.iterdir():  # a stale start without a checkpoint: clear it, keep our lock
            if child.name != ".lock":
                shutil.rmtree(child) if child.is_dir() else child.unlink()

    # -- environments ------------------------------------------------------------------------------------------
    def shared_curriculum(self) -> Any:
        """The run's one curriculum state (restored from the checkpoint on resume), or None without a curriculum."""
        from rlcourse.envs.wrappers import CurriculumState

        if self.has_curriculum and self.curriculum is None:
            self.curriculum = CurriculumState()
            if self.resume and self.resume.curriculum:
                self.curriculum.load_state_dict(self.resume.curriculum)
        return self.curriculum

    def env_fns(self) -> list[Callable[[], Any]]:
        """One constructor per parallel environment, all built from the run's spec and sharing one curriculum
        state (:meth:`shared_curriculum`), so the difficulty every environment sees is the same."""
        from rlcourse.envs.spec import make

        curriculum = self.shared_curriculum()
        return [lambda: make(self.spec, curriculum_state=curriculum) for _ in range(self.cfg.n_envs)]

    # -- the loop's bookkeeping --------------------------------------------------------------------------------
    def wall(self) -> float:
        return self.wall0 + time.perf_counter() - self.t0

    def tick(self, steps: int, policy: Callable[[], Any], stats: Callable[[], dict[str, Any]]) -> Tick:
        """Call after every batch of environment steps with the total so far. Runs a due evaluation (of
        ``policy()``), records a due curve row (with ``stats()``: the backend's columns by name), and says whether
        to stop and whether a checkpoint is due."""
        cfg, out = self.cfg, Tick()
        if self.bar is not None:
            self.bar.n = steps
            self.bar.refresh()
        evaluated = False
        if self.next_eval is not None and steps >= self.next_eval:
            evaluated = True
            agg = summarize(evaluate(policy(), self.eval_spec, cfg.curve_eval_episodes, cfg.eval_seed))
            self.pending_eval = (agg["success_rate"], agg["return_mean"])
            while self.next_eval <= steps:
                self.next_eval += cfg.eval_every
            out.stop = bool(cfg.stop_at_success) and agg["success_rate"] >= cfg.stop_at_success
        if evaluated or steps >= self.next_row or (steps >= cfg.total_steps and self.rows_at_total == 0):
            self._add_row(steps, stats())
            self.rows_at_total += steps >= cfg.total_steps
            while self.next_row <= steps:
                self.next_row += self.record_every
        if steps >= self.next_ckpt:
            out.checkpoint = steps < cfg.total_steps and not out.stop
            while self.next_ckpt <= steps:
                self.next_ckpt += self.ckpt_every
        return out

    def _add_row(self, steps: int, stats: dict[str, Any]) -> None:
        unknown = set(stats) - set(self.columns)
        if unknown:
            raise KeyError(f"curve values for unknown columns {sorted(unknown)}; columns are {self.columns}")
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        values = {**stats, "timesteps": int(steps), "wall_s": round(self.wall(), 3),
                  "fps": round((steps - self.steps0) / elapsed, 2), "eval_success_rate": self.pending_eval[0],
                  "eval_return_mean": self.pending_eval[1]}
        if self.curriculum is not None:
            values["difficulty"] = float(self.curriculum.difficulty)
        self.rows.append([values.get(c) for c in self.columns])
        self.pending_eval = (None, None)

    def save_checkpoint(self, steps: int, files: dict[str, Callable[[Path], None]], extra: dict[str, Any]) -> None:
        """Write a resume checkpoint: each ``files[name](tmp_path)`` fills one file atomically, then ``state.json``
        (with their SHA-256, the counters, the curve and ``extra``) is written last."""
        folder = f"{int(steps):012d}"
        target = self.resume_dir / folder
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        digests = {name: sha256(atomic_write(target / name, write)) for name, write in files.items()}
        write_json(self.resume_dir / "state.json", {
            "identity": self.cfg.identity(), "steps": int(steps), "wall_clock_s": self.wall(), "rows": self.rows,
            "resumed": self.resume.resumed if self.resume else 0, "folder": folder, "files": digests,
            "extra": extra, "curriculum": self.curriculum.state_dict() if self.curriculum is not None else None,
        })
        for old in self.resume_dir.iterdir():  # the new checkpoint is complete: older ones can go
            if old.is_dir() and old.name != folder:
                shutil.rmtree(old, ignore_errors=True)

    # -- finishing ---------------------------------------------------------------------------------------------
    def finish(self, steps: int, files: dict[str, tuple[str, Callable[[Path], None]]], policy: Any,
               device: str) -> Run:
        """Write the model files (``files[key] = (file name, writer)``; keys "model" and optionally
        "normalizer"), curve.json, meta.json, the final evaluation of ``policy`` and the finished marker; then
        rename the staging folder into place (replacing an old run only now, with ``overwrite``)."""
        cfg = self.cfg
        wall = self.wall()
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        paths = {key: atomic_write(self.partial / name, write) for key, (name, write) in files.items()}
        write_json(self.partial / "curve.json", {"schema": CURVE_SCHEMA, "run_id": self.run_id,
                                                 "columns": self.columns, "rows": self.rows}, "curve")
        meta = self.meta(steps, wall, device, paths)
        write_json(self.partial / "meta.json", meta, "meta")
        if cfg.final_eval_episodes > 0:
            episodes = evaluate(policy, self.eval_spec, cfg.final_eval_episodes, cfg.eval_seed,
                                progress=progress_enabled(cfg.progress))
            doc = eval_report(self.run_id, self.eval_spec, episodes, policy=cfg.algo, deterministic=True,
                              checkpoint={"path": f"{self.run_id}/{meta['model']['file']}",
                                          "sha256": meta["model"]["sha256"]})
            write_json(self.partial / "eval.json", doc, "eval")
        write_json(self.partial / "finished.json", {"run_id": self.run_id, "steps": int(steps),
                                                     "identity": self.cfg.identity()})
        return self.complete()

    def complete(self) -> Run:
        """Move the finished staging folder into place (the old run, with ``overwrite``, is removed only after).
        The ``finished.json`` marker goes with it and is removed last, so a kill at any point leaves either a
        marked staging folder (the next start only renames it) or the complete run."""
        shutil.rmtree(self.resume_dir, ignore_errors=True)
        old = None
        if self.final.exists():
            old = self.root / f".{self.run_id}.replaced"
            shutil.rmtree(old, ignore_errors=True)
            self.final.rename(old)
        (self.partial / ".lock").unlink(missing_ok=True)
        self.partial.rename(self.final)
        (self.final / "finished.json").unlink(missing_ok=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.close()
        return load_run(self.final)

    def meta(self, steps: int, wall: float, device: str, paths: dict[str, Path]) -> dict[str, Any]:
        """The meta.json document: what was run (the spec included), how, with what, on what, how fast."""
        from rlcourse.core.provenance import command_line, git_info, hardware, utc_now, versions

        cfg = self.cfg
        return {
            "schema": META_SCHEMA,
            "run_id": self.run_id,
            "algo": cfg.algo,
            "env_id": cfg.env_id,
            "env_spec": self.spec.to_json(),
            "seed": cfg.seed,
            "total_steps": cfg.total_steps,
            "steps_done": int(steps),
            "n_envs": cfg.n_envs,
            "her": cfg.her,
            "her_kwargs": {"n_sampled_goal": 4, "goal_selection_strategy": "future", **cfg.her_kwargs}
            if cfg.her else None,
            "hyperparameters": self.algo_meta["hyperparameters"],
            "policy": self.algo_meta["policy"],
            "device": device,
            "versions": versions(),
            "git": git_info(),
            "hardware": hardware(),
            "wall_clock_s": round(wall, 3),
            "steps_per_s": round(steps / wall, 2) if wall > 0 and steps > 0 else None,
            "command": cfg.command or command_line(),
            "created_utc": utc_now(),
            "resumed": self.resume.resumed if self.resume else 0,
            "config": cfg.portable(),
            "model": file_entry(paths.get("model")),
            "normalizer": file_entry(paths.get("normalizer")),
        }
