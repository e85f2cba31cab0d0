"""Environment specs: what a run trains or is evaluated on, as data.

An :class:`EnvSpec` is a Fetch task id, keyword arguments for ``gym.make`` and an ordered list of named wrappers
(:class:`WrapperSpec`, see :mod:`rlcourse.envs.wrappers`). It checks itself without building anything
(:meth:`EnvSpec.validate`), round-trips through JSON (:meth:`EnvSpec.to_json`, deterministic, so it can be hashed
into a run's identity) and is built by :func:`make`::

    spec = EnvSpec("FetchPush-v4").with_wrappers(parse_wrap("obs_noise:sigma=0.01"))
    spec.label()            # 'FetchPush-v4+obs_noise(sigma=0.01)'
    env = make(spec)
    env.get_wrapper_attr("delivered_action")   # the action the simulator received at the last step
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlcourse.core.errors import RLCourseError
from rlcourse.envs.fetch import check_env_id, make_env
from rlcourse.envs.wrappers import CurriculumState, DeliveredAction, build, validate_params, wrapper_info

_SPEC_KEYS = ("id", "kwargs", "wrappers")
_WRAPPER_KEYS = ("name", "params")


def _plain(value: Any, where: str) -> Any:
    """``value`` as plain JSON (dicts with sorted string keys, lists, finite numbers, strings, bools, None)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise RLCourseError(f"{where} must be a finite number, got {value!r}")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise RLCourseError(f"{where} must have string keys")
        return {k: _plain(value[k], f"{where}.{k}") for k in sorted(value)}
    raise RLCourseError(f"{where} must be a JSON value (number, string, bool, list, dict), got {type(value).__name__}")


def _fmt(value: Any) -> str:
    """Compact text for a parameter value, in :func:`parse_wrap`'s grammar where possible."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, list) and value and all(isinstance(v, (str, int, float)) for v in value):
        return "+".join(_fmt(v) for v in value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _canonical_hash(doc: dict[str, Any]) -> int:
    return hash(json.dumps(doc, sort_keys=True, separators=(",", ":")))


@dataclass(frozen=True)
class WrapperSpec:
    """A named wrapper with its parameters, normalised on construction (defaults filled in, validated)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", validate_params(self.name, self.params))

    def __hash__(self) -> int:
        return _canonical_hash(self.to_json())

    def to_json(self) -> dict[str, Any]:
        """``{"name": ..., "params": {...}}`` with sorted params."""
        return {"name": self.name, "params": _plain(self.params, f"{self.name} params")}

    @classmethod
    def from_json(cls, doc: Any) -> WrapperSpec:
        """Read the :meth:`to_json` form (strict: one-line error on unknown keys or wrong types)."""
        if not isinstance(doc, dict):
            raise RLCourseError(f"a wrapper must be an object with keys name, params; got {type(doc).__name__}")
        unknown = sorted(str(k) for k in doc if k not in _WRAPPER_KEYS)
        if unknown or "name" not in doc:
            raise RLCourseError(f"a wrapper must have keys name (required) and params; got {sorted(map(str, doc))}")
        if not isinstance(doc["name"], str):
            raise RLCourseError(f"a wrapper's name must be a string, got {doc['name']!r}")
        return cls(doc["name"], copy.deepcopy(doc.get("params", {})))

    def label(self) -> str:
        """``name(k=v,...)`` showing the parameters that differ from their defaults."""
        defaults = wrapper_info(self.name).defaults()
        shown = [f"{k}={_fmt(v)}" for k, v in self.params.items() if k not in defaults or defaults[k] != v]
        return f"{self.name}({','.join(shown)})" if shown else self.name


