"""A real local Ray cluster for the archive tests: a head node and a second node joined to it, each with one CPU
(the machine has two), started with `ray start --block` in sessions of their own and stopped by signalling
exactly those process groups afterwards (never `ray stop`, which would stop every Ray on the machine)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO / "src"),
        "RAY_USAGE_STATS_ENABLED": "0",
        "GLOG_minloglevel": "2",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(RAY), "start", "--block", "--num-cpus", "1", "--node-ip-address", "127.0.0.1", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(),
            start_new_session=True,  # its own process group: the teardown signals that group and nothing else
        )
    deadline = time.monotonic() + 120
    while b"Ray runtime started" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(f"ray start failed:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait_s in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:  # the raylet and friends get a moment to follow their parent
            time.sleep(1)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        return


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """The head's address (127.0.0.1:PORT) of a running two-node cluster."""
    if not RAY.exists():
        pytest.skip(f"Ray is not installed in this environment ({RAY} missing): pip install 'deepshield[scale]'")
    tmp = Path(tempfile.mkdtemp(prefix="dsray-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    port = free_port()
    head = _start(
        [
            "--head",
            "--port",
            str(port),
            "--temp-dir",
            str(tmp),
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
        ],
        tmp / "head.log",
    )
    nodes = [head]
    try:
        nodes.append(_start(["--address", f"127.0.0.1:{port}"], tmp / "node2.log"))
        yield f"127.0.0.1:{port}"
    finally:
        for proc in reversed(nodes):
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def deepshield(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deepshield.cli.main", *args],
        env={**_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
