"""Files written so that a reader never sees half of one: atomic writes, strict JSON, checksums.

Every file the course writes goes through :func:`atomic_write`: the bytes go to a temporary file in the target's
folder, are flushed to disk, and the temporary file is renamed over the target (a rename within one file system is
atomic). JSON is strict: NaN and infinity are refused on writing and on reading.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlcourse.core.errors import RLCourseError


def atomic_write(path: Path | str, write: Callable[[Path], None], mode: int = 0o644) -> Path:
    """Call ``write(tmp)`` to fill a temporary file next to ``path``, then rename it onto ``path``.

    On any failure (including Ctrl-C) the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # mkstemp creates the file private; our artifacts are meant to be read
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def check_writable_dir(folder: Path | str, what: str = "output folder") -> Path:
    """Refuse, in one line and without creating anything, a folder that could not be created or written: a file in
    its place or on its path, or an existing ancestor where a file cannot be created (read-only, ``/proc``, no
    permission; tried for real, since root passes every permission check)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RLCourseError(f"{what} {folder} is a file, not a folder")
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise RLCourseError(f"cannot create {what} {folder}: {probe} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise RLCourseError(f"cannot write into {probe} ({exc.strerror or exc}); choose another location") from None
    return folder


def check_writable_file(path: Path | str, what: str = "output file") -> Path:
    """:func:`check_writable_dir` for the folder of ``path``, which must not be a folder itself."""
    path = Path(path)
    if path.is_dir():
        raise RLCourseError(f"{what} {path} is a folder; give a file name")
    check_writable_dir(path.parent, what=f"folder of the {what}")
    return path


def check_finite(obj: Any, where: str = "") -> None:
    """Raise ``ValueError`` naming the first NaN or infinity inside a nested JSON-like value."""
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"refusing to write non-finite number {obj!r} at {where or '<top>'} (strict JSON)")
    if isinstance(obj, dict):
        for k, v in obj.items():
            check_finite(v, f"{where}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            check_finite(v, f"{where}/{i}")


def dump_json(path: Path | str, doc: Any) -> Path:
    """Write ``doc`` as strict, indented JSON, atomically."""
    check_finite(doc)
    text = json.dumps(doc, indent=2, allow_nan=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def load_json(path: Path | str) -> Any:
    """Read strict JSON (NaN/Infinity are errors); a missing or corrupt file is a one-line :class:`RLCourseError`."""
    path = Path(path)
    if not path.is_file():
        raise RLCourseError(f"missing file: {path}")

    def no_constants(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    try:
        return json.loads(path.read_text(), parse_constant=no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RLCourseError(f"corrupt JSON in {path}: {exc}") from None


def sha256(path: Path | str) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: Path | str, expected: str, what: str = "file") -> Path:
    """Return ``path`` if it exists and its SHA-256 is ``expected``; otherwise a one-line :class:`RLCourseError`.
    Call it before anything deserialises the file."""
    path = Path(path)
    if not path.is_file():
        raise RLCourseError(f"checkpoint {path.parent} lists {path.name} but the file is missing")
    if sha256(path) != expected:
        raise RLCourseError(f"{what} {path} is corrupt or was modified: its SHA-256 does not match the record")
    return path


def jsonable(value: Any) -> Any:
    """A value as plain JSON: classes and callables by qualified name, tuples as lists, other objects by repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, type) or callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
    return repr(value)
