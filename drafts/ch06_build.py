import json, sys
cells = []
def md(cid, src): cells.append({"cell_type": "markdown", "id": cid, "metadata": {}, "source": src.strip("\n").splitlines(keepends=True)})
def code(cid, src, tags=None):
    cells.append({"cell_type": "code", "execution_count": None, "id": cid, "metadata": ({"tags": tags} if tags else {}),
                  "outputs": [], "source": src.strip("\n").splitlines(keepends=True)})

md("f06a0001", r'''
# Chapter 6 — Policies as controllers

Chapter 4 trained policies that solve Reach and Push, and judged them by one number: the share of episodes that end
with the goal reached. Whoever has to run such a policy on an arm asks other questions. How hard does it drive the
motors? Does it change its mind abruptly from one step to the next? Does it shoot past the target and come back?
How long until it is there *and stays*? A policy is a feedback controller, a map from what the robot senses to a
command, applied 25 times a second, and this chapter measures it the way a control engineer measures a controller.

**You will:** read how a Fetch action becomes motion and derive what scaling and low-pass filtering the command do
to it; define a bundle of controller metrics and check each on paths with known answers; derive the closed loop of
a proportional rule, find where the linear model is wrong and correct it with one measured number; write a
two-phase rule for Push; split what learning adds into *planning* and *control*; and read a sweep of six scales and
six filter settings over three seeds per task, run by the course's sweep runner, to answer one practical question
with intervals: does some filter setting halve the jerk for at most a small loss of success?
''')
md("f06a0002", r'''
## Parameters

`profile = "quick"` runs in a few minutes on a laptop CPU: every lab and check, the rules and chapter 4's policies
on a few dozen episodes each, and a small interface sweep. `profile = "full"` uses 100 episodes everywhere, runs the
reference sweep (`sweeps/ch06_interface.yaml`; finished evaluations are reused) and renders the animations.
Headless: `rlcourse run ch06 --profile full`.
''')
code("f06a0003", 'profile = "quick"  # "quick": minutes on a CPU; "full": 100 episodes everywhere, the reference sweep, the GIFs', tags=["parameters"])
code("f06a0004", r'''
import matplotlib.pyplot as plt
import numpy as np
import torch
from myst_nb import glue

from rlcourse import chapters, load_policy
from rlcourse.analysis import report
from rlcourse.contract import runs
from rlcourse.contract.evaluate import evaluate, overshoot, path_jerk, settling_time, summarize
from rlcourse.contract.policies import FunctionPolicy
from rlcourse.core import paths
from rlcourse.core.stats import format_interval, metric_bounds, t_interval
from rlcourse.envs.fetch import gripper_position
from rlcourse.envs.spec import EnvSpec, make
from rlcourse.labs import controllers
from rlcourse.labs.controllers import ProportionalPush, ProportionalReach, closed_loop, planning_vs_control
from rlcourse.training import sweep

cfg = chapters.settings("ch06", profile)
torch.set_num_threads(cfg["torch_threads"])
table = report.show_table
ckpt = paths.checkpoints_dir()
TASKS = ["FetchReach-v4", "FetchPush-v4"]
learned = {env: load_policy(runs.load_run(ckpt / f"fastsac_her_{env}_seed0")) for env in TASKS}
RULES = {"FetchReach-v4": ProportionalReach, "FetchPush-v4": ProportionalPush}
rule = {env: RULES[env](cfg["rule_gain"][env]) for env in TASKS}
METRICS = ["success_rate", "time_to_success_mean", "settling_time_mean", "overshoot_mean", "smoothness_mean",
           "jerk_mean", "peak_action_mean", "action_energy_mean", "path_length_mean"]
print(f"profile={profile!r}")
cfg
''', tags=["hide-cell"])

