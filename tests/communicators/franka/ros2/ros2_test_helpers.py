"""Helpers shared by the ROS 2 backend's tests (imported by name; pytest puts this folder on sys.path).

Every ROS 2 process here is a real one on a real DDS graph: the MuJoCo bridge node, the
communicator's child, and `ros2_probe.py` processes that watch or disturb topics. The test process
never imports rclpy. The session already runs in a loopback-only network namespace (conftest.py);
the `ros2_graph` fixture adds a per-test ROS_DOMAIN_ID and LOCALHOST discovery.
"""
from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tests.support.processes import REPO_ROOT, SHM_DIR, wait_until

try:
    from communicators.franka.ros2.ros2_runtime import find_ros2_runtime

    RUNTIME = find_ros2_runtime()
    ROS2_MISSING = None
except ImportError as exc:  # pragma: no cover - depends on the machine
    RUNTIME = None
    ROS2_MISSING = f"ROS 2 is not installed ({exc})"
    print(f"\n[ros2 tests skipped] {ROS2_MISSING}", file=sys.stderr)

requires_ros2 = pytest.mark.skipif(ROS2_MISSING is not None, reason=ROS2_MISSING or "")
PROBE = Path(__file__).with_name("ros2_probe.py")


def _env() -> dict[str, str]:
    env = RUNTIME.environment()
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.setdefault("MUJOCO_GL", "egl")
    return env


