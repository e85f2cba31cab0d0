"""Benchmark: what a camera frame costs, and how fast a pixel environment steps (chapter 8).

    .venv/bin/python benchmarks/render_speed.py                  # sizes 64 and 84, about a minute
    .venv/bin/python benchmarks/render_speed.py --sizes 84 --frames 400 --repeats 7

Four ways to draw the same FetchPush scene, each ``--frames`` frames per repeat, the repeats interleaved (ABCD ABCD
...) so that a slow moment of the machine costs every path alike:

* ``gymnasium``  the task's own ``render()`` (``render_mode="rgb_array"`` at the frame size): an offscreen buffer
  of the frame's size (the task sizes it from ``width`` and ``height``, 480 x 480 by default) with 4x
  multisampling, and a 4096² shadow map, then the frame read back;
* ``camera``     a dedicated renderer (:class:`rlcourse.envs.camera.Camera`, ``fast=False, lean=False``): the same
  settings, so it should cost about what gymnasium does (a check of the measurement, not a lever; what is left
  between the two is gymnasium's own overhead);
* ``fast``       the dedicated renderer without multisampling;
* ``lean``       ``fast`` without shadows (and their map), reflections or skybox: what the ``pixels`` wrapper uses.

Every path's first frame must show the scene (gymnasium, for one, draws into whichever OpenGL context is current
and returns black frames after another renderer drew, unless its own context is made current first).

Then whole environment steps: the state task against the ``pixels`` wrapper (lean camera), random actions, per size.
Writes ``benchmarks/results/render_speed.json`` (schema ``benchmark``: per path and size the median milliseconds per
frame over the repeats, the ratio ``gymnasium / path``, and the OpenGL implementation that drew the frames, since
EGL may fall back to software silently) and ``render_speed.png``. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from rlcourse.contract.runs import write_json  # noqa: E402
from rlcourse.core.errors import RLCourseError  # noqa: E402
from rlcourse.core.io import atomic_write  # noqa: E402
from rlcourse.core.paths import project_root  # noqa: E402
from rlcourse.core.provenance import command_line, git_info, hardware, utc_now, versions  # noqa: E402
from rlcourse.envs.camera import Camera, gl_renderer  # noqa: E402
from rlcourse.envs.spec import EnvSpec, make  # noqa: E402

NAME = "render_speed"
ENV_ID = "FetchPush-v4"
PATHS = {
    "gymnasium": "the task's render(): 4x multisampling, 4096² shadow map",
    "camera": "a dedicated renderer with the task's settings (a check of the measurement, not a lever)",
    "fast": "a dedicated renderer without multisampling",
    "lean": "fast, without shadows, reflections or skybox (the pixels wrapper)",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="64,84", help="comma-separated frame sides in pixels")
    p.add_argument("--frames", type=int, default=200, help="frames per path and repeat")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats; the median is reported")
    p.add_argument("--steps", type=int, default=300, help="environment steps per repeat for the step rates")
    p.add_argument("--out", default=str(project_root() / "benchmarks" / "results"))
    return p.parse_args(argv)


def frame_makers(size: int) -> tuple[dict[str, Callable[[], np.ndarray]], dict[str, str], Callable[[], None]]:
    """One callable per path that draws one frame of the same scene; the OpenGL implementation of each; a closer."""
    env = make(ENV_ID, render_mode="rgb_array", width=size, height=size)
    env.reset(seed=0)
    for _ in range(5):
        env.step(env.action_space.sample())
    task = env.unwrapped
    cams = {"camera": Camera(task.model, task.data, size, lean=False, fast=False),
            "fast": Camera(task.model, task.data, size, lean=False),
            "lean": Camera(task.model, task.data, size, lean=True)}
    env.render()  # gymnasium builds its renderer on the first call
    viewer = task.mujoco_renderer.viewer

    def gym_render() -> np.ndarray:
        viewer.make_context_current()  # gymnasium would otherwise draw into the camera last used (a black frame)
        return env.render()

    makers: dict[str, Callable[[], np.ndarray]] = {"gymnasium": gym_render}
    makers.update({k: c.render for k, c in cams.items()})
    gl = {"gymnasium": gl_renderer(task.mujoco_renderer.viewer)}
    gl.update({k: c.gl_renderer() for k, c in cams.items()})

    def close() -> None:
        for c in cams.values():
            c.close()
        env.close()

    return makers, gl, close


def time_frames(draw: Callable[[], np.ndarray], frames: int) -> float:
    """Milliseconds per frame over ``frames`` calls (after one warm-up frame, which must show a scene: a path that
    draws nothing would be fast for the wrong reason)."""
    if float(draw().std()) < 5.0:
        raise RLCourseError("a path drew a blank frame; its timing would measure nothing")
    start = time.perf_counter()
    for _ in range(frames):
        draw()
    return 1000.0 * (time.perf_counter() - start) / frames


def time_steps(spec: EnvSpec, steps: int, seed: int = 0) -> float:
    """Environment steps per second with uniform random actions, resets included."""
    env = make(spec)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    env.step(rng.uniform(-1, 1, 4))
    start = time.perf_counter()
    for _ in range(steps):
        *_, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 4))
        if terminated or truncated:
            env.reset()
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def measure(sizes: list[int], frames: int, repeats: int, steps: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
    rows, gl_all = [], {}
    for size in sizes:
        makers, gl, close = frame_makers(size)
        gl_all.update({f"{k}@{size}": v for k, v in gl.items()})
        times: dict[str, list[float]] = {k: [] for k in makers}
        for _ in range(repeats):
            for name, draw in makers.items():
                times[name].append(time_frames(draw, frames))
        close()
        for name, ts in times.items():
            rows.append({"recipe": name, "run_id": f"{name}@{size}", "kind": "frame", "size": size,
                         "ms_per_frame": statistics.median(ts), "ms_per_frame_runs": ts})
        rates: dict[str, list[float]] = {"state": [], "pixels": []}
        specs = {"state": EnvSpec(ENV_ID), "pixels": EnvSpec(ENV_ID).with_wrappers(f"pixels:size={size}")}
        for _ in range(repeats):
            for name, spec in specs.items():
                rates[name].append(time_steps(spec, steps))
        for name, rs in rates.items():
            rows.append({"recipe": f"{name}_steps", "run_id": f"{name}_steps@{size}", "kind": "steps", "size": size,
                         "steps_per_s": statistics.median(rs), "steps_per_s_runs": rs})
    return rows, gl_all


def ratios(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """``gymnasium / path`` milliseconds per frame (above 1: the path is faster) and ``state / pixels`` step rates."""
    out: dict[str, float | None] = {}
    by = {(r["recipe"], r["size"]): r for r in rows}
    for (name, size), r in by.items():
        if r["kind"] == "frame" and name != "gymnasium":
            out[f"{name}@{size}: gymnasium_over_path"] = by[("gymnasium", size)]["ms_per_frame"] / r["ms_per_frame"]
        if name == "pixels_steps":
            out[f"steps@{size}: state_over_pixels"] = by[("state_steps", size)]["steps_per_s"] / r["steps_per_s"]
    return out


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["size"] for r in rows})
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(sizes)
    for i, size in enumerate(sizes):
        frame = [r for r in rows if r["kind"] == "frame" and r["size"] == size]
        ax.bar(np.arange(len(frame)) + i * width, [r["ms_per_frame"] for r in frame], width, label=f"{size}²")
    ax.set_xticks(np.arange(len(PATHS)) + width * (len(sizes) - 1) / 2, list(PATHS))
    ax.set_ylabel("ms per frame (median)")
    ax.set_title(f"{ENV_ID}: one frame, four ways to draw it")
    ax.legend(title="frame")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        raise RLCourseError(f"--sizes must list integers, got {args.sizes!r}") from None
    if not sizes or any(not 16 <= s <= 256 for s in sizes) or len(set(sizes)) != len(sizes):
        raise RLCourseError(f"--sizes must list distinct sides in [16, 256], got {args.sizes!r}")
    if min(args.frames, args.repeats, args.steps) < 1:
        raise RLCourseError("--frames, --repeats and --steps must be >= 1")
    out = Path(args.out)
    rows, gl = measure(sizes, args.frames, args.repeats, args.steps)
    doc = {"schema": "rlcourse.benchmark/1", "name": NAME, "created_utc": utc_now(), "command": command_line(),
           "hardware": hardware(), "versions": versions(), "git": git_info(),
           "recipes": PATHS, "protocol": {"env_id": ENV_ID, "sizes": sizes, "frames": args.frames,
                                          "repeats": args.repeats, "steps": args.steps,
                                          "mujoco_gl": os.environ.get("MUJOCO_GL")},
           "gl_renderer": gl, "results": rows, "ratios": ratios(rows),
           "notes": "Medians over interleaved repeats. gymnasium_over_path above 1: the path draws a frame faster "
                    "than the task's render(); state_over_pixels: how many state steps cost one pixel step."}
    path = out / f"{NAME}.json"
    write_json(path, doc, "benchmark")
    plot(rows, path.with_suffix(".png"))
    for r in rows:
        value = f"{r['ms_per_frame']:.2f} ms/frame" if r["kind"] == "frame" else f"{r['steps_per_s']:.0f} steps/s"
        print(f"  {r['run_id']:>20}: {value}")
    print("  ratios:", {k: round(v, 2) for k, v in doc["ratios"].items() if v is not None})
    print(f"  drawn by: {sorted(set(gl.values()))}")
    print(f"wrote {path} and {path.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RLCourseError as exc:
        print(f"{NAME}: error: {exc}", file=sys.stderr)
        sys.exit(2)
