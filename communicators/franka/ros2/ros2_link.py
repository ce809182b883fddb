"""The rclpy side of the ROS 2 communicator: one node, its own context and executor thread.

Runs in the communicator's child process only (rclpy is imported here, at construction). The
executor thread takes JointState messages as they arrive and keeps the newest; the communicator's
sensor thread waits on it, and its actuator thread publishes the commands.
"""
from __future__ import annotations

import threading
import time

import numpy as np

from communicators.errors import CommunicatorError
from communicators.franka.ros2 import topics as T
from communicators.franka.ros2.franka_ros2_config import FrankaROS2Config

_ROS_ARGS = ["--ros-args", "--disable-external-lib-logs"]  # no log files under ~/.ros/log


class Ros2ArmLink:
    """A node subscribed to the arm's joint states and publishing its velocity commands.

    Args:
        config: topics, QoS and domain of the robot's graph.

    Attributes:
        joint_states_topic / command_topic: the topics' fully qualified names.
    """

    def __init__(self, config: FrankaROS2Config) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        self._rclpy, self._command_cls = rclpy, Float64MultiArray
        self._ack_timeout = config.stop_ack_timeout
        self._cond = threading.Condition()
        self._msg, self._recv, self._seq = None, 0.0, 0
        self._context = Context()
        # No signal handlers: the communicator process decides how SIGINT/SIGTERM stop it.
        rclpy.init(args=_ROS_ARGS, context=self._context, domain_id=config.domain_id,
                   signal_handler_options=SignalHandlerOptions.NO)
        self._node = rclpy.create_node(config.node_name, context=self._context, enable_rosout=False,
                                       start_parameter_services=False)
        self._sub = self._node.create_subscription(
            JointState, config.joint_states_topic, self._on_joint_state, config.state_qos.to_rclpy())
        self._pub = self._node.create_publisher(
            Float64MultiArray, config.command_topic, config.command_qos.to_rclpy())
        self.joint_states_topic, self.command_topic = self._sub.topic_name, self._pub.topic_name
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._spin_error: BaseException | None = None
        self._thread = threading.Thread(target=self._spin, name="rclpy-executor", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except BaseException as err:  # noqa: BLE001 - reported by wait_for_state
            if self._context.ok():
                self._spin_error = err

    def _on_joint_state(self, msg) -> None:  # noqa: ANN001 - sensor_msgs/JointState; executor thread
        recv = time.monotonic()
        with self._cond:
            self._msg, self._recv = msg, recv
            self._seq += 1
            self._cond.notify_all()

    def wait_for_state(self, after_seq: int, timeout: float):  # noqa: ANN201
        """The newest JointState newer than `after_seq`, waiting up to `timeout` s.

        Returns:
            (msg, receive time on time.monotonic(), seq), or None if none came in time.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._seq == after_seq:
                if self._spin_error is not None:
                    raise CommunicatorError(f"the rclpy executor thread failed: {self._spin_error!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(timeout=min(left, 0.05))
            return self._msg, self._recv, self._seq

    def command_subscribers(self) -> int:
        """How many subscribers (the controller) the command publisher has matched."""
        return self._pub.get_subscription_count()

    def publisher_types(self, topic: str) -> list[str]:
        """Message types of the publishers of `topic` on the graph, one entry per publisher."""
        return [info.topic_type for info in self._node.get_publishers_info_by_topic(topic)]

    def subscriber_types(self, topic: str) -> list[str]:
        """Message types of the other nodes' subscribers of `topic` on the graph."""
        return [info.topic_type for info in self._node.get_subscriptions_info_by_topic(topic)
                if info.node_name != self._node.get_name()]

    def topics_with(self, type_name: str, role: str) -> list[str]:
        """Topics on the graph where other nodes publish (role "publishers") or subscribe
        ("subscribers") messages of `type_name`, e.g. "sensor_msgs/msg/JointState"."""
        infos = (self._node.get_publishers_info_by_topic if role == "publishers"
                 else self._node.get_subscriptions_info_by_topic)
        me = self._node.get_name()
        return sorted(name for name, types in self._node.get_topic_names_and_types()
                      if type_name in types and any(i.node_name != me and i.topic_type == type_name
                                                    for i in infos(name)))

    def publish(self, dq: np.ndarray) -> None:
        """Publishes 7 joint velocities (rad/s) to the controller. Thread-safe."""
        self._pub.publish(self._command_cls(data=[float(v) for v in dq]))

    def close(self) -> bool:
        """Waits up to config.stop_ack_timeout s for the last command to be acknowledged, then
        tears the node down. Returns whether it was acknowledged."""
        try:
            from rclpy.duration import Duration

            # A reliable writer resends until acknowledged, but only while it exists.
            return self._pub.wait_for_all_acked(Duration(seconds=self._ack_timeout))
        finally:
            # Join the executor thread first: a process that exits while it still waits in
            # rclpy's C++ code aborts ("terminate called without an active exception").
            self._executor.shutdown(timeout_sec=1.0)
            self._thread.join(timeout=1.0)
            self._node.destroy_node()
            self._rclpy.shutdown(context=self._context)


def describe_missing_state(link: Ros2ArmLink, timeout: float) -> str:
    """Why no joint state arrived within `timeout` s, from what the graph shows."""
    topic = link.joint_states_topic
    types = link.publisher_types(topic)
    if types and T.JOINT_STATE_TYPE not in types:
        return f"{topic!r} carries {sorted(set(types))}, not {T.JOINT_STATE_TYPE}; set joint_states_topic"
    if types:
        return (f"{topic!r} has {len(types)} publisher(s) but no message arrived in {timeout} s: "
                "check FrankaROS2Config.state_qos against theirs")
    topics = link.topics_with(T.JOINT_STATE_TYPE, "publishers")
    return (f"no JointState on {topic!r} within {timeout} s: nothing publishes it; JointState "
            f"topics published on the graph: {topics}. Is franka_ros2 (joint_state_broadcaster) "
            "running, in this ROS_DOMAIN_ID, and joint_states_topic right?")


def describe_missing_controller(link: Ros2ArmLink, timeout: float) -> str:
    """Why nothing subscribed to the command topic within `timeout` s."""
    topic = link.command_topic
    types = link.subscriber_types(topic)
    if types and T.COMMAND_TYPE not in types:
        return f"{topic!r} is subscribed as {sorted(set(types))}, not {T.COMMAND_TYPE}; set command_topic"
    if types:
        return (f"{topic!r} has {len(types)} subscriber(s) that did not match within {timeout} s: "
                "a reliable subscriber (ros2_control's) needs FrankaROS2Config.command_qos reliable")
    topics = link.topics_with(T.COMMAND_TYPE, "subscribers")
    return (f"nothing subscribes to {topic!r} within {timeout} s; Float64MultiArray topics "
            f"subscribed on the graph: {topics}. Is the velocity controller active (`ros2 control "
            f"load_controller --set-state active {T.DEFAULT_CONTROLLER_NAME}`) and command_topic right?")
