"""Chapter 0 — Proof of life: solutions to the exercises.

Each function runs one exercise with settings passed as parameters (the chapter's quick profile by default), so that
``tests/test_solutions_ch00.py`` can run it small and check what the solution text in the chapter claims.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from rlcourse import TrainConfig, train
from rlcourse.contract import runs
from rlcourse.core.errors import RLCourseError
from rlcourse.training.repro import repro_check

# The meta.json fields that describe *where and how* a run was made, not what it learned.
SETUP_FIELDS = ("algo", "env_id", "env_spec", "total_steps", "steps_done", "n_envs", "hyperparameters", "policy",
                "device", "versions", "hardware", "command")


def smoke_config(seed: int, out_dir: str | Path, total_steps: int = 4096, n_envs: int = 8,
                 ppo: dict[str, Any] | None = None, eval_episodes: int = 10) -> TrainConfig:
    """The chapter's smoke run (quick profile by default) with another seed."""
    return TrainConfig(algo="ppo", env_id="FetchReachDense-v4", seed=seed, total_steps=total_steps, n_envs=n_envs,
                       hyperparameters=ppo or {"n_steps": 64, "batch_size": 256, "n_epochs": 4},
                       run_id=f"ppo_smoke_FetchReachDense-v4_seed{seed}", out_dir=str(out_dir),
                       final_eval_episodes=eval_episodes, overwrite=True, tensorboard=False,
                       command="rlcourse run ch00 --profile quick")


def exercise_1(out_dir: str | Path, seeds: tuple[int, int] = (0, 7), total_steps: int = 4096, n_envs: int = 8,
               ppo: dict[str, Any] | None = None, eval_episodes: int = 10, repro_steps: int = 1024,
               repro_episodes: int = 5) -> dict[str, Any]:
    """Another seed: train the smoke run with two seeds and compare what they wrote; rerun the reproducibility check
    with the second seed."""
    a, b = (train(smoke_config(s, out_dir, total_steps, n_envs, ppo, eval_episodes)) for s in seeds)
    same = [k for k in SETUP_FIELDS if a.meta[k] == b.meta[k]]
    differ = sorted(k for k in a.meta if k not in ("created_utc", "wall_clock_s", "steps_per_s", "config")
                    and a.meta[k] != b.meta[k])
    eval_seeds_equal = [e["seed"] for e in a.eval["episodes"]] == [e["seed"] for e in b.eval["episodes"]]
    returns_equal = [e["return"] for e in a.eval["episodes"]] == [e["return"] for e in b.eval["episodes"]]
    repro = repro_check(TrainConfig(algo="ppo", env_id="FetchReachDense-v4", seed=seeds[1], total_steps=repro_steps,
                                    n_envs=2, hyperparameters={"n_steps": 128, "batch_size": 64, "n_epochs": 2}),
                        n_episodes=repro_episodes, atol=1e-6)
    return {"same": same, "differ": differ, "same_git_commit": a.meta["git"]["commit"] == b.meta["git"]["commit"],
            "model_sha256_equal": a.meta["model"]["sha256"] == b.meta["model"]["sha256"],
            "eval_seeds_equal": eval_seeds_equal, "eval_returns_equal": returns_equal,
            "repro_equal": repro["equal"], "repro_max_abs_diff": repro["max_abs_diff"]}


_RENDER = """
import json, sys, time
import numpy as np
from rlcourse.envs import make_env, require_rendering
backend = require_rendering()
env = make_env("FetchReach-v4", render_mode="rgb_array", width={w}, height={h})
env.reset(seed={seed})
frame = env.render()                      # the first frame pays for creating the GL context
t0 = time.perf_counter()
for _ in range({n}):
    env.render()
ms = 1000 * (time.perf_counter() - t0) / {n}
env.close()
np.save(sys.argv[1], frame)
print(json.dumps({{"backend": backend, "ms_per_frame": ms}}))
"""


def exercise_2(work_dir: str | Path, backends: tuple[str, ...] = ("egl", "osmesa"), width: int = 320,
               height: int = 320, seed: int = 0, n_frames: int = 20) -> dict[str, Any]:
    """Force a backend: render the same frame with each OpenGL backend, compare pixels and time per frame.

    MuJoCo reads ``MUJOCO_GL`` once, when it is first imported, so each backend gets its own interpreter; PyOpenGL
    reads ``PYOPENGL_PLATFORM`` the same way, and the two must name the same backend."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"frames": {}, "ms_per_frame": {}}
    for gl in backends:
        path = work_dir / f"frame_{gl}.npy"
        code = _RENDER.format(w=width, h=height, seed=seed, n=n_frames)
        proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                              env={**os.environ, "MUJOCO_GL": gl, "PYOPENGL_PLATFORM": gl}, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"rendering with MUJOCO_GL={gl} failed: {proc.stderr.strip()[-2000:]}")
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        assert report["backend"] == gl, report  # the variable was honoured, not replaced by a fallback
        out["frames"][gl] = np.load(path)
        out["ms_per_frame"][gl] = report["ms_per_frame"]
    first, *others = (out["frames"][gl] for gl in backends)
    out["differing_pixels"] = max((np.any(first != f, axis=2).mean() for f in others), default=0.0)
    out["max_channel_difference"] = max((int(np.abs(first.astype(int) - f).max()) for f in others), default=0)
    return out


def flip_byte(path: str | Path, offset: int | None = None) -> None:
    """Invert one byte of a file in place (the middle one by default)."""
    path = Path(path)
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def exercise_3(run_dir: str | Path, work_dir: str | Path) -> dict[str, Any]:
    """Break the contract on purpose: copy a run folder, flip one byte of its model, then load it from Python and
    evaluate it from the command line."""
    broken = Path(work_dir) / "broken_run"
    shutil.rmtree(broken, ignore_errors=True)
    shutil.copytree(run_dir, broken)
    meta = runs.read_json(broken / "meta.json", "meta")
    flip_byte(broken / meta["model"]["file"])
    eval_before = (broken / "eval.json").read_bytes()
    try:
        runs.load_run(broken)
        error = None
    except RLCourseError as exc:
        error = str(exc)
    proc = subprocess.run([sys.executable, "-m", "rlcourse", "eval", str(broken), "--n-episodes", "2"],
                          capture_output=True, text=True, check=False)
    return {"load_run_error": error, "cli_exit_code": proc.returncode, "cli_stderr": proc.stderr.strip(),
            "cli_stdout": proc.stdout.strip(), "eval_json_unchanged": (broken / "eval.json").read_bytes() == eval_before}


def exercise_4(out_dir: str | Path, n_envs_list: tuple[int, ...] = (1, 2, 4, 8), total_steps: int = 4096,
               rollout: int = 512, seed: int = 0) -> dict[int, float]:
    """Throughput: the smoke run with 1, 2, 4, 8 environments and the same total steps; steps/s from meta.json.

    ``n_steps × n_envs`` is kept at ``rollout`` so every run does the same number of gradient steps per sample."""
    steps_per_s = {}
    for n in n_envs_list:
        cfg = TrainConfig(algo="ppo", env_id="FetchReachDense-v4", seed=seed, total_steps=total_steps, n_envs=n,
                          hyperparameters={"n_steps": rollout // n, "batch_size": min(256, rollout), "n_epochs": 4},
                          run_id=f"ppo_smoke_envs{n}", out_dir=str(out_dir), final_eval_episodes=1, overwrite=True,
                          tensorboard=False)
        steps_per_s[n] = train(cfg).meta["steps_per_s"]
    return steps_per_s
