"""Helpers shared by the ROS backend's tests (imported by name; pytest puts this folder on sys.path)."""
from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

try:
    import rospy  # noqa: F401
    ROS_MISSING = None
except ImportError as exc:  # pragma: no cover - depends on the machine
    ROS_MISSING = (f"rospy is not importable ({exc}); run scripts/install_ros.sh to install "
                   "Debian's ROS 1 packages into this virtual environment")
    print(f"\n[ros tests skipped] {ROS_MISSING}", file=sys.stderr)

requires_ros = pytest.mark.skipif(ROS_MISSING is not None, reason=ROS_MISSING or "")

SHARED_MACHINE_STATE_TIMEOUT_S = 1.0
"""state_timeout for the tests of other behaviour than the state timeout itself. The default, 100 ms,
is right for a robot at 1 kHz on its own machine; on the shared 2-core test machine the Python
bridge at 500 Hz went silent for over 100 ms every 6 to 13 s at a load average of 9.5 (measured),
which would end those tests with a state timeout. test_ros_state_timeouts.py tests the default."""


@contextmanager
def running_bridge(master, *args: str, ready_timeout: float = 30.0) -> Iterator[subprocess.Popen]:
    """Run `python -m communicators.franka.ros.bridge_node` against `master` until the block ends."""
    from communicators.franka.ros.ros_master import ros_environment

    env = ros_environment(master.uri, ros_home=master.ros_home)
    env.setdefault("MUJOCO_GL", "egl")
    proc = subprocess.Popen(
        [sys.executable, "-m", "communicators.franka.ros.bridge_node", "--master-uri", master.uri, *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + ready_timeout
        lines = []
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            line = proc.stdout.readline() if ready else ""
            lines.append(line)
            if "bridge ready" in line:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("bridge node did not start:\n" + "".join(lines))
        # Keep reading its output so a full pipe can never block the bridge; tests may read
        # proc.output (lines) after the block, e.g. its "bridge stopped: reflexes=..." summary.
        proc.output = lines
        drain = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                                 daemon=True)
        drain.start()
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if "drain" in locals():
            drain.join(timeout=5)
        proc.stdout.close()


def wait_for(condition, timeout: float, interval: float = 0.02) -> bool:
    """Poll `condition()` until true or `timeout` s pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return bool(condition())
        time.sleep(interval)
    return True


def ros_env_for(master) -> dict:
    """os.environ entries a helper process needs to join `master`'s graph."""
    from communicators.franka.ros.ros_master import ros_environment

    return {k: v for k, v in ros_environment(master.uri, ros_home=master.ros_home).items()
            if k.startswith("ROS_")}


os.environ.setdefault("MUJOCO_GL", "egl")
