"""Named environment wrappers: the registry that environment specs refer to, and the wrappers themselves.

A spec names a wrapper (``"obs_noise"``) and gives its parameters (``{"sigma": 0.01}``); this module knows every
name, checks parameters without building anything (:func:`validate_params`) and wraps a built environment
(:func:`build`). Registered wrappers:

* ``obs_noise``       Gaussian noise (``sigma``, in each entry's own unit: metres for positions and goals, metres
                      per control step for the velocities inside ``observation``) on the listed ``keys``.
* ``action_noise``    Gaussian noise (``sigma``) added to the action, then clipped to the action box.
* ``action_scale``    ``a' = clip(scale * a)``.
* ``action_filter``   exponential moving average ``a'_t = alpha a_t + (1 - alpha) a'_{t-1}``, zero at reset.
* ``goal_curriculum`` goals moved from an easy anchor towards the task's own goal by a scheduled difficulty.
* ``sample_ranges``   the half-widths of the uniform boxes the task draws the object's start and the goal from
                      (``obj_range``, ``target_range``; both 0.15 m in every Fetch task): a wider or narrower scene.
* ``reward_radius``   the distance (``metres``) within which training counts a goal as reached, in the reward and
                      in ``is_success``; the task's own radius (0.05 m in every Fetch task) still judges the run.
* ``dense_reward``    training rewards ``-d``, minus the distance to the goal, instead of the sparse ``-[d > radius]``;
                      ``is_success`` and the evaluation (the task's own reward) are unchanged.
* ``pixels``          camera frames instead of the state vector: ``pixels`` (uint8, the last ``frames`` RGB frames
                      stacked on the channel axis), ``desired_goal``, and ``achieved_goal`` for relabelling only.
* ``blind``           every frame of ``pixels`` replaced by one constant grey (``value``): the control that shows
                      whether a pixel policy uses its camera at all.

Kinds. An "action" wrapper changes what the simulator receives, an "observation" wrapper what the policy sees, a
"task" wrapper what training asks for (stripped when a run is evaluated on its own task), and a "scene" wrapper the
distribution the task itself samples from (kept: a run trained on a wider scene is judged on it).

Randomness. A wrapper that draws random numbers owns a generator, ``noise_rng``, and never touches the base
environment's ``np_random``: with ``sigma=0`` the trajectories are exactly the plain environment's. On
``reset(seed=s)`` the generator becomes ``np.random.default_rng([s, crc32(name), k])``, where ``k`` counts earlier
wrappers of the same name in the stack (0 for the first), so two noise layers never share a stream. A reset without
a seed keeps the current stream. Before any seeded reset the generator is seeded as if ``s = 0``: deterministic,
never drawn from the operating system.

:class:`DeliveredAction` is not in the registry: :func:`rlcourse.envs.spec.make` always puts it directly around the
task, so ``env.get_wrapper_attr("delivered_action")`` is the action the simulator received after the last step.
"""

from __future__ import annotations

import math
import numbers
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from rlcourse.core.errors import RLCourseError
from rlcourse.envs.camera import CAMERA_NAMES, Camera

REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()
"""Marker for a parameter that has no default and must be given."""

FETCH_OBS_KEYS = ("achieved_goal", "desired_goal", "observation")


