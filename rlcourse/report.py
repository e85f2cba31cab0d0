"""Reading reference runs back: tables across seeds, learning curves with bands, figures for the book.

Chapters never type a result; they load run folders and call these functions. Across seeds a metric is reported as
mean with a 95% Student-t interval (rates clipped to [0, 1]); within a run the success rate carries its Wilson
interval from ``eval.json``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import RLCourseError
from .paths import checkpoints_dir, figures_dir
from .runs import Run, curve_table, list_runs
from .stats import t_interval

# metric -> (where it lives, key, is it a rate in [0, 1])
METRICS: dict[str, tuple[str, str, bool]] = {
    "success_rate": ("eval", "success_rate", True),
    "return_mean": ("eval", "return_mean", False),
    "final_distance_mean": ("eval", "final_distance_mean", False),
    "time_to_success_mean": ("eval", "time_to_success_mean", False),
    "smoothness_mean": ("eval", "smoothness_mean", False),
    "peak_action_mean": ("eval", "peak_action_mean", False),
    "wall_clock_s": ("meta", "wall_clock_s", False),
    "steps_per_s": ("meta", "steps_per_s", False),
    "steps_done": ("meta", "steps_done", False),
}


def load_group(pattern: str, root: Path | str | None = None) -> list[Run]:
    """Complete runs under ``root`` (default ``checkpoints/``) whose run id matches the glob ``pattern``.

    Raises a one-line error when nothing matches, naming the command that makes the runs."""
    root = Path(root) if root is not None else checkpoints_dir()
    runs = [r for r in list_runs(root) if fnmatch.fnmatch(r.run_id, pattern)]
    if not runs:
        raise RLCourseError(f"no runs matching {pattern!r} under {root}; produce them with the chapter's full profile")
    return runs


def metric(run: Run, name: str) -> float | None:
    """One scalar of a run by name (see :data:`METRICS`)."""
    where, key, _ = METRICS[name]
    doc = run.meta if where == "meta" else (run.eval or {}).get("aggregate", {})
    value = doc.get(key)
    return None if value is None else float(value)


def seed_summary(groups: Mapping[str, Sequence[Run]], metrics: Sequence[str] = tuple(METRICS)) -> list[dict[str, Any]]:
    """One row per (group, metric): mean, 95% t interval across seeds, and the per-seed values."""
    rows = []
    for label, runs in groups.items():
        for name in metrics:
            values = [v for v in (metric(r, name) for r in runs) if v is not None]
            if not values:
                continue
            mean, lo, hi = t_interval(values, bounds=(0.0, 1.0) if METRICS[name][2] else None)
            rows.append({"group": label, "metric": name, "n_seeds": len(values), "mean": mean, "ci95_lo": lo,
                         "ci95_hi": hi, "per_seed": values})
    return rows


def write_comparison(path: Path | str, groups: Mapping[str, Sequence[Run]], title: str,
                     metrics: Sequence[str] = tuple(METRICS)) -> dict[str, Any]:
    """Write the :func:`seed_summary` of ``groups`` as a ``comparison`` JSON document (schema-checked, atomic)."""
    from .provenance import utc_now
    from .runs import write_json

    doc = {"schema": "rlcourse.comparison/1", "title": title, "created_utc": utc_now(),
           "groups": {label: [r.run_id for r in runs] for label, runs in groups.items()},
           "rows": seed_summary(groups, metrics)}
    write_json(path, doc, "comparison")
    return doc


def load_benchmark(name: str) -> dict[str, Any]:
    """A committed benchmark summary, ``benchmarks/results/<name>.json`` (or ``<name>_costs.json`` if only the
    costs were measured), validated against the schema."""
    from .paths import project_root
    from .runs import read_json

    folder = project_root() / "benchmarks" / "results"
    for candidate in (folder / f"{name}.json", folder / f"{name}_costs.json"):
        if candidate.is_file():
            return read_json(candidate, "benchmark")
    raise RLCourseError(f"no benchmark results {name!r} in {folder}; run benchmarks/{name}.py")


def format_number(v: float, digits: int = 3) -> str:
    """``digits`` significant digits, except that numbers too large for them are written out in full with
    thousands separators (200,000 rather than 2e+05)."""
    v = float(v)
    if np.isfinite(v) and abs(v) >= 10**digits:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def comparison_table(groups: Mapping[str, Sequence[Run]], metrics: Sequence[str] = tuple(METRICS),
                     digits: int = 3) -> list[dict[str, Any]]:
    """A wide table (one row per metric, one column per group) of ``mean [lo, hi]`` strings."""
    rows: dict[str, dict[str, Any]] = {}
    for r in seed_summary(groups, metrics):
        row = rows.setdefault(r["metric"], {"metric": r["metric"]})
        row[r["group"]] = (f"{format_number(r['mean'], digits)} "
                           f"[{format_number(r['ci95_lo'], digits)}, {format_number(r['ci95_hi'], digits)}]")
    return list(rows.values())


def curve_band(runs: Sequence[Run], y: str = "success_rate", x: str = "timesteps",
               n_points: int = 100) -> dict[str, np.ndarray]:
    """Mean and 95% t band of curve column ``y`` across runs, interpolated on a common ``x`` grid.

    Rows where ``y`` is missing (no finished episode yet) are skipped; the grid spans the range all runs cover.
    """
    series = []
    for run in runs:
        if run.curve is None:
            raise RLCourseError(f"run {run.run_id} has no curve.json")
        t = curve_table(run.curve)
        pts = [(a, b) for a, b in zip(t[x], t[y]) if a is not None and b is not None]
        if len(pts) < 2:
            raise RLCourseError(f"run {run.run_id} has fewer than two points of {y!r} in its curve")
        series.append(np.array(pts, dtype=float))
    lo_x = max(s[0, 0] for s in series)
    hi_x = min(s[-1, 0] for s in series)
    grid = np.linspace(lo_x, hi_x, n_points)
    ys = np.stack([np.interp(grid, s[:, 0], s[:, 1]) for s in series])
    mean = ys.mean(axis=0)
    if len(series) > 1:
        from scipy import stats as st

        half = st.t.ppf(0.975, df=len(series) - 1) * ys.std(axis=0, ddof=1) / np.sqrt(len(series))
    else:
        half = np.zeros_like(mean)
    lo, hi = mean - half, mean + half
    if y.endswith("success_rate"):
        lo, hi = np.clip(lo, 0, 1), np.clip(hi, 0, 1)
    return {"x": grid, "mean": mean, "lo": lo, "hi": hi, "per_run": ys}


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


def plot_curves(groups: Mapping[str, Sequence[Run]], y: str = "success_rate", x: str = "timesteps",
                ax: Any = None, ylabel: str | None = None, xlabel: str | None = None, band: bool = True):
    """Learning curves: the mean across seeds as a line, the 95% t band shaded (``band``), each seed as a thin line.

    With two or three seeds the t band is very wide (t = 12.7 for two); ``band=False`` leaves it out."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.5))
    for i, (label, runs) in enumerate(groups.items()):
        curves = curve_band(runs, y=y, x=x)
        colour = f"C{i}"
        for ys in curves["per_run"]:
            ax.plot(curves["x"], ys, color=colour, lw=0.6 if band else 1.0, alpha=0.35 if band else 0.5)
        ax.plot(curves["x"], curves["mean"], color=colour, lw=2, label=f"{label} (n={len(runs)})")
        if band:
            ax.fill_between(curves["x"], curves["lo"], curves["hi"], color=colour, alpha=0.2, lw=0)
    ax.set_xlabel(xlabel or {"timesteps": "environment steps", "wall_s": "wall-clock (s)"}.get(x, x))
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=150, bbox_inches="tight")
    tmp.replace(path)
    return path


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


def tb_scalars(run_id: str, log_dir: Path | str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Scalars of the newest TensorBoard log SB3 wrote for ``run_id`` (under ``runs/tb/``): ``{tag: (steps, values)}``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from .paths import scratch_dir

    root = Path(log_dir) if log_dir is not None else scratch_dir() / "tb"
    logs = sorted(root.glob(f"{run_id}_*"), key=lambda p: p.stat().st_mtime)
    if not logs:
        raise RLCourseError(f"no TensorBoard log for {run_id} under {root}")
    acc = EventAccumulator(str(logs[-1]))
    acc.Reload()
    return {tag: (np.array([e.step for e in acc.Scalars(tag)]), np.array([e.value for e in acc.Scalars(tag)]))
            for tag in acc.Tags()["scalars"]}
