"""A ROS 2 node that stands in for a Franka under franka_ros2 / ros2_control, simulated in MuJoCo.

It runs `FrankaPhysics` locked to wall time and speaks what the ROS 2 backend talks to
(`communicators/franka/ros2/topics.py`), so the backend is tested end to end without a robot:

- publishes sensor_msgs/JointState on /joint_states at `rate_hz` (stamps: the wall-clock time of
  the simulated state), like joint_state_broadcaster: reliable, in an order of its choosing
  (`--joint-order`), optionally with the gripper's finger joints (`--finger-joints`);
- obeys std_msgs/Float64MultiArray on /joint_velocity_controller/commands like a
  JointGroupVelocityController: 7 velocities, joints 1..7; a message of another length is
  ignored; the last command is held *for ever*, as the real controller does (no timeout);
- a command beyond the Panda's datasheet joint velocity limits, or not finite, faults the arm
  like a robot reflex: it stops and ignores commands until restarted; faults are counted.

Run: `python -m communicators.franka.ros2.bridge_node [--rate-hz 1000] [--arm-id fr3]`. It
prints "bridge ready" once publishing, and "bridge stopped: faults=N commands=M" on SIGINT or
SIGTERM. Set ROS_DOMAIN_ID and ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST as for any ROS 2 node.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from communicators.franka.kinematics import READY_POSE
from communicators.franka.ros2 import topics as T
from communicators.franka.safety import PANDA_JOINT_VEL_MAX
from communicators.realtime import Pacer

_MAX_CATCH_UP_S = 0.05
"""After a stall, physics catches up at most this much simulated time (no fast-forward)."""


@dataclass
class BridgeConfig:
    """Settings of the simulated franka_ros2 arm.

    Attributes:
        joint_states_topic / command_topic: where it publishes state and takes commands.
        rate_hz: state publish rate, Hz; the physics steps at the same rate (500..2000 Hz).
        initial_qpos: joint angles at start, shape (7,), rad.
        arm_id: joint name prefix ("fr3" -> "fr3_joint1").
        joint_order: in which order the JointState lists joints 1..7 (a permutation).
        finger_joints: also list {arm_id}_finger_joint1/2, as franka_ros2 does with a gripper.
        domain_id: ROS_DOMAIN_ID; None uses the environment's.
    """

    joint_states_topic: str = T.DEFAULT_JOINT_STATES_TOPIC
    command_topic: str = T.DEFAULT_COMMAND_TOPIC
    rate_hz: float = 1000.0
    initial_qpos: np.ndarray = field(default_factory=lambda: READY_POSE.copy())
    arm_id: str = "fr3"
    joint_order: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
    finger_joints: bool = False
    domain_id: int | None = None

    def __post_init__(self) -> None:
        T.check_topic_name("BridgeConfig.joint_states_topic", self.joint_states_topic)
        T.check_topic_name("BridgeConfig.command_topic", self.command_topic)
        if not 500.0 <= self.rate_hz <= 2000.0:
            raise ValueError(f"BridgeConfig.rate_hz={self.rate_hz} must be in [500, 2000] Hz")
        self.initial_qpos = np.asarray(self.initial_qpos, dtype=np.float64)
        if self.initial_qpos.shape != (7,):
            raise ValueError(f"BridgeConfig.initial_qpos must have 7 joint angles (rad), "
                             f"got shape {self.initial_qpos.shape}")
        if not self.arm_id.isidentifier():
            raise ValueError(f"BridgeConfig.arm_id={self.arm_id!r} must be a plain name like 'fr3'")
        self.joint_order = tuple(int(j) for j in self.joint_order)
        if sorted(self.joint_order) != list(range(1, 8)):
            raise ValueError(f"BridgeConfig.joint_order={self.joint_order} must be a permutation of 1..7")

    def names(self) -> list[str]:
        """The JointState's names, in its order."""
        arm = T.arm_joint_names(self.arm_id)
        fingers = [f"{self.arm_id}_finger_joint{i}" for i in (1, 2)] if self.finger_joints else []
        return [arm[j - 1] for j in self.joint_order] + fingers


