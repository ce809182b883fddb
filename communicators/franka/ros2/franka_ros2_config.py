"""Configuration of the ROS 2 backend: where the arm is on the graph, and how it is treated.

Example:
    >>> config = FrankaROS2Config(joint_names=("panda_joint1", "panda_joint2", "panda_joint3",
    ...     "panda_joint4", "panda_joint5", "panda_joint6", "panda_joint7"))
    >>> config.command_topic, config.state_qos.reliability
    ('/joint_velocity_controller/commands', 'best_effort')
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from communicators.franka.libfranka.libfranka_config import fr3_safety_limits
from communicators.franka.ros2 import topics as T
from communicators.franka.safety import SafetyLimits

MAX_DOMAIN_ID = 232
"""Largest ROS_DOMAIN_ID Fast DDS can map to UDP ports on Linux (ROS recommends <= 101)."""


@dataclass
class FrankaROS2Config:
    """How the ROS 2 communicator reaches a Franka under franka_ros2 / ros2_control.

    Attributes:
        joint_states_topic: sensor_msgs/JointState topic (joint_state_broadcaster's).
        command_topic: std_msgs/Float64MultiArray topic of a JointGroupVelocityController whose
            `joints` list joints 1..7 in order.
        joint_names: the 7 arm joints in the JointState, joints 1..7; None matches fr3_joint1..7
            or panda_joint1..7 (any name ending in "_joint1".."_joint7" that is not a finger).
        state_qos: QoS of the joint-state subscription (best effort, keep last 1).
        command_qos: QoS of the command publisher (reliable, keep last 1: ros2_control's
            controllers subscribe reliably, and a best-effort publisher would not reach them).
        domain_id: ROS_DOMAIN_ID of the robot's graph; None uses $ROS_DOMAIN_ID (else 0).
        node_name: name of the communicator's node.
        actuator_rate_hz: how often the latest (filtered) command is published, Hz.
        actuator_timeout: s without a new command after which zero velocity is published.
        state_timeout: s without a new joint state after which zero velocity is published and the
            communicator fails (the env then raises EnvError).
        connect_timeout: s to wait at start for the first joint state and a command subscriber.
        stop_ack_timeout: s the child waits, as it exits, for the controller to acknowledge the
            final zero command, so a robot side that stalled briefly still gets it. (The
            JointGroupVelocityController would otherwise keep the last command.)
        safety: limits of the shared safety filter (FR3's joint ranges inside the Panda's).
        ros2_venv: venv with the ROS 2 wheels; None: $RTRL_ROS2_VENV, this interpreter's own
            packages, or .venv-ros2 (see ros2_runtime.py).
    """

    joint_states_topic: str = T.DEFAULT_JOINT_STATES_TOPIC
    command_topic: str = T.DEFAULT_COMMAND_TOPIC
    joint_names: tuple[str, ...] | None = None
    state_qos: T.TopicQoS = T.STATE_QOS
    command_qos: T.TopicQoS = T.COMMAND_QOS
    domain_id: int | None = None
    node_name: str = "rtrl_franka_communicator"
    actuator_rate_hz: float = 100.0
    actuator_timeout: float = 0.1
    state_timeout: float = 0.1
    connect_timeout: float = 10.0
    stop_ack_timeout: float = 0.5
    safety: SafetyLimits = field(default_factory=fr3_safety_limits)
    ros2_venv: str | None = None

    def __post_init__(self) -> None:
        T.check_topic_name("FrankaROS2Config.joint_states_topic", self.joint_states_topic)
        T.check_topic_name("FrankaROS2Config.command_topic", self.command_topic)
        if self.joint_names is not None:
            names = tuple(self.joint_names)
            if len(names) != 7 or len(set(names)) != 7 or not all(isinstance(n, str) and n for n in names):
                raise ValueError(
                    f"FrankaROS2Config.joint_names={self.joint_names!r}: expected 7 distinct names, "
                    f"joints 1..7, e.g. {T.arm_joint_names('fr3')}, or None to match them by suffix")
            self.joint_names = names
        for name in ("state_qos", "command_qos"):
            if not isinstance(getattr(self, name), T.TopicQoS):
                raise ValueError(f"FrankaROS2Config.{name} must be a TopicQoS, got {getattr(self, name)!r}")
        if self.domain_id is not None and not (
                isinstance(self.domain_id, int) and 0 <= self.domain_id <= MAX_DOMAIN_ID):
            raise ValueError(f"FrankaROS2Config.domain_id={self.domain_id!r}: expected None or an "
                             f"int in 0..{MAX_DOMAIN_ID} (the robot's ROS_DOMAIN_ID)")
        if not (isinstance(self.node_name, str) and self.node_name.isidentifier()):
            raise ValueError(f"FrankaROS2Config.node_name={self.node_name!r}: expected letters, "
                             "digits and '_', e.g. 'rtrl_franka_communicator'")
        for name in ("actuator_rate_hz", "actuator_timeout", "state_timeout", "connect_timeout",
                     "stop_ack_timeout"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"FrankaROS2Config.{name}={value!r} must be a positive number")
        if self.actuator_timeout < 2.0 / self.actuator_rate_hz:
            raise ValueError(
                f"FrankaROS2Config.actuator_timeout={self.actuator_timeout} s is shorter than two "
                f"actuator periods ({2.0 / self.actuator_rate_hz:.3f} s); raise it or the rate")
        if not isinstance(self.safety, SafetyLimits):
            raise ValueError(f"FrankaROS2Config.safety must be a SafetyLimits, got {type(self.safety).__name__}")
