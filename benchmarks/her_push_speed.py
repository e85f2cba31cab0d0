"""Benchmark: wall-clock to 0.5 and 0.9 deterministic success on FetchPush-v4, the origin recipe against ours.

    .venv/bin/python benchmarks/her_push_speed.py              # both recipes side by side, then JSON + plot
    .venv/bin/python benchmarks/her_push_speed.py --costs-only # only the per-step cost split (about a minute)

Both recipes (``rlcourse.training.recipes``) train SAC+HER through the course's contract on the same machine at the same
time, one process and one torch thread each, with a deterministic evaluation of 20 episodes every 10k steps. A run
ends at its first evaluation at or above ``--stop-at`` (0.9) or at its budget (the origin's 2M steps, our 300k),
then gets the usual 100-episode evaluation. Minutes are the runs' own wall-clock (evaluations included, identical
for both). Writes
``benchmarks/results/her_push_speed.json`` (schema ``benchmark``) and ``her_push_speed.png``; the run folders go to
``benchmarks/results/runs/`` (git-ignored). Not part of ``make test``: it takes one to two hours on a 2-core CPU.
Interrupted runs resume when the command is repeated.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rlcourse.training import recipes
from rlcourse.analysis import report
from rlcourse.core.errors import RLCourseError
from rlcourse.core.io import atomic_write
from rlcourse.core.paths import project_root
from rlcourse.core.provenance import command_line, git_info, hardware, utc_now, versions
from rlcourse.contract.runs import write_json
from rlcourse.analysis.throughput import measure_costs
from rlcourse.training.train import train_many

NAME = "her_push_speed"
ENV = "FetchPush-v4"
THRESHOLDS = (0.5, 0.9)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--origin-steps", type=int, default=2_000_000, help="budget of the origin recipe")
    p.add_argument("--fast-steps", type=int, default=300_000, help="budget of the fast recipe")
    p.add_argument("--eval-every", type=int, default=10_000)
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--stop-at", type=float, default=0.9, help="end a run at this evaluation success (0 = never)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (2 = side by side)")
    p.add_argument("--costs-only", action="store_true", help="measure the per-step costs and stop")
    p.add_argument("--fill-steps", type=int, default=5000, help="random transitions collected before timing costs")
    p.add_argument("--repeats", type=int, default=100, help="timed replay samples and gradient steps")
    p.add_argument("--out", default=str(project_root() / "benchmarks" / "results"))
    return p.parse_args(argv)


def summarize_run(name: str, run) -> dict:
    row = {"recipe": name, "run_id": run.run_id, "steps_done": run.meta["steps_done"],
           "wall_clock_s": run.meta["wall_clock_s"], "steps_per_s": run.meta["steps_per_s"],
           "final_success": run.eval["aggregate"]["success_rate"],
           "final_success_ci95": run.eval["aggregate"]["success_ci95"]}
    return {**row, **report.steps_and_minutes_to(run, THRESHOLDS)}


ratio = report.ratio  # None when either side is unknown


def plot(runs: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    groups = {f"{name} ({run.meta['steps_per_s']:.0f} steps/s)": [run] for name, run in runs.items()}
    report.plot_curves(groups, y="eval_success_rate", ax=axes[0], ylabel="deterministic success")
    report.plot_curves(groups, y="eval_success_rate", x="wall_s", ax=axes[1], ylabel="deterministic success",
                       xlabel="wall-clock (s)")
    for ax in axes:
        for thr in THRESHOLDS:
            ax.axhline(thr, color="k", lw=0.6, ls=":")
    axes[0].set_title(f"{ENV}: success against environment steps")
    axes[1].set_title("... and against wall-clock, side by side on one machine")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    budgets = {"origin": args.origin_steps, "fast": args.fast_steps}
    common = dict(out_dir=str(out / "runs"), eval_every=args.eval_every, curve_eval_episodes=args.eval_episodes,
                  final_eval_episodes=100, torch_threads=1, tensorboard=False, progress=False,
                  stop_at_success=args.stop_at)
    cfgs = {name: recipes.recipe_config(name, ENV, args.seed, steps, run_id=f"{name}_{ENV}_seed{args.seed}", **common)
            for name, steps in budgets.items()}
    print(f"[{time.strftime('%H:%M:%S')}] measuring per-step costs ...", flush=True)
    costs = [{"recipe": name, **measure_costs(cfg, args.fill_steps, args.repeats)} for name, cfg in cfgs.items()]
    for c in costs:
        print(f"  {c['recipe']}: env step {c['env_step_ms']:.2f} ms, sample {c['sample_ms']:.2f} ms, "
              f"gradient step {c['gradient_step_ms']:.2f} ms, UTD {c['updates_per_env_step']:.3f}, "
              f"predicted {c['predicted_steps_per_s']:.0f} steps/s", flush=True)
    doc = {"schema": "rlcourse.benchmark/1", "name": NAME, "created_utc": utc_now(), "command": command_line(),
           "hardware": hardware(), "versions": versions(), "git": git_info(),
           "recipes": {name: {**recipes.recipe(name), "total_steps": budgets[name]} for name in budgets},
           "protocol": {"env_id": ENV, "seed": args.seed, "eval_every": args.eval_every,
                        "eval_episodes": args.eval_episodes, "stop_at_success": args.stop_at,
                        "final_eval_episodes": 100, "jobs": args.jobs, "torch_threads": 1},
           "costs": costs}
    if args.costs_only:
        doc.update(results=[{"recipe": c["recipe"], "run_id": None} for c in costs], ratios={})
        write_json(out / f"{NAME}_costs.json", doc, "benchmark")
        print(f"wrote {out / f'{NAME}_costs.json'}")
        return 0
    print(f"[{time.strftime('%H:%M:%S')}] training {', '.join(f'{k} ({v} steps)' for k, v in budgets.items())} "
          f"with {args.jobs} at a time; curves in {out / 'runs'}", flush=True)
    runs = dict(zip(cfgs, train_many(list(cfgs.values()), jobs=args.jobs)))
    results = [summarize_run(name, run) for name, run in runs.items()]
    by = {r["recipe"]: r for r in results}
    o, f = by["origin"], by["fast"]
    doc["results"] = results
    doc["ratios"] = {
        "steps_per_s_fast_over_origin": ratio(f["steps_per_s"], o["steps_per_s"]),
        **{f"minutes_to_{t}_origin_over_fast": ratio(o[f"minutes_to_{t}"], f[f"minutes_to_{t}"]) for t in THRESHOLDS},
        **{f"steps_to_{t}_origin_over_fast": ratio(o[f"steps_to_{t}"], f[f"steps_to_{t}"]) for t in THRESHOLDS},
    }
    doc["notes"] = ("A ratio is null when a recipe did not reach the threshold within its budget; then "
                    "minutes_to_X of the other recipe against the budget's wall-clock bounds it.")
    write_json(out / f"{NAME}.json", doc, "benchmark")
    plot(runs, out / f"{NAME}.png")
    for r in results:
        print(f"  {r['recipe']}: {r['steps_per_s']} steps/s; to 0.5: {r['minutes_to_0.5']} min; "
              f"to 0.9: {r['minutes_to_0.9']} min ({r['steps_to_0.9']} steps); final {r['final_success']}")
    print(f"ratios: {doc['ratios']}")
    print(f"wrote {out / f'{NAME}.json'} and {out / f'{NAME}.png'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RLCourseError as exc:
        print(f"her_push_speed: error: {exc}", file=sys.stderr)
        sys.exit(2)
