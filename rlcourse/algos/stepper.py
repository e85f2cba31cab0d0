"""Stepping a run's environments, in the learner's process or in a worker process beside it.

An off-policy learner on a CPU spends its time in two places: simulating (MuJoCo, about a millisecond per Fetch
step) and updating networks. In one process they take turns. :class:`WorkerEnvs` moves the environments to a
second process, so that the learner's gradient steps for one batch of transitions run while the worker simulates
the next batch: on a 2-core machine the two costs overlap instead of adding up.

Both classes have the same three calls: :meth:`reset` (seeded), :meth:`send` (one action per environment) and
:meth:`recv`, which returns a :class:`Step`: for each environment the observation after the action, its reward,
whether the episode ended and succeeded, and, where it ended, the first observation of the next episode (the
environment is reset without a seed, as a vectorised environment does). A goal curriculum lives with the
environments; its state comes back with each step so the learner's run folder records the difficulty.
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlcourse.core.errors import RLCourseError


@dataclass
class Step:
    """The outcome of one action in each environment."""

    obs: list[dict[str, np.ndarray]]  # the observation the action led to (the final one where an episode ended)
    rewards: list[float]
    done: list[bool]  # the episode ended (terminated or truncated)
    success: list[float]  # info["is_success"] (0 where absent)
    next_obs: list[dict[str, np.ndarray] | None]  # after an episode ended: the first observation of the next one
    curriculum: dict[str, Any] | None = None  # the curriculum's state_dict after the step, if the spec has one


def _step_all(envs: list[Any], actions: np.ndarray, curriculum: Any) -> Step:
    out = Step([], [], [], [], [], None)
    for env, action in zip(envs, actions, strict=True):
        o, r, terminated, truncated, info = env.step(action)
        done = bool(terminated or truncated)
        out.obs.append(o)
        out.rewards.append(float(r))
        out.done.append(done)
        out.success.append(float(info.get("is_success", 0.0)))
        out.next_obs.append(env.reset()[0] if done else None)
    if curriculum is not None:
        out.curriculum = curriculum.state_dict()
    return out


class InlineEnvs:
    """The environments in the learner's own process: ``send`` only stores the actions; ``recv`` steps. A
    curriculum state shared by the constructors is the run's own, so nothing needs to come back with a step."""

    def __init__(self, env_fns: list[Any]):
        self.envs = [fn() for fn in env_fns]
        self._actions: np.ndarray | None = None

    def reset(self, seeds: list[int]) -> list[dict[str, np.ndarray]]:
        return [e.reset(seed=s)[0] for e, s in zip(self.envs, seeds, strict=True)]

    def send(self, actions: np.ndarray) -> None:
        self._actions = actions

    def recv(self) -> Step:
        assert self._actions is not None, "recv() before send()"
        actions, self._actions = self._actions, None
        return _step_all(self.envs, actions, None)

    def close(self) -> None:
        for e in self.envs:
            e.close()


def _worker(conn: Any, spec_json: dict[str, Any], n_envs: int, curriculum_json: dict[str, Any] | None) -> None:
    """The worker process: build the environments from the spec, then answer reset/step/close messages."""
    try:
        from rlcourse.envs.spec import make
        from rlcourse.envs.wrappers import CurriculumState

        curriculum = None
        if curriculum_json is not None:
            curriculum = CurriculumState()
            curriculum.load_state_dict(curriculum_json)
        envs = [make(spec_json, curriculum_state=curriculum) for _ in range(n_envs)]
        conn.send(("ready", None))
    except Exception as exc:  # reported to the learner, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    try:
        while True:
            command, payload = conn.recv()
            if command == "reset":
                conn.send(("ok", [e.reset(seed=s)[0] for e, s in zip(envs, payload, strict=True)]))
            elif command == "step":
                conn.send(("ok", _step_all(envs, payload, curriculum)))
            else:
                break
    except (EOFError, KeyboardInterrupt):
        pass
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        for e in envs:
            e.close()


class WorkerEnvs:
    """The environments in a worker process (started with ``spawn``: no copy of the learner's torch state).

    ``spec_json`` is the run's environment spec; ``curriculum`` the run's :class:`CurriculumState` (or None): the
    worker starts from its state and sends it back after every step, and :meth:`recv` copies it into this one."""

    def __init__(self, spec_json: dict[str, Any], n_envs: int, curriculum: Any = None):
        ctx = mp.get_context("spawn")
        self.curriculum = curriculum
        self.conn, child = ctx.Pipe()
        state = curriculum.state_dict() if curriculum is not None else None
        self.process = ctx.Process(target=_worker, args=(child, spec_json, n_envs, state), daemon=True)
        self.process.start()
        child.close()
        self._answer()

    def _answer(self) -> Any:
        try:
            kind, payload = self.conn.recv()
        except EOFError:
            raise RLCourseError("the environment worker process died") from None
        if kind == "error":
            raise RLCourseError(f"the environment worker failed: {payload}")
        return payload

    def reset(self, seeds: list[int]) -> list[dict[str, np.ndarray]]:
        self.conn.send(("reset", list(seeds)))
        return self._answer()

    def send(self, actions: np.ndarray) -> None:
        self.conn.send(("step", np.asarray(actions)))

    def recv(self) -> Step:
        step = self._answer()
        if self.curriculum is not None and step.curriculum is not None:
            self.curriculum.load_state_dict(step.curriculum)
        return step

    def close(self) -> None:
        try:
            self.conn.send(("close", None))
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()