md("f06a0005", r'''
## WHY — success is not deployability

### Two controllers that both succeed

Here are two controllers for Reach and two for Push, evaluated on the same episodes by the course's one evaluation
loop: chapter 4's SAC+HER policy (seed 0) and a *rule*, a few lines of hand-written proportional control that
Build It (c) and (d) derive. The columns are the metric bundle defined just below.
''')
code("f06a0006", r'''
n = cfg["compare_episodes"]
why = {(env, who): summarize(evaluate(p, env, n_episodes=n))
       for env in TASKS for who, p in (("SAC+HER", learned[env]), ("rule", rule[env]))}
table([{"task": env, "controller": who, **{k: a[k] for k in METRICS}} for (env, who), a in why.items()], digits=3)
reach_sac, reach_rule = why[("FetchReach-v4", "SAC+HER")], why[("FetchReach-v4", "rule")]
assert reach_sac["success_rate"] >= 0.95 and reach_rule["success_rate"] >= 0.95  # both solve Reach ...
assert reach_sac["smoothness_mean"] > reach_rule["smoothness_mean"]              # ... one far more abruptly
glue("ch06_why_episodes", n, display=False)
glue("ch06_why_smooth_ratio", reach_sac["smoothness_mean"] / reach_rule["smoothness_mean"], display=False)
glue("ch06_why_energy_ratio", reach_sac["action_energy_mean"] / reach_rule["action_energy_mean"], display=False)
glue("ch06_why_push_sac", why[("FetchPush-v4", "SAC+HER")]["success_rate"], display=False)
glue("ch06_why_push_rule", why[("FetchPush-v4", "rule")]["success_rate"], display=False)
''')
md("f06a0007", r'''
On {glue:text}`ch06_why_episodes` Reach episodes both controllers succeed essentially always, yet the learned
policy changes its command from one step to the next {glue:text}`ch06_why_smooth_ratio:.1f` times as much (mean
squared change) and spends {glue:text}`ch06_why_energy_ratio:.1f` times the action energy. Nothing in its training
asked for smooth or economical commands: the reward counts only where the gripper ends up, and the entropy bonus of
SAC even rewards variety in the actions. On Push the rule scores {glue:text}`ch06_why_push_rule:.2f` and the policy
{glue:text}`ch06_why_push_sac:.2f` on these episodes; whether that difference is real, and what it says about what
the policy learned, is Build It (d)'s and the reference section's question.

### The metric bundle

Every number below comes from `rlcourse.contract.evaluate`, per episode, and is averaged over episodes. An action
$a_t \in [-1, 1]^4$ is what the simulator *received* at step $t$: after every wrapper of the environment spec
(scaling, filtering, noise) and clipped to the box. Positions are read from the simulator, never from an
observation that a noise wrapper may have perturbed.

| metric | definition | unit |
|---|---|---|
| success | goal reached at the last step (the task's `is_success`) | rate |
| time to success | first step $t$ at which the goal is reached | steps |
| settling time | first step from which the goal stays reached to the end; undefined if the last step fails | steps |
| overshoot | $\max\big(0, \max_t \langle x_t - g, u\rangle\big)$, $u = (g - x_0)/\lVert g - x_0\rVert$: how far the achieved position $x$ (gripper or block) went past the goal $g$ along the direction it started in | m |
| smoothness | $\frac{1}{T-1}\sum_{t\ge 2} \lVert a_t - a_{t-1}\rVert^2$, the mean squared change of the command (zero for a constant one) | action² |
| jerk | RMS of $\lVert p_{t+3} - 3p_{t+2} + 3p_{t+1} - p_t\rVert / \Delta t^3$ over the gripper path $p_0, \dots, p_T$ | m/s³ |
| peak $\lvert a\rvert$ | $\max_{t,i} \lvert a_{t,i}\rvert$ (one when some axis saturates) | action |
| energy | $\sum_t \lVert a_t\rVert^2$ | action² |
| path length | $\sum_t \lVert p_{t+1} - p_t\rVert$ of the gripper | m |

Smoothness is about the *command*, jerk about the *motion*: the third derivative of position, which is what shakes
a payload and wears a gearbox. The two are related but not the same, because the arm filters its commands through
its own dynamics, as the next section measures.

### Three questions

1. **Can it be controlled?** Do the learned policies still work when the command is rescaled or smoothed on its
   way to the arm, and what does each interface do to the metric bundle?
2. **Is it reliable?** Every reference number is pooled over three seeds with its interval.
3. **Is it stable?** In the control sense: does the closed loop settle, overshoot or oscillate, and would the
   success rate even notice?
''')

