"""A camera for pixel observations: one dedicated offscreen renderer per environment, made as cheap as a CPU allows.

Gymnasium's ``render()`` draws with 4x multisampling and a 4096 x 4096 shadow map into an offscreen buffer of the
frame's size (480 x 480 unless the task was made with ``width`` and ``height``); on a CPU without a GPU (Mesa's
``llvmpipe``) the multisampling is most of what a small frame costs. A :class:`Camera` owns a ``mujoco.Renderer``
whose offscreen buffer is exactly the frame, without multisampling, and in its ``lean`` setting it also switches
off what a policy does not need to see: shadows (and their map), reflections and the skybox.
``benchmarks/render_speed.py`` measures each of these steps side by side.

The camera does not draw the task's sites: Fetch marks the goal with a red sphere (site ``target0``), which would
show the *episode's* goal while hindsight relabelling hands the policy another one, and whose position gymnasium only
updates when its own renderer is called. The goal reaches the policy as a vector, never as pixels.

Cameras are named: ``front`` is a free camera above the table, looking down on the workspace from the robot's far
side, ``side`` looks at the same point from the robot's right, and any camera defined in the model
(``head_camera_rgb``, ``gripper_camera_rgb``, ``external_camera_0``) can be used by its name. A single view cannot
tell how far along its line of sight a point lies; ``front_side`` renders ``front`` and ``side`` with one renderer and
puts the two frames side by side, ``(size, 2 size, 3)``, so that what one view cannot resolve the other sees across.
:func:`gl_renderer` reports which OpenGL implementation draws the frames (``llvmpipe`` is software rendering, whatever
``MUJOCO_GL`` says).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rlcourse.core.errors import RLCourseError


@dataclass(frozen=True)
class FreeView:
    """A free camera: it looks at ``lookat`` from ``distance`` metres, turned ``azimuth`` degrees about the vertical
    and tilted ``elevation`` degrees (negative: from above)."""

    distance: float
    azimuth: float
    elevation: float
    lookat: tuple[float, float, float]

    def line_of_sight(self) -> np.ndarray:
        """The unit vector from ``lookat`` towards the camera: the direction along which a point can move while its
        image barely changes (only its apparent size does), the one direction a single view cannot measure well."""
        az, el = np.radians(self.azimuth), np.radians(self.elevation)
        return -np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])


FREE_VIEWS: dict[str, FreeView] = {
    # the table's centre, seen from the side facing the robot at 45 degrees: gripper, block and goal box all in frame
    "front": FreeView(distance=1.0, azimuth=180.0, elevation=-45.0, lookat=(1.3, 0.75, 0.45)),
    # the same point from the robot's right, at the same tilt: its line of sight is at 60 degrees to front's
    "side": FreeView(distance=1.0, azimuth=90.0, elevation=-45.0, lookat=(1.3, 0.75, 0.45)),
}
MODEL_CAMERAS = ("head_camera_rgb", "gripper_camera_rgb", "external_camera_0")
# several views rendered one after the other by one renderer and put side by side, left to right
MONTAGES: dict[str, tuple[str, ...]] = {"front_side": ("front", "side")}
CAMERA_NAMES = (*FREE_VIEWS, *MODEL_CAMERAS, *MONTAGES)


class Camera:
    """Renders ``size`` x ``size`` RGB frames (uint8, ``(size, size, 3)``) of a MuJoCo model and data; a montage
    (:data:`MONTAGES`) renders ``(size, n * size, 3)``, its ``n`` views left to right.

    ``lean=True`` renders without shadows, reflections or skybox and with a minimal shadow map; ``lean=False``
    keeps the scene as the model describes it, but still with an offscreen buffer of the frame's size and no
    multisampling (``fast=False`` keeps gymnasium's buffer, samples and shadow map too: the reference the benchmark
    measures against). The model's visual settings are changed only while the renderer is built, so a gymnasium
    renderer made later from the same model (for a GIF at full size) is unaffected.
    """

    def __init__(self, model: Any, data: Any, size: int, camera: str = "front", lean: bool = True,
                 fast: bool = True):
        import mujoco

        if not isinstance(size, int) or not 8 <= size <= 480:
            raise RLCourseError(f"camera size must be an integer in [8, 480], got {size!r}")
        if camera not in CAMERA_NAMES:
            raise RLCourseError(f"unknown camera {camera!r}; cameras: {', '.join(CAMERA_NAMES)}")
        views = MONTAGES.get(camera, (camera,))
        for view in views:
            if view in MODEL_CAMERAS and mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, view) < 0:
                raise RLCourseError(f"camera {view!r} is not defined in this model")
        self._mujoco, self.model, self.data, self.size = mujoco, model, data, size
        vis = model.vis
        saved = (vis.global_.offwidth, vis.global_.offheight, vis.quality.offsamples, vis.quality.shadowsize)
        if fast:  # the renderer's buffers are allocated from these settings when it is built, and only then
            vis.global_.offwidth = vis.global_.offheight = size
            vis.quality.offsamples = 0
            if lean:
                vis.quality.shadowsize = 0
        try:
            self.renderer = mujoco.Renderer(model, height=size, width=size)
        finally:  # so gymnasium's own renderer, built later from the same model, is the usual one
            vis.global_.offwidth, vis.global_.offheight, vis.quality.offsamples, vis.quality.shadowsize = saved
        self.option = mujoco.MjvOption()
        self.option.sitegroup[:] = 0  # no sites: the goal marker would contradict relabelled goals
        self.views: list[Any] = [_view(mujoco, view) for view in views]
        self.lean, self.name = lean, camera
        self.shape = (size, size * len(self.views), 3)

    def render(self) -> np.ndarray:
        """The current scene as a new ``(size, size, 3)`` uint8 array (``(size, n * size, 3)`` for a montage)."""
        flags, frames = self._mujoco.mjtRndFlag, []
        for view in self.views:
            self.renderer.update_scene(self.data, camera=view, scene_option=self.option)
            if self.lean:
                for flag in (flags.mjRND_SHADOW, flags.mjRND_REFLECTION, flags.mjRND_SKYBOX):
                    self.renderer.scene.flags[flag] = 0
            frames.append(self.renderer.render())
        return frames[0] if len(frames) == 1 else np.concatenate(frames, axis=1)

    def gl_renderer(self) -> str:
        """The OpenGL implementation behind this camera, e.g. ``llvmpipe (LLVM 15.0.6, 256 bits)`` (software)."""
        return gl_renderer(self.renderer)

    def close(self) -> None:
        """Free the renderer's OpenGL context (idempotent)."""
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None  # type: ignore[assignment]