# ---------------------------------------------------------------------------------------------------------------
# Parameters and the registry
# ---------------------------------------------------------------------------------------------------------------


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class ParamSpec:
    """One wrapper parameter: its type (float, int, bool, str, or list for a list of strings), default and range."""

    type: type
    default: Any = REQUIRED
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: ``low`` itself is not allowed
    high_open: bool = False
    choices: tuple[str, ...] | None = None  # allowed strings (for str, or for every item of a list)
    doc: str = ""

    def range_text(self) -> str:
        """The allowed range in words, e.g. ``in (0, 1]`` or ``>= 0``."""
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return ""

    def coerce(self, where: str, value: Any) -> Any:
        """Return ``value`` in this parameter's canonical form, or raise a one-line error naming ``where``."""
        if self.type in (float, int):
            return self._number(where, value)
        if self.type is bool:
            if not isinstance(value, (bool, np.bool_)):
                raise RLCourseError(f"{where} must be true or false, got {_short(value)}")
            return bool(value)
        if self.type is str:
            if not isinstance(value, str):
                raise RLCourseError(f"{where} must be a string, got {_short(value)}")
            self._check_choice(where, value)
            return value
        if self.type is list:
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
                raise RLCourseError(f"{where} must be a list of strings, got {_short(value)}")
            if not items:
                raise RLCourseError(f"{where} must name at least one item")
            for item in items:
                self._check_choice(where, item)
            return sorted(set(items))
        raise TypeError(f"unsupported parameter type {self.type!r}")  # a registry bug, not a user error

    def _number(self, where: str, value: Any) -> float | int:
        kind = "an integer" if self.type is int else "a number"
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise RLCourseError(f"{where} must be {kind}, got {_short(value)}")
        if not math.isfinite(float(value)):
            raise RLCourseError(f"{where} must be a finite number, got {_short(value)}")
        if self.type is int:
            if float(value) != int(value):
                raise RLCourseError(f"{where} must be an integer, got {_short(value)}")
            value = int(value)
        else:
            value = float(value)
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if too_low or too_high:
            raise RLCourseError(f"{where} must be {self.range_text()}, got {value:g}")
        return value

    def _check_choice(self, where: str, value: str) -> None:
        if self.choices is not None and value not in self.choices:
            raise RLCourseError(f"{where}: {value!r} is not one of {', '.join(self.choices)}")


@dataclass(frozen=True)
class WrapperInfo:
    """A registered wrapper: its class, parameters, one-line doc and kind.

    ``kind`` is "action", "observation", "task" or "scene" (module docstring); ``context`` names the build-time arguments the class accepts
    besides its parameters (``stream``, ``curriculum_state``); ``check`` tests constraints between parameters.
    """

    name: str
    cls: Callable[..., gym.Env]
    params: dict[str, ParamSpec]
    doc: str
    kind: str = "action"
    context: tuple[str, ...] = ()
    check: Callable[[dict[str, Any]], None] | None = None
    unique: bool = False  # may appear at most once in a spec

    def defaults(self) -> dict[str, Any]:
        """The parameters that have a default, with it."""
        return {k: p.default for k, p in self.params.items() if p.default is not REQUIRED}


WRAPPERS: dict[str, WrapperInfo] = {}


def register(name: str, cls: Callable[..., gym.Env], params: dict[str, ParamSpec], doc: str, *,
             kind: str = "action", context: tuple[str, ...] = (),
             check: Callable[[dict[str, Any]], None] | None = None, unique: bool = False) -> WrapperInfo:
    """Add a wrapper to :data:`WRAPPERS` under ``name`` (a lower-case identifier) and return its entry."""
    if not name.isidentifier() or name != name.lower():
        raise ValueError(f"wrapper names are lower-case identifiers, not {name!r}")
    if kind not in ("action", "observation", "task", "scene"):
        raise ValueError(f"unknown wrapper kind {kind!r}")
    WRAPPERS[name] = info = WrapperInfo(name, cls, dict(params), doc, kind, tuple(context), check,
                                        unique or kind == "task")
    return info


def wrapper_info(name: Any) -> WrapperInfo:
    """The registry entry for ``name``, or a one-line error listing the valid names."""
    if not isinstance(name, str) or name not in WRAPPERS:
        raise RLCourseError(f"unknown wrapper {_short(name)}; valid wrappers: {', '.join(sorted(WRAPPERS))}")
    return WRAPPERS[name]


def validate_params(name: str, params: Any) -> dict[str, Any]:
    """Check ``params`` for wrapper ``name`` and return them normalised: defaults filled in, canonical types
    (ints given for floats become floats, lists sorted), keys sorted. Builds nothing."""
    info = wrapper_info(name)
    if not isinstance(params, dict):
        raise RLCourseError(f"{name}: parameters must be a mapping of names to values, got {_short(params)}")
    unknown = sorted(str(k) for k in params if k not in info.params)
    if unknown:
        valid = ", ".join(sorted(info.params)) or "none"
        raise RLCourseError(f"{name} has no parameter {unknown[0]!r}; its parameters: {valid}")
    out: dict[str, Any] = {}
    for key in sorted(info.params):
        spec = info.params[key]
        if key in params:
            out[key] = spec.coerce(f"{name}.{key}", params[key])
        elif spec.default is REQUIRED:
            raise RLCourseError(f"{name} needs parameter {key} ({spec.doc})")
        else:
            out[key] = spec.coerce(f"{name}.{key}", spec.default)
    if info.check is not None:
        info.check(out)
    return out