md("f06a0008", r'''
## HOW — the action interface, the metrics, and a controller derived by hand

### How an action becomes motion

At every step a Fetch task takes the first three action components, multiplies them by
{glue:text}`ch06_action_step` m, puts the gripper's target (a *mocap* body welded to the hand) where the gripper
is, and moves it by that amount; the arm's joints then follow the target for one control period
$\Delta t =$ {glue:text}`ch06_dt` s. So an action is a *displacement command*, at most
{glue:text}`ch06_action_step` m per step and axis, and the fastest commanded speed is
{glue:text}`ch06_vmax:.2f` m/s. (The fourth component drives the fingers.)

The arm does not quite reach its target within one period. The cell below measures the fraction $\beta$ of the
commanded displacement that the gripper actually travels, for commands of several sizes.
''')
code("f06a0009", r'''
env = make("FetchReach-v4")
DT, STEP = float(env.unwrapped.dt), controllers.ACTION_STEP
beta_rows = []
for size in (0.05, 0.2, 0.5, 1.0):
    env.reset(seed=0)
    for _ in range(3):  # let the arm come to rest
        env.step(np.zeros(4, dtype=np.float32))
    moved = []
    for _ in range(3):
        before = gripper_position(env)
        env.step(np.array([size, 0, 0, 0], dtype=np.float32))
        moved.append((gripper_position(env) - before)[0] / (size * STEP))
    beta_rows.append({"command": size, "beta, step 1": moved[0], "beta, step 2": moved[1], "beta, step 3": moved[2]})
table(beta_rows, digits=3)
betas = np.array([[r[f"beta, step {i}"] for i in (1, 2, 3)] for r in beta_rows])
assert betas.std(axis=0).max() < 0.01    # the same fraction for every command size: the arm is linear here
assert 0.5 < betas.mean() < 0.8          # and it covers well under the full commanded move
BETA = float(betas.mean())
glue("ch06_action_step", STEP, display=False)
glue("ch06_dt", DT, display=False)
glue("ch06_vmax", STEP / DT, display=False)
glue("ch06_beta", BETA, display=False)
''')
md("f06a0010", r'''
The arm covers a fraction $\beta \approx$ {glue:text}`ch06_beta:.2f` of each commanded move, the same for a small
and a full command (the check fails if it is not): a linear plant with a lag. Keep that number; it decides where a
proportional controller becomes unstable.

### The interface: scaling and filtering the command

Two wrappers sit between the policy and the task. **Scaling** sends $a' = \mathrm{clip}(s\,a)$: $s < 1$ slows every
move, $s > 1$ speeds it up until the box clips it. The **low-pass filter** sends the exponential moving average

$$
a'_t = \alpha\, a_t + (1-\alpha)\, a'_{t-1}, \qquad a'_0 = 0 \text{ before the first step},
$$

which unrolls to $a'_t = \sum_{j \ge 0} \alpha (1-\alpha)^j a_{t-j}$: weights that sum to one, so a constant command
passes unchanged in the long run, while a sudden change is spread over several steps. Two consequences follow
directly. A unit step of the command is delivered as $1 - (1-\alpha)^t$ after $t$ steps. And the filter *delays*:
the weights' mean age is

$$
\sum_{j \ge 0} j\, \alpha (1-\alpha)^j = \frac{1-\alpha}{\alpha} \text{ steps},
$$

so $\alpha = 0.2$ answers four steps late on average. A feedback controller acting on stale commands overshoots:
the reference section will see it. With $\alpha = 1$ the filter must be the identity.

### Build It (a): the interface, checked on what the simulator receives
''')
code("f06a0011", r'''
def delivered(wrapper, actions, seed=0):
    """The actions the simulator received for a sequence of commands, through one interface wrapper."""
    e = make(EnvSpec("FetchReach-v4").with_wrappers(wrapper))
    e.reset(seed=seed)
    out = []
    for a in actions:
        e.step(np.asarray(a, dtype=np.float32))
        out.append(e.get_wrapper_attr("delivered_action").copy())
    e.close()
    return np.array(out, dtype=np.float64)

commands = np.random.default_rng(0).uniform(-1.5, 1.5, size=(30, 4)).astype(np.float32)
boxed = np.clip(commands, -1, 1)
assert np.array_equal(delivered("action_filter:alpha=1", commands), boxed)   # alpha = 1: the identity
assert np.array_equal(delivered("action_scale:scale=1", commands), boxed)    # scale 1: the identity
assert np.allclose(delivered("action_scale:scale=2", commands), np.clip(2 * boxed, -1, 1))
step_cmd = np.tile([1.0, 0, 0, 0], (12, 1))
t = np.arange(1, 13)
fig, ax = plt.subplots(figsize=(7, 3))
for alpha in (0.1, 0.2, 0.3, 0.5, 0.7, 1.0):
    got = delivered(f"action_filter:alpha={alpha}", step_cmd)[:, 0]
    assert np.allclose(got, 1 - (1 - alpha) ** t, atol=1e-6)  # the step response derived above
    ax.plot(t, got, marker="o", ms=3, label=f"α = {alpha}")
ax.set_xlabel("step"); ax.set_ylabel("delivered x command"); ax.legend(ncol=3, fontsize="small")
ax.set_title("a unit step of the command through the low-pass filter (measured on the wrapper)")
fig.tight_layout(); plt.show()
''')
md("f06a0012", r'''
### Build It (b): the metrics on paths with known answers

A metric is only as good as its check. Each function the evaluation loop uses is tried on a path whose answer we
know by hand: a cubic $p_t = c\,t^3$ has third difference $6c$ at every step; a path that runs past its goal and
comes back has as overshoot exactly the distance it went past; a sideways miss has none.
''')
code("f06a0013", r'''
steps = np.arange(12.0)[:, None]
c = np.array([[0.002, -0.001, 0.0]])
assert path_jerk(steps * c, DT) < 1e-6 and path_jerk(steps**2 * c, DT) < 1e-3  # constant velocity, acceleration
assert np.isclose(path_jerk(steps**3 * c, DT), 6 * np.linalg.norm(c) / DT**3)
goal = np.array([0.2, 0.0, 0.0])
assert np.isclose(overshoot(np.array([[0, 0, 0], [0.1, 0, 0], [0.24, 0, 0], [0.2, 0, 0]]), goal), 0.04)
assert overshoot(np.array([[0, 0, 0], [0.2, 0.1, 0]]), goal) == 0.0
assert settling_time([False, True, False, True, True]) == 4 and settling_time([True, False]) is None

# the loop measures what the simulator received, not what the policy asked for
push_x = FunctionPolicy(lambda obs: np.array([0.8, 0.0, 0.0, 0.0]))
plain = evaluate(push_x, "FetchReach-v4", n_episodes=1)[0]
half = evaluate(push_x, EnvSpec("FetchReach-v4").with_wrappers("action_scale:scale=0.5"), n_episodes=1)[0]
assert np.isclose(plain["peak_action"], 0.8) and np.isclose(half["peak_action"], 0.4)
assert np.isclose(half["action_energy"], plain["action_energy"] / 4)
print("all metric checks pass")
''')
md("f06a0014", r'''
The last lines matter most. A loop that recorded the policy's output before the wrappers would report the same peak
action whatever the scale; this one reports half the peak and a quarter of the energy at half the scale, as it
must (`tests/test_evaluate.py` checks the same for the filter and fails if the wrappers are bypassed).

### Build It (c): a proportional rule and its closed loop

The simplest controller for Reach commands a move proportional to the error $e_t = g - p_t$:
$a_t = \mathrm{clip}(k\, e_t)$ with a gain $k$ in actions per metre (`controllers.ProportionalReach`). Away from
the clip, the gripper moves by $\beta \cdot s \cdot k\, e_t$ with $s =$ {glue:text}`ch06_action_step` m, so

$$
e_{t+1} = (1 - \beta s k)\, e_t = r\, e_t .
$$

Everything follows from $r$. For $0 < r < 1$ the error shrinks geometrically without changing sign; $r = 0$ is the
*dead-beat* gain $k = 1/(\beta s)$, which removes the error in one step; for $-1 < r < 0$ the error changes sign
every step, overshooting but still converging; for $r \le -1$, that is $k \ge 2/(\beta s)$, it grows. With an arm
that followed its target exactly ($\beta = 1$) the dead-beat gain would be {glue:text}`ch06_k_db_ideal:.0f` and the
loop would go unstable at {glue:text}`ch06_k_u_ideal:.0f`; with the measured $\beta$ the two move to
{glue:text}`ch06_k_db:.0f` and {glue:text}`ch06_k_u:.0f`. Far from the goal the clip dominates instead: the command
saturates at one unit, the gripper moves at its top speed, and no gain can make it faster.

The sweep below runs the rule at gains on both sides of those thresholds.
''')
code("f06a0015", r'''
K_DB, K_U = 1 / (BETA * STEP), 2 / (BETA * STEP)
glue("ch06_k_db_ideal", closed_loop(1 / STEP)["gain"], display=False)
glue("ch06_k_u_ideal", 2 / STEP, display=False)
glue("ch06_k_db", K_DB, display=False)
glue("ch06_k_u", K_U, display=False)
n = cfg["gain_episodes"]
gains = cfg["gains"]["FetchReach-v4"]
sweep_k = {k: summarize(evaluate(ProportionalReach(k), "FetchReach-v4", n_episodes=n)) for k in gains}
table([{"gain k": k, "model r (β measured)": 1 - BETA * STEP * k, **{m: a[m] for m in METRICS}}
       for k, a in sweep_k.items()], digits=3)
tts = {k: a["time_to_success_mean"] for k, a in sweep_k.items()}
jerk = {k: a["jerk_mean"] for k, a in sweep_k.items()}
over = {k: a["overshoot_mean"] for k, a in sweep_k.items()}
fast = min(tts.values())
floor_k = min(k for k in gains if tts[k] <= fast + 0.1)               # the first gain at the fastest arrival
assert all(tts[a] > tts[b] for a, b in zip(gains, gains[1:]) if b <= floor_k)  # until then: more gain, faster
assert all(tts[k] <= fast + 0.1 for k in gains if k >= floor_k)      # after it the clip sets the pace
assert max(over[k] for k in gains if k < 0.75 * K_DB) < 0.001        # well below dead-beat: no overshoot
assert over[max(gains)] > 0.005                                       # extra gain buys overshoot
pairs = list(zip(gains, gains[1:]))
jump = max(pairs, key=lambda p: jerk[p[1]] / jerk[p[0]])
assert jump[0] < K_U <= jump[1]                                      # jerk explodes where the model says
assert all(a["success_rate"] == 1.0 for k, a in sweep_k.items() if k >= 10)  # and success never notices
glue("ch06_gain_episodes", n, display=False)
glue("ch06_jump_lo", jump[0], display=False)
glue("ch06_jump_hi", jump[1], display=False)
glue("ch06_jump_ratio", jerk[jump[1]] / jerk[jump[0]], display=False)
glue("ch06_over_max_cm", 100 * over[max(gains)], display=False)
glue("ch06_floor_k", floor_k, display=False)
glue("ch06_fast_tts", fast, display=False)
glue("ch06_kmax", max(gains), display=False)

fig, axes = plt.subplots(1, 3, figsize=(12, 3))
for ax, (name, vals, unit) in zip(axes, [("time to success", tts, "steps"), ("overshoot", over, "m"),
                                         ("jerk", jerk, "m/s³")]):
    ax.plot(gains, [vals[k] for k in gains], marker="o")
    for x, style in ((K_DB, "--"), (K_U, ":")):
        ax.axvline(x, color="k", lw=0.8, ls=style)
    ax.set_xlabel("gain k"); ax.set_title(f"{name} ({unit})")
axes[2].set_yscale("log")
fig.suptitle("ProportionalReach: dashed = dead-beat gain, dotted = instability, both from the measured β", y=1.02)
fig.tight_layout(); plt.show()
''')
md("f06a0016", r'''
Read the table with the model in mind ({glue:text}`ch06_gain_episodes` episodes per gain). More gain means a
faster arrival only until the command saturates: from $k =$ {glue:text}`ch06_floor_k` on, the time to success
stays at {glue:text}`ch06_fast_tts:.1f` steps, because the command is clipped for most of the way and the arm
already travels at its top speed. Well below the dead-beat gain there is no overshoot; around it overshoot
appears, and beyond it the extra gain buys nothing but overshoot (up to {glue:text}`ch06_over_max_cm:.1f` cm at
$k =$ {glue:text}`ch06_kmax`). Between $k =$
{glue:text}`ch06_jump_lo` and $k =$ {glue:text}`ch06_jump_hi`, around the predicted instability, the jerk jumps
{glue:text}`ch06_jump_ratio:.0f`-fold: close to the goal, where the command is no longer clipped, the loop now
amplifies its error and the gripper chatters around the goal. It chatters *inside* the success radius, so the
success rate stays at one throughout. An unstable controller with a perfect success rate is the plainest case for
measuring more than success.

### Build It (d): a rule for Push, and what a plan is

Driving the gripper at the goal cannot solve Push: the gripper has to get *behind* the block first, on the side
away from the goal, and then push through it. `controllers.ProportionalPush` does exactly that in two phases,
every move proportional: approach the point a few centimetres behind the block (above the block's height until it
is there, so the fingers never sweep across it), descend, then push towards the place the gripper will be when
the block sits on the goal. For contrast, a rule *without* the plan drives the gripper to the block and then
straight at the goal, which is the natural first attempt.
''')
code("f06a0017", r'''
def no_plan(obs, k=10.0):
    """Go to the block; once touching it, drive at the goal."""
    o = obs["observation"]
    grip, block = o[:3], o[3:6]
    target = block if np.linalg.norm(block - grip) > 0.05 else obs["desired_goal"]
    return np.append(np.clip(k * (target - grip), -1, 1), 0.0)

n = cfg["gain_episodes"]
push_k = {k: summarize(evaluate(ProportionalPush(k), "FetchPush-v4", n_episodes=n)) for k in cfg["gains"]["FetchPush-v4"]}
naive = summarize(evaluate(FunctionPolicy(no_plan), "FetchPush-v4", n_episodes=n))
table([{"rule": f"two-phase, k = {k}", "success": a["success_rate"], "95% Wilson": a["success_ci95"],
        **{m: a[m] for m in METRICS[1:]}} for k, a in push_k.items()]
      + [{"rule": "no plan, k = 10", "success": naive["success_rate"], "95% Wilson": naive["success_ci95"],
          **{m: naive[m] for m in METRICS[1:]}}], digits=3)
best_k = max(push_k, key=lambda k: push_k[k]["success_rate"])
assert push_k[best_k]["success_ci95"][0] > naive["success_ci95"][1]  # the plan is worth more than any gain
assert push_k[max(push_k)]["success_rate"] > push_k[min(push_k)]["success_rate"]
glue("ch06_push_best_k", best_k, display=False)
glue("ch06_push_best", push_k[best_k]["success_rate"], display=False)
glue("ch06_push_naive", naive["success_rate"], display=False)
glue("ch06_push_low_k", push_k[min(push_k)]["success_rate"], display=False)
glue("ch06_push_low_k_gain", min(push_k), display=False)
glue("ch06_push_rule_settle", push_k[best_k]["settling_time_mean"], display=False)
glue("ch06_push_rule_tts", push_k[best_k]["time_to_success_mean"], display=False)
''')
md("f06a0018", r'''
The two-phase rule reaches {glue:text}`ch06_push_best:.2f` at $k =$ {glue:text}`ch06_push_best_k`; without the plan
the same kind of control reaches {glue:text}`ch06_push_naive:.2f`, and the intervals do not overlap. Gain matters
here for a different reason than on Reach: at $k =$ {glue:text}`ch06_push_low_k_gain` the rule is too slow to get
round the block and push it home within 50 steps ({glue:text}`ch06_push_low_k:.2f`). Notice too that the rule's
settling time ({glue:text}`ch06_push_rule_settle:.1f` steps) lies well after its time to success
({glue:text}`ch06_push_rule_tts:.1f`): it pushes the block *through* the goal, which slides on, and has to fetch it
back. Its overshoot column says the same.

### Planning versus control

Compare a learned policy with a rule on the same task and the difference in success,

$$
\Delta = \mathrm{SR}_{\text{learned}} - \mathrm{SR}_{\text{rule}},
$$

splits what learning contributed. Where a plain feedback rule already succeeds, $\Delta \approx 0$: the task needed
*control*, and the rule has it. Where the rule fails, the learner found something the rule lacks, a *plan*: a
sequence of sub-goals such as "first get behind the block". The learned policies' own evaluations (100 episodes per
seed, three seeds, from `checkpoints/`) against the rules on the same episode seeds, with Newcombe's interval for a
difference of two rates:
''')
code("f06a0019", r'''
n = cfg["rule_episodes"]
pv_rows, pv = [], {}
for env in TASKS:
    docs = [runs.read_json(ckpt / f"fastsac_her_{env}_seed{s}" / "eval.json", "eval") for s in (0, 1, 2)]
    first = {d["seeds"][0] for d in docs}
    assert len(first) == 1 and all(d["n_episodes"] == n for d in docs)  # the same episodes as the rules below
    sac = report.pooled_strata(docs)["all"]
    candidates = [(f"proportional, k = {cfg['rule_gain'][env]}" if env == "FetchReach-v4" else
                   f"two-phase, k = {cfg['rule_gain'][env]}", rule[env])]
    if env == "FetchPush-v4":
        candidates.append(("no plan, k = 10", FunctionPolicy(no_plan)))
    for name, r in candidates:
        a = summarize(evaluate(r, env, n_episodes=n, seed=docs[0]["seeds"][0]))
        d = planning_vs_control(sac, a)
        pv[(env, name)] = d
        pv_rows.append({"task": env, "rule": name, "rule success": a["success_rate"],
                        "SAC+HER (3 seeds pooled)": sac["rate"], "Δ": d["gap"], "Δ 95% interval": d["gap_ci95"]})
table(pv_rows, digits=3)
reach_gap = pv[("FetchReach-v4", f"proportional, k = {cfg['rule_gain']['FetchReach-v4']}")]
push_gap = pv[("FetchPush-v4", f"two-phase, k = {cfg['rule_gain']['FetchPush-v4']}")]
naive_gap = pv[("FetchPush-v4", "no plan, k = 10")]
assert reach_gap["gap_ci95"][0] < 0.02 and reach_gap["gap_ci95"][1] < 0.05  # Reach: nothing for learning to add
assert naive_gap["gap_ci95"][0] > 0.5                                       # against no plan: a large gap
assert push_gap["gap_ci95"][1] < naive_gap["gap_ci95"][0]                   # the plan closes most of it
glue("ch06_pv_reach", reach_gap["gap"], display=False)
glue("ch06_pv_push", push_gap["gap"], display=False)
glue("ch06_pv_push_ci", f"[{push_gap['gap_ci95'][0]:.2f}, {push_gap['gap_ci95'][1]:.2f}]", display=False)
glue("ch06_pv_naive", naive_gap["gap"], display=False)
glue("ch06_pv_naive_lo", naive_gap["gap_ci95"][0], display=False)
''')
md("f06a0020", r'''
On Reach the gap is {glue:text}`ch06_pv_reach:.2f`: control only. On Push it depends on which rule learning is
compared with. Against the rule without a plan the gap is {glue:text}`ch06_pv_naive:.2f` (lower bound
{glue:text}`ch06_pv_naive_lo:.2f`), and one would conclude that Push is a planning problem, as the origin of this
course did from a similar rule. Against the two-phase rule it shrinks to {glue:text}`ch06_pv_push:.2f`
({glue:text}`ch06_pv_push_ci`). Both readings are right: the plan is most of what the policy learned, and it fits
in a dozen lines once someone knows it. The decomposition measures what a *particular* rule lacks, so a rule used
as a baseline should be the best one can write, not the first.

### The bridge to stable-baselines3

Nothing here is specific to the course's own SAC. The interface wrappers are ordinary `gymnasium.Wrapper`s that
`rlcourse.envs.spec.make` stacks from a spec such as `FetchPush-v4` + `action_filter:alpha=0.3`, and
`evaluate` accepts anything with a `predict(observation, deterministic)` method, which a stable-baselines3 model
has. From the command line, `rlcourse eval checkpoints/<run> --spec '<spec JSON>' --out <file>` evaluates any
committed run through any interface, and `rlcourse sweep <spec.yaml>` runs a whole grid of such evaluations (or
trainings) on a process pool or a Ray cluster (see the setup page).
''')

