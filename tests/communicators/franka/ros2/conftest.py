"""Fixtures for the ROS 2 backend's tests: a fresh DDS domain per test, on loopback only.

These tests need the ROS 2 wheels (scripts/install_ros2.sh; `make test` runs it). Without them
they are skipped, and the reason is printed.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from ros2_test_helpers import ROS2_MISSING

_domains = itertools.count()


@pytest.fixture
def ros2_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Sets, for every process the test starts, a ROS_DOMAIN_ID of its own (1..100, so nodes a
    previous test left behind can never be seen), discovery on this host only, Fast DDS on UDP
    only (its shared-memory transport would leave files in /dev/shm when a process is killed),
    and log files under tmp_path. Yields the domain id."""
    if ROS2_MISSING:
        pytest.skip(ROS2_MISSING)
    domain = next(_domains) % 100 + 1
    for name, value in {"ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                        "FASTDDS_BUILTIN_TRANSPORTS": "UDPv4",
                        "ROS_LOG_DIR": str(tmp_path / "ros_log")}.items():
        monkeypatch.setenv(name, value)
    yield domain