def build(env: gym.Env, wrapper_spec: Any, **context: Any) -> gym.Env:
    """Wrap ``env`` with the wrapper a spec describes (anything with ``name`` and ``params``).

    ``context`` carries build-time arguments that are not part of the spec: ``stream`` (how many wrappers of the
    same name are already below this one) and ``curriculum_state`` (a shared :class:`CurriculumState`); each
    wrapper receives only those it accepts.
    """
    info = wrapper_info(wrapper_spec.name)
    params = validate_params(info.name, wrapper_spec.params)
    extra = {k: v for k, v in context.items() if k in info.context}
    return info.cls(env, **params, **extra)


# ---------------------------------------------------------------------------------------------------------------
# Helpers shared by the wrappers
# ---------------------------------------------------------------------------------------------------------------


def _clip(env: gym.Env, action: Any) -> np.ndarray:
    """Clip to the action box exactly as the Fetch task's own ``step`` does."""
    return np.clip(action, env.action_space.low, env.action_space.high)


def _like(result: np.ndarray, action: Any) -> np.ndarray:
    """``result`` in the caller's floating dtype, so a no-op wrapper hands the task bit-identical actions."""
    dtype = getattr(action, "dtype", None)
    return result.astype(dtype) if dtype is not None and np.issubdtype(dtype, np.floating) else result


def _site_position(env: gym.Env, site: str) -> np.ndarray:
    """World position of a MuJoCo site of the task, found by name."""
    base = env.unwrapped
    return np.array(base._utils.get_site_xpos(base.model, base.data, site), dtype=np.float64)


class _SeededWrapper(gym.Wrapper):
    """Base for wrappers that draw random numbers: ``noise_rng`` follows the environment's seed (module doc)."""

    def __init__(self, env: gym.Env, name: str, stream: int = 0):
        super().__init__(env)
        self._stream_key = [zlib.crc32(name.encode()), int(stream)]
        self.noise_rng = np.random.default_rng([0, *self._stream_key])

    def _reseed(self, seed: int | None) -> None:
        if seed is not None:
            self.noise_rng = np.random.default_rng([int(seed), *self._stream_key])


# ---------------------------------------------------------------------------------------------------------------
# The wrappers
# ---------------------------------------------------------------------------------------------------------------


class DeliveredAction(gym.Wrapper):
    """Records, as ``delivered_action``, the action the simulator receives: clipped to the action box, as the
    task does. None after a reset, until the first step."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.delivered_action: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self.delivered_action = None
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any):
        self.delivered_action = np.array(_clip(self, action), copy=True)
        return self.env.step(action)


class ObsNoise(_SeededWrapper):
    """Adds N(0, sigma^2) to every entry of the listed observation keys (the same sigma for all entries)."""

    def __init__(self, env: gym.Env, *, sigma: float, keys: list[str], stream: int = 0):
        super().__init__(env, "obs_noise", stream)
        space = env.observation_space
        present = sorted(space.spaces) if isinstance(space, gym.spaces.Dict) else []
        missing = [k for k in keys if k not in present]
        if missing:
            raise RLCourseError(f"obs_noise: observation key {missing[0]!r} does not exist; keys: "
                                f"{', '.join(present) or 'none (not a dict observation)'}")
        self.sigma, self.keys = float(sigma), list(keys)

    def _noisy(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = dict(obs)
        for key in self.keys:
            value = np.asarray(obs[key])
            out[key] = (value + self.sigma * self.noise_rng.standard_normal(value.shape)).astype(value.dtype)
        return out

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._reseed(seed)
        obs, info = self.env.reset(seed=seed, options=options)
        return self._noisy(obs), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._noisy(obs), reward, terminated, truncated, info


class ActionNoise(_SeededWrapper):
    """Adds N(0, sigma^2) to every action component, then clips to the action box. The caller's array is not
    modified."""

    def __init__(self, env: gym.Env, *, sigma: float, stream: int = 0):
        super().__init__(env, "action_noise", stream)
        self.sigma = float(sigma)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._reseed(seed)
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any):
        action = np.asarray(action)
        noise = self.sigma * self.noise_rng.standard_normal(action.shape)
        return self.env.step(_like(_clip(self, action + noise), action))


class ActionScale(gym.ActionWrapper):
    """``a' = clip(scale * a)``: a weaker (scale < 1) or stronger (scale > 1) actuator."""

    def __init__(self, env: gym.Env, *, scale: float):
        super().__init__(env)
        self.scale = float(scale)

    def action(self, action: Any) -> np.ndarray:
        return _clip(self, self.scale * np.asarray(action))


