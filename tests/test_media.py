"""GIFs of a policy, recorded through the evaluation loop."""

import numpy as np

from rlcourse.analysis.media import save_gif


def test_save_gif_renders_a_policy_atomically(tmp_path):
    import imageio.v3 as iio

    from rlcourse.contract.policies import FunctionPolicy

    sweep = FunctionPolicy(lambda obs: np.array([1.0, 0.0, 0.0, 0.0]))  # the arm moves, so frames differ
    path = save_gif(sweep, "FetchReach-v4", tmp_path / "a.gif", seeds=[1000], size=64, every=10, fps=5)
    frames = iio.imread(path)
    # reset + steps 10..50 (the held copies of the last frame are merged into one by the GIF encoder)
    assert frames.shape[1:] == (64, 64, 3) and len(frames) == 6
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.5
    assert [p.name for p in tmp_path.iterdir()] == ["a.gif"]  # no temporary file left behind


def test_a_gif_shows_the_episode_the_evaluation_loop_ran(tmp_path):
    """The frames come from the evaluation loop's own episode: a policy that commands no motion changes the picture
    far less between the first and last frame than one that sweeps the arm across the table."""
    import imageio.v3 as iio

    from rlcourse.contract.policies import FunctionPolicy

    def change(action, name):
        path = save_gif(FunctionPolicy(lambda obs: action), "FetchReach-v4", tmp_path / name, seeds=[1000], size=48,
                        every=25, fps=2)
        frames = iio.imread(path).astype(int)
        return np.abs(frames[0] - frames[-1]).mean()

    still, sweep = change(np.zeros(4), "still.gif"), change(np.array([1.0, 0.0, 0.0, 0.0]), "sweep.gif")
    assert sweep > 2 * still, (still, sweep)  # measured: 3.3 against 1.2 (the arm settles a little at rest)


def test_side_by_side_panels_show_each_policy_in_step(tmp_path):
    import imageio.v3 as iio

    from rlcourse.contract.policies import FunctionPolicy

    still, sweep = FunctionPolicy(lambda obs: np.zeros(4)), FunctionPolicy(lambda obs: np.array([1.0, 0.0, 0.0, 0.0]))
    path = save_gif(still, "FetchReach-v4", tmp_path / "pair.gif", seeds=[1000], size=48, every=25, fps=2,
                    beside=[(sweep, "FetchReach-v4")])
    frames = iio.imread(path).astype(int)
    assert frames.shape[1:] == (48, 96, 3)
    left, right = frames[:, :, :48], frames[:, :, 48:]
    assert np.abs(left[0] - right[0]).mean() < 0.5  # the same reset ...
    assert np.abs(right[0] - right[-1]).mean() > 2 * np.abs(left[0] - left[-1]).mean()  # ... and only one arm moves


def test_the_seen_panel_is_the_policy_s_own_frame(tmp_path):
    """With ``seen="pixels"`` the left panel is the camera frame the policy received, enlarged, beside the view."""
    import imageio.v3 as iio

    from rlcourse.contract.evaluate import evaluate
    from rlcourse.contract.policies import FunctionPolicy
    from rlcourse.envs.spec import EnvSpec

    spec = EnvSpec("FetchReach-v4").with_wrappers("pixels:size=32")
    still = FunctionPolicy(lambda obs: np.zeros(4))
    path = save_gif(still, spec, tmp_path / "seen.gif", seeds=[1000], size=64, every=50, fps=1, seen="pixels")
    frames = iio.imread(path)
    assert frames.shape[1:] == (64, 128, 3)
    first = []
    evaluate(still, spec, n_episodes=1, seed=1000, observer=lambda e, o, t: first.append(o["pixels"]) if t == 0 else None)
    expected = np.repeat(np.repeat(first[0].transpose(1, 2, 0), 2, axis=0), 2, axis=1)
    assert np.abs(frames[0, :, :64].astype(int) - expected).mean() < 3  # GIF palette quantisation only
    assert np.abs(frames[0, :, 64:].astype(int) - expected).mean() > 10  # the right panel is the task's own view


def test_seen_must_name_frames_before_any_episode_runs(tmp_path):
    import pytest

    from rlcourse.contract.policies import FunctionPolicy
    from rlcourse.core.errors import RLCourseError

    still = FunctionPolicy(lambda obs: np.zeros(4))
    for spec, key in (("FetchReach-v4", "pixels"), ("FetchReach-v4", "observation")):
        with pytest.raises(RLCourseError, match="seen="):
            save_gif(still, spec, tmp_path / "x.gif", size=32, seen=key)
    assert not any(tmp_path.iterdir())
