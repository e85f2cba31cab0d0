"""rlcourse.core.procs: the process pool shared by train_many and the sweep runner."""

import os
import time
from contextlib import closing

from rlcourse.core.procs import in_processes


def _square_or_fail(item, conn):
    if item < 0:
        raise SystemExit(3)
    conn.send(item * item)
    conn.close()


def _sleep(item, conn):
    conn.send(os.getpid()) if item == "quick" else None
    if item == "slow":
        with open(item_path(), "w") as fh:
            fh.write(str(os.getpid()))
        time.sleep(120)


def item_path():
    return os.environ["PROCS_TEST_PID_FILE"]


def test_every_item_runs_once_and_reports_its_exit_code_and_message():
    seen = sorted(in_processes([3, -1, 2], _square_or_fail, jobs=2))
    assert seen == [(-1, 3, None), (2, 0, 4), (3, 0, 9)]


def test_stopping_early_terminates_the_workers_still_running(tmp_path, monkeypatch):
    monkeypatch.setenv("PROCS_TEST_PID_FILE", str(tmp_path / "pid"))
    with closing(in_processes(["slow", "quick"], _sleep, jobs=2)) as done:
        for item, code, _ in done:
            assert item == "quick" and code == 0
            deadline = time.time() + 60
            while not (tmp_path / "pid").exists():
                assert time.time() < deadline
                time.sleep(0.1)
            break  # the slow worker is still sleeping
    pid = int((tmp_path / "pid").read_text())
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