class ActionFilter(gym.ActionWrapper):
    """Low-pass filter ``a'_t = alpha clip(a_t) + (1 - alpha) a'_{t-1}`` with ``a'_{-1} = 0`` after every reset.
    ``alpha = 1`` is exactly the identity (up to the clipping the task does anyway)."""

    def __init__(self, env: gym.Env, *, alpha: float):
        super().__init__(env)
        self.alpha = float(alpha)
        self._previous = np.zeros(env.action_space.shape)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._previous = np.zeros(self.action_space.shape)
        return self.env.reset(seed=seed, options=options)

    def action(self, action: Any) -> np.ndarray:
        self._previous = self.alpha * _clip(self, action) + (1.0 - self.alpha) * self._previous
        return _like(self._previous, action)


def set_task_attribute(env: gym.Env, wrapper: str, name: str, value: Any) -> None:
    """Set attribute ``name`` of the task under ``env`` (the Fetch constructors fix what these wrappers change, and the
    task reads the attribute at every call); a task without it is a one-line error naming ``wrapper``."""
    task = env.unwrapped
    if not hasattr(task, name):
        raise RLCourseError(f"{wrapper}: {type(task).__name__} has no {name}")
    setattr(task, name, value)


class SampleRanges(gym.Wrapper):
    """Sets the task's ``obj_range`` and ``target_range``, the half-widths (metres) of the boxes around the gripper's
    start from which every reset draws the object's position and the goal. The Fetch constructors fix both at 0.15
    (passing them as keyword arguments is an error there), so the wrapper sets the attributes the task reads at
    each reset (a parameter left out keeps the default 0.15). Where it sits in the stack does not matter."""

    def __init__(self, env: gym.Env, *, obj_range: float, target_range: float):
        super().__init__(env)
        for name, value in (("obj_range", obj_range), ("target_range", target_range)):
            set_task_attribute(env, "sample_ranges", name, float(value))


class RewardRadius(gym.Wrapper):
    """Training counts a goal as reached within ``metres`` of it: the task's ``distance_threshold``, which its
    ``compute_reward`` (and so hindsight relabelling) and its ``is_success`` read at every call, is set on the task this
    wrapper wraps (a dense task's reward, ``-d``, does not read it; its ``is_success`` does). The sparse reward is flat
    inside that ball, so a radius smaller than the task's asks for more precision than the test does. A "task"
    wrapper: evaluation strips it and judges the run by the task's own radius. Where it sits in the stack does not
    matter."""

    def __init__(self, env: gym.Env, *, metres: float):
        super().__init__(env)
        set_task_attribute(env, "reward_radius", "distance_threshold", float(metres))