class _Lines:
    """A process's stdout, read line by line in a thread so a full pipe never blocks it."""

    def __init__(self, proc: subprocess.Popen, ready: str, timeout: float) -> None:
        self.proc, self.lines = proc, []
        deadline = time.monotonic() + timeout
        while True:
            ok, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            line = proc.stdout.readline() if ok else ""
            self.lines.append(line)
            if ready in line:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{proc.args} did not print {ready!r} within {timeout} s:\n"
                                   + "".join(self.lines) + proc.stdout.read())
        self._thread = threading.Thread(target=lambda: self.lines.extend(iter(proc.stdout.readline, "")),
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._thread.join(timeout=5)
        self.proc.stdout.close()


@contextmanager
def running_bridge(*args: str, ready_timeout: float = 60.0) -> Iterator[subprocess.Popen]:
    """Runs `python -m communicators.franka.ros2.bridge_node ARGS` until the block ends.

    The process gets `.output`, its printed lines (e.g. "bridge stopped: faults=0 ..." at the end).
    """
    proc = subprocess.Popen([sys.executable, "-m", "communicators.franka.ros2.bridge_node", *args],
                            cwd=REPO_ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = _Lines(proc, "bridge ready", ready_timeout)
    proc.output = lines.lines
    try:
        yield proc
    finally:
        lines.stop()


class Probe:
    """A `ros2_probe.py` process; `samples()` gives what it echoed as (time, values (7,)) rows."""

    def __init__(self, mode: str, topic: str, ready_timeout: float = 60.0) -> None:
        proc = subprocess.Popen([sys.executable, str(PROBE), mode, topic], cwd=REPO_ROOT, env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._lines = _Lines(proc, "probe ready", ready_timeout)
        self._rows: list[list[float]] = []
        self._parsed = 0  # lines parsed so far: a 500 Hz topic prints thousands of lines

    def samples(self) -> tuple[np.ndarray, np.ndarray]:
        """(times (n,), values (n, 7)) of the lines echoed so far."""
        lines = self._lines.lines
        end = len(lines)
        for line in lines[self._parsed:end]:
            row = line.split()
            if line[:1].isdigit() and len(row) == 8:
                self._rows.append([float(v) for v in row])
        self._parsed = end
        data = np.array(self._rows, dtype=np.float64).reshape(-1, 8)
        return data[:, 0], data[:, 1:]

    def wait_for(self, condition, what: str, timeout: float = 30.0, sender=None) -> None:  # noqa: ANN001
        """Waits until `condition(times, values)` of what was echoed so far holds.

        `sender`, a communicator, is checked meanwhile: if it fails, its error is raised at once.
        """
        def holds() -> bool:
            if sender is not None:
                sender.raise_if_failed()
            return bool(condition(*self.samples()))

        assert wait_until(holds, timeout, 0.05), \
            f"the probe did not see {what} in {timeout} s; it printed: {self._lines.lines[-5:]}"

    def wait_for_samples(self, timeout: float = 30.0, sender=None) -> None:  # noqa: ANN001
        """Waits until something was echoed: discovery has matched it with the other side."""
        self.wait_for(lambda times, _: times.size > 0, "any message", timeout, sender)

    def stop(self) -> None:
        self._lines.stop()

    def __enter__(self) -> "Probe":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


LOADED_STATE_TIMEOUT = 1.0
"""state_timeout for tests that check something else: on this shared 2-core machine the bridge
is sometimes starved for more than the default 0.1 s (a real robot publishes from a real-time
loop). The tests of the state watchdog itself use the default."""


def communicator(**overrides):  # noqa: ANN201
    """A FrankaROS2Communicator (not started) on the test's graph; state_timeout 1 s unless given."""
    from communicators.franka.ros2.franka_ros2_communicator import FrankaROS2Communicator, FrankaROS2Config

    overrides.setdefault("state_timeout", LOADED_STATE_TIMEOUT)
    return FrankaROS2Communicator(FrankaROS2Config(**overrides))


class Running:
    """Starts a communicator, waits for its first state; closes it (and checks it ended) at the end."""

    def __init__(self, comm, timeout: float = 60.0) -> None:
        self.comm, self.timeout = comm, timeout

    def __enter__(self):  # noqa: ANN204
        self.comm.start()
        ok = wait_until(lambda: self.comm.sensor_buffer.num_writes > 0 or not self.comm.is_alive(),
                        self.timeout, 0.02)
        self.comm.raise_if_failed()
        assert ok and self.comm.sensor_buffer.num_writes > 0, "no state from the bridge"
        return self.comm

    def __exit__(self, *exc) -> None:
        self.comm.close()
        assert not self.comm.is_alive()


def drive(comm, dq_of_state, seconds: float, period: float = 0.02) -> np.ndarray:
    """Writes commands computed from the latest state for `seconds`; returns the states seen."""
    states = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        state, _, _ = comm.sensor_buffer.latest()
        states.append(state.copy())
        comm.actuator_buffer.write(np.asarray(dq_of_state(state), dtype=np.float64))
        comm.raise_if_failed()
        time.sleep(period)
    return np.array(states)


def _shm_files_in_use() -> set[str]:
    """Names of the /dev/shm files some live process maps or holds open."""
    used = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            with open(proc / "maps") as maps:
                used.update(line.rsplit("/", 1)[-1].strip() for line in maps if "/dev/shm/" in line)
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("/dev/shm/"):
                    used.add(target[len("/dev/shm/"):])
        except OSError:  # the process ended meanwhile
            continue
    return used


def fastdds_segments() -> dict[str, bool]:
    """Fast DDS's shared-memory files in /dev/shm (segments, ports, their locks and mutexes), by
    name, with whether a live process still maps or holds it.

    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST makes rmw_fastrtps add Fast DDS's shared-memory
    transport whatever else is configured. A process killed outright leaves its files behind,
    nothing in Fast DDS removes them, and a later participant that reuses a dead one's port
    can miss every message (seen here: a probe matched nothing for 30 s).
    """
    used = _shm_files_in_use()
    return {p.name: p.name in used for p in SHM_DIR.iterdir()
            if p.name.startswith(("fastdds_", "sem.fastdds_"))}


def remove_dead_fastdds_files() -> list[str]:
    """Removes the Fast DDS files no live process uses (what `fastdds shm clean` does); returns them."""
    dead = [name for name, alive in fastdds_segments().items() if not alive]
    for name in dead:
        (SHM_DIR / name).unlink(missing_ok=True)
    return dead


os.environ.setdefault("MUJOCO_GL", "egl")
