"""The ``rlcourse`` command: train | eval | run | versions | repro | chapters.

Every user mistake ends in one line ``rlcourse: error: ...`` on stderr and exit code 2 (argparse's own usage errors
included), with nothing half-written.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path
from typing import Any

from rlcourse.core.errors import RLCourseError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus a pointer to --help) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"rlcourse: error: {message} (see '{self.prog} --help')\n")


def parse_value(text: str) -> Any:
    """A hyperparameter value: a Python literal (``3e-4``, ``[256, 256]``, ``True``, ``{'a': 1}``) or ``dict(k=v)``;
    anything else is kept as a string (e.g. ``auto``, ``future``)."""
    text = text.strip()
    try:
        value = _literal(ast.parse(text, mode="eval").body) if text else text
    except (ValueError, SyntaxError, TypeError):
        if text and (text[0] in "[{(" or text[-1] in "]})" or text.startswith("dict(")):
            raise RLCourseError(f"malformed value {text[:60]!r}: not a valid Python literal") from None
        return text
    _check_finite_value(value, text)
    return value


def _literal(node: ast.AST) -> Any:
    """``ast.literal_eval`` that also reads ``dict(key=value, ...)``, nested anywhere (SB3's policy_kwargs)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        return {kw.arg: _literal(kw.value) for kw in node.keywords}
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(v) for v in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    return ast.literal_eval(node)


def _check_finite_value(value: Any, text: str) -> None:
    """Refuse NaN and infinity anywhere in a parsed value (``1e999`` parses as infinity), and integers beyond any
    sensible setting."""
    from rlcourse.core.io import check_finite

    try:
        check_finite(value)
    except ValueError:
        raise RLCourseError(f"value {text[:40]!r} is not a finite number") from None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**15:
        raise RLCourseError(f"value {text[:40]!r} is out of range")
    for v in value if isinstance(value, (list, tuple)) else value.values() if isinstance(value, dict) else ():
        _check_finite_value(v, text)


def parse_assignments(items: list[str] | None, what: str = "--hp") -> dict[str, Any]:
    """``["a=1", "b=[2, 3]"]`` → ``{"a": 1, "b": [2, 3]}``, with one-line errors for malformed items."""
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip().isidentifier():
            raise RLCourseError(f"malformed {what} {item!r}: expected NAME=VALUE")
        try:
            out[name.strip()] = parse_value(value)
        except (ValueError, SyntaxError) as exc:
            raise RLCourseError(f"malformed value in {what} {item!r}: {exc}") from None
    return out


def _positive_int(text: str) -> int:
    if not text.replace("_", "").lstrip("+-").isdigit() or not text.isascii():
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    try:
        v = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive integer")
    return v


def _int(text: str) -> int:
    """A non-negative integer (seeds, step counts where 0 means "none")."""
    if not text.replace("_", "").lstrip("+-").isdigit() or not text.isascii():
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    try:
        v = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return v


def _rate(text: str) -> float:
    """A finite number in [0, 1]."""
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v) or not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number in [0, 1]")
    return v


def _add_spec_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wrap", action="append", metavar="NAME:K=V,...", default=None,
                   help="add a named wrapper to the environment, innermost first, e.g. obs_noise:sigma=0.01 "
                        "(repeatable; see rlcourse.envs.wrappers)")
    p.add_argument("--env-spec", default=None, metavar="FILE",
                   help="a JSON environment spec (id, kwargs, wrappers); --wrap adds to it")