md("f06a0021", r'''
## WHAT — Run It: a small interface sweep

The reference results below come from a sweep: chapter 4's three policies per task, twelve interfaces, 100
episodes each. Here is the same machinery on a smaller grid: seed 0 only, five interfaces, a few episodes each. The
sweep runner expands the grid into evaluation jobs, runs them in separate processes, skips any that already
finished, and writes a summary.
''')
code("f06a0022", r'''
ri = cfg["run_it"]
spec = {"name": "ch06_run_it", "out": str(paths.runs_dir(profile) / "sweeps" / "ch06_run_it"),
        "grid": {"env": TASKS, "interface": ri["interfaces"]},
        "evaluate": {"run": str(ckpt / ("fastsac_her_{env}_seed" + str(ri["seed"]))),
                     "spec": {"id": "{env}", "wrappers": ["{interface}"]}, "episodes": ri["episodes"]}}
summary = sweep.run_sweep(spec, jobs=ri["jobs"], progress=None)
assert summary["counts"]["failed"] == 0 and len(summary["jobs"]) == len(TASKS) * len(ri["interfaces"])
rows = []
for job in summary["jobs"]:
    agg = runs.read_json(sweep.job_path(job), "eval")["aggregate"]
    rows.append({**job["points"][0], "status": job["status"], **{m: agg[m] for m in METRICS}})
table(rows, digits=3)
''')
md("f06a0023", r'''
Read a row as a controller's data sheet. A status `reused` means an earlier run of the notebook had already
written that evaluation under the same protocol; delete `runs/` to start over.

## WHAT — the reference results

`sweeps/ch06_interface.yaml` evaluates chapter 4's SAC+HER policies, three seeds per task, through six scales and
six filter settings, on {glue:text}`ch06_ref_episodes` deterministic episodes each. Its summary and its
evaluations are committed under `checkpoints/sweeps/ch06_interface/`; the full profile runs it (reusing what is
there). Success is pooled over the seeds with a Wilson interval; every other metric is the mean over seeds of the
per-seed means, with a t interval over the three seeds.
''')
code("f06a0024", r'''
ref = cfg["reference"]
ref_spec = sweep.load_spec(paths.project_root() / ref["sweep"])
if profile == "full":
    sweep.run_sweep(ref_spec, jobs=1)
ref_summary = runs.read_json(paths.project_root() / ref_spec["out"] / "summary.json", "sweep")
assert ref_summary["counts"]["failed"] == 0 and ref_summary["git"]["dirty"] is False
docs = {}
for job in ref_summary["jobs"]:
    point = job["points"][0]
    docs.setdefault((point["env"], point["interface"]), {})[point["seed"]] = runs.read_json(sweep.job_path(job), "eval")
SEEDS = sorted(next(iter(docs.values())))
assert len(SEEDS) >= 3 and all(sorted(v) == SEEDS for v in docs.values())
for env in TASKS:  # two ways of writing the identity must give the same episodes, bit for bit
    for s in SEEDS:
        assert docs[(env, "action_scale:scale=1")][s]["episodes"] == docs[(env, "action_filter:alpha=1")][s]["episodes"]

def setting(interface):
    name, value = interface.split(":")[1].split("=")
    return name, float(value)

def cell(env, interface):
    """Pooled success and the per-seed means of every other metric, with intervals."""
    per_seed = [docs[(env, interface)][s] for s in SEEDS]
    out = {"success": report.pooled_strata(per_seed)["all"]}
    for m in METRICS[1:]:
        vals = [d["aggregate"][m] for d in per_seed if d["aggregate"].get(m) is not None]
        out[m] = (vals, t_interval(vals, bounds=metric_bounds(m)) if len(vals) == len(per_seed) else None)
    return out

cells = {key: cell(*key) for key in docs}
shown = ["time_to_success_mean", "overshoot_mean", "smoothness_mean", "jerk_mean", "peak_action_mean"]
for env in TASKS:
    rows = []
    for (e, interface), c in cells.items():
        if e != env:
            continue
        name, value = setting(interface)
        row = {"interface": f"{name} = {value:g}", "success": c["success"]["rate"],
               "95% Wilson": [c["success"]["lo"], c["success"]["hi"]]}
        for m in shown:
            vals, ti = c[m]
            row[m.removesuffix("_mean")] = (format_interval(ti[0], ti[1], ti[2], n=len(vals), values=vals)
                                            if ti else "n/a")
        rows.append(row)
    print(env)
    table(rows, digits=3)
scales = sorted(v for n_, v in map(setting, {i for _, i in docs}) if n_ == "scale")
for env in TASKS:  # the peak delivered action follows the scale: the loop measures after the wrapper
    for s in scales:
        peak = cells[(env, f"action_scale:scale={s:g}")]["peak_action_mean"][1][2]
        assert peak <= min(1.0, s) + 1e-9, (env, s, peak)
glue("ch06_ref_episodes", ref_summary["jobs"][0]["n_episodes"], display=False)
''')
code("f06a0025", r'''
fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
for row, kind in enumerate(("scale", "alpha")):
    for env, color in zip(TASKS, ("C0", "C3")):
        keys = sorted((setting(i)[1], i) for e, i in docs if e == env and setting(i)[0] == kind)
        xs = [x for x, _ in keys]
        succ = [cells[(env, i)]["success"] for _, i in keys]
        axes[row, 0].errorbar(xs, [p["rate"] for p in succ], color=color, marker="o", capsize=3, label=env,
                              yerr=[[p["rate"] - p["lo"] for p in succ], [p["hi"] - p["rate"] for p in succ]])
        for col, m in ((1, "jerk_mean"), (2, "overshoot_mean")):
            tis = [cells[(env, i)][m][1] for _, i in keys]
            axes[row, col].errorbar(xs, [t[0] for t in tis], color=color, marker="o", capsize=3, label=env,
                                    yerr=[[t[0] - t[1] for t in tis], [t[2] - t[0] for t in tis]])
    for col, title in enumerate(("success (pooled, 95% Wilson)", "gripper jerk, m/s³ (95% t, 3 seeds)",
                                 "overshoot, m (95% t, 3 seeds)")):
        axes[row, col].set_title(title, fontsize="medium")
        axes[row, col].set_xlabel("scale s" if kind == "scale" else "filter α")
    axes[row, 1].set_yscale("log")
axes[0, 0].legend(fontsize="small")
fig.tight_layout(); report.save_figure(fig, "ch06_interface", profile); plt.show()
''')
md("f06a0026", r'''
### Reading the sweep

**Scaling.** Shrinking the command slows every move by the same factor, so everything that depends on speed falls
together: jerk, peak action, energy. Success survives on Reach, where there is time to spare, and suffers on Push,
where a slower arm runs out of steps before the block is home. Scaling up is not symmetric: the policy's commands
already saturate much of the time, and doubling a saturated command changes nothing, while doubling the small
corrections near the goal makes them overshoot. The peak delivered action tracks the scale exactly (checked): this
is what the origin's measurement, made before its own wrappers, could not see.

**Filtering.** The filter removes high-frequency changes, so jerk and smoothness fall as $\alpha$ falls; its delay
of $(1-\alpha)/\alpha$ steps makes the closed loop overshoot, which the overshoot column shows growing on Reach.

### Does a filter halve the jerk for at most a small loss of success?

For each filter setting the question has two parts, each with an interval: the jerk ratio filtered/unfiltered
(per seed, then a t interval over the seeds) at most {glue:text}`ch06_jerk_target:.1f`, and a success cost
(Newcombe's interval for the drop, pooled episodes) of at most {glue:text}`ch06_cost_target_points:.0f` points. A
setting *qualifies* when both point estimates meet the targets, and is *established* when both intervals do.
''')
code("f06a0027", r'''
JR, COST = ref["jerk_ratio"], ref["success_cost"]
glue("ch06_jerk_target", JR, display=False)
glue("ch06_cost_target_points", 100 * COST, display=False)
verdict_rows, verdict = [], {}
for env in TASKS:
    base = docs[(env, "action_filter:alpha=1")]
    for (e, interface) in docs:
        name, alpha = setting(interface)
        if e != env or name != "alpha" or alpha == 1:
            continue
        ratios = [docs[(env, interface)][s]["aggregate"]["jerk_mean"] / base[s]["aggregate"]["jerk_mean"] for s in SEEDS]
        mean, lo, hi = t_interval(ratios, bounds=(0.0, float("inf")))
        drop = report.success_drop(cells[(env, "action_filter:alpha=1")]["success"], cells[(env, interface)]["success"])
        qualifies = mean <= JR and drop["drop"] <= COST
        established = hi <= JR and drop["drop_ci95"][1] <= COST
        verdict[(env, alpha)] = (qualifies, established, mean, drop)
        verdict_rows.append({"task": env, "α": alpha, "jerk ratio": format_interval(mean, lo, hi, n=len(SEEDS), values=ratios),
                             "success cost": drop["drop"], "cost 95% interval": drop["drop_ci95"],
                             "qualifies": qualifies, "established": established})
table(verdict_rows, digits=3)

def answer(env):
    q = sorted(a for (e, a), v in verdict.items() if e == env and v[0])
    est = sorted(a for (e, a), v in verdict.items() if e == env and v[1])
    if est:
        return f"yes: α = {', '.join(f'{a:g}' for a in est)} meets both targets even at the ends of the intervals"
    if q:
        return (f"probably: α = {', '.join(f'{a:g}' for a in q)} meets both targets on the point estimates, "
                "but the intervals do not exclude missing them")
    return "no: no filter setting meets both targets"

for env in TASKS:
    glue(f"ch06_answer_{env.split('-')[0][5:].lower()}", answer(env), display=False)
    print(env, "->", answer(env))
''')
md("f06a0028", r'''
The answer, per task, computed by the cell above from the committed sweep:

- **Reach:** {glue:text}`ch06_answer_reach`.
- **Push:** {glue:text}`ch06_answer_push`.

Read the table for why. Halving the jerk takes a filter with a delay of a few steps. On Reach that delay costs
time and overshoot but hardly any success, because the goal is still reached well within the episode. On Push the
same delay acts on a task that needs most of its 50 steps, and the cost shows up in success.
''')
code("f06a0029", r'''
gif_paths = {env: paths.figures_dir() / f"ch06_{env.split('-')[0][5:].lower()}.gif" for env in TASKS}
if profile == "full":
    from rlcourse.analysis.media import save_gif

    for env in TASKS:
        print("wrote", save_gif(learned[env], env, gif_paths[env], seeds=cfg["gif_seeds"], size=200,
                                beside=[(rule[env], env)]))
assert all(p.is_file() for p in gif_paths.values())
''', tags=["remove-cell"])
md("f06a0030", r'''
```{figure} ../figures/ch06_push.gif
:name: ch06-push-gif
:width: 420px

Push, the same two episodes side by side: chapter 4's SAC+HER policy (left) and the two-phase rule (right).
Rendered by the full profile (`rlcourse.analysis.media.save_gif` with `beside`).
```

```{figure} ../figures/ch06_reach.gif
:name: ch06-reach-gif
:width: 420px

Reach: the learned policy (left) and the proportional rule (right) on the same two episodes.
```

## What can go wrong

| symptom | likely cause | what to check |
|---|---|---|
| peak action or energy do not change with the scale | metrics recorded on the policy's output, before the interface wrappers | the delivered action (`delivered_action`), as in Build It (b) |
| a filtered policy overshoots and hunts | the filter's delay, $(1-\alpha)/\alpha$ steps, inside a feedback loop | overshoot and settling time, not only success |
| a controller chatters around the goal at perfect success | a gain past the instability $2/(\beta s)$; the chatter stays inside the success radius | jerk against gain (Build It (c)) |
| the linear model's thresholds are off by a third | it assumes the arm reaches its target each step | measure $\beta$ |
| "learning adds a plan" on a task a dozen-line rule solves | the baseline rule was the first one written, not the best | planning vs control against more than one rule |
| a scaled-down policy fails on Push but not on Reach | the episode is too short for the slower arm | time to success against the 50-step limit |

## Exercises

1. **(Derive) A filter inside a proportional loop.** Put `action_filter:alpha=a` between `ProportionalReach(k)` and
   the arm. Write the closed loop as a two-dimensional linear recursion in the error and the filter's state, find
   the largest gain that does not overshoot for a given $\alpha$, and check your prediction against measured
   overshoot.
2. **(Measure) The jerk–success frontier.** Combine scale and filter on Push (seed 0) over a small grid, evaluate
   each combination, and draw success against jerk. Which combinations are not dominated by another one?
3. **(Extend) A rate limiter.** Write a policy wrapper that limits how much each action component may change per
   step, $\lvert a_t - a_{t-1}\rvert \le \rho$, and compare it with the low-pass filter at equal jerk. Which costs
   less success, and why?

The solutions are in `solutions/ch06.py`, one function per exercise, which `tests/test_solutions_ch06.py` runs with
small settings. Open them after trying.

:::{admonition} Solution to exercise 1
:class: dropdown
With filter state $f_t$ (the delivered command) and error $e_t$, one step is
$f_{t+1} = \alpha k e_t + (1-\alpha) f_t$ and $e_{t+1} = e_t - \beta s f_{t+1}$. The matrix of this recursion has eigenvalues that are real exactly when
its discriminant is non-negative; complex eigenvalues mean an oscillating, overshooting response. `exercise_1`
computes the largest non-overshooting gain from the discriminant, evaluates the rule with the filter just below and
well above it, and checks that the overshoot appears where the algebra says.
```{literalinclude} ../solutions/ch06.py
:pyobject: exercise_1
```
:::

:::{admonition} Solution to exercise 2
:class: dropdown
`exercise_2` evaluates every combination through the one evaluation loop and keeps the Pareto set: a combination
is dominated when another has at least its success and at most its jerk, and is better in one of the two.
```{literalinclude} ../solutions/ch06.py
:pyobject: exercise_2
```
:::

:::{admonition} Solution to exercise 3
:class: dropdown
`RateLimited` clips the change of each component. Unlike the filter it has no delay for small changes, only for
large ones, so at equal jerk it leaves fine corrections near the goal untouched; `exercise_3` compares both on the
same episodes.
```{literalinclude} ../solutions/ch06.py
:pyobject: RateLimited
```
:::
''')

nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
      "language_info": {"name": "python"},
      "rlcourse": {"prose_numbers": {"25": "the Fetch tasks' control rate (25 steps per second; Δt is glued)",
                                     "50": "the Fetch episode length (the TimeLimit of every task)",
                                     "100": "the reference sweep's episodes per evaluation (glued where stated)",
                                     }}},
      "nbformat": 4, "nbformat_minor": 5}
open(sys.argv[1], "w").write(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
