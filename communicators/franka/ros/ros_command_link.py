"""How joint velocity commands and error recovery reach franka_ros_interface.

Two interchangeable links, both used from inside the communicator's process after rospy.init_node:

- `ArmInterfaceCommandLink`: franka_ros_interface's own Python API
  (`ArmInterface.set_joint_velocities`, `RobotEnable.enable`), when a catkin workspace provides it.
- `RospyCommandLink`: the same JointCommand (VELOCITY_MODE) and ErrorRecoveryActionGoal messages,
  published with rospy on the same topics; works with the run-time generated message classes.
"""
from __future__ import annotations

import numpy as np

from communicators.franka.ros import topics as T
from communicators.franka.ros.msg_loader import load_franka_msgs


class RospyCommandLink:
    """Publishes JointCommand / ErrorRecoveryActionGoal with rospy.

    Args:
        topics: the franka_ros_interface topic names.
    """

    def __init__(self, topics: T.FrankaTopics) -> None:
        import rospy

        self._rospy = rospy
        self._msgs = load_franka_msgs()
        self._command = self._msgs.JointCommand(
            mode=self._msgs.JointCommand.VELOCITY_MODE, names=list(T.JOINT_NAMES)
        )
        self._pub = rospy.Publisher(topics.joint_commands, self._msgs.JointCommand,
                                    queue_size=1, tcp_nodelay=True)
        self._recovery_pub = rospy.Publisher(topics.error_recovery_goal,
                                             self._msgs.ErrorRecoveryActionGoal, queue_size=1)

    def set_joint_names(self, names: list[str]) -> None:
        """Name the joints in commands as the robot's joint_states does (ordered 1..7)."""
        self._command.names = list(names)

    def connected(self) -> bool:
        """True once franka_ros_interface's motion controller subscribes to our commands.

        ROS 1 connects a publisher to its subscribers asynchronously, shortly after it is
        advertised; messages published before that are lost.
        """
        return self._pub.get_num_connections() > 0

    def send_velocity(self, dq: np.ndarray) -> None:
        """Publish joint velocities (shape (7,), rad/s, already safety-filtered)."""
        self._command.velocity = [float(v) for v in dq]
        self._command.header.stamp = self._rospy.Time.now()
        self._pub.publish(self._command)

    def recover(self) -> None:
        """Ask franka_control to clear a reflex (what franka_interface.RobotEnable.enable does)."""
        self._recovery_pub.publish(self._msgs.ErrorRecoveryActionGoal())

    def close(self) -> None:
        """Unregister the publishers."""
        self._pub.unregister()
        self._recovery_pub.unregister()


class ArmInterfaceCommandLink:
    """Sends through `franka_interface.ArmInterface` (needs franka_ros_interface installed).

    Not exercised by the test suite: it needs a catkin workspace with franka_ros_interface, which
    Debian does not package. It calls the documented API only.
    """

    def __init__(self, topics: T.FrankaTopics) -> None:
        import franka_interface
        import rospy

        self._arm = franka_interface.ArmInterface()
        self._names = self._arm.joint_names()
        # RobotEnable.enable() blocks for up to 5 s waiting for the mode to change; the actuator
        # loop must not block, so publish the same goal it publishes, once per call.
        self._recovery_pub = rospy.Publisher(topics.error_recovery_goal,
                                             load_franka_msgs().ErrorRecoveryActionGoal,
                                             queue_size=1)

    def set_joint_names(self, names: list[str]) -> None:
        """Nothing to do: ArmInterface already uses the robot's joint names."""

    def connected(self) -> bool:
        """True once the motion controller subscribes to ArmInterface's command publisher."""
        return self._arm._joint_command_publisher.get_num_connections() > 0

    def send_velocity(self, dq: np.ndarray) -> None:
        """Joint velocities (shape (7,), rad/s) as ArmInterface.set_joint_velocities' dict."""
        self._arm.set_joint_velocities({n: float(v) for n, v in zip(self._names, dq)})

    def recover(self) -> None:
        """Publish the error-recovery goal, as franka_interface.RobotEnable.enable does."""
        self._recovery_pub.publish(load_franka_msgs().ErrorRecoveryActionGoal())

    def close(self) -> None:
        """Unregister the recovery publisher; ArmInterface unregisters itself on rospy shutdown."""
        self._recovery_pub.unregister()


def arm_interface_available() -> bool:
    """True if franka_ros_interface's Python package can be imported."""
    import importlib.util

    return importlib.util.find_spec("franka_interface") is not None


def make_command_link(transport: str, topics: T.FrankaTopics) -> RospyCommandLink | ArmInterfaceCommandLink:
    """The link for `transport` ("auto", "arm_interface", "rospy"); see RosTransport."""
    transport = getattr(transport, "value", transport)
    if transport == "arm_interface" or (transport == "auto" and arm_interface_available()):
        if not arm_interface_available():
            raise ImportError(
                "transport='arm_interface' but franka_interface is not importable; source the "
                "catkin workspace with franka_ros_interface, or use transport='rospy'"
            )
        return ArmInterfaceCommandLink(topics)
    return RospyCommandLink(topics)