def _view(mujoco: Any, name: str) -> Any:
    """What ``mujoco.Renderer.update_scene`` takes as ``camera``: a free ``MjvCamera`` for a view of
    :data:`FREE_VIEWS`, the name itself for a camera of the model."""
    if name not in FREE_VIEWS:
        return name
    view, camera = FREE_VIEWS[name], mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.distance, camera.azimuth, camera.elevation = view.distance, view.azimuth, view.elevation
    camera.lookat[:] = view.lookat
    return camera


def gl_renderer(renderer: Any) -> str:
    """``GL_RENDERER`` behind a ``mujoco.Renderer`` or a gymnasium offscreen viewer, found through its OpenGL
    context ("unknown" where there is none or it cannot be queried)."""
    context = getattr(renderer, "_gl_context", None) or getattr(renderer, "opengl_context", None)
    if context is None:
        return "unknown"
    try:
        context.make_current()
        from OpenGL import GL

        name = GL.glGetString(GL.GL_RENDERER)
    except Exception:  # noqa: BLE001 - a report, never a failure
        return "unknown"
    return name.decode() if isinstance(name, bytes) else str(name)


def probe_gl_renderer() -> str:
    """The OpenGL implementation a camera gets on this machine (``GL_RENDERER`` of a renderer on an empty model), or
    a short reason when no renderer can be made. Call :func:`rlcourse.envs.fetch.configure_gl` first."""
    try:
        import mujoco

        renderer = mujoco.Renderer(mujoco.MjModel.from_xml_string("<mujoco/>"), 8, 8)
    except Exception as exc:  # noqa: BLE001 - a report, never a failure
        return f"none ({type(exc).__name__}: {' '.join(str(exc).split())[:80]})"
    try:
        return gl_renderer(renderer)
    finally:
        renderer.close()
