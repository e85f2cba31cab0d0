"""Chapter 7's lab: how a policy degrades under noise, in numbers.

A noise sweep evaluates one policy on the same seeded episodes at noise levels ``0 = s_0 < s_1 < ... < s_m`` (the
``obs_noise`` and ``action_noise`` wrappers of :mod:`rlcourse.envs.wrappers`, one environment spec per level) and
pools the successes over seeds. This module turns such a sweep into the quantities the chapter reports:

* the **degradation curve** (:func:`degradation_curve`): per level the pooled success rate ``p_i`` with its 95%
  Wilson interval ``[l_i, u_i]``;
* the **critical noise level** (:func:`critical_sigma`): the level at which the curve, drawn as straight lines
  between the measured levels, first falls to a fixed success ``q`` (default 0.5). It is ``None`` when the curve
  never falls that far within the sweep (the policy is more robust than the sweep can tell) and 0 when the clean
  success is already at or below ``q``. Straight lines between levels are an assumption; its effect shrinks with
  the spacing of the levels;
* the **robustness AUC** (:func:`robustness_auc`): the area under the same piecewise-linear curve divided by the
  width of the sweep, ``(1 / s_m) ∫ p(s) ds``, a number in [0, 1] that is 1 only for a policy that succeeds at every
  level and equals the clean success for a policy that noise does not touch. It depends on the sweep's range, so
  two AUCs compare only over the same levels;
* both with an interval (:func:`curve_summary`): the same quantity computed on the lower and the upper Wilson bands.
  The bands are pointwise 95% intervals, so the resulting interval is a sensitivity range, not a joint confidence
  statement; it never leaves the quantity's range, because the bands never leave [0, 1];
* the **recovery** of a noise-trained policy (:func:`recovery`): of the success the clean-trained policy loses at a
  noise level, which share the noise-trained one wins back, with Newcombe intervals for the loss and the gain;
* the **noise gain** of a policy (:func:`noise_gain`): how much action noise a little sensor noise becomes. To first
  order, noise ``n ~ N(0, σ² I)`` on an observation vector moves the command by ``J n``, with ``J`` the policy's
  Jacobian there, whose per-component standard deviation is ``σ ‖J‖_F / √m`` for ``m`` action components. The
  gain ``‖J‖_F / √m`` is exactly ``k`` for a proportional rule of gain ``k`` away from saturation, so observation
  noise ``σ`` acts on the arm like action noise ``k σ``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rlcourse.core.errors import RLCourseError
from rlcourse.core.stats import difference_interval, pooled_wilson


def _check_curve(sigmas: Sequence[float], rates: Sequence[float]) -> tuple[list[float], list[float]]:
    s, p = [float(x) for x in sigmas], [float(x) for x in rates]
    if len(s) != len(p) or len(s) < 2:
        raise RLCourseError(f"a degradation curve needs at least two levels and one rate per level, got "
                            f"{len(s)} levels and {len(p)} rates")
    if not all(math.isfinite(x) for x in s + p):
        raise RLCourseError("noise levels and success rates must be finite")
    if s[0] != 0.0 or any(b <= a for a, b in zip(s, s[1:])):
        raise RLCourseError(f"noise levels must start at 0 and increase strictly, got {s}")
    if any(not 0.0 <= x <= 1.0 for x in p):
        raise RLCourseError(f"success rates must lie in [0, 1], got {p}")
    return s, p


def degradation_curve(counts: Mapping[float, Sequence[tuple[int, int]]]) -> list[dict[str, Any]]:
    """Per noise level (sorted), the success pooled over seeds: ``counts[sigma]`` holds ``(successes, episodes)``
    per seed. Each point is :func:`~rlcourse.core.stats.pooled_wilson`'s result with ``sigma`` added."""
    if not counts:
        raise RLCourseError("degradation_curve needs at least one noise level")
    return [{"sigma": float(s), **pooled_wilson(counts[s])} for s in sorted(counts)]


def critical_sigma(sigmas: Sequence[float], rates: Sequence[float], level: float = 0.5) -> float | None:
    """The noise level at which the piecewise-linear curve through ``(sigmas[i], rates[i])`` first falls to
    ``level``: 0 if the clean rate is already at or below it, ``None`` if no measured rate falls to it."""
    s, p = _check_curve(sigmas, rates)
    if not 0.0 < level < 1.0:
        raise RLCourseError(f"level must lie in (0, 1), got {level}")
    if p[0] <= level:
        return 0.0
    for i in range(len(s) - 1):
        if p[i + 1] <= level:  # p[i] > level >= p[i + 1]: the crossing lies in this segment
            return s[i] + (p[i] - level) / (p[i] - p[i + 1]) * (s[i + 1] - s[i])
    return None


def robustness_auc(sigmas: Sequence[float], rates: Sequence[float]) -> float:
    """``(1 / sigmas[-1]) ∫ p(s) ds`` for the piecewise-linear curve (the trapezoid rule, exact for it): in [0, 1]."""
    s, p = _check_curve(sigmas, rates)
    area = sum((b - a) * (pa + pb) / 2 for a, b, pa, pb in zip(s, s[1:], p, p[1:]))
    return min(1.0, max(0.0, area / s[-1]))


