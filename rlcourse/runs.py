"""Run folders and their JSON files: the experiment contract on disk.

A run lives in one folder ``<root>/<run_id>/``::

    model.zip     the stable-baselines3 model (no replay buffer)
    meta.json     what was trained, how, with what, on what, how fast   (schema: meta)
    eval.json     per-episode records and aggregates                       (schema: eval)
    curve.json    the learning-curve table                                 (schema: curve)

While training, the folder is ``<run_id>.partial/`` (with a ``resume/`` subfolder for periodic checkpoints); it is
renamed only when everything is written, so a folder without ``.partial`` is always complete. Every file is written
atomically (temporary file + rename) as strict JSON: NaN and infinity are refused, never silently written.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import RLCourseError

SCHEMA_FILE = Path(__file__).with_name("schemas") / "run.schema.json"
KINDS = ("meta", "eval", "curve", "throughput", "comparison", "benchmark")  # the last three are not run files
MODEL_FILE = "model.zip"
NORMALIZER_FILE = "obs_normalizer.pkl"  # observation statistics of runs trained with normalize_obs
_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The run-artifact JSON Schema (draft 2020-12)."""
    return json.loads(SCHEMA_FILE.read_text())


def validate(doc: dict[str, Any], kind: str) -> None:
    """Raise :class:`RLCourseError` if ``doc`` does not satisfy the ``kind`` ("meta", "eval", "curve") schema."""
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


def _check_finite(obj: Any, where: str = "") -> None:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"refusing to write non-finite number {obj!r} at {where or '<top>'} (strict JSON)")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_finite(v, f"{where}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_finite(v, f"{where}/{i}")


def write_json(path: Path | str, doc: Any, kind: str | None = None) -> Path:
    """Write ``doc`` as strict, indented JSON, atomically; validate it first when ``kind`` is given."""
    path = Path(path)
    _check_finite(doc)
    if kind is not None:
        validate(doc, kind)
    text = json.dumps(doc, indent=2, allow_nan=False, sort_keys=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_json(path: Path | str, kind: str | None = None) -> dict[str, Any]:
    """Read a JSON artifact (strictly: NaN/Infinity are errors) and validate it when ``kind`` is given."""
    path = Path(path)
    if not path.is_file():
        raise RLCourseError(f"missing file: {path}")

    def _no_constants(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    try:
        doc = json.loads(path.read_text(), parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RLCourseError(f"corrupt JSON in {path}: {exc}") from None
    if kind is not None:
        try:
            validate(doc, kind)
        except RLCourseError as exc:
            raise RLCourseError(f"{path}: {exc}") from None
    return doc


def sha256(path: Path | str) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_run_id(run_id: str) -> str:
    """A run id is a folder name: letters, digits, ``_ . -`` only."""
    if not _RUN_ID.match(run_id) or run_id in {".", ".."} or run_id.endswith(".partial"):
        raise RLCourseError(f"invalid run id {run_id!r}: use letters, digits, '_', '.', '-' (not ending in .partial)")
    return run_id


def default_run_id(algo: str, env_id: str, seed: int, her: bool = False) -> str:
    """``{algo}[_her]_{EnvId}_seed{N}``, the naming the book uses for checkpoints."""
    return f"{algo}{'_her' if her else ''}_{env_id}_seed{seed}"


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


def resolve_run_dir(ref: Path | str) -> Path:
    """Accept a run folder, its ``model.zip`` or its ``meta.json``; return the folder, or raise a clear error."""
    p = Path(ref)
    if p.is_file() and p.name in (MODEL_FILE, "meta.json"):
        p = p.parent
    if not p.exists():
        raise RLCourseError(f"no such checkpoint: {ref} (expected a run folder under checkpoints/ or runs/)")
    if not (p / "meta.json").is_file():
        raise RLCourseError(f"{ref} is not a run folder: it has no meta.json")
    return p


def load_run(ref: Path | str, verify_model: bool = True) -> Run:
    """Load a run folder: meta (required), eval and curve (if present), each validated against the schema.

    With ``verify_model`` the model file (and the observation normaliser, if the run has one) must exist and match
    the SHA-256 recorded in ``meta.json``.
    """
    path = resolve_run_dir(ref)
    meta = read_json(path / "meta.json", "meta")
    for key in ("model", "normalizer"):
        entry = meta.get(key)
        if verify_model and entry:
            f = path / entry["file"]
            if not f.is_file():
                raise RLCourseError(f"checkpoint {path} lists {f.name} but the file is missing")
            if sha256(f) != entry["sha256"]:
                raise RLCourseError(f"checkpoint {f} is corrupt: its SHA-256 does not match meta.json")
    ev = read_json(path / "eval.json", "eval") if (path / "eval.json").exists() else None
    curve = read_json(path / "curve.json", "curve") if (path / "curve.json").exists() else None
    return Run(path=path, meta=meta, eval=ev, curve=curve)


def list_runs(root: Path | str) -> list[Run]:
    """Every complete run folder directly under ``root``, sorted by run id (models are not re-hashed)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [
        load_run(p, verify_model=False)
        for p in sorted(root.iterdir())
        if p.is_dir() and not p.name.endswith(".partial") and (p / "meta.json").is_file()
    ]


def curve_table(curve: dict[str, Any]) -> dict[str, list[Any]]:
    """A curve document as ``{column: [values...]}``, handy for plotting."""
    cols = curve["columns"]
    return {c: [row[i] for row in curve["rows"]] for i, c in enumerate(cols)}