def _spec_from_args(args: argparse.Namespace, default_id: str | None) -> Any:
    """The environment spec given by --env-spec / --env / --wrap (None when none of them was given)."""
    from rlcourse.envs.spec import EnvSpec, load_spec_file, parse_wrap

    if args.env_spec:
        spec = load_spec_file(args.env_spec)
        if args.env_id and args.env_id != spec.id:
            raise RLCourseError(f"--env {args.env_id} contradicts the spec file's id {spec.id}")
    elif args.env_id or default_id:
        spec = EnvSpec(id=args.env_id or default_id)
    else:
        return None
    wraps = [parse_wrap(w) for w in args.wrap or []]
    return spec.with_wrappers(*wraps).validate() if wraps else spec.validate()


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rlcourse", description="Goal-conditioned robot RL course: train, evaluate, run chapters.")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser, metavar="COMMAND")

    t = sub.add_parser("train", help="train a policy through the experiment contract")
    t.add_argument("--recipe", default=None, help="a named recipe (rlcourse.training.recipes): algorithm, "
                   "environments, HER and hyperparameters; other options override it")
    t.add_argument("--algo", default=None, help="ppo, sac, td3 (stable-baselines3), fastsac (rlcourse.algos.fastsac) "
                   "or pixelsac (rlcourse.algos.pixelsac, with --wrap pixels)")
    t.add_argument("--env", default=None, dest="env_id", help="a Fetch environment id, e.g. FetchReachDense-v4")
    _add_spec_options(t)
    t.add_argument("--seed", type=_int, default=0)
    t.add_argument("--total-steps", type=_positive_int, default=10_000)
    t.add_argument("--n-envs", type=_positive_int, default=None, help="parallel environments (default 1, or the recipe's)")
    t.add_argument("--her", action="store_true", default=None, help="hindsight experience replay (off-policy only)")
    t.add_argument("--no-her", action="store_false", dest="her", help="with --recipe: drop the relabelling")
    t.add_argument("--her-goals", type=_positive_int, default=None, help="relabelled goals per transition (k)")
    t.add_argument("--her-strategy", choices=["future", "final", "episode"], default=None)
    t.add_argument("--hp", action="append", metavar="NAME=VALUE", help="a hyperparameter of the algorithm: any stable-baselines3 constructor argument, or a "
                   "fastsac config field (repeatable; overrides the recipe's)")
    t.add_argument("--normalize-obs", action="store_true", help="normalise observations (running mean/std)")
    t.add_argument("--torch-threads", type=_int, default=0, help="PyTorch threads while training (0 = default)")
    t.add_argument("--run-id", default=None, help="run folder name (default {algo}[_her]_{env}_seed{N})")
    t.add_argument("--out", default=None, help="parent folder of the run (default: checkpoints/)")
    t.add_argument("--eval-episodes", type=_int, default=100, help="episodes in eval.json (0 = skip)")
    t.add_argument("--eval-every", type=_int, default=0, help="steps between evaluations in the curve (0 = none)")
    t.add_argument("--curve-eval-episodes", type=_positive_int, default=10, help="episodes per evaluation in the curve")
    t.add_argument("--stop-at-success", type=_rate, default=0.0,
                   help="end at the first evaluation (--eval-every) with at least this success rate (0 = never)")
    t.add_argument("--checkpoint-every", type=_int, default=0, help="steps between resume checkpoints (0 = 10 per run)")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    t.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="evaluate a run folder (or 'random') and write eval.json")
    e.add_argument("run", help="a run folder or its model file (model.zip or model.pt); 'random' for the uniform-random baseline")
    e.add_argument("--env", dest="env_id", default=None,
                   help="task (default: the run's own spec, without training-only wrappers such as a curriculum)")
    _add_spec_options(e)
    e.add_argument("--replace", action="store_true",
                   help="replace the run's eval.json even if it was made under another protocol")
    e.add_argument("--n-episodes", type=_positive_int, default=100)
    e.add_argument("--seed", type=_int, default=None, help="seed of the first episode (default 1000)")
    e.add_argument("--stochastic", action="store_true", help="sample actions instead of the deterministic mean")
    e.add_argument("--out", default=None, help="write the report here instead of <run>/eval.json")
    e.add_argument("--out-dir", default=None, help="with 'random': parent folder of the run (default checkpoints/)")
    e.add_argument("--overwrite", action="store_true", help="with 'random': replace an existing run folder")
    e.add_argument("--no-progress", action="store_true")

    r = sub.add_parser("run", help="execute a chapter notebook headless (papermill)")
    r.add_argument("chapter", help="chapter id, e.g. ch01")
    r.add_argument("--profile", default="quick", help="quick (minutes, CPU) or full (reference runs)")
    r.add_argument("--out", default=None, help="executed notebook (default _build/executed/<notebook>.<profile>.ipynb)")
    r.add_argument("-p", "--param", action="append", metavar="NAME=VALUE", help="extra notebook parameter")

    sub.add_parser("versions", help="print versions, git commit and hardware as JSON")
    sub.add_parser("chapters", help="list the chapters and their profiles")

    w = sub.add_parser("sweep", help="run a grid of trainings and evaluations (a YAML spec; see rlcourse.training.sweep)")
    w.add_argument("spec", help="the sweep's YAML file")
    w.add_argument("--backend", default="local", help="local (a process pool, the default) or ray")
    w.add_argument("--jobs", type=_positive_int, default=1, help="jobs at a time (local; a local Ray instance's CPUs)")
    w.add_argument("--address", default=None, help="with --backend ray: join the cluster at this address "
                   "(e.g. 10.0.0.5:6379, or 'auto' on a cluster node); default: start a local Ray instance")
    w.add_argument("--cpus-per-job", type=float, default=1.0, help="with --backend ray: CPUs each job asks for")
    w.add_argument("--gpus-per-job", type=float, default=0.0,
                   help="with --backend ray: GPUs each job asks for (Ray hides GPUs from jobs that ask for none)")

    q = sub.add_parser("repro", help="train twice with the same seed and compare the evaluations")
    q.add_argument("--algo", required=True)
    q.add_argument("--env", required=True, dest="env_id")
    q.add_argument("--seed", type=_int, default=0)
    q.add_argument("--total-steps", type=_positive_int, default=2048)
    q.add_argument("--n-envs", type=_positive_int, default=1)
    q.add_argument("--n-episodes", type=_positive_int, default=10)
    q.add_argument("--atol", type=_rate, default=1e-6)
    q.add_argument("--hp", action="append", metavar="NAME=VALUE")
    q.add_argument("--out", default=None, help="also write the comparison as JSON here")
    q.add_argument("--replace", action="store_true", help="overwrite an existing --out file")
    return p


