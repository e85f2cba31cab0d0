"""Interval estimates used everywhere in the course.

- A success rate over ``n`` episodes is a binomial proportion: report the Wilson score interval, which stays inside
  [0, 1] and behaves at 0/n and n/n, where the textbook normal interval collapses to a point.
- A mean over a handful of seeds gets a Student-t interval; when the quantity is a rate, the interval is clipped to
  [0, 1] so that no table ever shows an impossible value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats as _st


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``successes / n``.

    >>> lo, hi = wilson_interval(10, 10)
    >>> round(lo, 3), hi
    (0.722, 1.0)
    """
    if n <= 0:
        raise ValueError("wilson_interval needs at least one trial")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n]; got {successes} of {n}")
    z = float(_st.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, centre - half)  # exact endpoints: no 1e-17 from rounding
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


def t_interval(
    values: Sequence[float], confidence: float = 0.95, bounds: tuple[float, float] | None = None
) -> tuple[float, float, float]:
    """Mean and two-sided Student-t interval ``(mean, lo, hi)`` across independent runs (e.g. seeds).

    With one value the interval is degenerate (``lo == hi == mean``). ``bounds`` clips the interval, e.g. ``(0, 1)``
    for rates.
    """
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("t_interval needs at least one value")
    mean = sum(xs) / len(xs)
    if len(xs) == 1:
        lo = hi = mean
    else:
        sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
        half = float(_st.t.ppf(0.5 + confidence / 2, df=len(xs) - 1)) * sd / math.sqrt(len(xs))
        lo, hi = mean - half, mean + half
    if bounds is not None:
        lo, hi = max(bounds[0], lo), min(bounds[1], hi)
    return mean, lo, hi
