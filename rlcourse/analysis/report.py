"""Reading reference runs back: tables across seeds, learning curves with bands, figures for the book.

Chapters never type a result; they load run folders and call these functions. The statistics follow the course
plan (see :mod:`rlcourse.core.stats`):

- success across seeds is pooled over all evaluation episodes of all seeds, with the Wilson interval of the pooled
  count and the per-seed range;
- a continuous metric is the mean across seeds with a 95% Student-t interval only when there are at least three
  seeds ("n/a" below), clipped to the quantity's possible range (distance >= 0, sparse return in [-T, 0], ...);
- a zero-width interval (all seeds equal) is printed as such, never as "x [x, x]".

Within a run, the success rate carries its own Wilson interval from ``eval.json``.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlcourse.core.errors import RLCourseError
from rlcourse.core.io import atomic_write
from rlcourse.core.paths import checkpoints_dir, figures_dir
from rlcourse.contract.runs import Run, curve_table, list_runs, load_run
from rlcourse.core.stats import (FETCH_HORIZON, MIN_SEEDS_FOR_T, UNBOUNDED, Bounds, difference_interval,
                                 format_interval, format_number, format_range, metric_bounds, pooled_wilson, reward_bounds, t_interval)

# metric -> (where it lives, key, the quantity whose range bounds it; see rlcourse.core.stats.metric_bounds)
METRICS: dict[str, tuple[str, str, str]] = {
    "success_rate": ("eval", "success_rate", "success_rate"),
    "return_mean": ("eval", "return_mean", "return"),
    "final_distance_mean": ("eval", "final_distance_mean", "final_distance"),
    "time_to_success_mean": ("eval", "time_to_success_mean", "time_to_success"),
    "smoothness_mean": ("eval", "smoothness_mean", "smoothness"),
    "peak_action_mean": ("eval", "peak_action_mean", "peak_action"),
    "wall_clock_s": ("meta", "wall_clock_s", "wall_clock_s"),
    "steps_per_s": ("meta", "steps_per_s", "steps_per_s"),
    "steps_done": ("meta", "steps_done", "steps_done"),
}
# what a reader sees in a table's first column instead of the metric's key
METRIC_LABELS = {"success_rate": "success rate", "return_mean": "return", "final_distance_mean": "final distance (m)",
                 "time_to_success_mean": "steps to first success", "smoothness_mean": "smoothness",
                 "peak_action_mean": "peak |action|", "wall_clock_s": "wall-clock (s)", "steps_per_s": "steps per second",
                 "steps_done": "environment steps"}
POOLED = ("success_rate",)  # metrics pooled over episodes (Wilson) rather than averaged over seeds (t)


def load_group(pattern: str, root: Path | str | None = None) -> list[Run]:
    """Complete runs under ``root`` (default ``checkpoints/``) whose run id matches the glob ``pattern``.

    Every matching run is loaded with its model file checked against the SHA-256 in ``meta.json`` (a corrupt or
    missing model raises a one-line error). Raises a one-line error when nothing matches, naming the command that
    makes the runs."""
    root = Path(root) if root is not None else checkpoints_dir()
    runs = [load_run(r.path, verify_model=True) for r in list_runs(root) if fnmatch.fnmatch(r.run_id, pattern)]
    if not runs:
        raise RLCourseError(f"no runs matching {pattern!r} under {root}; produce them with the chapter's full profile")
    return runs


def metric(run: Run, name: str) -> float | None:
    """One scalar of a run by name (see :data:`METRICS`)."""
    where, key, _ = METRICS[name]
    doc = run.meta if where == "meta" else (run.eval or {}).get("aggregate", {})
    value = doc.get(key)
    return None if value is None else float(value)


def success_counts(run: Run) -> tuple[int, int]:
    """``(successes, episodes)`` of a run's final evaluation, counted from the per-episode records."""
    ev = run.eval or {}
    episodes = ev.get("episodes")
    if episodes:
        return sum(bool(e["success"]) for e in episodes), len(episodes)
    agg, n = ev.get("aggregate", {}), ev.get("n_episodes")
    if n and agg.get("success_rate") is not None:  # no episode records: the count is rate * n
        return round(agg["success_rate"] * n), int(n)
    raise RLCourseError(f"run {run.run_id} has no evaluation episodes to count successes in")


def _env(run: Run) -> tuple[str | None, dict[str, Any], list[Any]]:
    """The environment a run was evaluated on: (id, kwargs, wrappers), from eval.json's spec, else meta.json's."""
    ev = run.eval or {}
    spec = ev.get("env_spec") or run.meta.get("env_spec")
    if spec:
        return spec.get("id"), dict(spec.get("kwargs") or {}), list(spec.get("wrappers") or [])
    return ev.get("env_id") or run.meta.get("env_id"), {}, []