@dataclass(frozen=True)
class EnvSpec:
    """A Fetch task id, keyword arguments for ``gym.make`` and named wrappers (the first listed is innermost)."""

    id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    wrappers: tuple[WrapperSpec, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise RLCourseError(f"an environment spec's id must be a non-empty string, got {self.id!r}")
        if not isinstance(self.kwargs, dict):
            raise RLCourseError(f"{self.id}: kwargs must be a mapping, got {type(self.kwargs).__name__}")
        if "render_mode" in self.kwargs:
            raise RLCourseError(f"{self.id}: render_mode is not part of a spec; pass it to make()")
        object.__setattr__(self, "kwargs", _plain(self.kwargs, f"{self.id} kwargs"))
        wrappers = self.wrappers
        if not isinstance(wrappers, (list, tuple)) or not all(isinstance(w, WrapperSpec) for w in wrappers):
            raise RLCourseError(f"{self.id}: wrappers must be a sequence of WrapperSpec")
        object.__setattr__(self, "wrappers", tuple(wrappers))

    def __hash__(self) -> int:
        return _canonical_hash(self.to_json())

    # --- JSON ----------------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """``{"id", "kwargs", "wrappers": [{"name", "params"}, ...]}``: plain JSON, keys sorted, deterministic."""
        return {"id": self.id, "kwargs": _plain(self.kwargs, "kwargs"),
                "wrappers": [w.to_json() for w in self.wrappers]}

    @classmethod
    def from_json(cls, doc: Any) -> EnvSpec:
        """Read the :meth:`to_json` form (strict: one-line error on unknown keys or wrong types)."""
        if not isinstance(doc, dict):
            raise RLCourseError(f"an environment spec must be a JSON object, got {type(doc).__name__}")
        unknown = sorted(str(k) for k in doc if k not in _SPEC_KEYS)
        if unknown:
            raise RLCourseError(f"unknown key {unknown[0]!r} in environment spec; allowed: {', '.join(_SPEC_KEYS)}")
        if "id" not in doc:
            raise RLCourseError("an environment spec needs an id (e.g. \"FetchPush-v4\")")
        kwargs, wrappers = doc.get("kwargs", {}), doc.get("wrappers", [])
        if not isinstance(kwargs, dict):
            raise RLCourseError(f"an environment spec's kwargs must be an object, got {type(kwargs).__name__}")
        if not isinstance(wrappers, list):
            raise RLCourseError(f"an environment spec's wrappers must be a list, got {type(wrappers).__name__}")
        return cls(doc["id"], copy.deepcopy(kwargs), tuple(WrapperSpec.from_json(w) for w in wrappers))

    @classmethod
    def coerce(cls, value: Any) -> EnvSpec:
        """An :class:`EnvSpec` from a spec, an environment id string, or the JSON form."""
        if isinstance(value, EnvSpec):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, dict):
            return cls.from_json(value)
        raise RLCourseError(f"expected an environment spec, id or JSON object, got {type(value).__name__}")

    # --- checks and edits --------------------------------------------------------------------------------------

    def validate(self) -> EnvSpec:
        """Check everything that can be checked without building an environment; return the normalised spec.

        The id must be a registered Fetch task; kwargs plain JSON with finite numbers; every wrapper known with
        valid parameters; at most one ``goal_curriculum``, listed before any observation wrapper (it recomputes
        the observation, which would drop noise added below it).
        """
        check_env_id(self.id)
        seen_observation = None
        for w in self.wrappers:
            info = wrapper_info(w.name)
            if info.unique and sum(x.name == w.name for x in self.wrappers) > 1:
                raise RLCourseError(f"{self.id}: {w.name} may appear only once in a spec")
            if info.kind == "task":
                if seen_observation is not None:
                    raise RLCourseError(f"{self.id}: {w.name} must come before {seen_observation} in the wrapper "
                                        "list (it recomputes the observation)")
            if info.kind == "observation" and seen_observation is None:
                seen_observation = w.name
        return EnvSpec(self.id, self.kwargs, tuple(WrapperSpec(w.name, w.params) for w in self.wrappers))

    def with_wrappers(self, *wrappers: WrapperSpec | str) -> EnvSpec:
        """A copy with ``wrappers`` appended (outermost last); a string is read by :func:`parse_wrap`."""
        extra = tuple(parse_wrap(w) if isinstance(w, str) else w for w in wrappers)
        return EnvSpec(self.id, self.kwargs, self.wrappers + extra)

    @property
    def is_plain(self) -> bool:
        """True when the spec is just the task: no kwargs, no wrappers."""
        return not self.kwargs and not self.wrappers

    def label(self) -> str:
        """Compact text, e.g. ``FetchPush-v4[max_episode_steps=100]+obs_noise(sigma=0.01)``."""
        text = self.id
        if self.kwargs:
            text += "[" + ",".join(f"{k}={_fmt(v)}" for k, v in self.kwargs.items()) + "]"
        return text + "".join(f"+{w.label()}" for w in self.wrappers)


# ---------------------------------------------------------------------------------------------------------------
# The compact command-line form
# ---------------------------------------------------------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def _parse_item(item: str, where: str) -> Any:
    if _INT.fullmatch(item):
        if len(item.lstrip("+-")) > 15:
            raise RLCourseError(f"{where}: {item!r} is out of range")
        return int(item)
    try:
        number = float(item)
    except ValueError:
        number = None
    if number is not None and not math.isfinite(number):
        raise RLCourseError(f"{where}: {item!r} is not a finite number")
    if _FLOAT.fullmatch(item):
        return number
    if item.lower() in ("true", "false"):
        return item.lower() == "true"
    if _WORD.fullmatch(item):
        return item
    raise RLCourseError(f"{where}: cannot read value {item!r} (a number, true/false, or a word)")


