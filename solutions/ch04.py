"""Chapter 4 — HER on sparse Reach and Push: solutions to the exercises.

Each function runs one exercise with settings passed as parameters, so that ``tests/test_solutions_ch04.py`` can run
it small and check what the solution text in the chapter claims. The trainings the exercises ask for take hours on a
2-core CPU; for those the functions build and validate the exact run configurations (``rlcourse.train_many(configs,
jobs=2, skip_existing=True)`` trains them) and compute everything that is cheap: index sets, shares, bounds, costs.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlcourse import (
    FunctionPolicy,
    RLCourseError,
    TrainConfig,
    chapters,
    cli,
    evaluate,
    summarize,
)
from rlcourse.algos import fastsac
from rlcourse.analysis import report
from rlcourse.contract import runs
from rlcourse.envs import make_env
from rlcourse.envs.fetch import flatten_obs
from rlcourse.labs import her, sac
from rlcourse.training import recipes
from rlcourse.training.train import validate_config

PUSH = "FetchPush-v4"


def _push_settings() -> dict[str, Any]:
    """The reference Push runs' settings (seeds, budget, evaluation), which every exercise run keeps."""
    return chapters.settings("ch04", "full")["push"]


def _fast_configs(changes_per_label: dict[str, dict[str, Any]], seeds: Sequence[int], total_steps: int | None,
                  out_dir: str | Path | None, n_sampled_goal: dict[str, int] | None = None) -> list[TrainConfig]:
    """Validated fast-recipe Push configs, one per (label, seed), with the reference runs' evaluation settings."""
    pc = _push_settings()
    common: dict[str, Any] = {"eval_every": pc["eval_every"], "curve_eval_episodes": pc["curve_eval_episodes"],
                              "final_eval_episodes": pc["eval_episodes"], "diagnostics": True, "torch_threads": 1}
    if out_dir is not None:
        common["out_dir"] = str(out_dir)
    cfgs = []
    for label, changes in changes_per_label.items():
        for seed in seeds:
            cfg = recipes.recipe_config("fast", PUSH, seed, total_steps or pc["total_steps"], changes=changes,
                                        n_sampled_goal=(n_sampled_goal or {}).get(label),
                                        run_id=f"fastsac_her_{label}_{PUSH}_seed{seed}", **common)
            validate_config(cfg, preflight=False)
            cfgs.append(cfg)
    return cfgs


# --------------------------------------------------------------------------------------------------- exercise 1


def goal_steps(T: int, t: np.ndarray, strategy: her.GoalStrategy | str, rng: np.random.Generator) -> np.ndarray:
    """One achieved-goal index per transition ``t`` (an index array), drawn from ``her.goal_indices``'s sets:
    ``future`` t+1..T, ``final`` T, ``episode`` 1..T (transition ``t`` ends in ``ag[t + 1]``)."""
    strategy = her.GoalStrategy(strategy)
    if strategy is her.GoalStrategy.FUTURE:
        return rng.integers(t + 1, T + 1)  # the same call as fastsac.EpisodeBuffer.sample
    if strategy is her.GoalStrategy.FINAL:
        return np.full(len(t), T)
    return rng.integers(1, T + 1, len(t))


def sample(buffer: fastsac.EpisodeBuffer, n: int, rng: np.random.Generator, compute_reward: Callable[..., Any],
           strategy: her.GoalStrategy | str = "future") -> dict[str, np.ndarray]:
    """``fastsac.EpisodeBuffer.sample`` with a choice of strategy: a share k/(k+1) of the ``n`` transitions gets a
    goal from ``goal_steps`` and every reward is recomputed with ``compute_reward``. With ``future`` it draws the
    same random numbers in the same order as the buffer's own ``sample``, so it returns the same batch."""
    ep = rng.integers(0, buffer.size, n)
    t = rng.integers(0, buffer.T, n)
    relabel = rng.random(n) < (buffer.k / (buffer.k + 1.0) if buffer.k > 0 else 0.0)
    steps = goal_steps(buffer.T, t, strategy, rng)
    goal = np.where(relabel[:, None], buffer.ag[ep, steps], buffer.goal[ep])
    next_ag = buffer.ag[ep, t + 1]
    reward = np.asarray(compute_reward(next_ag, goal, None), dtype=np.float32)
    return {"obs": buffer.obs[ep, t], "goal": goal, "act": buffer.act[ep, t], "reward": reward,
            "next_obs": buffer.obs[ep, t + 1], "next_ag": next_ag, "relabelled": relabel,
            # where each sample came from, so that it can be checked against the HER lab (not used for training)
            "ag": buffer.ag[ep, t], "episode": ep, "step": t, "goal_step": np.where(relabel, steps, -1)}