class FrankaRos2Bridge:
    """The simulated arm and its publisher and subscription, on an rclpy node (create after rclpy.init).

    Args:
        node: the rclpy node to publish and subscribe on.
        config: topics, rate, initial pose and naming.
    """

    def __init__(self, node, config: BridgeConfig) -> None:  # noqa: ANN001 - an rclpy Node
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        from communicators.sim.physics.franka_physics import FrankaPhysics, FrankaPhysicsConfig

        self.config = config
        self._node = node
        self.physics = FrankaPhysics(
            FrankaPhysicsConfig(timestep=1.0 / config.rate_hz, initial_qpos=config.initial_qpos))
        self._lock = threading.Lock()
        self._command = np.zeros(7)
        self.faults = 0
        self.commands = 0
        self._faulted = False
        # ros2_control's broadcaster and controllers use SystemDefaultsQoS: reliable, keep last.
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self._pub = node.create_publisher(JointState, config.joint_states_topic, reliable)
        node.create_subscription(Float64MultiArray, config.command_topic, self._on_command, reliable)
        names = config.names()
        self._msg = JointState(name=names)
        self._index = [int(n[-1]) - 1 for n in names[:7]]  # physics joint of each listed arm joint
        self._extra = len(names) - 7

    def _on_command(self, msg) -> None:  # noqa: ANN001 - Float64MultiArray; executor thread
        dq = np.asarray(msg.data, dtype=np.float64)
        with self._lock:
            self.commands += 1
            if self._faulted:
                return  # the real robot ignores motion until its error is cleared
            if dq.shape != (7,):
                self._node.get_logger().error(
                    f"bridge: command has {dq.size} values, the controller's 7 joints need 7; ignored",
                    throttle_duration_sec=1.0)
                return
            if not np.all(np.isfinite(dq)) or np.any(np.abs(dq) > PANDA_JOINT_VEL_MAX):
                self._faulted = True
                self.faults += 1
                self._command[:] = 0.0
                self._node.get_logger().warning(f"bridge: command {dq} beyond the joint velocity "
                                                "limits -> fault, arm stopped")
                return
            self._command[:] = dq  # held until the next one, as a JointGroupVelocityController does

    def _publish(self, stamp_wall: float) -> None:
        state = self.physics.state()
        msg = self._msg
        msg.header.stamp.sec = int(stamp_wall)
        msg.header.stamp.nanosec = int((stamp_wall % 1.0) * 1e9)
        msg.position = state.q[self._index].tolist() + [0.04] * self._extra
        msg.velocity = state.dq[self._index].tolist() + [0.0] * self._extra
        msg.effort = [0.0] * len(msg.name)
        self._pub.publish(msg)

    def spin(self, stop: threading.Event, on_ready=None) -> None:  # noqa: ANN001
        """Runs the sim in real time and publishes until `stop` is set (main thread)."""
        pacer = Pacer(1.0 / self.config.rate_hz)
        t0 = time.monotonic()
        pacer.start(t0)
        wall_offset = time.time() - t0
        steps_done = 0
        while not stop.is_set():
            now = time.monotonic()
            with self._lock:
                self.physics.set_joint_velocity(self._command)
            # Sim time follows wall time; after a stall it catches up by at most _MAX_CATCH_UP_S.
            due = int((now - t0) / self.physics.timestep)
            n = min(due - steps_done, int(_MAX_CATCH_UP_S / self.physics.timestep))
            if n > 0:
                self.physics.step(n)
            steps_done = due
            self._publish(t0 + steps_done * self.physics.timestep + wall_offset)
            if on_ready is not None and pacer.cycles == 0:
                on_ready()
            pacer.wait()


def _parse_args(argv: list[str] | None) -> BridgeConfig:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--joint-states-topic", default=T.DEFAULT_JOINT_STATES_TOPIC)
    p.add_argument("--command-topic", default=T.DEFAULT_COMMAND_TOPIC)
    p.add_argument("--rate-hz", type=float, default=1000.0, help="state publish and physics rate, Hz")
    p.add_argument("--initial-qpos", type=float, nargs=7, default=None, metavar="Q",
                   help="7 initial joint angles, rad (default: Franka's ready pose)")
    p.add_argument("--arm-id", default="fr3", help="joint name prefix, e.g. fr3 or panda")
    p.add_argument("--joint-order", type=int, nargs=7, default=list(range(1, 8)), metavar="J",
                   help="the order in which JointState lists joints 1..7")
    p.add_argument("--finger-joints", action="store_true", help="also list the two finger joints")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: environment)")
    a = p.parse_args(argv)
    qpos = READY_POSE.copy() if a.initial_qpos is None else np.array(a.initial_qpos)
    try:
        return BridgeConfig(joint_states_topic=a.joint_states_topic, command_topic=a.command_topic,
                            rate_hz=a.rate_hz, initial_qpos=qpos, arm_id=a.arm_id,
                            joint_order=tuple(a.joint_order), finger_joints=a.finger_joints,
                            domain_id=a.domain_id)
    except ValueError as err:
        p.error(str(err))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the bridge until SIGINT/SIGTERM."""
    from communicators.franka.ros2.ros2_runtime import find_ros2_runtime

    config = _parse_args(argv)
    runtime = find_ros2_runtime()
    runtime.reexec_if_needed()
    runtime.activate()
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    rclpy.init(args=["--ros-args", "--disable-external-lib-logs"], domain_id=config.domain_id,
               signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("franka_sim_bridge", enable_rosout=False, start_parameter_services=False)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    try:
        bridge = FrankaRos2Bridge(node, config)
        spinner.start()
        bridge.spin(stop, on_ready=lambda: print("bridge ready", flush=True))
    finally:
        executor.shutdown(timeout_sec=1.0)
        if spinner.is_alive():
            spinner.join(timeout=1.0)  # exiting while it waits in rclpy's C++ code would abort
        node.destroy_node()
        rclpy.shutdown()
    print(f"bridge stopped: faults={bridge.faults} commands={bridge.commands}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