def run_bounds(run: Run, quantity: str) -> Bounds:
    """The possible range of ``quantity`` (a metric, episode field or curve column) for this run: its reward range
    from the environment it was evaluated on, its horizon from the longest evaluation episode (default 50)."""
    env_id, kwargs, wrappers = _env(run)
    lengths = [e["length"] for e in (run.eval or {}).get("episodes", []) if e.get("length")]
    horizon = max(lengths) if lengths else FETCH_HORIZON
    return metric_bounds(quantity, env_id=env_id, horizon=horizon, reward=reward_bounds(env_id, kwargs, wrappers))


def group_bounds(runs: Sequence[Run], quantity: str) -> Bounds:
    """The range of ``quantity`` over a group of runs (the union of the runs' ranges)."""
    b: Bounds | None = None
    for r in runs:
        rb = run_bounds(r, quantity)
        b = rb if b is None else b.union(rb)
    return b if b is not None else UNBOUNDED


def seed_summary(groups: Mapping[str, Sequence[Run]], metrics: Sequence[str] = tuple(METRICS)) -> list[dict[str, Any]]:
    """One row per (group, metric), following the course's statistics convention.

    Every row has ``group, metric, n_seeds, mean, ci95_lo, ci95_hi, per_seed`` and ``interval``:

    - ``success_rate``: ``mean`` is the pooled rate (all episodes of all seeds), ``ci95_lo/hi`` its Wilson interval
      (``interval = "wilson_pooled"``), with ``successes`` and ``n_episodes`` (the pooled count) and ``per_seed``
      the per-seed rates (their min and max are the per-seed range);
    - any other metric: ``mean`` across seeds with a 95% t interval clipped to the metric's possible range
      (``interval = "t"``), or ``ci95_lo = ci95_hi = None`` and ``interval = "none"`` with fewer than 3 seeds.

    A metric no run of a group has (e.g. time to success when nothing succeeded) gives no row.
    """
    rows = []
    for label, runs in groups.items():
        for name in metrics:
            if name not in METRICS:
                raise RLCourseError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
            if name in POOLED:
                evaluated = [r for r in runs if r.eval]  # as for the other metrics: runs without it are left out
                if not evaluated:
                    continue
                pooled = pooled_wilson(success_counts(r) for r in evaluated)
                rows.append({"group": label, "metric": name, "n_seeds": len(evaluated), "mean": pooled["rate"],
                             "ci95_lo": pooled["lo"], "ci95_hi": pooled["hi"], "per_seed": pooled["per_seed"],
                             "interval": "wilson_pooled", "successes": pooled["successes"],
                             "n_episodes": pooled["n_episodes"]})
                continue
            have = [(r, v) for r, v in ((r, metric(r, name)) for r in runs) if v is not None]
            if not have:
                continue
            values = [v for _, v in have]
            bounds = group_bounds([r for r, _ in have], METRICS[name][2])
            for r, v in have:
                if v not in bounds:
                    raise RLCourseError(f"{name} of run {r.run_id} is {v}, outside its possible range "
                                        f"[{bounds.lo}, {bounds.hi}]; check the run's files and environment")
            est = t_interval(values, bounds=bounds)
            mean = math.fsum(values) / len(values) if est is None else est[0]
            rows.append({"group": label, "metric": name, "n_seeds": len(values), "mean": mean,
                         "ci95_lo": None if est is None else est[1], "ci95_hi": None if est is None else est[2],
                         "per_seed": values, "interval": "none" if est is None else "t"})
    return rows


def write_comparison(path: Path | str, groups: Mapping[str, Sequence[Run]], title: str,
                     metrics: Sequence[str] = tuple(METRICS)) -> dict[str, Any]:
    """Write the :func:`seed_summary` of ``groups`` as a ``comparison`` JSON document (schema-checked, atomic)."""
    from rlcourse.core.provenance import utc_now
    from rlcourse.contract.runs import write_json

    doc = {"schema": "rlcourse.comparison/1", "title": title, "created_utc": utc_now(),
           "groups": {label: [r.run_id for r in runs] for label, runs in groups.items()},
           "rows": seed_summary(groups, metrics)}
    write_json(path, doc, "comparison")
    return doc


