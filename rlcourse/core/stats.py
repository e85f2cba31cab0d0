"""Interval estimates used everywhere in the course, and how they are printed.

The rules (the course plan's "Statistics" convention):

- A success rate over ``n`` episodes is a binomial proportion: report the Wilson score interval, which stays inside
  [0, 1] and behaves at 0/n and n/n, where the textbook normal interval collapses to a point. Wilson at n/n is a
  real interval (100/100 gives [0.963, 1]), never the point 1.
- Across seeds, success is pooled over all episodes of all seeds (one Wilson interval on the pooled count) and
  shown with the per-seed range, since pooling alone hides disagreement between seeds.
- A continuous metric across seeds (return, distance, wall-clock...) gets a Student-t interval only with at least
  :data:`MIN_SEEDS_FOR_T` = 3 seeds; with fewer, there is no interval and tables print "n/a".
- No interval leaves the quantity's possible range (:class:`Bounds`, :func:`metric_bounds`): a t interval is
  clipped to it. Clipping only removes values the mean cannot take, so the clipped interval still covers the true
  mean whenever the unclipped one does; it is no longer symmetric about the mean, and need not be.
- A zero-width interval (every seed gave the same number) is not shown as "[x, x]", which would read as certainty:
  :func:`format_interval` says "3 seeds, all equal" instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats as _st

MIN_SEEDS_FOR_T = 3
FETCH_HORIZON = 50  # steps per Fetch episode (the TimeLimit of every Fetch task)


@dataclass(frozen=True)
class Bounds:
    """The closed range ``[lo, hi]`` a quantity can take (either end may be infinite)."""

    lo: float = -math.inf
    hi: float = math.inf

    def __post_init__(self) -> None:
        if not self.lo <= self.hi:
            raise ValueError(f"empty bounds [{self.lo}, {self.hi}]")

    def __contains__(self, x: object) -> bool:
        return isinstance(x, (int, float)) and self.lo <= x <= self.hi

    def clip(self, lo: float, hi: float) -> tuple[float, float]:
        """``(lo, hi)`` clipped to the range."""
        return min(max(lo, self.lo), self.hi), max(min(hi, self.hi), self.lo)

    def union(self, other: Bounds) -> Bounds:
        """The smallest range holding both (used when a group mixes runs with different ranges)."""
        return Bounds(min(self.lo, other.lo), max(self.hi, other.hi))

    def scaled(self, factor: float) -> Bounds:
        """The range of ``factor * x`` for a non-negative ``factor`` (a sum of ``factor`` such values)."""
        if factor < 0:
            raise ValueError("scaled needs a non-negative factor")

        def mul(v: float) -> float:
            return 0.0 if v == 0 else v * factor

        return Bounds(mul(self.lo), mul(self.hi))

    def as_tuple(self) -> tuple[float, float]:
        return self.lo, self.hi


UNBOUNDED = Bounds()
UNIT = Bounds(0.0, 1.0)
NONNEGATIVE = Bounds(0.0, math.inf)


def reward_bounds(env_id: str | None, kwargs: Mapping[str, Any] | None = None,
                  wrappers: Sequence[Any] = ()) -> Bounds:
    """Range of the per-step reward of an environment.

    Fetch: sparse reward in {-1, 0}, so [-1, 0]; dense reward ``-distance``, so (-inf, 0]. The reward type comes
    from ``kwargs["reward_type"]`` when given, else from the id (``...Dense...``). With any wrapper in the spec the
    range is unknown (a wrapper may shape, scale or penalise the reward), and so is it for any other environment.
    """
    if wrappers or not env_id or not env_id.startswith("Fetch"):
        return UNBOUNDED
    reward_type = (kwargs or {}).get("reward_type") or ("dense" if "Dense" in env_id else "sparse")
    return Bounds(-1.0, 0.0) if reward_type == "sparse" else Bounds(-math.inf, 0.0)


# quantity -> its range; None means "depends on the environment" (see metric_bounds)
_QUANTITIES: dict[str, Bounds | None] = {
    "success": UNIT,
    "final_distance": NONNEGATIVE,
    "goal_dist": NONNEGATIVE,
    "within_eps": UNIT,
    "smoothness": NONNEGATIVE,
    "peak_action": UNIT,  # max |a_i| of an action clipped to the box [-1, 1]^4
    "path_length": NONNEGATIVE,
    "action_energy": NONNEGATIVE,
    "jerk": NONNEGATIVE,
    "overshoot": NONNEGATIVE,
    "wall_clock_s": NONNEGATIVE,
    "wall_s": NONNEGATIVE,
    "steps_per_s": NONNEGATIVE,
    "fps": NONNEGATIVE,
    "steps_done": NONNEGATIVE,
    "timesteps": NONNEGATIVE,
    "q_gap": NONNEGATIVE,
    "ent_coef": NONNEGATIVE,
    "return": None,
    "reward": None,
    "length": None,
    "time_to_success": None,
    "settling_time": None,
}


def _quantity(metric: str) -> str:
    """The base quantity of a metric or curve-column name: ``eval_success_rate`` -> ``success``."""
    name = metric
    for prefix in ("eval_", "ep_", "replay_"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    for suffix in ("_mean", "_min", "_max", "_rate"):  # not _std: a spread has its own range
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def metric_bounds(metric: str, *, env_id: str | None = None, horizon: int | None = None,
                  reward: Bounds | None = None) -> Bounds:
    """The possible range of ``metric`` (an ``eval.json`` aggregate, an episode field, a curve column or a run
    scalar such as ``wall_clock_s``).

    ======================  ==========================================================================
    success rate            [0, 1]
    final distance, ...     [0, inf) (also smoothness, jerk, overshoot, path length, action energy,
                            wall-clock, steps/s)
    peak action             [0, 1] (Fetch's action box is [-1, 1] per axis)
    return                  ``horizon`` times the per-step reward range: [-T, 0] for sparse Fetch,
                            (-inf, 0] for dense Fetch, unbounded otherwise (see :func:`reward_bounds`)
    replay reward           the per-step reward range
    length, time to success [1, T] (also settling time)
    anything else           unbounded
    ======================  ==========================================================================

    ``reward`` overrides the per-step reward range derived from ``env_id``; ``horizon`` is the episode length T
    (default :data:`FETCH_HORIZON`).
    """
    q = _quantity(metric)
    fixed = _QUANTITIES.get(q, UNBOUNDED)
    if fixed is not None:
        return fixed
    T = FETCH_HORIZON if horizon is None else int(horizon)
    if T < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    r = reward if reward is not None else reward_bounds(env_id)
    if q == "return":
        return r.scaled(T)
    if q == "reward":
        return r
    return Bounds(1.0, float(T))  # length, time_to_success


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


def difference_interval(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> tuple[float, float]:
    """Interval for the difference of two success rates ``k1/n1 - k2/n2`` (e.g. clean minus stressed success):
    Newcombe's hybrid score interval, built from the two Wilson intervals, so it stays inside [-1, 1] and behaves at
    0/n and n/n. It treats the samples as independent; for the same episodes evaluated twice (paired) it is
    conservative when the outcomes are positively correlated.

    >>> tuple(round(x, 4) for x in difference_interval(56, 70, 48, 80))  # Newcombe (1998), example (a)
    (0.0524, 0.3339)
    """
    (l1, u1), (l2, u2) = wilson_interval(k1, n1, confidence), wilson_interval(k2, n2, confidence)  # checks counts
    p1, p2 = k1 / n1, k2 / n2
    d = p1 - p2
    lo = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return max(-1.0, lo), min(1.0, hi)


def pooled_wilson(counts: Iterable[tuple[int, int]], confidence: float = 0.95) -> dict[str, Any]:
    """Success pooled across seeds: ``counts`` holds ``(successes, episodes)`` per seed.

    Returns ``{"successes", "n_episodes", "rate", "lo", "hi", "per_seed", "per_seed_min", "per_seed_max"}``: the
    Wilson interval of the pooled count, and the per-seed rates with their range. Pooling treats every episode as
    one draw of the same rate; the per-seed range is what shows when seeds disagree.
    """
    pairs = [(int(k), int(n)) for k, n in counts]
    if not pairs:
        raise ValueError("pooled_wilson needs at least one seed")
    for k, n in pairs:
        if n <= 0 or not 0 <= k <= n:
            raise ValueError(f"bad success count {k} of {n}")
    k = sum(p[0] for p in pairs)
    n = sum(p[1] for p in pairs)
    lo, hi = wilson_interval(k, n, confidence)
    rates = [a / b for a, b in pairs]
    return {"successes": k, "n_episodes": n, "rate": k / n, "lo": lo, "hi": hi, "per_seed": rates,
            "per_seed_min": min(rates), "per_seed_max": max(rates)}


def _as_bounds(bounds: Bounds | tuple[float, float] | None) -> Bounds:
    if bounds is None:
        return UNBOUNDED
    return bounds if isinstance(bounds, Bounds) else Bounds(float(bounds[0]), float(bounds[1]))


def t_interval(
    values: Sequence[float], confidence: float = 0.95, bounds: Bounds | tuple[float, float] | None = None,
    min_n: int = MIN_SEEDS_FOR_T,
) -> tuple[float, float, float] | None:
    """Mean and two-sided Student-t interval ``(mean, lo, hi)`` across independent runs (e.g. seeds), or None with
    fewer than ``min_n`` (default 3) values: with one or two seeds a t interval says next to nothing (t = 12.7 at
    two) and the course prints "n/a" instead.

    ``bounds`` (a :class:`Bounds` or ``(lo, hi)``) is the quantity's possible range, e.g. :func:`metric_bounds`;
    the interval is clipped to it, so it never contains impossible values (a negative distance, a rate above 1).
    When all values are equal the interval has zero width; :func:`format_interval` prints it as such.
    """
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("t_interval needs at least one value")
    if len(xs) < max(2, min_n):
        return None
    mean = math.fsum(xs) / len(xs)
    if all(x == xs[0] for x in xs):  # exactly equal: exactly zero width, not 1e-17 of round-off
        mean = lo = hi = xs[0]
    else:
        sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
        half = float(_st.t.ppf(0.5 + confidence / 2, df=len(xs) - 1)) * sd / math.sqrt(len(xs))
        lo, hi = mean - half, mean + half
    lo, hi = _as_bounds(bounds).clip(lo, hi)
    return mean, lo, hi


def ratio_interval(
    numerators: Sequence[float], denominators: Sequence[float], confidence: float = 0.95, min_n: int = MIN_SEEDS_FOR_T,
) -> tuple[float, float, float] | None:
    """How many times larger the ``numerators`` are than the ``denominators`` (two independent groups of runs,
    e.g. steps to a threshold from pixels and from states): ``(ratio, lo, hi)``, or None when either group has fewer
    than ``min_n`` values.

    A ratio of positive quantities is a difference of logarithms, ``log ρ = mean log a - mean log b``; its Welch t
    interval (unequal variances, Welch-Satterthwaite degrees of freedom) is mapped back with ``exp``. So ``ratio``
    is the ratio of the geometric means and the interval is multiplicative, always inside (0, inf), as a ratio's
    uncertainty is. The seeds of the two groups are not paired: seed 0 from pixels has nothing in common with
    seed 0 from states but its number.
    """
    a = [float(v) for v in numerators]
    b = [float(v) for v in denominators]
    if any(not (math.isfinite(v) and v > 0) for v in a + b):
        raise ValueError("ratio_interval needs positive, finite values")
    if min(len(a), len(b)) < max(2, min_n):
        return None
    la, lb = [math.log(v) for v in a], [math.log(v) for v in b]
    ma, mb = math.fsum(la) / len(la), math.fsum(lb) / len(lb)
    va = math.fsum((x - ma) ** 2 for x in la) / (len(la) - 1) / len(la)
    vb = math.fsum((x - mb) ** 2 for x in lb) / (len(lb) - 1) / len(lb)
    diff, se = ma - mb, math.sqrt(va + vb)
    if se == 0:
        return math.exp(diff), math.exp(diff), math.exp(diff)
    df = (va + vb) ** 2 / ((va ** 2 / (len(la) - 1) if va else 0.0) + (vb ** 2 / (len(lb) - 1) if vb else 0.0))
    half = float(_st.t.ppf(0.5 + confidence / 2, df=df)) * se
    return math.exp(diff), math.exp(diff - half), math.exp(diff + half)


def format_number(v: float, digits: int = 3) -> str:
    """``digits`` significant digits, except that numbers too large for them are written out in full with
    thousands separators (200,000 rather than 2e+05)."""
    v = float(v)
    if math.isfinite(v) and abs(v) >= 10**digits:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def format_interval(value: float, lo: float | None, hi: float | None, *, n: int | None = None, unit: str = "seed",
                    values: Sequence[float] | None = None, digits: int = 3) -> str:
    """``"value [lo, hi]"``, without ever showing a point as if it were an interval.

    - no interval (``lo``/``hi`` None, e.g. a t interval with < 3 seeds): ``"0.0969 (CI n/a; 2 seeds: 0.0546 to
      0.139)"``, the range of the ``values`` when given; ``"0.0969 (1 seed)"`` for one;
    - zero width, or no interval and all ``values`` equal: ``"200,000 (3 seeds, all equal)"``;
    - an interval narrower than ``digits`` significant digits is printed with more digits until its ends differ.

    >>> format_interval(0.5, 0.4, 0.6)
    '0.5 [0.4, 0.6]'
    >>> format_interval(1.0, 1.0, 1.0, n=3)
    '1 (3 seeds, all equal)'
    >>> format_interval(-27.44, None, None, n=2, values=[-20.3, -34.58])
    '-27.4 (CI n/a; 2 seeds: -34.6 to -20.3)'
    """
    point = format_number(value, digits)
    counted = None if n is None else _plural(n, unit)
    if lo is None or hi is None:
        if n == 1:
            return f"{point} ({counted})"
        if values and min(values) == max(values):
            return f"{point} ({counted}, all equal)"
        detail = "CI n/a" if counted is None else f"CI n/a; {counted}"
        if values:
            detail += f": {format_range(min(values), max(values), digits)}"
        return f"{point} ({detail})"
    if not lo <= value <= hi:
        raise ValueError(f"the estimate {value} lies outside its interval [{lo}, {hi}]")
    if hi - lo <= 1e-12 * max(1.0, abs(value)):
        return f"{point} ({counted}, all equal)" if n is not None and n > 1 else f"{point} (no spread)"
    d = digits
    while format_number(lo, d) == format_number(hi, d) and d < 15:
        d += 1
    return f"{format_number(value, d)} [{format_number(lo, d)}, {format_number(hi, d)}]"


def format_range(lo: float, hi: float, digits: int = 3) -> str:
    """A range of observed values, e.g. the per-seed range: ``"0.43 to 0.85"`` (``"to"``, not a dash, which would
    be ambiguous next to a minus sign)."""
    return f"{format_number(lo, digits)} to {format_number(hi, digits)}"
