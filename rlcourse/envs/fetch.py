"""Environment factory: a headless OpenGL backend, the Fetch registry, and ``make_env``.

MuJoCo reads ``MUJOCO_GL`` once, when ``mujoco`` is first imported, so the backend must be chosen before any
Gymnasium-Robotics environment is built. :func:`configure_gl` does that: it honours a ``MUJOCO_GL`` the user set,
otherwise it tries EGL and then OSMesa, each in a short-lived subprocess (a failed GL initialisation can take the
whole interpreter down, so it is never tried in-process). Simulation works whatever happens here; only rendering
needs a backend, and :func:`require_rendering` raises a clear error when none works.
"""

from __future__ import annotations

import os
import subprocess
import sys
from functools import lru_cache
from typing import Any

from rlcourse.core.errors import RLCourseError

GL_BACKENDS = ("egl", "osmesa")
_VALID_MUJOCO_GL = ("egl", "osmesa", "glfw", "disabled")

_PROBE = """
import mujoco
ctx = mujoco.GLContext(16, 16)
ctx.make_current()
ctx.free()
"""

_gl_state: dict[str, Any] = {"backend": None, "errors": {}}


def _probe_backend(backend: str, timeout: float = 60.0) -> str | None:
    """Try to create an OpenGL context with ``backend`` in a subprocess. Returns None on success, else the reason."""
    env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f}s"
    if proc.returncode == 0:
        return None
    lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit code {proc.returncode}"


def configure_gl(force: bool = False) -> str | None:
    """Choose the headless GL backend and export it as ``MUJOCO_GL`` / ``PYOPENGL_PLATFORM``.

    Must run before ``mujoco`` is imported; :func:`make_env` calls it for you. Returns the backend name, or None
    when neither EGL nor OSMesa works (simulation still works; rendering will raise).
    """
    if _gl_state["backend"] is not None and not force:
        return _gl_state["backend"]
    user = os.environ.get("MUJOCO_GL")
    if user:
        if user not in _VALID_MUJOCO_GL:
            raise RLCourseError(f"MUJOCO_GL={user!r} is not a MuJoCo backend; use one of {', '.join(_VALID_MUJOCO_GL)}")
        if "mujoco" not in sys.modules and user in GL_BACKENDS:
            os.environ.setdefault("PYOPENGL_PLATFORM", user)
        _gl_state["backend"] = user
        return user
    if "mujoco" in sys.modules:
        # Too late to choose: MuJoCo was imported with its own default. Record that honestly.
        _gl_state["backend"] = "unset (mujoco imported before rlcourse chose a backend)"
        return _gl_state["backend"]
    errors: dict[str, str] = {}
    for backend in GL_BACKENDS:
        reason = _probe_backend(backend)
        if reason is None:
            os.environ["MUJOCO_GL"] = backend
            os.environ["PYOPENGL_PLATFORM"] = backend
            _gl_state.update(backend=backend, errors=errors)
            return backend
        errors[backend] = reason
    _gl_state.update(backend=None, errors=errors)
    return None


def gl_backend() -> str | None:
    """The backend chosen by :func:`configure_gl` (None if none works)."""
    return configure_gl()


def require_rendering() -> str:
    """Return the working GL backend, or raise a one-line error that says how to get one."""
    backend = configure_gl()
    if backend is None or backend == "disabled":
        why = "; ".join(f"{b}: {r}" for b, r in _gl_state["errors"].items()) or "MUJOCO_GL=disabled"
        raise RLCourseError(
            f"no headless OpenGL backend works ({why}). Install one with "
            "'apt-get install -y libegl1 libgl1-mesa-dri libosmesa6' or set MUJOCO_GL=egl|osmesa explicitly"
        )
    return backend


@lru_cache(maxsize=1)
def fetch_env_ids() -> tuple[str, ...]:
    """Every Fetch environment id registered by Gymnasium-Robotics, sorted."""
    configure_gl()
    import contextlib
    import io

    import gymnasium as gym

    # gymnasium-robotics 1.4.2 prints a notice about the Adroit hand tasks on import; it does not concern Fetch.
    with contextlib.redirect_stderr(io.StringIO()):
        import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    # the v1 tasks need the retired mujoco_py; only the versions on the maintained mujoco bindings can be built
    return tuple(sorted(k for k, s in gym.registry.items()
                        if k.startswith("Fetch") and "MujocoPy" not in str(s.entry_point)))