class DenseReward(gym.Wrapper):
    """Training rewards minus the distance to the goal, ``-d``, instead of the sparse ``-[d > radius]``: the task's
    ``reward_type``, which its ``compute_reward`` (and so hindsight relabelling) reads at every call, is set to
    "dense" on the task this wrapper wraps; ``is_success`` still uses the radius. Unlike the sparse reward, ``-d``
    pulls towards the centre of the goal. A "task" wrapper: evaluation strips it and judges the run by the task's own
    reward and radius. Where it sits in the stack does not matter."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        set_task_attribute(env, "dense_reward", "reward_type", "dense")


class PixelObservation(gym.Wrapper):
    """The policy sees the scene through a camera: the observation becomes ``{"pixels", "desired_goal",
    "achieved_goal"}`` and the state vector ``observation`` is dropped.

    ``pixels`` is ``(3 * frames, size, size)`` uint8 (``(3 * frames, size, 2 * size)`` for the two views of
    ``front_side``), channels first, the newest frame last; after a reset the
    first frame fills the stack. Frames are rendered after the simulator step that produced them, so frame and goal
    vectors always describe the same instant. ``achieved_goal`` stays because hindsight relabelling and
    ``compute_reward`` need it during training; it must never be a policy input (on Reach it *is* the gripper
    position, the whole answer), and :data:`POLICY_KEYS` names the keys a pixel policy may read. The camera is a
    dedicated :class:`~rlcourse.envs.camera.Camera`, made when the wrapper is built, in the process that steps the
    environment.
    """

    POLICY_KEYS = ("pixels", "desired_goal")

    def __init__(self, env: gym.Env, *, size: int, frames: int, camera: str, lean: bool):
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Dict) or not {"achieved_goal", "desired_goal"} <= set(space.spaces):
            raise RLCourseError("pixels: the task must have dict observations with achieved_goal and desired_goal")
        task = env.unwrapped
        self.camera = Camera(task.model, task.data, size, camera=camera, lean=lean)
        self.frames = int(frames)
        self._stack: deque[np.ndarray] = deque(maxlen=self.frames)
        self.observation_space = gym.spaces.Dict({
            "pixels": gym.spaces.Box(0, 255, (3 * self.frames, *self.camera.shape[:2]), np.uint8),
            "desired_goal": space["desired_goal"], "achieved_goal": space["achieved_goal"]})

    def _observe(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"pixels": np.concatenate(list(self._stack), axis=0),
                "desired_goal": obs["desired_goal"], "achieved_goal": obs["achieved_goal"]}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        frame = self.camera.render().transpose(2, 0, 1)
        self._stack.extend([frame] * self.frames)
        return self._observe(obs), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._stack.append(self.camera.render().transpose(2, 0, 1))
        return self._observe(obs), reward, terminated, truncated, info

    def render(self) -> Any:
        """The task's own ``render()`` (e.g. full-size frames for a GIF), in gymnasium's OpenGL context: gymnasium
        makes its context current only when it holds several viewers, so after the camera drew, it would render into
        the camera's context and return a black image."""
        viewer = getattr(getattr(self.env.unwrapped, "mujoco_renderer", None), "viewer", None)
        if viewer is not None and hasattr(viewer, "make_context_current"):
            viewer.make_context_current()
        return self.env.render()

    def close(self) -> None:
        self.camera.close()
        super().close()


