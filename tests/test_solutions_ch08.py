"""The chapter 8 solutions compute what their solution texts claim."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from solutions import ch08  # noqa: E402

from rlcourse.algos import pixelsac  # noqa: E402
from rlcourse.algos.fastsac import EpisodeBuffer, buffer_episodes  # noqa: E402
from rlcourse.core.paths import checkpoints_dir  # noqa: E402


def test_exercise_1_reproduces_the_syllabus_figure_and_the_buffer_s_allocation():
    out = ch08.exercise_1()
    assert out["naive_bytes"] == 169_344  # "about 169 KB per transition" (syllabus, week 8)
    assert 7.8 < out["ratio"] < 7.9      # two stacks of four frames against one frame a step, plus reset frames
    steps = out["steps_ours"]
    assert pixelsac.replay_bytes(steps, 84, 4) <= 8 * 2**30 < pixelsac.replay_bytes(steps + 50, 84, 4)
    small = EpisodeBuffer(buffer_episodes(500, 50, 4), 50, (3, 84, 84), 3, 4, k=4, obs_dtype=np.uint8, frames=4)
    assert small.obs.nbytes == pixelsac.replay_bytes(500, 84, 4)  # the formula is what the buffer allocates


def test_exercise_2_the_formula_is_the_module_and_the_temperature_moves_the_keypoint():
    out = ch08.exercise_2()
    xs = [r["x (module)"] for r in out["rows"]]
    assert all(math.isclose(r["x (module)"], r["x (formula)"], abs_tol=1e-5) for r in out["rows"])
    assert abs(xs[0] - out["strong_x"]) < 1e-3         # cold: the arg-max, the strong spot
    assert abs(xs[-1]) < 0.05                           # hot: the centre, whatever the spots
    assert all(a > b for a, b in zip(xs, xs[1:]))       # in between it slides from one to the other


@pytest.mark.skipif(not (checkpoints_dir() / "pixelsac_her_pad4_FetchReach-v4_seed0").is_dir(),
                    reason="the chapter 8 reference runs are not committed yet")
def test_exercise_3_the_average_frame_leaves_the_policy_blind():
    out = ch08.exercise_3(n_episodes=10, frame_episodes=3)
    assert out["average"].shape == (3, 64, 64) and out["average"].dtype == np.uint8
    assert out["seeing"]["success_rate"] >= 0.9
    assert out["mean_frame"]["success_rate"] <= 0.2  # "almost none" of the episodes it solves when it sees