def _train(args: argparse.Namespace) -> int:
    from rlcourse.contract.config import TrainConfig
    from rlcourse.core.paths import checkpoints_dir
    from rlcourse.envs.spec import EnvSpec
    from rlcourse.training.recipes import recipe, with_recipe_wrappers
    from rlcourse.training.train import train, validate_config

    base: dict[str, Any] = {"algo": None, "n_envs": 1, "her": False, "her_kwargs": {}, "hyperparameters": {}}
    if args.recipe:
        r = recipe(args.recipe)
        base.update(algo=r["algo"], n_envs=r["n_envs"], her=True, her_kwargs=dict(r["her_kwargs"]),
                    hyperparameters=dict(r["hyperparameters"]))
        if args.algo and args.algo != r["algo"]:
            raise RLCourseError(f"--algo {args.algo} contradicts recipe {args.recipe} (algorithm {r['algo']})")
    algo = args.algo or base["algo"]
    if not algo:
        raise RLCourseError("give --algo (ppo, sac, td3, fastsac, pixelsac) or --recipe")
    spec = _spec_from_args(args, None)
    if spec is None:
        raise RLCourseError("give --env (a Fetch task id) or --env-spec")
    if args.recipe:  # the recipe's wrappers (a camera), unless the command line names its own of the same kind
        spec = EnvSpec(spec.id, spec.kwargs, ()).with_wrappers(*with_recipe_wrappers(args.recipe, list(spec.wrappers)))
    her = base["her"] if args.her is None else args.her
    her_kwargs = dict(base["her_kwargs"]) if her else {}
    if args.her_goals is not None:
        her_kwargs["n_sampled_goal"] = args.her_goals
    if args.her_strategy is not None:
        her_kwargs["goal_selection_strategy"] = args.her_strategy
    if (args.her_goals is not None or args.her_strategy is not None) and not her:
        raise RLCourseError("--her-goals/--her-strategy need --her")
    hyperparameters = {**base["hyperparameters"], **parse_assignments(args.hp)}
    size = hyperparameters.get("buffer_size")
    if args.recipe and isinstance(size, int) and not isinstance(size, bool):  # no more replay than the run can fill
        hyperparameters["buffer_size"] = min(size, args.total_steps)
    cfg = TrainConfig(
        algo=algo, env_id=spec.id, env_kwargs=dict(spec.kwargs), wrappers=list(spec.wrappers), seed=args.seed,
        total_steps=args.total_steps, n_envs=args.n_envs or base["n_envs"], her=her, her_kwargs=her_kwargs,
        hyperparameters=hyperparameters, run_id=args.run_id, out_dir=str(checkpoints_dir() if args.out is None else args.out),
        device=args.device, checkpoint_every=args.checkpoint_every, eval_every=args.eval_every,
        curve_eval_episodes=args.curve_eval_episodes, final_eval_episodes=args.eval_episodes,
        overwrite=args.overwrite, progress=not args.no_progress, command=args.command,
        normalize_obs=args.normalize_obs, torch_threads=args.torch_threads, stop_at_success=args.stop_at_success,
    )
    validate_config(cfg)
    run = train(cfg)
    agg = run.eval["aggregate"] if run.eval else None
    print(f"wrote {run.path} ({run.meta['steps_done']} steps, {run.meta['wall_clock_s']:.1f} s, "
          f"{run.meta['steps_per_s']} steps/s)")
    if agg:
        lo, hi = agg["success_ci95"]
        print(f"eval: success {agg['success_rate']:.2f} [{lo:.2f}, {hi:.2f}], return {agg['return_mean']:.2f}, "
              f"final distance {agg['final_distance_mean'] * 1000:.1f} mm")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from rlcourse.contract.config import DEFAULT_EVAL_SEED
    from rlcourse.contract.runs import resolve_run_dir
    from rlcourse.core.paths import checkpoints_dir
    from rlcourse.training.evaluation import evaluate_run
    from rlcourse.training.train import random_run

    seed = DEFAULT_EVAL_SEED if args.seed is None else args.seed
    if args.run == "random":
        if not args.env_id:
            raise RLCourseError("'rlcourse eval random' needs --env")
        if args.wrap or args.env_spec:
            raise RLCourseError("'rlcourse eval random' takes a bare --env")
        if args.out is not None or args.replace or args.stochastic:
            raise RLCourseError("'rlcourse eval random' writes a run folder: give its parent with --out-dir "
                                "(--out, --replace and --stochastic do not apply)")
        run = random_run(args.env_id, args.n_episodes, eval_seed=seed, out_dir=checkpoints_dir() if args.out_dir is None else args.out_dir,
                         overwrite=args.overwrite, progress=not args.no_progress, command=args.command)
        doc, where = run.eval, run.path / "eval.json"
    else:
        folder = resolve_run_dir(args.run)
        spec = _spec_from_args(args, None) if (args.env_id or args.env_spec or args.wrap) else None
        if args.wrap and not (args.env_id or args.env_spec):
            from rlcourse.training.evaluation import trained_spec
            from rlcourse.contract.runs import read_json
            from rlcourse.contract.writer import evaluation_spec
            from rlcourse.envs.spec import parse_wrap

            own = evaluation_spec(trained_spec(read_json(folder / "meta.json", "meta")))
            spec = own.with_wrappers(*[parse_wrap(w) for w in args.wrap]).validate()
        doc = evaluate_run(folder, n_episodes=args.n_episodes, seed=seed, deterministic=not args.stochastic,
                           spec=spec, out=args.out, replace=args.replace, progress=not args.no_progress)
        where = Path(args.out) if args.out else folder / "eval.json"
    agg = doc["aggregate"]
    lo, hi = agg["success_ci95"]
    print(f"wrote {where}")
    print(f"success {agg['success_rate']:.2f} [{lo:.2f}, {hi:.2f}] over {doc['n_episodes']} episodes, "
          f"return {agg['return_mean']:.2f}, final distance {agg['final_distance_mean'] * 1000:.1f} mm")
    return 0