def parse_wrap(text: str) -> WrapperSpec:
    """Read the compact command-line form of a wrapper, e.g. ``obs_noise:sigma=0.01,keys=observation+desired_goal``.

    Grammar (whitespace around the separators is ignored)::

        wrap  := NAME [":" param {"," param}]
        param := KEY "=" value                  each KEY at most once
        value := item {"+" item}                two or more items make a list
        item  := INT | FLOAT | "true" | "false" | WORD
        NAME, KEY := [A-Za-z_][A-Za-z0-9_]*
        INT   := [+-]digits                     -> int (an int given for a float parameter becomes a float)
        FLOAT := decimal or exponent literal    (0.5, .5, 1e-3) -> float; must be finite (no nan, inf, 1e999)
        WORD  := [A-Za-z_][A-Za-z0-9_.-]*       -> string

    A single item for a list parameter is a one-item list (``keys=desired_goal``). The result is validated
    against the registry: unknown wrapper, unknown or missing parameter, wrong type or out of range raise a
    one-line :class:`RLCourseError`.
    """
    if not isinstance(text, str) or not text.strip():
        raise RLCourseError("empty wrapper; expected NAME or NAME:key=value,... (e.g. obs_noise:sigma=0.01)")
    name, colon, rest = (part.strip() for part in text.strip().partition(":"))
    if not _IDENT.fullmatch(name):
        raise RLCourseError(f"cannot read wrapper {text!r}; expected NAME or NAME:key=value,...")
    wrapper_info(name)  # an unknown name fails here, listing the valid ones
    params: dict[str, Any] = {}
    if colon:
        for part in rest.split(","):
            key, eq, value = (p.strip() for p in part.partition("="))
            if not eq or not _IDENT.fullmatch(key) or not value:
                raise RLCourseError(f"cannot read {part.strip()!r} in wrapper {text!r}; expected key=value")
            if key in params:
                raise RLCourseError(f"parameter {key} is given twice in wrapper {text!r}")
            items = [i.strip() for i in value.split("+")]
            if any(not i for i in items):
                raise RLCourseError(f"empty list item in {part.strip()!r} of wrapper {text!r}")
            parsed = [_parse_item(i, f"{name}.{key}") for i in items]
            params[key] = parsed[0] if len(parsed) == 1 else parsed
    return WrapperSpec(name, params)


def load_spec_file(path: str | Path) -> EnvSpec:
    """Read and validate a JSON file holding an :meth:`EnvSpec.to_json` document."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RLCourseError(f"environment spec file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RLCourseError(f"cannot read environment spec file {path}: {exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RLCourseError(f"environment spec file {path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    return EnvSpec.from_json(doc).validate()


# ---------------------------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------------------------


def make(spec: EnvSpec | str | dict[str, Any], render_mode: str | None = None,
         curriculum_state: CurriculumState | None = None, **render_kwargs: Any):
    """Build the environment a spec describes.

    The task comes from :func:`~rlcourse.envs.fetch.make_env` with the spec's kwargs (plus ``render_kwargs`` such
    as width/height), then :class:`~rlcourse.envs.wrappers.DeliveredAction` (``delivered_action``: what the
    simulator received), then the spec's wrappers in order, the first listed innermost. Pass one
    ``curriculum_state`` to every environment of a vectorised set so their curricula share one schedule.
    """
    spec = EnvSpec.coerce(spec).validate()
    clash = sorted(set(render_kwargs) & set(spec.kwargs))
    if clash:
        raise RLCourseError(f"{spec.id}: {clash[0]} is given both in the spec's kwargs and to make()")
    try:
        env = make_env(spec.id, render_mode, **spec.kwargs, **render_kwargs)
    except TypeError as exc:
        raise RLCourseError(f"cannot build {spec.label()}: {exc}") from None
    env = DeliveredAction(env)
    occurrences: dict[str, int] = {}
    for wrapper in spec.wrappers:
        stream = occurrences.get(wrapper.name, 0)
        occurrences[wrapper.name] = stream + 1
        env = build(env, wrapper, stream=stream, curriculum_state=curriculum_state)
    return env


__all__ = ["CurriculumState", "EnvSpec", "WrapperSpec", "load_spec_file", "make", "parse_wrap"]
