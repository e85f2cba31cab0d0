"""Animations of a policy, recorded through the one evaluation loop (so what you see is what was evaluated)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlcourse.core.errors import RLCourseError
from rlcourse.core.io import atomic_write
from rlcourse.contract.evaluate import evaluate
from rlcourse.envs.spec import EnvSpec


def save_gif(policy: Any, spec: EnvSpec | str | dict[str, Any], path: Path | str, seeds: Iterable[int] = (1000,),
             size: int = 240, every: int = 2, fps: int = 12, camera: dict[str, Any] | None = None,
             beside: Sequence[tuple[Any, EnvSpec | str | dict[str, Any]]] = (), seen: str | None = None) -> Path:
    """Render deterministic episodes of ``policy`` on ``spec`` into an animated GIF: one episode per seed (each
    seed is the first of a one-episode evaluation), every ``every``-th step and the last, ``size`` x ``size``
    pixels, seen from ``camera`` (MuJoCo free-camera settings: ``distance``, ``azimuth``, ``elevation``,
    ``lookat``; default: the task's); each episode's last frame is held for a second. ``beside`` holds more
    ``(policy, spec)`` pairs, played on the same seeds in panels to the right (Fetch episodes all have the same
    length, so the panels stay in step). ``seen`` names an observation key of channel-first frames (``"pixels"``):
    the first policy's newest frame, what its camera saw at that step, becomes a panel on the left, enlarged to
    ``size`` without smoothing. Returns the path."""
    import imageio.v3 as iio

    seeds = [int(s) for s in seeds]
    if not seeds:
        raise RLCourseError("save_gif needs at least one seed")
    if seen is not None:  # checked on the spec's observation space before any episode runs
        from rlcourse.envs.spec import make

        probe = make(EnvSpec.coerce(spec))
        shape = getattr(probe.observation_space, "spaces", {}).get(seen)
        probe.close()
        if shape is None or len(shape.shape) != 3:
            raise RLCourseError(f"save_gif: seen={seen!r} is not a key of channel-first frames in this spec's observations")
    render = {"width": size, "height": size}
    if camera is not None:
        render["default_camera_config"] = dict(camera)
    panels = []
    for i, (pol, sp) in enumerate([(policy, spec), *beside]):
        frames: list[np.ndarray] = []
        views: list[np.ndarray] = []
        watch = seen if i == 0 else None

        def grab(env: Any, obs: Any, t: int) -> None:
            if t % every == 0 or t == env.spec.max_episode_steps:
                frames.append(env.render())
                if watch is not None:
                    views.append(_enlarged(obs[watch], size))

        for seed in seeds:
            evaluate(pol, sp, n_episodes=1, seed=seed, observer=grab, render=render)
            frames.extend([frames[-1]] * fps)
            views.extend([views[-1]] * fps if views else [])
        panels.extend([np.stack(views)] if views else [])
        panels.append(np.stack(frames))
    if len({p.shape for p in panels}) != 1:
        raise RLCourseError(f"save_gif: the panels have different lengths {[len(p) for p in panels]}")
    stack = np.concatenate(panels, axis=2)
    return atomic_write(path, lambda tmp: iio.imwrite(tmp, stack, extension=".gif", duration=1000 / fps, loop=0))


def _enlarged(frames: Any, size: int) -> np.ndarray:
    """The newest RGB frame of a channel-first stack ``(3k, h, w)``, as ``(size, size, 3)`` by pixel repetition (and
    a final crop or edge padding when ``size`` is not a multiple of ``h``)."""
    frame = np.asarray(frames)[-3:].transpose(1, 2, 0)
    if frame.shape[0] != frame.shape[1]:
        raise RLCourseError(f"save_gif: seen frames must be square, got {frame.shape[:2]}")
    k = max(1, -(-size // frame.shape[0]))
    big = np.repeat(np.repeat(frame, k, axis=0), k, axis=1)[:size, :size]
    return np.asarray(big, dtype=np.uint8)
