"""Chapter 7's exercise solutions, run small: each checks what the solution text claims."""

from __future__ import annotations

import pytest

from solutions import ch07


def test_exercise_1_the_filter_divides_the_noise_variance_as_derived_and_is_measured_on_the_policy():
    out = ch07.exercise_1(alpha=0.5, n_episodes=10, samples=50_000)
    assert out["factor"] == pytest.approx(1 / 3)
    assert out["factor_measured"] == pytest.approx(out["factor"], rel=0.05)
    for key in ("success_unfiltered", "success_filtered"):
        assert 0.0 <= out[key] <= 1.0


def test_exercise_2_coarse_grids_move_sigma_star_and_the_bands_say_by_how_much():
    counts = {0.0: [(100, 100)] * 3, 0.005: [(95, 100)] * 3, 0.01: [(60, 100)] * 3, 0.02: [(40, 100)] * 3,
              0.05: [(5, 100)] * 3}
    out = ch07.exercise_2(counts, keep=3)
    assert out["full"] == pytest.approx(0.01 + (0.6 - 0.5) / (0.6 - 0.4) * 0.01)
    assert len(out["coarse"]) == 3  # one inner level kept out of three
    by_grid = {tuple(r["grid"]): r for r in out["coarse"]}
    assert by_grid[(0.0, 0.02, 0.05)]["moved"] > 0  # without 0.01 the straight line from 1.0 to 0.4 crosses later
    assert all(r["moved"] is not None for r in out["coarse"])


def test_exercise_3_the_formula_matches_simulation_and_flips_peak_at_the_radius():
    rows = ch07.exercise_3(samples=40_000)
    for r in rows:
        assert abs(r["formula"] - r["simulated"]) < 4 * r["stderr"] + 1e-3, r
    by_d = {r["distance"]: r["formula"] for r in rows}
    assert by_d[0.045] > by_d[0.0] and by_d[0.055] > by_d[0.1]  # most wrong labels near the success radius
    assert by_d[0.045] > 0.3  # at the chapter's training noise, near the radius a label is wrong often