def _run(args: argparse.Namespace) -> int:
    from rlcourse.notebooks import run_chapter

    out = run_chapter(args.chapter, args.profile, out=args.out, extra=parse_assignments(args.param, "-p"))
    print(f"executed {args.chapter} ({args.profile}) -> {out}")
    return 0


def _chapters(args: argparse.Namespace) -> int:
    from rlcourse.chapters import CHAPTERS

    print(f"{'id':5} {'week':4} {'status':8} {'profiles':12} title")
    for c in CHAPTERS.values():
        print(f"{c.id:5} {c.week:4} {'written' if c.written else 'planned':8} "
              f"{','.join(c.profiles) or '-':12} {c.title}")
    return 0


def _repro(args: argparse.Namespace) -> int:
    from rlcourse.core.paths import scratch_dir
    from rlcourse.training.repro import repro_check, write_repro
    from rlcourse.contract.config import TrainConfig
    from rlcourse.training.train import validate_config

    cfg = TrainConfig(algo=args.algo, env_id=args.env_id, seed=args.seed, total_steps=args.total_steps,
                      n_envs=args.n_envs, hyperparameters=parse_assignments(args.hp), progress=False)
    validate_config(cfg, preflight=False)
    if args.out is not None:
        from rlcourse.training.evaluation import check_report_destination

        check_report_destination(Path(args.out), args.replace)
    scratch_dir().mkdir(parents=True, exist_ok=True)
    result = repro_check(cfg, n_episodes=args.n_episodes, atol=args.atol, workdir=scratch_dir())
    if args.out:
        write_repro(args.out, result, args.command)
    verdict = "PASS" if result["equal"] else "FAIL"
    print(f"{verdict}: two runs of {args.algo} on {args.env_id} (seed {args.seed}, {args.total_steps} steps), "
          f"{args.n_episodes} eval episodes each: max |diff| = {result['max_abs_diff']:.3g} (atol {args.atol:g})")
    for line in result["mismatches"][:10]:
        print("  " + line)
    return 0 if result["equal"] else 1


