"""Environments: the headless GL backend, the Fetch registry, environment specs and the wrapper registry.

``make_env("FetchPush-v4")`` builds a bare task; :class:`~rlcourse.envs.spec.EnvSpec` describes a task plus
constructor arguments plus an ordered list of named wrappers, and is what runs record and evaluations accept.
"""

from rlcourse.envs.fetch import (
    check_env_id,
    configure_gl,
    fetch_env_ids,
    gl_backend,
    goal_distance,
    make_env,
    render_frame,
    gripper_position,
    require_rendering,
    save_png,
)

__all__ = ["check_env_id", "configure_gl", "fetch_env_ids", "gl_backend", "goal_distance", "gripper_position", "make_env",
           "render_frame", "require_rendering", "save_png"]
