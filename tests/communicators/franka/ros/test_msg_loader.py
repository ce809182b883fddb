"""franka_core_msgs / franka_msgs classes generated at run time from communicators/franka/ros/msg."""
from __future__ import annotations

import io
import re

import pytest

from ros_test_helpers import requires_ros

pytestmark = [requires_ros, pytest.mark.timeout(60)]

# md5 sums of the classes catkin generates from franka_ros_interface's franka_core_msgs (with
# franka_ros's 36-field franka_msgs/Errors), as found in generated code of that package.
PUBLISHED_MD5 = {
    "JointCommand": "766f72e801d6180a86db23dbf2c2a56f",
    "RobotState": "5b1c24f59317c607d71ccadfc0800957",
    "EndPointState": "157e46b2d97e94a67549f0fd8090f80c",
    # Every ActionGoal with an empty goal has this md5 (e.g. nav_msgs/GetMapActionGoal).
    "ErrorRecoveryActionGoal": "4b30be6cd12b9e72826df56b481f40e0",
}


@pytest.fixture(scope="module")
def msgs():
    from communicators.franka.ros.msg_loader import load_franka_msgs

    return load_franka_msgs(prefer_installed=False)


@pytest.mark.parametrize("name", sorted(PUBLISHED_MD5))
def test_generated_class_has_the_original_type_and_md5(msgs, name):
    cls = getattr(msgs, name)
    assert cls.__name__ == name
    assert cls._md5sum == PUBLISHED_MD5[name]
    assert cls._type.split("/")[1] == name


def _roundtrip(msg):
    buf = io.BytesIO()
    msg.serialize(buf)
    return type(msg)().deserialize(buf.getvalue())


def test_robot_state_round_trips_through_serialization(msgs):
    state = msgs.RobotState(robot_mode=msgs.RobotState.ROBOT_MODE_REFLEX, time=12.5)
    state.O_Jac_EE = [float(i) for i in range(42)]
    state.current_errors.joint_velocity_violation = True
    state.header.frame_id = "panda_link0"
    back = _roundtrip(state)
    assert back.robot_mode == 4 and back.time == 12.5
    assert list(back.O_Jac_EE) == [float(i) for i in range(42)]
    assert back.current_errors.joint_velocity_violation is True
    assert back.last_motion_errors.joint_velocity_violation is False
    assert back.header.frame_id == "panda_link0"


def test_joint_command_round_trips_in_velocity_mode(msgs):
    cmd = msgs.JointCommand(mode=msgs.JointCommand.VELOCITY_MODE,
                            names=[f"panda_joint{i}" for i in range(1, 8)],
                            velocity=[0.1 * i for i in range(7)])
    back = _roundtrip(cmd)
    assert back.mode == 2 and back.names[6] == "panda_joint7"
    assert back.velocity == pytest.approx([0.1 * i for i in range(7)])


def test_end_point_state_carries_its_wrench(msgs):
    tip = msgs.EndPointState(O_T_EE=[float(i) for i in range(16)])
    tip.O_F_ext_hat_K.wrench.force.z = -3.5
    back = _roundtrip(tip)
    assert back.O_T_EE[12] == 12.0 and back.O_F_ext_hat_K.wrench.force.z == -3.5


def test_a_publisher_with_a_newer_errors_message_is_decoded_with_its_own_definition(msgs):
    from communicators.franka.ros.msg_loader import class_from_connection_header, generate_classes, read_definitions

    # franka_ros later added fields to Errors, which changes RobotState's md5.
    defs = read_definitions(("franka_msgs/Errors", "franka_core_msgs/RobotState"))
    defs["franka_msgs/Errors"] += "bool base_acceleration_initialization_timeout\n"
    newer = generate_classes(defs)["franka_core_msgs/RobotState"]
    assert newer._md5sum != msgs.RobotState._md5sum
    sent = newer(robot_mode=4)
    sent.current_errors.base_acceleration_initialization_timeout = True
    buf = io.BytesIO()
    sent.serialize(buf)
    cls = class_from_connection_header(newer._type, newer._md5sum, newer._full_text)
    back = cls().deserialize(buf.getvalue())
    assert back.robot_mode == 4
    assert back.current_errors.base_acceleration_initialization_timeout is True


def test_connection_header_with_a_wrong_md5_is_refused(msgs):
    from communicators.franka.ros.msg_loader import class_from_connection_header

    with pytest.raises(ValueError, match=re.escape("differs from the publisher's 0123")):
        class_from_connection_header(msgs.RobotState._type, "0123", msgs.RobotState._full_text)


def test_an_unparsable_definition_names_its_type():
    from communicators.franka.ros.msg_loader import generate_classes

    with pytest.raises(ValueError, match=re.escape("franka_core_msgs/Broken")):
        generate_classes({"franka_core_msgs/Broken": "float64[ broken\n"})


def test_classes_generated_in_parallel_threads_all_work():
    # genpy's generator has module-level state; msg_loader serialises generation (see the lock).
    import threading

    from communicators.franka.ros.msg_loader import generate_classes, read_definitions

    defs = read_definitions()
    results: list = []

    def generate():
        results.append(generate_classes(defs))

    threads = [threading.Thread(target=generate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 4
    for classes in results:
        state = classes["franka_core_msgs/RobotState"](robot_mode=2)
        assert _roundtrip(state).robot_mode == 2
        tip = classes["franka_core_msgs/EndPointState"](O_T_EE=[1.0] * 16)
        assert _roundtrip(tip).O_T_EE[0] == 1.0
