"""The solutions to chapter 6's exercises (solutions/ch06.py), run small: each test checks what the chapter's hidden
solution tells the reader."""

from __future__ import annotations

import pytest

from solutions import ch06


def test_exercise_1_the_filtered_loop_overshoots_where_the_algebra_says():
    assert ch06.largest_calm_gain(1.0, 0.65) == pytest.approx(1 / (0.65 * 0.05))  # no filter: the dead-beat gain
    assert ch06.largest_calm_gain(0.5, 0.65) < ch06.largest_calm_gain(0.9, 0.65)  # more filtering, less gain
    out = ch06.exercise_1(n_episodes=8)
    assert out["below"]["overshoot"] < 0.002
    assert out["above"]["overshoot"] > out["below"]["overshoot"] + 0.003


def test_exercise_2_the_pareto_set_dominates_the_rest():
    out = ch06.exercise_2(scales=(0.5, 1.0), alphas=(0.3, 1.0), n_episodes=10)
    assert out["pareto"] and len(out["rows"]) == 4
    for r in out["rows"]:
        assert r in out["pareto"] or any(out["dominates"](p, r) for p in out["pareto"])


def test_exercise_3_the_rate_limiter_keeps_its_promise():
    out = ch06.exercise_3(rho=0.2, alphas=(0.3, 0.5), n_episodes=5)
    assert out["limited"]["smoothness_mean"] <= 4 * 0.2**2 + 1e-9  # no component changes by more than rho
    assert out["filter_alpha"] in (0.3, 0.5) and 0 <= out["filtered"]["success_rate"] <= 1