def _sweep(args: argparse.Namespace) -> int:
    from rlcourse.training.sweep import run_sweep

    doc = run_sweep(args.spec, backend=args.backend, jobs=args.jobs, address=args.address,
                    cpus_per_job=args.cpus_per_job, gpus_per_job=args.gpus_per_job)
    return 1 if doc["counts"]["failed"] or doc["counts"]["skipped"] else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rlcourse`` command."""
    args = build_parser().parse_args(argv)
    from rlcourse.core.provenance import command_line

    args.command = command_line() if argv is None else command_line(["rlcourse", *argv])
    handlers = {"train": _train, "eval": _eval, "run": _run, "chapters": _chapters, "repro": _repro, "sweep": _sweep}
    try:
        if args.cmd == "versions":
            from rlcourse.envs.fetch import configure_gl
            from rlcourse.core.provenance import snapshot

            snap = snapshot()
            snap["gl_backend"] = configure_gl()
            from rlcourse.envs.camera import probe_gl_renderer

            snap["gl_renderer"] = probe_gl_renderer()  # "llvmpipe ...": software rendering, whatever MUJOCO_GL says
            print(json.dumps(snap, indent=2))
            return 0
        return handlers[args.cmd](args)
    except RLCourseError as exc:
        print(f"rlcourse: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("rlcourse: interrupted; a training run resumes from its last checkpoint when you run the same command "
              "again", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