def load_benchmark(name: str) -> dict[str, Any]:
    """A committed benchmark summary, ``benchmarks/results/<name>.json`` (or ``<name>_costs.json`` if only the
    costs were measured), validated against the schema."""
    from rlcourse.core.paths import project_root
    from rlcourse.contract.runs import read_json

    folder = project_root() / "benchmarks" / "results"
    for candidate in (folder / f"{name}.json", folder / f"{name}_costs.json"):
        if candidate.is_file():
            return read_json(candidate, "benchmark")
    raise RLCourseError(f"no benchmark results {name!r} in {folder}; run benchmarks/{name}.py")


def format_row(row: Mapping[str, Any], digits: int = 3) -> str:
    """One :func:`seed_summary` row as text.

    - pooled success: ``"0.64 [0.571, 0.703] (128/200 episodes; seeds 0.43 to 0.85)"``, or ``"...; every seed 1)"``
      when the seeds agree;
    - a t interval: ``"-1.74 [-1.78, -1.71]"``, or ``"200,000 (3 seeds, all equal)"`` at zero width;
    - fewer than 3 seeds: ``"0.0969 (CI n/a; 2 seeds: 0.0546 to 0.139)"``, ``"0.0969 (1 seed)"``.
    """
    n = row["n_seeds"]
    if row.get("interval") == "wilson_pooled":
        text = format_interval(row["mean"], row["ci95_lo"], row["ci95_hi"], digits=digits)
        per_seed = row["per_seed"]
        lo, hi = min(per_seed), max(per_seed)
        if n == 1:
            spread = "1 seed"
        elif lo == hi:
            spread = f"every seed {format_number(lo, digits)}"
        else:
            spread = f"seeds {format_range(lo, hi, digits)}"
        return f"{text} ({row['successes']}/{row['n_episodes']} episodes; {spread})"
    return format_interval(row["mean"], row["ci95_lo"], row["ci95_hi"], n=n, unit="seed",
                           values=row["per_seed"] if n < MIN_SEEDS_FOR_T else None, digits=digits)


def comparison_table(groups: Mapping[str, Sequence[Run]], metrics: Sequence[str] = tuple(METRICS),
                     digits: int = 3) -> list[dict[str, Any]]:
    """A wide table (one row per metric, one column per group) of estimates as text (see :func:`format_row`):
    pooled success with its Wilson interval, count and per-seed range; other metrics as mean [t interval] with
    three seeds or more, "CI n/a" below."""
    rows: dict[str, dict[str, Any]] = {}
    for r in seed_summary(groups, metrics):
        rows.setdefault(r["metric"], {"metric": METRIC_LABELS.get(r["metric"], r["metric"])})[r["group"]] = \
            format_row(r, digits)
    return list(rows.values())


def curve_band(runs: Sequence[Run], y: str = "success_rate", x: str = "timesteps",
               n_points: int = 100) -> dict[str, Any]:
    """Mean and 95% t band of curve column ``y`` across runs, interpolated on a common ``x`` grid.

    Rows where ``y`` is missing (no finished episode yet) are skipped; the grid spans the range all runs cover.
    The band is clipped to the column's possible range (rates to [0, 1], returns to the reward range, ...); with
    fewer than 3 runs there is no band and ``lo`` and ``hi`` are None.
    """
    series = []
    for run in runs:
        if run.curve is None:
            raise RLCourseError(f"run {run.run_id} has no curve.json")
        t = curve_table(run.curve)
        if y not in t or x not in t:
            raise RLCourseError(f"run {run.run_id} has no curve column {y if y not in t else x!r}")
        pts = [(a, b) for a, b in zip(t[x], t[y]) if a is not None and b is not None]
        if len(pts) < 2:
            raise RLCourseError(f"run {run.run_id} has fewer than two points of {y!r} in its curve")
        series.append(np.array(pts, dtype=float))
    lo_x = max(s[0, 0] for s in series)
    hi_x = min(s[-1, 0] for s in series)
    grid = np.linspace(lo_x, hi_x, n_points)
    ys = np.stack([np.interp(grid, s[:, 0], s[:, 1]) for s in series])
    mean = ys.mean(axis=0)
    lo = hi = None
    if len(series) >= MIN_SEEDS_FOR_T:
        from scipy import stats as st

        half = st.t.ppf(0.975, df=len(series) - 1) * ys.std(axis=0, ddof=1) / np.sqrt(len(series))
        bounds = group_bounds(runs, y)
        lo, hi = np.clip(mean - half, bounds.lo, bounds.hi), np.clip(mean + half, bounds.lo, bounds.hi)
    return {"x": grid, "mean": mean, "lo": lo, "hi": hi, "per_run": ys, "n_runs": len(series)}

