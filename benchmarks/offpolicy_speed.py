"""Benchmark: which levers make off-policy SAC+HER reach 0.9 sooner in wall-clock on a 2-core CPU (chapter 5).

    .venv/bin/python benchmarks/offpolicy_speed.py --task push                 # every arm, seeds 0 1 2
    .venv/bin/python benchmarks/offpolicy_speed.py --task push --arms fast,worker --seeds 0
    .venv/bin/python benchmarks/offpolicy_speed.py --task pick --arms fast,worker,demos
    .venv/bin/python benchmarks/offpolicy_speed.py --task push --arms fast,worker --tag confirm   # a second summary
    .venv/bin/python benchmarks/offpolicy_speed.py --task push --arms fast,demos --tag demos --run-suffix demos

Each arm is the fast recipe (``rlcourse.training.recipes``) with one set of changes (``ARMS``), trained through the
course's contract **one run at a time**, so that a run has the machine to itself (the ``worker`` lever uses the
second core; side by side runs would hide or fake its gain). A run ends at its first deterministic evaluation
(``--eval-episodes`` episodes every ``--eval-every`` steps) at or above ``--stop-at`` or at its budget, then gets
the usual 100-episode evaluation. Minutes are the run's own wall-clock, evaluations included.

For each task it writes ``benchmarks/results/offpolicy_speed_<task>[_<tag>].json`` (schema ``benchmark``): every run's steps
and minutes to 0.5 and 0.9, its throughput and final success with a Wilson interval, and per arm the median over
seeds with the ratio ``fast / arm`` (above 1: the arm is faster), plus ``offpolicy_speed_<task>.png``. Run folders
go to ``benchmarks/results/offpolicy_speed/<host>/`` (``<host>`` names the CPU model and count: wall-clock differs
by a factor of two between the hosts these benchmarks have run on, so runs of different hosts are never mixed) and
their records (meta, curve, eval; not the model) are committed, so that a benchmark longer than one sitting can be
finished later: a finished run is reused when its recorded settings and host match (otherwise the command stops
with one line), an interrupted one resumes. Machines behind one host name differ too (the same run took 8.4 minutes
in one session and 16.8 in another, same code): each command first times a fixed workload (``calibrate``), each run
folder keeps the score it was trained under (``calibration.json``), and a finished run is reused only when its score
is within ``CALIBRATION_TOLERANCE`` of this machine's today. A summary is never silently shrunk: if the JSON already holds results
for arms or seeds this command does not cover, it stops with one line (cover them, or write a second summary under
``--tag``, e.g. a screening of every lever on one seed, then the winner against the fast recipe on three). Run
folders are shared across summaries; ``--run-suffix`` names a new set beside older ones that a committed summary still
reads (today's recipe retrained on a machine of another speed, say). Not part
of ``make test``:
Push takes about ten minutes per run, PickAndPlace up to half an hour.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from rlcourse.analysis import report
from rlcourse.contract.config import TrainConfig
from rlcourse.contract.runs import Run, load_run, read_json, write_json
from rlcourse.core.errors import RLCourseError
from rlcourse.core.io import atomic_write
from rlcourse.core.paths import project_root
from rlcourse.core.provenance import command_line, git_info, hardware, host_tag, utc_now, versions
from rlcourse.training import recipes
from rlcourse.training.train import train_many

NAME = "offpolicy_speed"
TASKS = {"push": ("FetchPush-v4", 300_000), "pick": ("FetchPickAndPlace-v4", 600_000)}
THRESHOLDS = (0.5, 0.9)

ARMS: dict[str, dict[str, Any]] = {
    "fast": {},  # today's recipe: 4 environments, UTD 0.5, batch 256, 128 x 128 networks
    "worker": {"env_worker": True},  # environments in a second process, overlapping the updates
    "ln_utd1": {"layer_norm": True, "updates_per_step": 1.0},  # layer-normalised critics, twice the updates
    "batch512": {"batch_size": 512},  # twice the samples per gradient step
    "best": {"env_worker": True, "layer_norm": True, "updates_per_step": 1.0},  # the candidate combination
    "demos": {},  # the worker with 100 scripted episodes of the task in the replay buffer: see DEMOS
}
"""Each arm's changes to the fast recipe's hyperparameters (``demos``: :func:`changes`)."""
DEMOS = {"push": "push_demos", "pick": "pick_demos"}
"""The recipe behind the ``demos`` arm on each task (its demonstrations are that task's episodes)."""


def changes(arm: str, task: str) -> dict[str, Any]:
    """What ``arm`` changes in the fast recipe on ``task``."""
    return recipes.changes_from(DEMOS[task]) if arm == "demos" else dict(ARMS[arm])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=sorted(TASKS), default="push")
    p.add_argument("--arms", default=None, help=f"comma-separated, from {', '.join(ARMS)} (fast first; default: "
                   "every arm the task allows)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--steps", type=int, default=0, help="budget per run (default: the task's)")
    p.add_argument("--eval-every", type=int, default=10_000)
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--stop-at", type=float, default=0.9, help="end a run at this evaluation success (0 = never)")
    p.add_argument("--out", default=str(project_root() / "benchmarks" / "results"))
    p.add_argument("--tag", default="", help="suffix of the summary's name (letters, digits, _): "
                   "offpolicy_speed_<task>_<tag>.json; run folders are shared across tags")
    p.add_argument("--run-suffix", default="", help="suffix of this command's run folders (letters, digits, _), "
                   "to train a set of runs beside older ones that another summary still reads")
    return p.parse_args(argv)


