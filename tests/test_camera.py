"""The pixel observation wrapper and its camera (rlcourse.envs.camera, the ``pixels`` wrapper)."""

import numpy as np
import pytest

from rlcourse.core.errors import RLCourseError
from rlcourse.envs.camera import FREE_VIEWS, Camera
from rlcourse.envs.spec import EnvSpec, make
from rlcourse.envs.wrappers import PixelObservation


def pixel_env(env_id: str = "FetchReach-v4", wrap: str = "pixels:size=32,frames=2", **kwargs):
    return make(EnvSpec(env_id).with_wrappers(wrap), **kwargs)


def test_the_policy_keys_hold_no_state_that_gives_the_answer_away():
    env = pixel_env()
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"pixels", "desired_goal", "achieved_goal"}  # the state vector is gone
    assert obs["pixels"].shape == (6, 32, 32) and obs["pixels"].dtype == np.uint8
    assert env.observation_space["pixels"].shape == (6, 32, 32)
    assert "achieved_goal" not in PixelObservation.POLICY_KEYS and "observation" not in PixelObservation.POLICY_KEYS
    env.close()


def test_the_goal_is_not_drawn():
    """Reach starts the gripper at the same pose every episode and only the goal changes, so two resets with
    different seeds must look identical: a visible goal marker would make them differ."""
    env = pixel_env()
    camera, task, seen = env.get_wrapper_attr("camera"), env.unwrapped, []
    for seed in (0, 1):
        obs, _ = env.reset(seed=seed)
        task._render_callback()  # what gymnasium's render() does first: it moves the marker onto the goal
        seen.append((obs["desired_goal"], camera.render()))
    assert not np.allclose(seen[0][0], seen[1][0])
    assert np.array_equal(seen[0][1], seen[1][1])
    env.close()


def test_frames_are_stacked_newest_last_and_match_the_state_they_come_with():
    env = pixel_env()
    obs, _ = env.reset(seed=0)
    assert np.array_equal(obs["pixels"][:3], obs["pixels"][3:])  # the first frame fills the stack
    camera = env.get_wrapper_attr("camera")
    previous = obs["pixels"][3:]
    for _ in range(3):
        obs, *_ = env.step(np.array([1.0, 0.0, 0.0, 0.0]))  # the gripper moves, so every frame differs
        assert np.array_equal(obs["pixels"][:3], previous)
        assert not np.array_equal(obs["pixels"][3:], previous)
        assert np.array_equal(obs["pixels"][3:], camera.render().transpose(2, 0, 1))  # rendered after the step
        previous = obs["pixels"][3:]
    env.close()


def test_same_seed_same_frames():
    frames = []
    for _ in range(2):
        env = pixel_env("FetchPush-v4", "pixels:size=24")
        obs, _ = env.reset(seed=3)
        obs, *_ = env.step(np.array([0.5, -0.5, 0.0, 1.0]))
        frames.append(obs["pixels"])
        env.close()
    assert np.array_equal(*frames)


def test_gymnasium_renderer_keeps_its_own_size():
    """The camera shrinks the model's offscreen buffer only while it is built: a full-size GIF still works."""
    env = pixel_env(render_mode="rgb_array", width=200, height=160)
    env.reset(seed=0)
    assert env.render().shape == (160, 200, 3)
    assert env.unwrapped.model.vis.global_.offwidth >= 200
    env.close()


def test_gymnasium_frames_after_camera_frames_are_drawn():
    """gymnasium renders in whatever OpenGL context is current; after the camera drew, its frame would be black."""
    env = pixel_env(render_mode="rgb_array", width=64, height=64)
    env.reset(seed=0)
    first = env.render()
    for _ in range(3):
        env.step(np.zeros(4))
        frame = env.render()
        assert frame.std() > 10 and abs(float(frame.mean()) - float(first.mean())) < 20
    env.close()


