"""The ROS 2 backend's configuration, joint-name mapping and package loading, without a DDS graph."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest
from ros2_test_helpers import RUNTIME, requires_ros2

from communicators.franka.ros2 import topics as T
from communicators.franka.ros2.franka_ros2_config import FrankaROS2Config
from tests.support.processes import REPO_ROOT

FR3 = T.arm_joint_names("fr3")


@pytest.mark.parametrize("field, value", [("joint_states_topic", "/joint states"),
                                          ("command_topic", "/joint_velocity_controller/commands/"),
                                          ("joint_states_topic", "/1joint_states"),
                                          ("command_topic", "")])
def test_ros2_config_rejects_a_bad_topic_name_naming_the_field_and_value(field, value):
    with pytest.raises(ValueError, match=re.escape(f"FrankaROS2Config.{field}={value!r} is not a valid ROS 2 topic name")):
        FrankaROS2Config(**{field: value})


def test_ros2_config_accepts_relative_and_namespaced_topics():
    config = FrankaROS2Config(joint_states_topic="franka/joint_states", command_topic="~/commands")
    assert config.joint_states_topic == "franka/joint_states"


@pytest.mark.parametrize("names", [FR3[:6], FR3[:6] + (FR3[0],), ("a", "b", "c", "d", "e", "f", "")])
def test_ros2_config_rejects_joint_names_that_are_not_seven_distinct_names(names):
    with pytest.raises(ValueError, match=re.escape("FrankaROS2Config.joint_names=")):
        FrankaROS2Config(joint_names=names)


def test_ros2_config_rejects_bad_qos_domain_and_timeouts():
    with pytest.raises(ValueError, match=re.escape("TopicQoS.reliability='sometimes'")):
        T.TopicQoS(reliability="sometimes")
    with pytest.raises(ValueError, match=re.escape("TopicQoS.depth=0")):
        T.TopicQoS(depth=0)
    with pytest.raises(ValueError, match=re.escape("FrankaROS2Config.domain_id=300")):
        FrankaROS2Config(domain_id=300)
    with pytest.raises(ValueError, match=re.escape("FrankaROS2Config.state_timeout=0")):
        FrankaROS2Config(state_timeout=0)
    with pytest.raises(ValueError, match="actuator_timeout=0.01 s is shorter than two"):
        FrankaROS2Config(actuator_timeout=0.01)


def test_ros2_defaults_are_best_effort_state_and_reliable_commands_with_100_ms_watchdogs():
    config = FrankaROS2Config()
    assert (config.joint_states_topic, config.command_topic) == ("/joint_states", "/joint_velocity_controller/commands")
    assert (config.state_qos.reliability, config.state_qos.depth) == ("best_effort", 1)
    assert config.command_qos.reliability == "reliable"
    assert config.actuator_timeout == config.state_timeout == 0.1


@pytest.mark.parametrize("arm_id", ["fr3", "panda"])
def test_ros2_joint_order_maps_joints_by_name_whatever_their_order_and_skips_fingers(arm_id):
    names = T.arm_joint_names(arm_id)
    received = (f"{arm_id}_finger_joint1", names[6], names[2], names[0], names[1],
                names[5], names[4], names[3], f"{arm_id}_finger_joint2")
    order = T.joint_order(received, None, "/joint_states")
    assert [received[k] for k in order] == list(names)
    assert T.joint_order(received, names, "/joint_states") == order


def test_ros2_joint_order_error_names_the_missing_joint_and_what_arrived():
    received = T.arm_joint_names("panda")
    with pytest.raises(ValueError) as err:
        T.joint_order(received, FR3, "/joint_states")
    assert "['fr3_joint1', 'fr3_joint2'" in str(err.value) and "panda_joint1" in str(err.value)
    assert "'/joint_states'" in str(err.value)
    with pytest.raises(ValueError, match=re.escape("expected exactly one arm joint ending in '_joint3'")):
        T.joint_order(("a_joint1", "a_joint2", "a_joint4", "a_joint5", "a_joint6", "a_joint7"), None, "/js")


@requires_ros2
def test_ros2_communicator_refuses_fork_when_ros2_lives_in_a_separate_venv():
    from communicators.franka.ros2.franka_ros2_communicator import FrankaROS2Communicator

    if not RUNTIME.needs_exec:
        pytest.skip("ROS 2 is installed in this interpreter's venv: every start method works")
    with pytest.raises(ValueError, match=re.escape("start_method='fork': ROS 2 comes from")):
        FrankaROS2Communicator(start_method="fork")
    comm = FrankaROS2Communicator()
    try:
        assert comm.start_method == "spawn"
    finally:
        comm.close()


@requires_ros2
def test_ros2_packages_win_over_ros1s_same_named_ones_only_in_the_process_that_activates_them():
    # A process that already imported ROS 1's messages (as a test of the ROS 1 backend does)
    # activates ROS 2: from then on sensor_msgs is ROS 2's, and numpy stays the venv's own.
    code = textwrap.dedent("""
        import sys, numpy
        try:
            import sensor_msgs.msg
            before = sensor_msgs.msg.__file__
        except ImportError:
            before = "none"
        from communicators.franka.ros2.ros2_runtime import find_ros2_runtime
        runtime = find_ros2_runtime()
        runtime.reexec_if_needed()
        runtime.activate()
        import sensor_msgs.msg, numpy as np2
        from sensor_msgs.msg import JointState
        print(before)
        print(sensor_msgs.msg.__file__)
        print(JointState.__module__, np2 is numpy, numpy.__file__)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                         env={**RUNTIME.environment(), "PYTHONPATH": str(REPO_ROOT)}, timeout=120)
    assert out.returncode == 0, out.stderr
    before, after, third = out.stdout.strip().splitlines()[-3:]
    site = str(RUNTIME.site_packages) if RUNTIME.needs_exec else ""
    assert after.startswith(site) and after != before
    module, same_numpy, numpy_file = third.split()
    assert module == "sensor_msgs.msg._joint_state" and same_numpy == "True"
    assert not numpy_file.startswith(site) or not RUNTIME.needs_exec
