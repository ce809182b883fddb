"""Names franka_ros_interface uses on the ROS graph, in one place for the communicator and the bridge.

Taken from franka_ros_interface (https://github.com/justagist/franka_ros_interface):
`franka_interface/arm.py`, `robot_enable.py`, `motion_controller_interface.cpp` and
`config/basic_controllers.yaml`. Everything lives under one namespace, "/franka_ros_interface" by
default.

    topic (under the namespace)                          type                             rate
    custom_franka_state_controller/joint_states         sensor_msgs/JointState           1 kHz
    custom_franka_state_controller/robot_state          franka_core_msgs/RobotState      1 kHz
    custom_franka_state_controller/tip_state            franka_core_msgs/EndPointState   1 kHz
    motion_controller/arm/joint_commands                franka_core_msgs/JointCommand    (in)
    motion_controller/arm/joint_command_timeout         std_msgs/Float64                 (in, latched)
    franka_control/error_recovery/goal                  franka_msgs/ErrorRecoveryActionGoal (in)
"""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_NAMESPACE = "/franka_ros_interface"
JOINT_NAMES = tuple(f"panda_joint{i}" for i in range(1, 8))
STATE_PUBLISH_RATE_HZ = 1000.0
"""custom_franka_state_controller's publish_rate in franka_ros_interface's basic_controllers.yaml."""
COMMAND_TIMEOUT_S = 0.2
"""franka_ros_interface's default command_timeout: after it, the arm holds its position."""

# RobotState.robot_mode values (franka_core_msgs/RobotState, libfranka's RobotMode).
ROBOT_MODE_OTHER = 0
ROBOT_MODE_IDLE = 1
ROBOT_MODE_MOVE = 2
ROBOT_MODE_GUIDING = 3
ROBOT_MODE_REFLEX = 4
ROBOT_MODE_USER_STOPPED = 5
ROBOT_MODE_AUTOMATIC_ERROR_RECOVERY = 6


@dataclass(frozen=True)
class FrankaTopics:
    """Full topic names for one franka_ros_interface namespace.

    Args:
        namespace: e.g. "/franka_ros_interface"; must start with "/".
    """

    namespace: str = DEFAULT_NAMESPACE

    def __post_init__(self) -> None:
        if not self.namespace.startswith("/") or self.namespace.endswith("/") or " " in self.namespace:
            raise ValueError(
                f"ROS namespace {self.namespace!r} must start with '/', not end with '/' and have "
                f"no spaces, e.g. {DEFAULT_NAMESPACE!r}"
            )

    @property
    def joint_states(self) -> str:
        return f"{self.namespace}/custom_franka_state_controller/joint_states"

    @property
    def robot_state(self) -> str:
        return f"{self.namespace}/custom_franka_state_controller/robot_state"

    @property
    def tip_state(self) -> str:
        return f"{self.namespace}/custom_franka_state_controller/tip_state"

    @property
    def joint_commands(self) -> str:
        return f"{self.namespace}/motion_controller/arm/joint_commands"

    @property
    def joint_command_timeout(self) -> str:
        return f"{self.namespace}/motion_controller/arm/joint_command_timeout"

    @property
    def error_recovery_goal(self) -> str:
        return f"{self.namespace}/franka_control/error_recovery/goal"