def curve_summary(curve: Sequence[Mapping[str, Any]], level: float = 0.5) -> dict[str, Any]:
    """σ* and AUC of a :func:`degradation_curve`, each with the range it takes on the lower and upper Wilson bands.

    The lower band crosses ``level`` first, so it gives the low end of σ*, and the upper band the high end (``None``
    when the upper band never falls to ``level`` within the sweep); the AUC of the lower band is the low end of the
    AUC's range."""
    sig = [c["sigma"] for c in curve]
    rate, lo, hi = ([c[k] for c in curve] for k in ("rate", "lo", "hi"))
    return {"level": level, "sigma_max": sig[-1],
            "critical_sigma": critical_sigma(sig, rate, level),
            "critical_sigma_range": [critical_sigma(sig, lo, level), critical_sigma(sig, hi, level)],
            "auc": robustness_auc(sig, rate), "auc_range": [robustness_auc(sig, lo), robustness_auc(sig, hi)]}


def recovery(base_clean: tuple[int, int], base_noisy: tuple[int, int], robust_noisy: tuple[int, int],
             share: float = 0.5) -> dict[str, Any]:
    """How much of the clean-trained policy's loss at one noise level a noise-trained policy wins back.

    Each argument is a pooled ``(successes, episodes)``: the clean-trained policy without noise and with it, and the
    noise-trained policy with it. ``loss`` = clean − noisy success of the clean-trained policy, ``gain`` = the
    noise-trained minus the clean-trained policy's success under noise, each with Newcombe's 95% interval, and
    ``recovered`` = gain / loss (``None`` when nothing was lost). The verdict on "recovers at least ``share`` of the
    loss" is ``"yes"`` when the gain's lower end reaches ``share`` times the loss's upper end, ``"no"`` when the
    gain's upper end stays below ``share`` times the loss's lower end, and ``"undecided"`` otherwise."""
    (kc, nc), (kn, nn), (kr, nr) = base_clean, base_noisy, robust_noisy
    loss, gain = kc / nc - kn / nn, kr / nr - kn / nn
    loss_ci, gain_ci = difference_interval(kc, nc, kn, nn), difference_interval(kr, nr, kn, nn)
    if not 0.0 < share <= 1.0:
        raise RLCourseError(f"share must lie in (0, 1], got {share}")
    verdict = ("yes" if gain_ci[0] >= share * loss_ci[1] else
               "no" if gain_ci[1] < share * loss_ci[0] else "undecided")
    return {"loss": loss, "loss_ci95": list(loss_ci), "gain": gain, "gain_ci95": list(gain_ci),
            "recovered": gain / loss if loss > 0 else None, "share": share, "verdict": verdict}


def jacobian(policy: Any, observation: Mapping[str, Any], key: str = "observation", components: int = 3,
             eps: float = 1e-4) -> np.ndarray:
    """The Jacobian ``(components, d)`` of the policy's deterministic action (its first ``components`` entries: the
    arm's x, y, z) with respect to the ``d`` entries of ``observation[key]``, by central differences of step ``eps``.
    A policy's command is clipped to [-1, 1], so a saturated axis has a zero row."""
    if not (math.isfinite(eps) and eps > 0):
        raise RLCourseError(f"eps must be a positive finite number, got {eps!r}")
    base = np.asarray(observation[key], dtype=np.float64)
    jac = np.empty((components, base.size))
    for j in range(base.size):
        moved = []
        for sign in (1.0, -1.0):
            x = base.copy()
            x.flat[j] += sign * eps
            o = {**observation, key: x.astype(np.asarray(observation[key]).dtype)}
            moved.append(np.asarray(policy.predict(o, deterministic=True)[0], dtype=np.float64)[:components])
        jac[:, j] = (moved[0] - moved[1]) / (2 * eps)
    return jac


def noise_gain(policy: Any, observations: Sequence[Mapping[str, Any]], key: str = "observation", components: int = 3,
               eps: float = 1e-4) -> np.ndarray:
    """Per observation, ``‖J‖_F / √components`` with ``J`` = :func:`jacobian`: the standard deviation of the command
    noise per arm component that unit sensor noise on every entry of ``observation[key]`` causes, to first order."""
    if not observations:
        raise RLCourseError("noise_gain needs at least one observation")
    return np.array([np.linalg.norm(jacobian(policy, o, key, components, eps)) / math.sqrt(components)
                     for o in observations])


def segment_gains(policy: Any, observations: Sequence[Mapping[str, Any]], segments: Sequence[Any],
                  key: str = "observation", components: int = 3, eps: float = 1e-4) -> dict[str, float]:
    """Where a policy's noise gain comes from: per named segment of the vector (anything with ``name``, ``start``
    and ``stop``, e.g. :func:`rlcourse.labs.anatomy.obs_layout`), the median over observations of
    ``√(Σ_{j in segment} ‖J_j‖²) / √components``. The squares of the segments' gains add up to the squared noise gain
    of each observation."""
    if not observations:
        raise RLCourseError("segment_gains needs at least one observation")
    cols = np.array([(jacobian(policy, o, key, components, eps) ** 2).sum(0) for o in observations])  # (N, d)
    return {seg.name: float(np.median(np.sqrt(cols[:, seg.start:seg.stop].sum(1) / components))) for seg in segments}
