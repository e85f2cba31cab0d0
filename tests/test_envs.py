import os
import subprocess
import sys

import numpy as np
import pytest

from rlcourse import envs
from rlcourse.envs import fetch
from rlcourse.core.errors import RLCourseError


def test_fetch_registry_has_the_course_tasks():
    ids = envs.fetch_env_ids()
    for task in ("FetchReach", "FetchPush", "FetchPickAndPlace", "FetchSlide"):
        assert f"{task}-v4" in ids and f"{task}Dense-v4" in ids


def test_unknown_env_lists_valid_ids():
    with pytest.raises(RLCourseError) as exc:
        envs.make_env("FetchReech-v4")
    msg = str(exc.value)
    assert "FetchReech-v4" in msg and "FetchReachDense-v4" in msg and "\n" not in msg


def test_make_env_gives_goal_dict_observations():
    env = envs.make_env("FetchReachDense-v4")
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"observation", "achieved_goal", "desired_goal"} and obs["observation"].shape == (10,)
    assert envs.goal_distance(obs["achieved_goal"], obs["desired_goal"]) > 0
    env.close()


def test_headless_render_works_here():
    frame = envs.render_frame("FetchReach-v4", seed=0, width=64, height=48)
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 5


def _in_subprocess(code: str, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=120)


def test_backend_is_chosen_before_mujoco_is_imported():
    code = ("import sys; from rlcourse import envs; assert 'mujoco' not in sys.modules; b = envs.configure_gl(); "
            "import os; print(b, os.environ['MUJOCO_GL'])")
    proc = _in_subprocess(code)
    assert proc.returncode == 0, proc.stderr
    chosen, exported = proc.stdout.split()
    assert chosen == exported and chosen in fetch.GL_BACKENDS


@pytest.mark.parametrize("backend", ["egl", "osmesa"])
def test_each_backend_can_be_forced(backend):
    if fetch._probe_backend(backend) is not None:
        pytest.skip(f"{backend} is not installed on this machine")
    code = ("from rlcourse import envs; f = envs.render_frame('FetchReach-v4', 0, 32, 32); "
            "print(envs.gl_backend(), f.std() > 5)")
    proc = _in_subprocess(code, MUJOCO_GL=backend)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [backend, "True"]


def test_bad_mujoco_gl_value_is_a_clear_error():
    proc = _in_subprocess("from rlcourse import envs; envs.configure_gl()", MUJOCO_GL="vulkan")
    assert proc.returncode != 0 and "MUJOCO_GL='vulkan' is not a MuJoCo backend" in proc.stderr


def test_no_backend_gives_instructions(monkeypatch):
    monkeypatch.setattr(fetch, "_gl_state", {"backend": None, "errors": {}})
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(fetch, "_probe_backend", lambda b, timeout=60.0: f"{b} library not found")
    real_modules = dict(sys.modules)
    monkeypatch.setattr(sys, "modules", {k: v for k, v in real_modules.items() if k != "mujoco"})
    with pytest.raises(RLCourseError, match="no headless OpenGL backend works .*apt-get install"):
        envs.require_rendering()
