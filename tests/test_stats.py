import doctest
import math
import re

import numpy as np

import pytest
from scipy import stats as st

from rlcourse.core import stats
from rlcourse.core.stats import (NONNEGATIVE, UNBOUNDED, UNIT, Bounds, format_interval, format_number, metric_bounds,
                                 pooled_wilson, reward_bounds, t_interval, wilson_interval)


def test_wilson_matches_closed_form_values():
    # Reference values of the 95% Wilson score interval (z = 1.959964).
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.236593, abs=1e-5) and hi == pytest.approx(0.763407, abs=1e-5)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.277533, abs=1e-5)
    lo, hi = wilson_interval(100, 100)
    assert hi == 1.0 and lo == pytest.approx(0.963007, abs=1e-5)


@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (0, 50), (3, 50), (50, 50), (17, 23)])
def test_wilson_stays_in_unit_interval_and_contains_estimate(k, n):
    lo, hi = wilson_interval(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    assert hi - lo > 0  # never the degenerate normal interval at 0/n or n/n


def test_wilson_narrows_with_more_episodes():
    w10 = wilson_interval(5, 10)
    w1000 = wilson_interval(500, 1000)
    assert (w1000[1] - w1000[0]) < (w10[1] - w10[0]) / 5


def test_wilson_rejects_bad_counts():
    with pytest.raises(ValueError):
        wilson_interval(1, 0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_pooled_wilson_pools_episodes_and_keeps_the_per_seed_range():
    p = pooled_wilson([(100, 100)] * 3)  # every episode of every seed succeeded: still a real interval
    assert (p["successes"], p["n_episodes"], p["rate"], p["hi"]) == (300, 300, 1.0, 1.0)
    assert p["lo"] == pytest.approx(0.987357, abs=1e-6) and p["lo"] < 1
    p = pooled_wilson([(85, 100), (43, 100)])
    assert (p["lo"], p["hi"]) == wilson_interval(128, 200) and p["rate"] == 0.64
    assert (p["per_seed"], p["per_seed_min"], p["per_seed_max"]) == ([0.85, 0.43], 0.43, 0.85)
    with pytest.raises(ValueError):
        pooled_wilson([])
    with pytest.raises(ValueError):
        pooled_wilson([(3, 2)])


def test_t_interval_matches_scipy():
    xs = [0.91, 0.97, 0.88, 0.95]
    mean, lo, hi = t_interval(xs)
    ref = st.t.interval(0.95, df=3, loc=sum(xs) / 4, scale=st.sem(xs))
    assert mean == pytest.approx(sum(xs) / 4)
    assert (lo, hi) == pytest.approx(ref)


def test_t_interval_needs_three_values():
    assert t_interval([0.5]) is None and t_interval([0.5, 0.7]) is None
    assert t_interval([0.5, 0.7], min_n=2) is not None  # only on request, e.g. to show what the rule prevents
    assert t_interval([0.5], min_n=1) is None  # one value never has a t interval
    with pytest.raises(ValueError):
        t_interval([])


def test_t_interval_is_clipped_to_the_possible_range():
    mean, lo, hi = t_interval([1.0, 0.9, 1.0], bounds=(0.0, 1.0))
    assert hi == 1.0 and lo < mean < 1.0
    mean, lo, hi = t_interval([0.01, 0.3, 0.02], bounds=NONNEGATIVE)  # unclipped: [-0.299, 0.519]
    assert lo == 0.0 and hi == pytest.approx(0.518941, abs=1e-6)
    mean, lo, hi = t_interval([-2.0, -30.0, -49.0], bounds=Bounds(-50.0, 0.0))  # unclipped: [-85.7, 31.7]
    assert (mean, lo, hi) == (-27.0, -50.0, 0.0)


def test_t_interval_of_equal_values_has_exactly_zero_width():
    assert t_interval([0.09, 0.09, 0.09]) == (0.09, 0.09, 0.09)  # not 0.09000000000000001 from the mean
    assert t_interval([1.0, 1.0, 1.0], bounds=UNIT) == (1.0, 1.0, 1.0)


def test_bounds():
    b = Bounds(0.0, 1.0)
    assert 0.5 in b and 1.0 in b and 1.5 not in b and "x" not in b
    assert b.clip(-0.2, 0.7) == (0.0, 0.7) and b.clip(0.2, 3.0) == (0.2, 1.0)
    assert b.union(Bounds(-1.0, 0.5)) == Bounds(-1.0, 1.0)
    assert Bounds(-1.0, 0.0).scaled(50) == Bounds(-50.0, 0.0)
    assert Bounds(-math.inf, 0.0).scaled(50) == Bounds(-math.inf, 0.0)
    with pytest.raises(ValueError):
        Bounds(1.0, 0.0)


def test_metric_bounds_follow_the_course_plan():
    assert metric_bounds("success_rate") == UNIT and metric_bounds("eval_success_rate") == UNIT
    assert metric_bounds("final_distance_mean") == NONNEGATIVE and metric_bounds("final_distance") == NONNEGATIVE
    assert metric_bounds("return_mean", env_id="FetchPush-v4") == Bounds(-50.0, 0.0)  # sparse: [-T, 0]
    assert metric_bounds("return", env_id="FetchReach-v4", horizon=20) == Bounds(-20.0, 0.0)
    assert metric_bounds("return_mean", env_id="FetchReachDense-v4") == Bounds(-math.inf, 0.0)
    assert metric_bounds("ep_return_mean", env_id="Pendulum-v1") == UNBOUNDED
    assert metric_bounds("return_std", env_id="FetchPush-v4") == UNBOUNDED  # a spread, not a return
    assert metric_bounds("time_to_success_mean") == Bounds(1.0, 50.0)
    assert metric_bounds("settling_time_mean") == Bounds(1.0, 50.0)
    assert metric_bounds("jerk_mean") == metric_bounds("overshoot") == Bounds(0.0, math.inf)
    assert metric_bounds("replay_reward_mean", env_id="FetchPush-v4") == Bounds(-1.0, 0.0)
    assert metric_bounds("replay_within_eps") == UNIT and metric_bounds("peak_action_mean") == UNIT
    assert metric_bounds("wall_clock_s") == NONNEGATIVE and metric_bounds("q_min_mean") == UNBOUNDED
    assert reward_bounds("FetchReach-v4", {"reward_type": "dense"}) == Bounds(-math.inf, 0.0)
    assert reward_bounds("FetchReach-v4", wrappers=[{"name": "noise", "params": {}}]) == UNBOUNDED


def test_format_interval_never_shows_a_point_as_an_interval():
    assert format_interval(0.5, 0.4, 0.6) == "0.5 [0.4, 0.6]"
    assert format_interval(200_000.0, 200_000.0, 200_000.0, n=3) == "200,000 (3 seeds, all equal)"
    assert format_interval(1.0, 1.0, 1.0) == "1 (no spread)"
    assert format_interval(0.0969, None, None, n=2, values=[0.139, 0.0546]) == \
        "0.0969 (CI n/a; 2 seeds: 0.0546 to 0.139)"
    assert format_interval(0.0969, None, None, n=2, values=[0.1, 0.1]) == "0.0969 (2 seeds, all equal)"
    assert format_interval(0.0969, None, None, n=1, values=[0.0969]) == "0.0969 (1 seed)"
    assert format_interval(0.0969, None, None) == "0.0969 (CI n/a)"
    # narrower than three digits: more digits until the ends differ
    assert format_interval(0.09, 0.0899996, 0.0900004) == "0.09 [0.0899996, 0.0900004]"
    with pytest.raises(ValueError):
        format_interval(2.0, 0.0, 1.0)
    point = re.compile(r"\[([^,\]]+), \1\]")
    for lo, hi in [(1 - 1e-9, 1.0), (0.09, 0.09 + 1e-7), (199_999.6, 200_000.4), (-1e-300, 0.0)]:
        text = format_interval((lo + hi) / 2, lo, hi, n=3)
        assert not point.search(text), text


def test_format_number_writes_large_numbers_out():
    assert format_number(200_000.0) == "200,000" and format_number(0.98765) == "0.988"


def test_docstring_examples():
    assert doctest.testmod(stats).failed == 0


def test_difference_interval_matches_newcombe_and_stays_in_range():
    from rlcourse.core.stats import difference_interval

    lo, hi = difference_interval(56, 70, 48, 80)  # Newcombe (1998), Statistics in Medicine 17, example (a)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)
    assert difference_interval(40, 40, 0, 40)[1] == 1.0 and difference_interval(0, 40, 40, 40)[0] == -1.0
    lo, hi = difference_interval(7, 20, 7, 20)
    assert lo == pytest.approx(-hi) and lo < 0 < hi  # no difference: symmetric about 0, not a point
    for k1, k2 in [(0, 0), (20, 20), (3, 17), (19, 1)]:
        lo, hi = difference_interval(k1, 20, k2, 20)
        assert -1.0 <= lo <= k1 / 20 - k2 / 20 <= hi <= 1.0
    with pytest.raises(ValueError):
        difference_interval(5, 0, 1, 10)


def test_ratio_interval_is_welch_on_the_logarithms():
    a, b = [16000.0, 20000.0, 18000.0], [2000.0, 1500.0, 2500.0]
    rho, lo, hi = stats.ratio_interval(a, b)
    la, lb = np.log(a), np.log(b)
    ref = st.ttest_ind(la, lb, equal_var=False).confidence_interval(0.95)
    assert math.isclose(rho, math.exp(la.mean() - lb.mean()))
    assert math.isclose(lo, math.exp(ref.low)) and math.isclose(hi, math.exp(ref.high))
    assert 0 < lo < rho < hi
    # scaling one group scales the ratio and its interval by the same factor (the uncertainty is multiplicative)
    r2 = stats.ratio_interval([2 * x for x in a], b)
    assert all(math.isclose(2 * u, v) for u, v in zip((rho, lo, hi), r2))


def test_ratio_interval_needs_three_positive_values_per_group():
    assert stats.ratio_interval([1.0, 2.0], [1.0, 2.0, 3.0]) is None
    with pytest.raises(ValueError):
        stats.ratio_interval([1.0, 0.0, 2.0], [1.0, 2.0, 3.0])
    one_side = stats.ratio_interval([4.0, 4.0, 4.0], [1.0, 2.0, 4.0])  # no spread on one side: still an interval
    assert one_side[1] < one_side[0] < one_side[2]
    assert stats.ratio_interval([4.0] * 3, [2.0] * 3) == (2.0, 2.0, 2.0)