def parse_list(text: str, what: str, valid: Any = None) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items or len(set(items)) != len(items):
        raise RLCourseError(f"--{what} must list distinct items, got {text!r}")
    bad = [t for t in items if valid is not None and t not in valid]
    if bad:
        raise RLCourseError(f"unknown {what[:-1]} {bad[0]!r}; choose from {', '.join(valid)}")
    return items


def summarize_run(arm: str, run: Any) -> dict[str, Any]:
    """One run's row; ``recipe`` names the arm (the fast recipe with that arm's changes), as the schema asks."""
    row = {"recipe": arm, "seed": run.meta["seed"], "run_id": run.run_id, "steps_done": run.meta["steps_done"],
           "wall_clock_s": run.meta["wall_clock_s"], "steps_per_s": run.meta["steps_per_s"],
           "final_success": run.eval["aggregate"]["success_rate"],
           "final_success_ci95": run.eval["aggregate"]["success_ci95"]}
    return {**row, **report.steps_and_minutes_to(run, THRESHOLDS)}


def median_or_none(values: list[float | None]) -> float | None:
    """The median over seeds; None if any seed never got there (the median of a censored sample is unknown
    unless more than half got there, and then it is the median with the misses counted as infinite)."""
    known = [v for v in values if v is not None]
    if len(known) * 2 <= len(values):
        return None
    return float(statistics.median([v if v is not None else float("inf") for v in values]))