class BlindFrames(gym.ObservationWrapper):
    """Replaces ``pixels`` with a constant image of grey level ``value``; the goals pass unchanged. A policy that
    still succeeds without its frames was not using them (on Reach that would mean the answer leaked elsewhere)."""

    def __init__(self, env: gym.Env, *, value: int):
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Dict) or "pixels" not in space.spaces:
            raise RLCourseError("blind: there are no frames to blank; put it after the pixels wrapper")
        self._blank = np.full(space["pixels"].shape, value, dtype=np.uint8)

    def observation(self, observation: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {**observation, "pixels": self._blank.copy()}


# ---------------------------------------------------------------------------------------------------------------
# Goal curriculum
# ---------------------------------------------------------------------------------------------------------------

_STATE_KEYS = ("difficulty", "episodes", "recent", "schedule", "total_steps")


class CurriculumState:
    """Progress of one curriculum schedule, shared by every ``goal_curriculum`` wrapper built with it.

    Holds the current ``difficulty`` (None until a wrapper binds a schedule), ``total_steps`` and ``episodes``
    counted over all those wrappers, and ``recent``, the pooled successes since the last rise (success mode).
    Sharing works between environments in one process (a DummyVecEnv); every SubprocVecEnv worker would hold its
    own copy. :meth:`state_dict` / :meth:`load_state_dict` use plain JSON values, for checkpoints.
    """

    def __init__(self) -> None:
        self.schedule: dict[str, Any] | None = None
        self.difficulty: float | None = None
        self.total_steps = 0
        self.episodes = 0
        self.recent: deque[bool] = deque()

    def bind(self, schedule: dict[str, Any]) -> None:
        """Attach a wrapper's (normalised) schedule; every wrapper sharing this state must use the same one."""
        schedule = dict(sorted(schedule.items()))
        if self.schedule is not None and self.schedule != schedule:
            raise RLCourseError("goal_curriculum: one CurriculumState is shared by curricula with different "
                                f"schedules ({_short(self.schedule, 120)} vs {_short(schedule, 120)})")
        self.schedule = schedule
        self.recent = deque(self.recent, maxlen=schedule["window"])
        if self.difficulty is None:
            self.difficulty = self._scheduled() if schedule["mode"] == "steps" else schedule["start"]

    def _scheduled(self) -> float:
        s = self.schedule
        assert s is not None
        if self.total_steps >= s["steps"]:
            return s["end"]
        return s["start"] + (s["end"] - s["start"]) * self.total_steps / s["steps"]

    def record_step(self) -> None:
        """Count one environment step (of any sharing wrapper); in steps mode, move the difficulty."""
        self.total_steps += 1
        if self.schedule is not None and self.schedule["mode"] == "steps":
            self.difficulty = self._scheduled()

    def record_episode(self, success: bool) -> None:
        """Count one finished episode; in success mode, raise the difficulty by ``increment`` when the last
        ``window`` episodes (pooled) reach the ``threshold`` success rate, then start a fresh window."""
        self.episodes += 1
        s = self.schedule
        if s is None or s["mode"] != "success":
            return
        self.recent.append(bool(success))
        if len(self.recent) == s["window"] and sum(self.recent) / s["window"] >= s["threshold"]:
            assert self.difficulty is not None
            self.difficulty = min(s["end"], round(self.difficulty + s["increment"], 12))
            self.recent.clear()

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, as plain JSON values."""
        return {"difficulty": self.difficulty, "episodes": self.episodes, "recent": [bool(x) for x in self.recent],
                "schedule": None if self.schedule is None else dict(self.schedule), "total_steps": self.total_steps}

    def load_state_dict(self, doc: Any) -> None:
        """Restore a :meth:`state_dict` (strict: one-line error on unknown keys or wrong types)."""
        if not isinstance(doc, dict) or set(doc) != set(_STATE_KEYS):
            got = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
            raise RLCourseError(f"curriculum state must have exactly the keys {', '.join(_STATE_KEYS)}; got {got}")
        counts = [doc["total_steps"], doc["episodes"]]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
            raise RLCourseError("curriculum state: total_steps and episodes must be non-negative integers")
        d = doc["difficulty"]
        if d is not None and (isinstance(d, bool) or not isinstance(d, numbers.Real) or not 0.0 <= d <= 1.0):
            raise RLCourseError(f"curriculum state: difficulty must be a number in [0, 1] or null, got {_short(d)}")
        if not isinstance(doc["recent"], list) or not all(isinstance(x, bool) for x in doc["recent"]):
            raise RLCourseError("curriculum state: recent must be a list of true/false")
        schedule = doc["schedule"]
        if schedule is not None:
            schedule = validate_params("goal_curriculum", schedule)
        self.schedule = None if schedule is None else dict(sorted(schedule.items()))
        self.difficulty = None if d is None else float(d)
        self.total_steps, self.episodes = counts
        self.recent = deque(doc["recent"], maxlen=None if schedule is None else schedule["window"])


def _check_curriculum(params: dict[str, Any]) -> None:
    if params["mode"] != "fixed" and params["start"] > params["end"]:
        raise RLCourseError(f"goal_curriculum: start ({params['start']:g}) must not exceed end ({params['end']:g})")


class GoalCurriculum(gym.Wrapper):
    """Moves each episode's goal from an easy anchor towards the task's own goal: ``(1 - d) anchor + d g``.

    The anchor is the object's start position (site ``object0``) on tasks with an object, else the gripper's
    start position (site ``robot0:grip``). At d = 0 the goal is the anchor; at d = 1 it is exactly the task's own
    goal. The new goal is written to ``env.unwrapped.goal`` and the observation is recomputed, so rewards,
    ``is_success`` and ``compute_reward`` all use it. Draws no random numbers. The schedule lives in a
    :class:`CurriculumState` (its own, unless one is passed to share between environments).
    """

    def __init__(self, env: gym.Env, *, mode: str, start: float, end: float, steps: int, increment: float,
                 window: int, threshold: float, curriculum_state: CurriculumState | None = None):
        super().__init__(env)
        base = env.unwrapped
        if not all(hasattr(base, a) for a in ("goal", "_get_obs", "_utils", "model", "data", "has_object")):
            raise RLCourseError(f"goal_curriculum needs a MuJoCo Fetch task, not {type(base).__name__}")
        inner = env
        while isinstance(inner, gym.Wrapper):
            if isinstance(inner, ObsNoise):
                raise RLCourseError("goal_curriculum must come before obs_noise in the wrapper list "
                                    "(it recomputes the observation)")
            inner = inner.env
        self.anchor_site = "object0" if base.has_object else "robot0:grip"
        self.state = curriculum_state if curriculum_state is not None else CurriculumState()
        self.state.bind({"mode": mode, "start": start, "end": end, "steps": steps, "increment": increment,
                         "window": window, "threshold": threshold})

    @property
    def difficulty(self) -> float:
        """The difficulty the next reset will use."""
        assert self.state.difficulty is not None
        return self.state.difficulty

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        _, info = self.env.reset(seed=seed, options=options)
        base = self.env.unwrapped
        anchor = _site_position(self.env, self.anchor_site)
        d = self.difficulty
        base.goal = (1.0 - d) * anchor + d * np.asarray(base.goal, dtype=np.float64)
        return base._get_obs(), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.state.record_step()
        if terminated or truncated:
            self.state.record_episode(bool(info.get("is_success", False)))
        return obs, reward, terminated, truncated, info


# ---------------------------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------------------------

register("obs_noise", ObsNoise, {
    "sigma": ParamSpec(float, low=0.0, doc="Gaussian noise std in metres, >= 0"),
    "keys": ParamSpec(list, default=["observation"], choices=FETCH_OBS_KEYS, doc="observation keys to perturb"),
}, "Gaussian noise on the listed observation keys", kind="observation", context=("stream",))

register("action_noise", ActionNoise, {
    "sigma": ParamSpec(float, low=0.0, doc="Gaussian noise std in action units, >= 0"),
}, "Gaussian noise added to the action, then clipped to the action box", context=("stream",))

register("action_scale", ActionScale, {
    "scale": ParamSpec(float, low=0.0, low_open=True, doc="action multiplier, > 0"),
}, "a' = clip(scale * a)")

register("action_filter", ActionFilter, {
    "alpha": ParamSpec(float, low=0.0, high=1.0, low_open=True, doc="weight of the new action, in (0, 1]"),
}, "exponential moving average of actions, reset to zero each episode")

register("goal_curriculum", GoalCurriculum, {
    "mode": ParamSpec(str, default="steps", choices=("fixed", "steps", "success"),
                      doc="fixed: d = start; steps: linear in environment steps; success: rises on success"),
    "start": ParamSpec(float, default=0.0, low=0.0, high=1.0, doc="initial difficulty"),
    "end": ParamSpec(float, default=1.0, low=0.0, high=1.0, doc="final (maximum) difficulty"),
    "steps": ParamSpec(int, default=100_000, low=1, doc="steps mode: environment steps (all envs) from start to end"),
    "increment": ParamSpec(float, default=0.1, low=0.0, high=1.0, low_open=True,
                           doc="success mode: difficulty added per rise"),
    "window": ParamSpec(int, default=100, low=1, doc="success mode: finished episodes pooled per decision"),
    "threshold": ParamSpec(float, default=0.8, low=0.0, high=1.0, doc="success mode: success rate that raises d"),
}, "goals moved from the object (or gripper) start towards the task's own goals by a scheduled difficulty",
    kind="task", context=("curriculum_state",), check=_check_curriculum)

register("sample_ranges", SampleRanges, {
    "obj_range": ParamSpec(float, default=0.15, low=0.0, high=0.2,
                           doc="object start: half-width in metres, <= 0.2 (wider puts the block off the table)"),
    "target_range": ParamSpec(float, default=0.15, low=0.0, high=0.2, doc="goal: half-width in metres, <= 0.2"),
}, "the half-widths of the task's object-start and goal boxes (0.15 m by default in every Fetch task)", kind="scene")

register("reward_radius", RewardRadius, {
    "metres": ParamSpec(float, low=0.0, high=0.2, low_open=True, doc="the training success radius in metres, in (0, 0.2]"),
}, "the radius within which training counts a goal as reached (the task's own judges the run)", kind="task")

register("dense_reward", DenseReward, {},
         "training rewards minus the distance to the goal (the task's own reward judges the run)", kind="task")

register("pixels", PixelObservation, {
    "size": ParamSpec(int, default=84, low=16, high=256, doc="frame side in pixels, in [16, 256]"),
    "frames": ParamSpec(int, default=1, low=1, high=4, doc="frames stacked on the channel axis, in [1, 4]"),
    "camera": ParamSpec(str, default="front", choices=CAMERA_NAMES,
                        doc="the camera's name (front_side: two views side by side)"),
    "lean": ParamSpec(bool, default=True, doc="no shadows, reflections or skybox"),
}, "camera frames and the desired goal instead of the state vector", kind="observation", unique=True)

register("blind", BlindFrames, {
    "value": ParamSpec(int, default=128, low=0, high=255, doc="the grey level of every pixel, in [0, 255]"),
}, "every camera frame replaced by one constant grey (after pixels)", kind="observation", unique=True)
