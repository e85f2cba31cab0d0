import math

import pytest
from scipy import stats as st

from rlcourse.core.stats import t_interval, wilson_interval


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


def test_t_interval_matches_scipy():
    xs = [0.91, 0.97, 0.88, 0.95]
    mean, lo, hi = t_interval(xs)
    ref = st.t.interval(0.95, df=3, loc=sum(xs) / 4, scale=st.sem(xs))
    assert mean == pytest.approx(sum(xs) / 4)
    assert (lo, hi) == pytest.approx(ref)


def test_t_interval_clips_rates_and_handles_one_seed():
    mean, lo, hi = t_interval([1.0, 0.9, 1.0], bounds=(0.0, 1.0))
    assert hi == 1.0 and lo < mean < 1.0
    assert t_interval([0.5]) == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError):
        t_interval([])
    assert not math.isnan(t_interval([1.0, 1.0])[1])
