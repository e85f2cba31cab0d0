"""The package's one process pool: functions run in spawned processes, a few at a time.

``train_many`` (several runs) and the sweep runner's local backend both need the same thing: start each task in its
own process (``spawn``: a fresh interpreter, so CUDA, MuJoCo and torch's threads start clean), never more than
``jobs`` at once, hear back from each one, and leave nothing behind: workers whose parent disappears exit on their
own, and a caller that stops early (an error, Ctrl-C, a notebook's stop button) terminates those still running.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any


def exit_with_parent(parent_pid: int, poll_s: float = 1.0) -> None:
    """Start a daemon thread that ends this process as soon as its parent is no longer ``parent_pid``."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _run(target: Callable[[Any, Any], None], item: Any, parent_pid: int, conn: Any) -> None:
    exit_with_parent(parent_pid)
    target(item, conn)


def in_processes(items: list[Any], target: Callable[[Any, Any], None], jobs: int,
                 name: Callable[[Any], str] = str) -> Iterator[tuple[Any, int, Any]]:
    """Call ``target(item, conn)`` for every item, each in a spawned process, ``jobs`` at a time, and yield
    ``(item, exit code, message)`` as each process ends; ``message`` is what the worker sent through ``conn``
    (None if nothing). ``target`` must be a module-level function (spawn pickles it by name).

    Use it inside ``contextlib.closing`` when the loop may stop early: closing the generator terminates the workers
    still running (an exception leaving the loop keeps the generator alive in its traceback otherwise)."""
    from multiprocessing import get_context
    from multiprocessing.connection import wait

    ctx = get_context("spawn")
    pending, running = list(items), {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                item = pending.pop(0)
                reader, writer = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_run, args=(target, item, os.getpid(), writer), name=name(item))
                proc.start()
                writer.close()  # the worker holds the only writing end
                running[proc] = (item, reader)
            wait([p.sentinel for p in running], timeout=1.0)
            for proc in [p for p in running if p.exitcode is not None]:
                item, reader = running.pop(proc)
                message = None
                try:
                    if reader.poll():
                        message = reader.recv()
                except (EOFError, OSError):
                    pass
                reader.close()
                yield item, proc.exitcode, message
    finally:
        for proc in running:
            proc.terminate()
        for proc in running:
            proc.join()
