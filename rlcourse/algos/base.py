"""The backend protocol and the registry of training backends.

A backend turns a validated :class:`~rlcourse.contract.config.TrainConfig` into a trained model, writing through a
:class:`~rlcourse.contract.writer.RunWriter`, and turns a finished run folder back into a policy. It validates its
own hyperparameters without building anything, so that bad input is refused before work starts. Adding an
algorithm (a pixel SAC in chapter 8) means writing one class and calling :func:`register`.
"""

from __future__ import annotations

from typing import Any, Protocol

from rlcourse.core.errors import RLCourseError
from rlcourse.contract.config import TrainConfig
from rlcourse.contract.runs import Run
from rlcourse.contract.writer import RunWriter


class Backend(Protocol):
    """What the training entry point needs from an algorithm."""

    name: str
    off_policy: bool

    def validate(self, cfg: TrainConfig) -> None:
        """Refuse bad hyperparameters in one line (:class:`RLCourseError`), building nothing."""

    def hyperparameters(self, cfg: TrainConfig) -> dict[str, Any]:
        """Every effective hyperparameter (defaults included), as JSON."""

    def policy_name(self, cfg: TrainConfig) -> str:
        """What meta.json records as the policy class."""

    def extra_columns(self, cfg: TrainConfig) -> list[str]:
        """Curve columns beyond :data:`rlcourse.contract.writer.CURVE_COLUMNS`."""

    def train(self, cfg: TrainConfig, writer: RunWriter) -> Run:
        """Train (resuming from ``writer.resume`` if set) and end with ``writer.finish``."""

    def load_policy(self, run: Run) -> Any:
        """The run's policy for the evaluation loop; model files are verified before they are deserialised."""


BACKENDS: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Add ``backend`` to the registry under ``backend.name``."""
    BACKENDS[backend.name] = backend
    return backend


def get_backend(name: str) -> Backend:
    """The backend called ``name``, or a one-line error listing the registered ones."""
    _load_builtin()
    if name not in BACKENDS:
        raise RLCourseError(f"unknown algorithm {name!r}; choose one of {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name]


def _load_builtin() -> None:
    """Import the backends that ship with the course (each registers itself on import)."""
    import rlcourse.algos.fastsac  # noqa: F401
    import rlcourse.algos.pixelsac  # noqa: F401
    import rlcourse.algos.sb3  # noqa: F401


def load_policy(run: Run) -> Any:
    """A finished run's policy, ready for :func:`rlcourse.contract.evaluate.evaluate`."""
    if run.meta["algo"] == "random":
        return "random"
    return get_backend(run.meta["algo"]).load_policy(run)


def load_model(run: Run, env: Any = None) -> Any:
    """A finished run's model object itself (an SB3 model, bound to ``env`` if given; a fastsac Agent), without
    its observation normaliser."""
    backend = get_backend(run.meta["algo"])
    return backend.load_model(run, env) if hasattr(backend, "load_model") else backend.load_policy(run)
