"""LocalRosMaster: a real rosmaster on loopback that leaves nothing behind."""
from __future__ import annotations

import os

import pytest

from ros_test_helpers import requires_ros

pytestmark = [requires_ros, pytest.mark.timeout(60)]


def test_master_answers_while_running_and_is_gone_after_stop():
    from communicators.franka.ros.ros_master import LocalRosMaster, master_is_up

    master = LocalRosMaster().start()
    ros_home = master.ros_home
    try:
        assert master_is_up(master.uri)
        assert master.uri.startswith("http://127.0.0.1:")
    finally:
        master.stop()
    assert not master_is_up(master.uri)
    assert not os.path.exists(ros_home)
    master.stop()  # idempotent


def test_master_is_up_is_false_where_nothing_listens():
    from communicators.franka.ros.ros_master import free_port, master_is_up

    assert not master_is_up(f"http://127.0.0.1:{free_port()}", timeout=0.2)
