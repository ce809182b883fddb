"""Names and QoS on the ROS 2 graph of a Franka under franka_ros2, for the communicator and the bridge.

franka_ros2 (https://github.com/frankaemika/franka_ros2) runs the arm under ros2_control:

    topic                                  type                          who
    /joint_states                          sensor_msgs/msg/JointState    joint_state_broadcaster
                                                                         (via joint_state_publisher)
    /joint_velocity_controller/commands    std_msgs/msg/Float64MultiArray  in: a ros2_controllers
                                                                         JointGroupVelocityController

JointState lists the joints by name, in an order of its own (and may add the gripper's
fr3_finger_joint1/2), so the communicator maps them by name. Float64MultiArray has no names: its
`data` follows the controller's `joints` parameter, which must list joints 1..7 in order (the
controller yaml in README.md does). The controller keeps its last command for ever: the only
watchdog is ours.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_JOINT_STATES_TOPIC = "/joint_states"
DEFAULT_CONTROLLER_NAME = "joint_velocity_controller"
DEFAULT_COMMAND_TOPIC = f"/{DEFAULT_CONTROLLER_NAME}/commands"
JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"
COMMAND_TYPE = "std_msgs/msg/Float64MultiArray"
ARM_IDS = ("fr3", "panda")
"""franka_ros2's arm_id values; joint names are f"{arm_id}_joint{i}"."""

_TOPIC = re.compile(r"^(/|~/)?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")
RELIABILITIES = ("reliable", "best_effort")
DURABILITIES = ("volatile", "transient_local")


def arm_joint_names(arm_id: str) -> tuple[str, ...]:
    """The 7 arm joint names for a franka_ros2 arm_id, joints 1..7 ("fr3" -> "fr3_joint1", ...)."""
    return tuple(f"{arm_id}_joint{i}" for i in range(1, 8))


def check_topic_name(field: str, name: str) -> str:
    """Returns `name` if it is a valid ROS 2 topic name, else raises ValueError naming `field`."""
    if not isinstance(name, str) or not _TOPIC.match(name):
        raise ValueError(
            f"{field}={name!r} is not a valid ROS 2 topic name: use letters, digits and '_' in "
            "'/'-separated tokens that do not start with a digit, e.g. "
            f"{DEFAULT_JOINT_STATES_TOPIC!r} or {DEFAULT_COMMAND_TOPIC!r}")
    return name


@dataclass(frozen=True)
class TopicQoS:
    """The QoS of one subscription or publisher (rclpy's QoSProfile, without importing rclpy).

    Attributes:
        reliability: "reliable" or "best_effort". A best-effort subscriber matches every
            publisher; a best-effort publisher does not reach a reliable subscriber.
        depth: history depth (keep last `depth` messages), >= 1.
        durability: "volatile" or "transient_local".
    """

    reliability: str = "reliable"
    depth: int = 1
    durability: str = "volatile"

    def __post_init__(self) -> None:
        if self.reliability not in RELIABILITIES:
            raise ValueError(f"TopicQoS.reliability={self.reliability!r}: expected one of {RELIABILITIES}")
        if self.durability not in DURABILITIES:
            raise ValueError(f"TopicQoS.durability={self.durability!r}: expected one of {DURABILITIES}")
        if not isinstance(self.depth, int) or isinstance(self.depth, bool) or self.depth < 1:
            raise ValueError(f"TopicQoS.depth={self.depth!r}: expected an int >= 1")

    def to_rclpy(self):  # noqa: ANN201 - an rclpy.qos.QoSProfile; call where rclpy is imported
        """The rclpy QoSProfile (imports rclpy: child processes only)."""
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=self.depth,
            reliability=(ReliabilityPolicy.RELIABLE if self.reliability == "reliable"
                         else ReliabilityPolicy.BEST_EFFORT),
            durability=(DurabilityPolicy.VOLATILE if self.durability == "volatile"
                        else DurabilityPolicy.TRANSIENT_LOCAL))


STATE_QOS = TopicQoS(reliability="best_effort", depth=1)
"""Default for joint states: the newest state or none; a late one is worth nothing."""
COMMAND_QOS = TopicQoS(reliability="reliable", depth=1)
"""Default for commands: reliable, as ros2_control's controllers subscribe (SystemDefaultsQoS)."""


def joint_order(received: tuple[str, ...], wanted: tuple[str, ...] | None, topic: str) -> list[int]:
    """Indices of arm joints 1..7 in a JointState's `name` list.

    Args:
        received: the message's joint names, in its order.
        wanted: the 7 arm joint names, joints 1..7; None accepts one name ending in "_joint{i}"
            per joint (fr3_joint1 or panda_joint1, ...), finger joints left out.
        topic: the topic the names came from, for the error message.

    Raises:
        ValueError: a joint is missing or ambiguous; the message names it and what arrived.
    """
    if wanted is not None:
        missing = [n for n in wanted if n not in received]
        if missing:
            raise ValueError(
                f"joint names {missing} (FrankaROS2Config.joint_names) are not in the JointState on "
                f"{topic!r}, which names {list(received)}; fix joint_names (None matches "
                "fr3_joint1..7 or panda_joint1..7)")
        return [received.index(n) for n in wanted]
    order = []
    for i in range(1, 8):
        hits = [k for k, n in enumerate(received) if n.endswith(f"_joint{i}") and "finger" not in n]
        if len(hits) != 1:
            raise ValueError(
                f"the JointState on {topic!r} names {list(received)}: expected exactly one arm "
                f"joint ending in '_joint{i}' (like {arm_joint_names(ARM_IDS[0])[i - 1]!r}), found "
                f"{len(hits)}; set FrankaROS2Config.joint_names to the 7 arm joints in order")
        order.append(hits[0])
    return order