def summarize_arms(rows: list[dict[str, Any]], arms: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for arm in arms:
        mine = [r for r in rows if r["recipe"] == arm]
        out[arm] = {"seeds": [r["seed"] for r in mine],
                    "reached_0.9": sum(r["steps_to_0.9"] is not None for r in mine),
                    "steps_per_s_median": float(statistics.median(r["steps_per_s"] for r in mine)),
                    **{f"{k}_to_{t}_median": median_or_none([r[f"{k}_to_{t}"] for r in mine])
                       for k in ("steps", "minutes") for t in THRESHOLDS}}
    base = out.get("fast")
    for s in out.values():
        s["ratios"] = None if base is None else {
            "minutes_to_0.9_fast_over_arm": ratio(base["minutes_to_0.9_median"], s["minutes_to_0.9_median"]),
            "steps_to_0.9_fast_over_arm": ratio(base["steps_to_0.9_median"], s["steps_to_0.9_median"]),
            "steps_per_s_arm_over_fast": ratio(s["steps_per_s_median"], base["steps_per_s_median"])}
    return out


def flat_ratios(arms: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """The arms' ratios as one flat mapping ``"<arm>: <ratio name>" -> number or None`` (the benchmark schema)."""
    return {f"{arm}: {name}": value for arm, s in arms.items() if s["ratios"] for name, value in s["ratios"].items()}


ratio = report.ratio  # None when either side is unknown

SETTINGS = ("algo", "env_id", "seed", "total_steps", "n_envs", "her", "her_kwargs", "hyperparameters", "normalize_obs",
            "stop_at_success", "eval_every", "curve_eval_episodes", "eval_seed", "env_kwargs", "wrappers")
"""The config fields a reused run must share with the arm it stands for."""


def settings(config: dict[str, Any]) -> dict[str, Any]:
    return {k: config.get(k) for k in SETTINGS}


CALIBRATION_STEPS = 1000
"""Environment steps (FetchPush, random actions) in the calibration workload, with a tenth as many gradient steps."""
CALIBRATION_TOLERANCE = 0.25
"""A reused run's calibration score may differ from this machine's by this fraction at most."""


def calibrate(repeats: int = 3) -> float:
    """This machine's speed today: fixed workloads per second, the median of ``repeats``, on one thread.

    One workload is what a fastsac run is made of, in small: ``CALIBRATION_STEPS`` FetchPush steps with random
    actions and a tenth as many Adam steps of a 128 x 128 network on a batch of 256. Only ratios of scores mean
    anything (a score twice another: the same run takes half the wall-clock). Three commands in a row on one idle
    machine here scored within 4% of each other; the factor of two between machines stands out."""
    import numpy as np
    import torch

    from rlcourse.envs.spec import make

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    env = make("FetchPush-v4")
    rng = np.random.default_rng(0)
    net = torch.nn.Sequential(torch.nn.Linear(31, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128), torch.nn.ReLU(),
                              torch.nn.Linear(128, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    batch = torch.randn(256, 31, generator=torch.Generator().manual_seed(0))
    seconds = []
    try:
        for _ in range(repeats):
            env.reset(seed=0)
            start = time.perf_counter()
            for _ in range(CALIBRATION_STEPS):
                _, _, terminated, truncated, _ = env.step(rng.uniform(-1.0, 1.0, 4).astype(np.float32))
                if terminated or truncated:
                    env.reset()
            for _ in range(max(1, CALIBRATION_STEPS // 10)):
                loss = net(batch).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            seconds.append(time.perf_counter() - start)
    finally:
        env.close()
        torch.set_num_threads(threads)
    return 1.0 / statistics.median(seconds)


def train_or_reuse(cfgs: list[TrainConfig], score: float) -> list[Run]:
    """Train the configs whose run folder is missing (one at a time) and load every run without its model (the
    committed records carry none). A finished run recorded with other settings, on another host, or on a machine of
    another speed (calibration ``score``) is an error, never silently reused."""
    folders = [Path(c.out_dir) / c.resolved_run_id() for c in cfgs]
    here = host_tag(hardware())
    for cfg, folder in zip(cfgs, folders):
        if (folder / "meta.json").is_file():
            meta = load_run(folder, verify_model=False).meta
            if host_tag(meta["hardware"]) != here:
                raise RLCourseError(f"{folder} was trained on another host ({host_tag(meta['hardware'])}, this is "
                                    f"{here}); its wall-clock is not comparable")
            then = run_calibration(folder)
            if then is None or abs(then / score - 1.0) > CALIBRATION_TOLERANCE:
                raise RLCourseError(f"{folder} was trained on a machine of another speed (calibration "
                                    f"{'missing' if then is None else f'{then:.3g}'}, this machine {score:.3g}); its "
                                    "wall-clock is not comparable: move it away to retrain it")
            stored = settings(meta["config"])
            if stored != settings(cfg.portable()):
                diff = sorted(k for k in SETTINGS if stored[k] != settings(cfg.portable())[k])
                raise RLCourseError(f"{folder} was trained with other settings ({', '.join(diff)}); move it away to "
                                    "retrain it")
    todo = [c for c, f in zip(cfgs, folders) if not (f / "meta.json").is_file()]
    if todo:
        train_many(todo, jobs=1)
        for c in todo:
            write_json(Path(c.out_dir) / c.resolved_run_id() / "calibration.json", {"score": score, "measured_utc": utc_now()})
    return [load_run(f, verify_model=False) for f in folders]


def run_calibration(folder: Path) -> float | None:
    """The calibration score a run folder was trained under, or None if it has none."""
    path = folder / "calibration.json"
    return float(read_json(path)["score"]) if path.is_file() else None


def committed_results(path: Path) -> list[tuple[str, int]]:
    """The (arm, seed) pairs an existing summary holds; none if there is no summary yet."""
    if not path.is_file():
        return []
    return [(r["recipe"], r["seed"]) for r in read_json(path, "benchmark")["results"]]


def plot(groups: dict[str, list[Any]], path: Path, env_id: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    # each run to its own stop: a mean over seeds would end where the quickest run stopped
    report.plot_curves(groups, y="eval_success_rate", ax=axes[0], ylabel="deterministic success", mean=False)
    report.plot_curves(groups, y="eval_success_rate", x="wall_s", ax=axes[1], ylabel="deterministic success", mean=False,
                       xlabel="wall-clock (s)")
    for ax in axes:
        ax.axhline(0.9, color="k", lw=0.6, ls=":")
    axes[0].set_title(f"{env_id}: success against environment steps")
    axes[1].set_title("... and against wall-clock, each run alone on the machine")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    arms = parse_list(args.arms or ",".join(ARMS), "arms", ARMS)
    seeds = parse_list(args.seeds, "seeds")
    if not all(s.isdigit() for s in seeds):
        raise RLCourseError(f"--seeds must be non-negative integers, got {args.seeds!r}")
    seeds = [int(s) for s in seeds]
    if args.steps < 0 or not 0.0 <= args.stop_at <= 1.0:
        raise RLCourseError("--steps must be >= 0 (0: the task's budget) and --stop-at in [0, 1]")
    for option, value in (("--tag", args.tag), ("--run-suffix", args.run_suffix)):
        if value and not re.fullmatch(r"[a-z0-9_]{1,32}", value):
            raise RLCourseError(f"{option} must be 1 to 32 lower-case letters, digits or _, got {value!r}")
    env_id, budget = TASKS[args.task]
    budget = args.steps or budget
    out = Path(args.out)
    name = f"{NAME}_{args.task}" + (f"_{args.tag}" if args.tag else "")
    path = out / f"{name}.json"
    dropped = sorted(set(committed_results(path)) - {(arm, s) for arm in arms for s in seeds})
    if dropped:
        raise RLCourseError(f"{path} holds results this command would drop ({', '.join(f'{a} seed {s}' for a, s in dropped)}); "
                            "include those arms and seeds, or write another summary with --tag")
    common = dict(out_dir=str(out / NAME / host_tag(hardware())), eval_every=args.eval_every, curve_eval_episodes=args.eval_episodes,
                  final_eval_episodes=100, torch_threads=1, tensorboard=False, progress=False,
                  stop_at_success=args.stop_at, checkpoint_every=50_000)
    suffix = f"_{args.run_suffix}" if args.run_suffix else ""
    cfgs = {(arm, s): recipes.recipe_config("fast", env_id, s, budget, changes=changes(arm, args.task),
                                            run_id=f"{NAME}_{arm}_{env_id}_seed{s}{suffix}", **common)
            for arm in arms for s in seeds}
    print(f"[{time.strftime('%H:%M:%S')}] {env_id}: arms {', '.join(arms)} x seeds {seeds}, one run at a time, "
          f"budget {budget:,} steps; run folders in {common['out_dir']}", flush=True)
    score = calibrate()
    print(f"calibration: {score:.3g} workloads/s", flush=True)
    runs = dict(zip(cfgs, train_or_reuse(list(cfgs.values()), score)))
    rows = [{**summarize_run(arm, run), "calibration": run_calibration(run.path)} for (arm, _), run in runs.items()]
    doc = {"schema": "rlcourse.benchmark/1", "name": name, "created_utc": utc_now(),
           "command": command_line(), "hardware": hardware(), "versions": versions(), "git": git_info(),
           "recipes": {arm: {**recipes.recipe("fast"), "changes": changes(arm, args.task), "total_steps": budget} for arm in arms},
           "protocol": {"env_id": env_id, "seeds": seeds, "eval_every": args.eval_every,
                        "eval_episodes": args.eval_episodes, "stop_at_success": args.stop_at,
                        "final_eval_episodes": 100, "jobs": 1, "torch_threads": 1},
           "calibration": {"score": score, "tolerance": CALIBRATION_TOLERANCE, "steps": CALIBRATION_STEPS},
           "results": rows, "arms": summarize_arms(rows, arms)}
    doc["ratios"] = flat_ratios(doc["arms"])
    doc["notes"] = ("Medians over seeds; a median is null when half or more of the seeds never reached the "
                    "threshold. Ratios above 1 favour the arm: the fast recipe's minutes or steps to 0.9 over the "
                    "arm's, and the arm's throughput over the fast recipe's.")
    write_json(path, doc, "benchmark")
    plot({arm: [runs[(arm, s)] for s in seeds] for arm in arms}, path.with_suffix(".png"), env_id)
    for arm, s in doc["arms"].items():
        print(f"  {arm}: {s['steps_per_s_median']:.0f} steps/s; reached 0.9 on {s['reached_0.9']}/{len(seeds)} seeds; "
              f"median {s['minutes_to_0.9_median']} min, {s['steps_to_0.9_median']} steps; ratios {s['ratios']}")
    print(f"wrote {path} and {path.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RLCourseError as exc:
        print(f"offpolicy_speed: error: {exc}", file=sys.stderr)
        sys.exit(2)