def check_env_id(env_id: str) -> str:
    """Return ``env_id`` if it is a registered Fetch id, else raise a one-line error listing the valid ones."""
    ids = fetch_env_ids()
    if env_id not in ids:
        raise RLCourseError(f"unknown environment {env_id!r}; valid Fetch ids: {', '.join(ids)}")
    return env_id


def make_env(env_id: str, render_mode: str | None = None, **kwargs: Any):
    """Build a Fetch environment by id (``gym.make`` with a GL backend chosen and the id validated).

    ``render_mode="rgb_array"`` additionally checks that headless rendering can work.
    """
    check_env_id(env_id)
    if render_mode is not None:
        require_rendering()
    import gymnasium as gym

    return gym.make(env_id, render_mode=render_mode, **kwargs)


def goal_distance(achieved: Any, desired: Any) -> Any:
    """Euclidean distance between goals along the last axis (what Fetch's reward and success use)."""
    import numpy as np

    return np.linalg.norm(np.asarray(achieved) - np.asarray(desired), axis=-1)


def flatten_obs(obs: Any) -> Any:
    """A goal-dictionary observation as one float32 vector: keys in sorted order (on Fetch ``achieved_goal,
    desired_goal, observation``), each flattened. A dictionary of batched arrays ``(n, ...)`` or a list of
    dictionaries gives ``(n, D)``; plain arrays pass through as float32."""
    import numpy as np
    from collections.abc import Mapping

    if isinstance(obs, (list, tuple)) and obs and isinstance(obs[0], Mapping):
        return np.stack([flatten_obs(o) for o in obs])
    if isinstance(obs, Mapping):
        parts = [np.asarray(obs[k], dtype=np.float32) for k in sorted(obs)]
        if parts[0].ndim > 1:
            return np.concatenate([p.reshape(p.shape[0], -1) for p in parts], axis=1)
        return np.concatenate([p.reshape(-1) for p in parts])
    return np.asarray(obs, dtype=np.float32)


def gripper_position(env: Any) -> Any:
    """World position (x, y, z in metres) of the gripper's grip site ``robot0:grip``, read from the simulator by
    name (works through any wrappers)."""
    import numpy as np

    base = env.unwrapped
    return np.array(base._utils.get_site_xpos(base.model, base.data, "robot0:grip"), dtype=np.float64)


def true_goals(env: Any) -> tuple[Any, Any]:
    """The achieved goal (the object's position in tasks with an object, else the gripper's) and the desired goal,
    read from the simulator, not from an observation that a wrapper may have perturbed."""
    import numpy as np

    base = env.unwrapped
    if not getattr(base, "has_object", False):
        return gripper_position(env), np.array(base.goal, dtype=np.float64)
    achieved = np.array(base._utils.get_site_xpos(base.model, base.data, "object0"), dtype=np.float64)
    return achieved, np.array(base.goal, dtype=np.float64)


def render_frame(env_id: str = "FetchReach-v4", seed: int = 0, width: int = 480, height: int = 480):
    """Reset ``env_id`` with ``seed`` and return one RGB frame (H, W, 3, uint8), rendered headless."""
    env = make_env(env_id, render_mode="rgb_array", width=width, height=height)
    try:
        env.reset(seed=seed)
        frame = env.render()
    finally:
        env.close()
    if frame is None or frame.ndim != 3 or frame.shape[2] != 3:
        raise RLCourseError(f"rendering {env_id} returned no RGB frame (got {getattr(frame, 'shape', None)})")
    return frame


def save_png(frame: Any, path: Any) -> Any:
    """Write an RGB frame to a PNG atomically; returns the path."""
    import imageio.v3 as iio

    from rlcourse.core.io import atomic_write

    return atomic_write(path, lambda tmp: iio.imwrite(tmp, frame, extension=".png"))
