"""Fixtures for the ROS 2 backend's tests: a fresh DDS domain per test, on loopback only.

These tests need the ROS 2 wheels (scripts/install_ros2.sh; `make test` runs it). Without them
they are skipped, and the reason is printed.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from ros2_test_helpers import ROS2_MISSING, fastdds_segments, remove_dead_fastdds_files

_domains = itertools.count()


@pytest.fixture
def ros2_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Sets, for every process the test starts, a ROS_DOMAIN_ID of its own (1..100, so nodes a
    previous test left behind can never be seen), discovery on this host only, and log files
    under tmp_path. Yields the domain id.

    Fast DDS shared memory that no live process uses (left by a process killed outright, here or
    in an earlier run) is removed before and after the test; afterwards none made during the
    test may still be in use (a process left running).
    """
    if ROS2_MISSING:
        pytest.skip(ROS2_MISSING)
    domain = next(_domains) % 100 + 1
    for name, value in {"ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                        "ROS_LOG_DIR": str(tmp_path / "ros_log")}.items():
        monkeypatch.setenv(name, value)
    remove_dead_fastdds_files()
    before = set(fastdds_segments())
    yield domain
    new = {name: alive for name, alive in fastdds_segments().items() if name not in before}
    remove_dead_fastdds_files()
    assert not any(new.values()), f"Fast DDS shared memory still in use after the test: {new}"