def first_reaching(run: Run, threshold: float, y: str = "eval_success_rate") -> dict[str, int | float] | None:
    """The first curve row where column ``y`` reaches ``threshold``: ``{"timesteps", "wall_s"}``, or None if never.

    With ``y="eval_success_rate"`` this is the first in-training deterministic evaluation at or above the
    threshold, so its resolution is the run's ``eval_every``."""
    if run.curve is None:
        raise RLCourseError(f"run {run.run_id} has no curve.json")
    t = curve_table(run.curve)
    if y not in t:
        raise RLCourseError(f"run {run.run_id} has no curve column {y!r}; it has {', '.join(t)}")
    for steps, wall, value in zip(t["timesteps"], t["wall_s"], t[y]):
        if value is not None and value >= threshold:
            return {"timesteps": int(steps), "wall_s": float(wall)}
    return None


def _successes(summary: Mapping[str, Any]) -> tuple[int, int]:
    """(successes, episodes) of a summary: a pooled count where it has one, else its rate times its episodes."""
    n = int(summary["n_episodes"])
    return (int(summary["successes"]) if "successes" in summary else round(summary["success_rate"] * n)), n


def pooled_strata(docs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Success pooled over several eval documents (one per seed, same protocol), overall as ``"all"`` and per
    stratum: :func:`~rlcourse.core.stats.pooled_wilson` of the per-document counts, plus ``success_rate``."""
    if not docs:
        raise RLCourseError("pooled_strata needs at least one evaluation")
    out: dict[str, dict[str, Any]] = {}
    for key in ["all", *sorted({k for d in docs for k in d.get("strata", {})})]:
        # an eval document states its episode count beside the aggregate, a stratum inside its own summary
        parts = [{"n_episodes": d["n_episodes"], **d["aggregate"]} if key == "all" else d.get("strata", {}).get(key)
                 for d in docs]
        pooled = pooled_wilson(_successes(p) for p in parts if p is not None)
        out[key] = {**pooled, "success_rate": pooled["rate"]}
    return out


def success_drop(clean: Mapping[str, Any], stressed: Mapping[str, Any]) -> dict[str, Any]:
    """How much success two :func:`~rlcourse.contract.evaluate.summarize` results differ by: ``drop`` = clean rate
    minus stressed rate, with its 95% interval (Newcombe, :func:`~rlcourse.core.stats.difference_interval`).
    :func:`pooled_strata` entries (pooled over seeds) work too."""
    (k1, n1), (k2, n2) = (_successes(s) for s in (clean, stressed))
    return {"drop": k1 / n1 - k2 / n2, "drop_ci95": list(difference_interval(k1, n1, k2, n2))}


def ratio(a: float | None, b: float | None, digits: int = 4) -> float | None:
    """``a / b`` rounded to ``digits`` decimals, or None when either is unknown or ``b`` is 0 (benchmark ratios)."""
    return None if a is None or b is None or b == 0 else round(a / b, digits)


def ratio_verdict(ci: Sequence[float], above: str = "faster", below: str = "slower",
                  neither: str = "not distinguishable from today's recipe") -> str:
    """What a ratio's interval ``(ratio, lo, hi)`` lets a sentence say: ``above`` when the whole interval lies above 1,
    ``below`` when it lies under 1, ``neither`` when it holds 1."""
    _, lo, hi = ci
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi):
        raise RLCourseError(f"a ratio's interval needs 0 <= lo <= hi, got ({lo}, {hi})")
    return above if lo > 1 else below if hi < 1 else neither


def steps_and_minutes_to(run: Run, thresholds: Sequence[float]) -> dict[str, int | float | None]:
    """``steps_to_<t>`` and ``minutes_to_<t>`` (wall-clock, 3 decimals) of the first in-training evaluation at or
    above each threshold ``t``; None where the run never got there."""
    out: dict[str, int | float | None] = {}
    for t in thresholds:
        hit = first_reaching(run, t)
        out[f"steps_to_{t}"] = hit and hit["timesteps"]
        out[f"minutes_to_{t}"] = hit and round(hit["wall_s"] / 60, 3)
    return out


def steps_label(value: float, _pos: Any = None) -> str:
    """A step count as an axis label: 950, 2.5k, 200k, 1.5M (for matplotlib's ``FuncFormatter``)."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.4g}{suffix}"
    return f"{value:.4g}"


def plot_curves(groups: Mapping[str, Sequence[Run]], y: str = "success_rate", x: str = "timesteps",
                ax: Any = None, ylabel: str | None = None, xlabel: str | None = None, band: bool = True,
                mean: bool = True):
    """Learning curves: the mean across seeds as a line, the 95% t band shaded (``band``), each seed as a thin line.

    A group with fewer than 3 seeds gets no band (see :func:`curve_band`), only its seeds and their mean; with three
    seeds the band is wide (t = 4.3), and ``band=False`` leaves it out everywhere. The mean and band span only the
    steps every run covers; ``mean=False`` draws each run alone, to its own last point, which is what runs stopped
    at a threshold need (a mean would end where the quickest run stopped)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.5))
    for i, (label, runs) in enumerate(groups.items()):
        colour = f"C{i}"
        if not mean:
            for j, run in enumerate(runs):
                t = curve_table(run.curve)
                pts = np.array([(a, b) for a, b in zip(t[x], t[y]) if a is not None and b is not None], dtype=float)
                ax.plot(pts[:, 0], pts[:, 1], color=colour, lw=1.2, alpha=0.8, marker=".",
                        label=f"{label} (n={len(runs)})" if j == 0 else None)
            continue
        curves = curve_band(runs, y=y, x=x)
        shaded = band and curves["lo"] is not None
        for ys in curves["per_run"]:
            ax.plot(curves["x"], ys, color=colour, lw=0.6 if shaded else 1.0, alpha=0.35 if shaded else 0.5)
        ax.plot(curves["x"], curves["mean"], color=colour, lw=2, label=f"{label} (n={len(runs)})")
        if shaded:
            ax.fill_between(curves["x"], curves["lo"], curves["hi"], color=colour, alpha=0.2, lw=0)
    ax.set_xlabel(xlabel or {"timesteps": "environment steps", "wall_s": "wall-clock (s)"}.get(x, x))
    if x == "timesteps":  # 200k steps read as "200k", not "200000" or "2e5"
        ax.xaxis.set_major_formatter(plt.matplotlib.ticker.FuncFormatter(steps_label))
    ax.set_ylabel(ylabel or y.replace("_", " "))
    if y.endswith("success_rate"):
        ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return ax


def save_figure(fig: Any, name: str, profile: str = "full") -> Path | None:
    """Save a figure into ``figures/`` when ``profile`` is ``full`` (the book embeds those); a quick run keeps the
    committed figures untouched and returns None. A ``name`` without an extension is saved as PNG."""
    if profile != "full":
        return None
    path = figures_dir() / name
    if not path.suffix:
        path = path.with_suffix(".png")
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix[1:], dpi=150, bbox_inches="tight"))


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, digits: int = 4) -> str:
    """Rows of dicts as a Markdown table (floats to ``digits`` significant digits), for ``IPython.display.Markdown``."""
    if not rows:
        return ""
    cols = list(columns or rows[0].keys())

    def fmt(v: Any) -> str:
        if isinstance(v, (float, np.floating)) or (isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                                    and abs(v) >= 10**digits):
            return format_number(v, digits)
        if isinstance(v, (list, tuple, np.ndarray)):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        return "—" if v is None else str(v).replace("|", "\\|")  # a bare | would split the cell

    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def show_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, digits: int = 4) -> None:
    """Display rows of dicts as a Markdown table in a notebook (a table in the book, too)."""
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(rows, columns, digits)))


def _tb_logs(run_id: str, log_dir: Path | str | None = None) -> tuple[Path, list[Path]]:
    """The TensorBoard log folders SB3 wrote for ``run_id`` (under ``runs/tb/`` by default), oldest first."""
    from rlcourse.core.paths import scratch_dir

    root = Path(log_dir) if log_dir is not None else scratch_dir() / "tb"
    return root, sorted(root.glob(f"{run_id}_*"), key=lambda p: p.stat().st_mtime)


def has_tb_log(run_id: str, log_dir: Path | str | None = None) -> bool:
    """Whether this machine holds a TensorBoard log of ``run_id`` (runs loaded from ``checkpoints/`` have none)."""
    return bool(_tb_logs(run_id, log_dir)[1])


def tb_scalars(run_id: str, log_dir: Path | str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Scalars of the newest TensorBoard log SB3 wrote for ``run_id`` (under ``runs/tb/``): ``{tag: (steps, values)}``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, logs = _tb_logs(run_id, log_dir)
    if not logs:
        raise RLCourseError(f"no TensorBoard log for {run_id} under {root}")
    acc = EventAccumulator(str(logs[-1]))
    acc.Reload()
    return {tag: (np.array([e.step for e in acc.Scalars(tag)]), np.array([e.value for e in acc.Scalars(tag)]))
            for tag in acc.Tags()["scalars"]}