class StrategyBuffer(fastsac.EpisodeBuffer):
    """``fastsac.EpisodeBuffer`` relabelling with ``strategy``: what the training loop needs to train Push with
    ``final`` or ``episode`` (the solution text lists the changes to ``rlcourse.algos.fastsac`` that use it)."""

    def __init__(self, *args: Any, strategy: her.GoalStrategy | str = "future", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.strategy = her.GoalStrategy(strategy)

    def sample(self, n: int, rng: np.random.Generator, compute_reward: Any) -> dict[str, np.ndarray]:
        return sample(self, n, rng, compute_reward, self.strategy)


def fill_buffer(episodes: Sequence[her.Episode], k: int = 4) -> fastsac.EpisodeBuffer:
    """An ``EpisodeBuffer`` holding ``episodes`` (collected with ``her.collect_episode``)."""
    e0 = episodes[0]
    buf = fastsac.EpisodeBuffer(len(episodes), len(e0), e0.observations.shape[1], e0.achieved_goals.shape[1],
                                e0.actions.shape[1], k=k)
    for e in episodes:
        buf.add(e.observations, e.achieved_goals, e.desired_goal, e.actions)
    return buf


def exercise_1(episodes: Sequence[her.Episode], compute_reward: Callable[..., Any], n: int = 20_000, k: int = 4,
               seed: int = 0) -> dict[str, dict[str, float]]:
    """The three strategies on the same episodes: for each, the relabelled share of a batch, the share of relabelled
    samples with reward 0, and how far (in steps and in metres) the relabelled goal lies from the step's outcome."""
    buf = fill_buffer(episodes, k)
    out = {}
    for strategy in her.GoalStrategy:
        b = sample(buf, n, np.random.default_rng(seed), compute_reward, strategy)
        rel = b["relabelled"]
        out[strategy.value] = {
            "relabelled_share": float(rel.mean()),
            "success_share_relabelled": float(np.mean(b["reward"][rel] == 0.0)),
            "success_share_batch": float(np.mean(b["reward"] == 0.0)),
            "mean_steps_from_outcome": float(np.mean(np.abs(b["goal_step"][rel] - (b["step"][rel] + 1)))),
            "mean_metres_from_outcome": float(np.mean(np.linalg.norm(b["goal"][rel] - b["next_ag"][rel], axis=1))),
            "max_metres_from_outcome": float(np.max(np.linalg.norm(b["goal"][rel] - b["next_ag"][rel], axis=1))),
        }
    return out


def exercise_1_training(strategy: str, seed: int = 0, total_steps: int | None = None) -> dict[str, Any]:
    """The Push run of exercise 1 with ``strategy``, as a command line and a config, both at the reference runs'
    settings. Today ``fastsac`` refuses any strategy but ``future`` (``error`` says so); the solution text lists the
    changes to ``rlcourse.algos.fastsac`` that make it train."""
    pc = _push_settings()
    total_steps = total_steps or pc["total_steps"]
    run_id = f"fastsac_her_{strategy}_{PUSH}_seed{seed}"
    argv = ["train", "--recipe", "fast", "--env", PUSH, "--seed", str(seed), "--her-strategy", strategy,
            "--total-steps", str(total_steps), "--eval-every", str(pc["eval_every"]),
            "--curve-eval-episodes", str(pc["curve_eval_episodes"]), "--eval-episodes", str(pc["eval_episodes"]),
            "--torch-threads", "1", "--run-id", run_id]
    cli.build_parser().parse_args(argv)
    cfg = recipes.recipe_config("fast", PUSH, seed, total_steps, run_id=run_id, eval_every=pc["eval_every"],
                                curve_eval_episodes=pc["curve_eval_episodes"], final_eval_episodes=pc["eval_episodes"],
                                diagnostics=True, torch_threads=1)
    cfg.her_kwargs["goal_selection_strategy"] = str(her.GoalStrategy(strategy).value)
    try:
        validate_config(cfg, preflight=False)
        error = None
    except RLCourseError as exc:
        error = str(exc)
    return {"argv": argv, "command": shlex.join(["rlcourse", *argv]), "config": cfg, "error": error}


def collect(env_id: str, n: int, seed: int = 10_000) -> tuple[list[her.Episode], Callable[..., Any]]:
    """``n`` random episodes of ``env_id`` (seeds ``seed``, ``seed + 1``, ...) and the task's ``compute_reward``."""
    env = make_env(env_id)
    try:
        return [her.collect_episode(env, seed=seed + i) for i in range(n)], env.unwrapped.compute_reward
    finally:
        env.close()


def block_moved(episode: her.Episode, tol: float = 0.01) -> bool:
    """Whether the achieved goal (on Push, the block) ever moves more than ``tol`` metres from where it started."""
    return bool(np.linalg.norm(episode.achieved_goals - episode.achieved_goals[0], axis=1).max() > tol)


# --------------------------------------------------------------------------------------------------- exercise 2


def entropy_lift(alpha: float, gamma: float, act_dim: int = 4) -> float:
    """The most the entropy bonus can raise a soft value: α H_max / (1 − γ), with H_max = dim(A) log 2 nats, the
    entropy of uniform actions on [−1, 1]^dim(A)."""
    return alpha * act_dim * math.log(2.0) / (1.0 - gamma)


def exercise_2(alphas: Sequence[float] = (0.01, 0.05, 0.2), seeds: Sequence[int] = (0,),
               total_steps: int | None = None, out_dir: str | Path | None = None) -> dict[str, Any]:
    """The temperature: for each fixed α the bound on the entropy bonus's lift of a soft value, absolutely and as a
    share of the value range 1/(1 − γ); and the Push runs that change only ``ent_coef`` (validated, not trained)."""
    hp = recipes.recipe("fast")["hyperparameters"]
    gamma, value_range = hp["gamma"], 1.0 / (1.0 - hp["gamma"])
    rows = [{"alpha": a, "recipe": a == hp["ent_coef"], "lift_bound": entropy_lift(a, gamma),
             "lift_share_of_range": entropy_lift(a, gamma) / value_range} for a in alphas]
    changed = {f"alpha_{a:g}": {"ent_coef": float(a)} for a in alphas if a != hp["ent_coef"]}
    cfgs = _fast_configs(changed, seeds, total_steps, out_dir)
    return {"gamma": gamma, "value_range": value_range, "rows": rows, "configs": cfgs}


def solved_at_reset(env_id: str = PUSH, seeds: Sequence[int] = range(1000, 1100)) -> float:
    """The share of episodes (by reset seed) whose achieved goal starts within the threshold of the goal: what an
    untrained policy scores on Push (the chapter's "block already there" level)."""
    env = make_env(env_id)
    try:
        hits = []
        for s in seeds:
            obs, _ = env.reset(seed=s)
            hits.append(np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"]) < env.unwrapped.distance_threshold)
        return float(np.mean(hits))
    finally:
        env.close()


def training_phases(run: runs.Run, baseline: float, margin: float = 0.1, top: float = 0.9) -> dict[str, Any]:
    """Split a run's in-training evaluations into the flat start (until success first reaches ``baseline + margin``)
    and the rise (from there to ``top``), and read the critic's batch mean ``q_min_mean`` where the flat start ends
    and at the end (None where the run never got there, or wrote no diagnostics)."""
    start, end = report.first_reaching(run, baseline + margin), report.first_reaching(run, top)
    c = runs.curve_table(run.curve)
    q = [(t, v) for t, v in zip(c["timesteps"], c.get("q_min_mean", [None] * len(c["timesteps"]))) if v is not None]

    def q_at(steps: int | None) -> float | None:
        before = [v for t, v in q if steps is None or t <= steps]
        return before[-1] if before else None

    flat, to_top = (start and start["timesteps"]), (end and end["timesteps"])
    return {"flat_until": flat, "to_top": to_top, "rise": None if flat is None or to_top is None else to_top - flat,
            "q_min_mean_at_flat_end": q_at(flat) if flat is not None else None, "q_min_mean_final": q_at(None)}


# --------------------------------------------------------------------------------------------------- exercise 3


def step_cost_ms(cost: dict[str, float], utd: float) -> float:
    """Milliseconds per environment step: one simulator step plus ``utd`` gradient steps (each with its sample)."""
    return cost["env_step_ms"] + utd * cost["gradient_step_ms"]


def exercise_3(utds: Sequence[float] = (0.125, 0.25, 0.5, 1.0), benchmark: str = "her_push_speed") -> dict[str, Any]:
    """The cost model from the committed benchmark: for each recipe and UTD, the ms per environment step, the
    predicted steps/s, and the break-even ratio: UTD ``u`` beats the recipe's own UTD on wall-clock only if it needs
    fewer than that fraction of the recipe's environment steps to reach the same success."""
    bench = report.load_benchmark(benchmark)
    rows = []
    for c in bench["costs"]:
        own = c["updates_per_env_step"]
        for u in sorted({*utds, own}):
            ms = step_cost_ms(c, u)
            rows.append({"recipe": c["recipe"], "updates_per_step": u, "recipe_utd": u == own, "ms_per_env_step": ms,
                         "predicted_steps_per_s": 1000.0 / ms, "break_even_steps_ratio": step_cost_ms(c, own) / ms})
    return {"rows": rows, "costs": {c["recipe"]: c for c in bench["costs"]}, "protocol": bench["protocol"]}


def exercise_3_configs(utds: Sequence[float] = (0.25, 1.0), seeds: Sequence[int] = (0,),
                       total_steps: int | None = None, out_dir: str | Path | None = None) -> list[TrainConfig]:
    """The Push runs of exercise 3: the fast recipe with only ``updates_per_step`` changed (validated, not trained)."""
    return _fast_configs({f"utd_{u:g}": {"updates_per_step": float(u)} for u in utds}, seeds, total_steps, out_dir)


def plot_both_axes(groups: dict[str, Sequence[runs.Run]], axes: Any = None) -> Any:
    """Deterministic success against environment steps and against wall-clock, side by side."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(12, 3.6))
    for ax, x in zip(axes, ("timesteps", "wall_s")):
        report.plot_curves(groups, y="eval_success_rate", x=x, ax=ax, ylabel="deterministic success", band=False)
        ax.legend(fontsize="small")
    return axes


# --------------------------------------------------------------------------------------------------- exercise 4


def goal_obs(observation: np.ndarray, achieved_goal: np.ndarray, desired_goal: np.ndarray) -> np.ndarray:
    """One goal-conditioned observation as the chapter 3 SAC sees it (``flatten_obs``'s sorted key order)."""
    return flatten_obs({"observation": observation, "achieved_goal": achieved_goal, "desired_goal": desired_goal})


class InsertionReplay(sac.ReplayBuffer):
    """Chapter 3's replay buffer, filled with the output of ``her.process_episode``: each original transition plus,
    with probability ``her_ratio``, ``k`` relabelled copies, fixed when the episode is stored."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int, seed: int | None = None):
        super().__init__(obs_dim, act_dim, capacity, seed)
        self.env_steps = self.stored = self.relabelled = 0

    def add_episode(self, episode: her.Episode, compute_reward: Callable[..., Any], rng: np.random.Generator,
                    strategy: her.GoalStrategy | str = "future", k: int = 4, her_ratio: float = 0.8) -> int:
        out = her.process_episode(episode, compute_reward, strategy, k, her_ratio, rng)
        for tr in out:  # done = 0: Fetch episodes end by the time limit only, so every target bootstraps
            self.add(goal_obs(tr.observation, tr.achieved_goal, tr.desired_goal), tr.action, tr.reward,
                     goal_obs(tr.next_observation, tr.next_achieved_goal, tr.desired_goal), False)
        self.env_steps += len(episode)
        self.stored += len(out)
        self.relabelled += sum(tr.relabelled for tr in out)
        return len(out)

    @property
    def amplification(self) -> float:
        """Stored transitions per environment step: 1 + p k on average."""
        return self.stored / self.env_steps


def online_batch(buffer: fastsac.EpisodeBuffer, n: int, rng: np.random.Generator,
                 compute_reward: Callable[..., Any]) -> dict[str, torch.Tensor]:
    """A batch for ``sac.sac_update`` relabelled when it is sampled (``future``, k/(k+1) of it, as SB3 does)."""
    b = sample(buffer, n, rng, compute_reward, "future")
    return {"obs": torch.as_tensor(np.concatenate([b["ag"], b["goal"], b["obs"]], 1)),  # sorted keys, as goal_obs
            "actions": torch.as_tensor(b["act"]), "rewards": torch.as_tensor(b["reward"]),
            "next_obs": torch.as_tensor(np.concatenate([b["next_ag"], b["goal"], b["next_obs"]], 1)),
            "dones": torch.zeros(n)}


def exercise_4(replay: str = "insertion", total_steps: int = 10_000, seed: int = 0, env_id: str = "FetchReach-v4",
               k: int = 4, her_ratio: float = 0.8, batch_size: int = 256, updates_per_step: float = 1.0,
               learning_starts: int = 1000, hidden: tuple[int, ...] = (128, 128), lr: float = 1e-3,
               gamma: float = 0.95, tau: float = 0.05, alpha: float = 0.05, eval_episodes: int = 50,
               eval_every: int = 0) -> dict[str, Any]:
    """Chapter 3's from-scratch SAC on sparse Reach with HER, relabelled at insertion (``replay="insertion"``, the
    ``InsertionReplay`` above) or when sampled (``"online"``). Both see the same random episodes before
    ``learning_starts`` and take the same number of gradient steps, ``updates_per_step`` per environment step after
    each episode. The agent is evaluated through the course's evaluation loop at the end and, with ``eval_every``,
    every ``eval_every`` environment steps (``curve``: steps, gradient steps, success)."""
    if replay not in ("insertion", "online"):
        raise ValueError(f"replay must be 'insertion' or 'online', got {replay!r}")
    env = make_env(env_id)
    T, reward = env.spec.max_episode_steps, env.unwrapped.compute_reward
    o_dim, a_dim = sac.obs_dim(env.observation_space), env.action_space.shape[0]
    g_dim = env.observation_space["desired_goal"].shape[0]
    agent = sac.make_agent(o_dim, a_dim, hidden, lr, gamma, tau, init_alpha=alpha, auto_alpha=False, seed=seed)
    episode_seeds, rng = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 2])
    if replay == "insertion":
        buf: Any = InsertionReplay(o_dim, a_dim, (total_steps + T) * (1 + k), seed=seed)  # nothing is overwritten
    else:
        buf = fastsac.EpisodeBuffer(total_steps // T + 1, T, o_dim - 2 * g_dim, g_dim, a_dim, k=k)
    steps = updates = 0
    debt, curve = 0.0, []

    def success() -> float:
        policy = FunctionPolicy(lambda o: agent.policy.act(o, deterministic=True))
        return summarize(evaluate(policy, env_id, eval_episodes))["success_rate"]

    try:
        while steps < total_steps:
            policy = None if steps < learning_starts else (lambda o: agent.policy.act(o, deterministic=False))
            ep = her.collect_episode(env, policy, seed=int(episode_seeds.integers(2000, 2**31)))
            if replay == "insertion":
                buf.add_episode(ep, reward, rng, "future", k, her_ratio)
            else:
                buf.add(ep.observations, ep.achieved_goals, ep.desired_goal, ep.actions)
            steps += len(ep)
            if steps >= learning_starts:
                debt += updates_per_step * len(ep)
            while debt >= 1.0:
                batch = buf.sample(batch_size) if replay == "insertion" else online_batch(buf, batch_size, rng, reward)
                sac.sac_update(agent, batch)
                updates += 1
                debt -= 1.0
            if eval_every and steps % eval_every < len(ep):
                curve.append((steps, updates, success()))
    finally:
        env.close()
    out = {"replay": replay, "env_steps": steps, "gradient_steps": updates, "agent": agent,
           "success_rate": success(), "curve": curve}
    if replay == "insertion":
        out.update(stored=buf.stored, amplification=buf.amplification, relabelled_share=buf.relabelled / buf.stored)
    else:
        out.update(stored=steps, amplification=1.0, relabelled_share=k / (k + 1))  # of each batch, not of the store
    return out


# --------------------------------------------------------------------------------------------------- exercise 5

# The fast recipe's choices that stable-baselines3's SAC + HerReplayBuffer + VecNormalize cannot express (through
# its constructor or the rlcourse command line), and what it does instead.
NOT_EXPRESSIBLE = {
    "clip_target": "SB3's critic targets are never clipped to [-1/(1-gamma), 0]",
    "shared goal normaliser": "VecNormalize keeps separate statistics for achieved_goal and desired_goal",
    "normaliser floor and clip": "VecNormalize divides by sqrt(var + 1e-8) and clips at 10; fastsac floors the "
                                 "standard deviation at 0.01 and clips at 5 (no command-line setting for either)",
    "inputs": "MultiInputPolicy feeds all three keys (achieved_goal twice, once inside observation); fastsac feeds "
              "observation and desired_goal",
    "fused critics": "two separate critic networks and per-parameter optimiser loops: the same maths, a dearer "
                     "gradient step (wall-clock, not learning)",
}


def sb3_utd(utd: float, n_envs: int) -> tuple[int, int]:
    """``(train_freq, gradient_steps)`` with ``gradient_steps / (train_freq × n_envs) = utd``: stable-baselines3
    counts ``train_freq`` in vectorised steps and then takes ``gradient_steps`` gradient steps."""
    per_vector_step = Fraction(utd * n_envs).limit_denominator(10_000)
    return per_vector_step.denominator, per_vector_step.numerator


def exercise_5(seed: int = 0, total_steps: int | None = None, out: str = "checkpoints",
               env_id: str = PUSH) -> dict[str, Any]:
    """The fast recipe mapped onto stable-baselines3's SAC with HER and VecNormalize, as an ``rlcourse train`` command:
    built as an argv list, parsed by the real parser, turned into the TrainConfig ``rlcourse train`` builds, and
    validated (no training)."""
    fast, pc = recipes.recipe("fast"), _push_settings()
    hp, n_envs, total_steps = fast["hyperparameters"], fast["n_envs"], total_steps or pc["total_steps"]
    train_freq, gradient_steps = sb3_utd(hp["updates_per_step"], n_envs)
    sb3_hp = {"learning_rate": hp["learning_rate"], "batch_size": hp["batch_size"], "gamma": hp["gamma"],
              "tau": hp["tau"], "ent_coef": hp["ent_coef"],  # a number: a fixed α (not "auto")
              "learning_starts": hp["learning_starts"], "train_freq": train_freq, "gradient_steps": gradient_steps,
              "buffer_size": total_steps,  # fastsac keeps every episode of the run
              "policy_kwargs": f"dict(net_arch=[{hp['hidden']}, {hp['hidden']}])"}
    argv = ["train", "--algo", "sac", "--env", env_id, "--seed", str(seed), "--total-steps", str(total_steps),
            "--n-envs", str(n_envs), "--her", "--her-goals", str(fast["her_kwargs"]["n_sampled_goal"]),
            "--her-strategy", "future", "--normalize-obs",
            *[a for name, value in sb3_hp.items() for a in ("--hp", f"{name}={value}")],
            "--eval-every", str(pc["eval_every"]), "--curve-eval-episodes", str(pc["curve_eval_episodes"]),
            "--eval-episodes", str(pc["eval_episodes"]), "--device", "cpu", "--torch-threads", "1",
            "--run-id", f"sac_her_fastsettings_{env_id}_seed{seed}", "--out", out]
    args = cli.build_parser().parse_args(argv)
    cfg = TrainConfig(algo=args.algo, env_id=args.env_id, seed=args.seed, total_steps=args.total_steps,
                      n_envs=args.n_envs, her=args.her,
                      her_kwargs={"n_sampled_goal": args.her_goals, "goal_selection_strategy": args.her_strategy},
                      hyperparameters=cli.parse_assignments(args.hp), run_id=args.run_id, out_dir=args.out,
                      device=args.device, eval_every=args.eval_every, curve_eval_episodes=args.curve_eval_episodes,
                      final_eval_episodes=args.eval_episodes, normalize_obs=args.normalize_obs,
                      torch_threads=args.torch_threads)
    validate_config(cfg, preflight=False)
    return {"argv": argv, "command": shlex.join(["rlcourse", *argv]), "config": cfg,
            "utd": gradient_steps / (train_freq * n_envs), "not_expressible": NOT_EXPRESSIBLE}


# --------------------------------------------------------------------------------------------------- exercise 6


def exercise_6(ks: Sequence[int] = (2, 4, 8, 16, 32), episodes: Sequence[her.Episode] | None = None,
               compute_reward: Callable[..., Any] | None = None, n: int = 20_000, seed: int = 0,
               total_steps: int | None = None, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Where a larger k stops helping: for each k, the share of real goals in a batch 1/(k+1), real-goal samples
    per batch and per environment step (the recipe's batch and UTD); with ``episodes``, the relabelled share and the
    share of the batch within ε of its goal measured on an ``EpisodeBuffer``, against the prediction
    k/(k+1) + q/(k+1) (q: the share of the episodes' own transitions that end within ε), which holds while the
    block never moves. Also the ablation's runs for the k that are not trained yet (validated, not trained)."""
    hp = recipes.recipe("fast")["hyperparameters"]
    batch, utd = hp["batch_size"], hp["updates_per_step"]
    q = None if episodes is None else float(np.mean([e.rewards == 0.0 for e in episodes]))
    rows = []
    for k in ks:
        row = {"k": k, "relabelled_share": k / (k + 1), "real_share": 1 / (k + 1), "real_per_batch": batch / (k + 1),
               "real_per_env_step": utd * batch / (k + 1)}
        if episodes is not None:
            b = sample(fill_buffer(episodes, k), n, np.random.default_rng(seed), compute_reward, "future")
            row.update(measured_relabelled_share=float(b["relabelled"].mean()),
                       predicted_within_eps=(k + q) / (k + 1),
                       measured_within_eps=float(np.mean(np.linalg.norm(b["next_ag"] - b["goal"], axis=1) < 0.05)))
        rows.append(row)
    ab = chapters.settings("ch04", "full")["ablation"]
    new = [k for k in ks if k not in (*ab["k"], recipes.recipe("fast")["her_kwargs"]["n_sampled_goal"])]
    cfgs = _fast_configs({f"k{k}": {} for k in new}, ab["seeds"], total_steps, out_dir, {f"k{k}": k for k in new})
    return {"rows": rows, "q": q, "configs": cfgs}
