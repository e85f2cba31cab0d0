"""Run folders and their JSON files: the experiment contract on disk.

A run lives in one folder ``<root>/<run_id>/``::

    model.zip | model.pt   the model (stable-baselines3 zip, or fastsac tensors)
    obs_normalizer.pkl     observation statistics, for runs trained with normalize_obs
    meta.json              what was trained (the environment spec included), how, with what, on what, how fast
    eval.json              per-episode records and aggregates (stratified when episodes carry labels)
    curve.json             the learning curve: named columns, one row per record

While training, the folder is ``<run_id>.partial/`` (with ``resume/`` for periodic checkpoints); it is renamed
only when everything is written, so a folder without ``.partial`` is always complete. Every model file is listed
in ``meta.json`` with its SHA-256 and is checked before anything deserialises it. Schema versions: ``meta/1`` runs
(before environment specs) still load; their spec is the bare ``env_id``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from rlcourse.core.errors import RLCourseError
from rlcourse.core.io import dump_json, load_json, sha256, verify_sha256

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schemas" / "run.schema.json"
KINDS = ("meta", "eval", "curve", "throughput", "comparison", "benchmark", "repro", "sweep")  # the last five are not run files
META_SCHEMA = "rlcourse.meta/2"
EVAL_SCHEMA = "rlcourse.eval/2"
CURVE_SCHEMA = "rlcourse.curve/1"
NORMALIZER_FILE = "obs_normalizer.pkl"
_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The run-artifact JSON Schema (draft 2020-12)."""
    return json.loads(SCHEMA_FILE.read_text())


def validate(doc: dict[str, Any], kind: str) -> None:
    """Raise :class:`RLCourseError` if ``doc`` does not satisfy the ``kind`` schema (one of :data:`KINDS`)."""
    import jsonschema

    if kind not in KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}; expected one of {KINDS}")
    full = dict(schema())
    full["$ref"] = f"#/$defs/{kind}"
    errors = sorted(jsonschema.Draft202012Validator(full).iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.path) or "<top>"
        raise RLCourseError(f"{kind} document fails the schema at {where}: {e.message}")


def write_json(path: Path | str, doc: Any, kind: str | None = None) -> Path:
    """Write ``doc`` as strict JSON, atomically; validate it against the ``kind`` schema first when given."""
    if kind is not None:
        validate(doc, kind)
    return dump_json(path, doc)


def read_json(path: Path | str, kind: str | None = None) -> dict[str, Any]:
    """Read a strict-JSON artifact and validate it when ``kind`` is given."""
    doc = load_json(path)
    if kind is not None:
        try:
            validate(doc, kind)
        except RLCourseError as exc:
            raise RLCourseError(f"{path}: {exc}") from None
    return doc


def check_run_id(run_id: str) -> str:
    """A run id is a folder name: letters, digits, ``_ . -`` only."""
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id) or run_id in {".", ".."} \
            or run_id.endswith(".partial") or len(run_id) > 200:
        raise RLCourseError(f"invalid run id {str(run_id)[:80]!r}: use up to 200 letters, digits, '_', '.', '-' "
                            "(not ending in .partial)")
    return run_id


def default_run_id(algo: str, env_id: str, seed: int, her: bool = False) -> str:
    """``{algo}[_her]_{EnvId}_seed{N}``, the naming the book uses for checkpoints."""
    return f"{algo}{'_her' if her else ''}_{env_id}_seed{seed}"


def file_entry(path: Path | None) -> dict[str, Any] | None:
    """The ``{"file", "sha256", "bytes"}`` record of a run file (None for no file)."""
    return None if path is None else {"file": path.name, "sha256": sha256(path), "bytes": path.stat().st_size}


def env_spec_json(meta: dict[str, Any]) -> dict[str, Any]:
    """The environment spec a run was trained on, as JSON: recorded since ``meta/2``, the bare id before."""
    return meta.get("env_spec") or {"id": meta["env_id"], "kwargs": {}, "wrappers": []}


@dataclass(frozen=True)
class Run:
    """A complete run folder, loaded and checked."""

    path: Path
    meta: dict[str, Any]
    eval: dict[str, Any] | None
    curve: dict[str, Any] | None

    @property
    def run_id(self) -> str:
        return self.meta["run_id"]

    @property
    def model_path(self) -> Path | None:
        return self.path / self.meta["model"]["file"] if self.meta.get("model") else None

    def verified(self, key: str = "model") -> Path:
        """The path of run file ``key`` ("model" or "normalizer") after checking its SHA-256 against meta.json.
        Every loader calls this immediately before deserialising."""
        entry = self.meta.get(key)
        if not entry:
            raise RLCourseError(f"run {self.path} has no {key} file")
        return verify_sha256(self.path / entry["file"], entry["sha256"], what=f"{key} file")


def resolve_run_dir(ref: Path | str) -> Path:
    """Accept a run folder, its model file or its ``meta.json``; return the folder, or raise a clear error."""
    p = Path(ref)
    if p.is_file() and (p.name.startswith("model.") or p.name == "meta.json"):
        p = p.parent
    if not p.exists():
        raise RLCourseError(f"no such checkpoint: {ref} (expected a run folder under checkpoints/ or runs/)")
    if not (p / "meta.json").is_file():
        raise RLCourseError(f"{ref} is not a run folder: it has no meta.json")
    return p


def load_run(ref: Path | str, verify_model: bool = True) -> Run:
    """Load a run folder: meta (required), eval and curve (if present), each validated against the schema.

    With ``verify_model`` every file listed in meta.json (model, normaliser) must exist and match its SHA-256."""
    path = resolve_run_dir(ref)
    meta = read_json(path / "meta.json", "meta")
    run = Run(path=path, meta=meta,
              eval=read_json(path / "eval.json", "eval") if (path / "eval.json").exists() else None,
              curve=read_json(path / "curve.json", "curve") if (path / "curve.json").exists() else None)
    if verify_model:
        for key in ("model", "normalizer"):
            if meta.get(key):
                run.verified(key)
    return run


def list_runs(root: Path | str, verify_model: bool = True) -> list[Run]:
    """Every complete run folder directly under ``root``, sorted by run id."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [load_run(p, verify_model=verify_model) for p in sorted(root.iterdir())
            if p.is_dir() and not p.name.endswith(".partial") and (p / "meta.json").is_file()]


def curve_table(curve: dict[str, Any]) -> dict[str, list[Any]]:
    """A curve document as ``{column: [values...]}``, handy for plotting."""
    cols = curve["columns"]
    return {c: [row[i] for row in curve["rows"]] for i, c in enumerate(cols)}