def test_lean_drops_shadows_but_not_the_scene():
    env = pixel_env("FetchPush-v4", "pixels:size=48")
    env.reset(seed=0)
    task = env.unwrapped
    lean = Camera(task.model, task.data, 48, lean=True).render()
    full = Camera(task.model, task.data, 48, lean=False).render()
    assert lean.shape == full.shape == (48, 48, 3)
    assert 0 < np.abs(lean.astype(int) - full.astype(int)).mean() < 40  # different lighting, the same picture
    env.close()


def test_two_views_side_by_side_are_the_two_cameras_frames():
    """``front_side`` is the front frame on the left and the side frame on the right, of the same instant; the two
    views differ, and the blind control blanks both."""
    env = pixel_env(wrap="pixels:size=32,camera=front_side")
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(np.array([1.0, 0.0, 0.0, 0.0]))
    assert obs["pixels"].shape == env.observation_space["pixels"].shape == (3, 32, 64)
    task = env.unwrapped
    front, side = (Camera(task.model, task.data, 32, camera=name).render().transpose(2, 0, 1)
                   for name in ("front", "side"))
    assert np.array_equal(obs["pixels"][:, :, :32], front) and np.array_equal(obs["pixels"][:, :, 32:], side)
    assert np.abs(front.astype(int) - side.astype(int)).mean() > 5
    env.close()
    blind = make(EnvSpec("FetchReach-v4").with_wrappers("pixels:size=32,camera=front_side", "blind:value=7"))
    obs, _ = blind.reset(seed=0)
    assert obs["pixels"].shape == (3, 32, 64) and (obs["pixels"] == 7).all()
    blind.close()


@pytest.mark.parametrize("name", ["front", "side"])
def test_the_line_of_sight_points_at_the_camera_mujoco_places(name):
    view = FREE_VIEWS[name]
    env = pixel_env(wrap=f"pixels:size=16,camera={name}")
    env.reset(seed=0)
    camera = env.get_wrapper_attr("camera")
    camera.render()
    eye = np.mean([c.pos for c in camera.renderer.scene.camera], axis=0)  # the scene's two eyes, averaged
    assert np.allclose(np.asarray(view.lookat) + view.distance * view.line_of_sight(), eye, atol=1e-6)
    env.close()
    ls = {n: FREE_VIEWS[n].line_of_sight() for n in ("front", "side")}
    assert np.isclose(ls["front"] @ ls["side"], 0.5)  # sixty degrees apart


@pytest.mark.parametrize("wrap, message", [
    ("pixels:camera=ceiling", "camera"),
    ("pixels:size=8", "size"),
    ("pixels:frames=5", "frames"),
    ("pixels+pixels", "only once"),
])
def test_bad_pixel_settings_are_refused_in_one_line(wrap, message):
    with pytest.raises(RLCourseError, match=message) as exc:
        spec = EnvSpec("FetchReach-v4")
        spec = spec.with_wrappers(*wrap.split("+")) if "+" in wrap else spec.with_wrappers(wrap)
        spec.validate()
    assert "\n" not in str(exc.value)


def test_the_camera_reports_what_draws_it():
    env = pixel_env()
    name = env.get_wrapper_attr("camera").gl_renderer()
    assert isinstance(name, str) and name
    env.close()


def test_the_blind_control_blanks_the_frames_and_nothing_else():
    seen = {}
    for wrap in ("pixels:size=24", "pixels:size=24+blind:value=7"):
        env = make(EnvSpec("FetchReach-v4").with_wrappers(*wrap.split("+")))
        obs, _ = env.reset(seed=4)
        obs, *_ = env.step(np.array([1.0, 0.0, 0.0, 0.0]))
        seen[wrap] = obs
        env.close()
    plain, blind = seen.values()
    assert (blind["pixels"] == 7).all() and blind["pixels"].shape == plain["pixels"].shape
    assert len(np.unique(plain["pixels"])) > 10
    for key in ("desired_goal", "achieved_goal"):
        assert np.array_equal(blind[key], plain[key])
    with pytest.raises(RLCourseError, match="after the pixels wrapper"):
        make(EnvSpec("FetchReach-v4").with_wrappers("blind"))
