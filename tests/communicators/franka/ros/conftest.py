"""Fixtures for the ROS backend's tests: a real rosmaster on loopback (see ros_test_helpers.py).

These tests need Debian's ROS 1 packages (scripts/install_ros.sh; `make test` runs it). Without
rospy they are skipped, and the reason is printed.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from ros_test_helpers import ROS_MISSING


@pytest.fixture
def ros_master() -> Iterator["LocalRosMaster"]:  # noqa: F821
    """A fresh `rosmaster --core` on 127.0.0.1 on a free port, stopped after the test."""
    if ROS_MISSING:
        pytest.skip(ROS_MISSING)
    from communicators.franka.ros.ros_master import LocalRosMaster

    with LocalRosMaster() as master:
        # rospy nodes started by the test (communicator children, helpers) log under the
        # master's temporary ROS_HOME, which is removed with it, instead of ~/.ros.
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("ROS_HOME", master.ros_home)
            mp.setenv("ROS_LOG_DIR", f"{master.ros_home}/log")
            yield master


