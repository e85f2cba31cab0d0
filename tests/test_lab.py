"""`make lab`: the server starts exactly as the Makefile starts it, asks for the token, and serves the chapters."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAMP = ".venv/.installed"
CHAPTER = "notebooks/ch00_proof_of_life.ipynb"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _isolated_env(tmp_path: Path) -> dict[str, str]:
    """The server reads and writes config, runtime files and workspaces here, never in the user's home."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "JUPYTER_TOKEN", "JUPYTER_PLATFORM_DIRS"}}
    for name, sub in [("HOME", "home"), ("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                      ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")]:
        (tmp_path / sub).mkdir()
        env[name] = str(tmp_path / sub)
    return env


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the whole group (make and the server), SIGKILL if it lingers; returns when the group is gone."""
    for sig, grace in [(signal.SIGTERM, 20), (signal.SIGKILL, 10)]:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.poll()
            if proc.returncode is not None and not _group_alive(proc.pid):
                return
            time.sleep(0.2)


def test_make_lab_serves_the_chapters_behind_the_token(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    lab_args = (f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0 "
                f"--IdentityProvider.token={token}")
    if os.geteuid() == 0:  # containers and CI sandboxes; the server refuses root without it
        lab_args += " --allow-root"
    # `make lab` itself; -o keeps make from reinstalling .venv should a requirements file be newer than the stamp.
    cmd = ["make", "--no-print-directory", "-C", str(ROOT), "-o", STAMP, "lab", f"LAB_ARGS={lab_args}"]
    log_path = tmp_path / "lab.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=_isolated_env(tmp_path), start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"make lab exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                if _get(f"{base}/api")[0] == 200:  # /api answers without a token once the server is up
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"make lab did not answer within 60 s:\n{log_path.read_text()}")
            time.sleep(0.5)

        status, page = _get(f"{base}/lab?token={token}")
        assert status == 200 and "JupyterLab" in page, (status, page[:500])

        status, _ = _get(f"{base}/api/contents/notebooks")
        assert status in (401, 403), f"contents served without the token (HTTP {status})"
        status, _ = _get(f"{base}/api/contents/notebooks?token=wrong")
        assert status in (401, 403), f"contents served with a wrong token (HTTP {status})"

        status, body = _get(f"{base}/api/contents/{CHAPTER}?token={token}")
        assert status == 200, (status, body[:500])
        model = json.loads(body)
        assert model["type"] == "notebook" and model["path"] == CHAPTER
        assert model["content"]["cells"], "the chapter came back without cells"
    finally:
        _stop(proc)
    assert not _group_alive(proc.pid), "make lab left processes running"
    log = log_path.read_text()
    assert "only accepts one value" not in log, log


def test_make_lab_quotes_a_root_with_spaces_and_quotes(tmp_path):
    """A checkout under a path with a space (or a quote) reaches the server as one root_dir argument."""
    odd = tmp_path / "my course" / "it's here"
    odd.mkdir(parents=True)
    shutil.copy(ROOT / "Makefile", odd / "Makefile")
    out = subprocess.run(["make", "--no-print-directory", "-n", "-C", str(odd), "-o", STAMP, "lab",
                          "LAB_ARGS=--no-browser --port=8899"],
                         capture_output=True, text=True, check=True, env=_isolated_env(tmp_path)).stdout
    [line] = [ln for ln in out.splitlines() if "jupyter lab" in ln]
    argv = shlex.split(line)
    assert argv[:2] == [".venv/bin/jupyter", "lab"]
    assert argv[2:] == [f"--ServerApp.root_dir={odd}", "--no-browser", "--port=8899"], argv
