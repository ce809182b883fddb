"""A ROS node that stands in for a Franka arm under franka_ros_interface, simulated in MuJoCo.

It runs `FrankaPhysics` locked to wall time and speaks franka_ros_interface's topics
(`communicators/franka/ros/topics.py`), so the ROS backend can be tested end to end without a robot:

- publishes joint_states, robot_state and tip_state at `rate_hz` (1 kHz like the real
  custom_franka_state_controller; stamps are the wall-clock time of the simulated state);
- obeys JointCommand in VELOCITY_MODE; any other mode holds the arm still (only velocity control is
  simulated); a command older than the command timeout (0.2 s, settable on joint_command_timeout as
  franka_ros_interface allows) stops the arm;
- raises a reflex like the real robot when a command exceeds the Panda's datasheet joint velocity
  limits: robot_mode becomes REFLEX, `current_errors.joint_velocity_violation` is set and commands
  are ignored until an ErrorRecoveryActionGoal arrives on franka_control/error_recovery/goal.

Run: `python -m communicators.franka.ros.bridge_node --master-uri http://127.0.0.1:11311`.
It prints "bridge ready" once publishing and exits cleanly on SIGINT or SIGTERM.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from communicators.franka.kinematics import READY_POSE, jacobian
from communicators.franka.safety import PANDA_JOINT_VEL_MAX
from communicators.franka.ros import topics as T
from communicators.franka.ros.msg_loader import load_franka_msgs


@dataclass
class BridgeConfig:
    """Settings of the simulated franka_ros_interface.

    Attributes:
        master_uri: ROS master, e.g. "http://127.0.0.1:11311".
        namespace: franka_ros_interface's namespace.
        rate_hz: state publish rate (Hz); the physics steps at the same rate (at least 500 Hz).
        initial_qpos: joint angles at start, shape (7,), rad.
        ros_ip: address this node advertises to the master (ROS_IP).
        arm_id: prefix of the joint names ("panda" -> "panda_joint1"; franka_ros uses "fr3" too).
    """

    master_uri: str
    namespace: str = T.DEFAULT_NAMESPACE
    rate_hz: float = T.STATE_PUBLISH_RATE_HZ
    initial_qpos: np.ndarray = field(default_factory=lambda: READY_POSE.copy())
    ros_ip: str = "127.0.0.1"
    arm_id: str = "panda"

    def __post_init__(self) -> None:
        if not 500.0 <= self.rate_hz <= 2000.0:
            raise ValueError(f"BridgeConfig.rate_hz={self.rate_hz} must be in [500, 2000] Hz")
        self.initial_qpos = np.asarray(self.initial_qpos, dtype=np.float64)
        if self.initial_qpos.shape != (7,):
            raise ValueError(f"BridgeConfig.initial_qpos must have 7 joint angles (rad), "
                             f"got shape {self.initial_qpos.shape}")
        T.FrankaTopics(self.namespace)  # validates the namespace
        if not self.arm_id.isidentifier():
            raise ValueError(f"BridgeConfig.arm_id={self.arm_id!r} must be a plain name like 'panda'")

    @property
    def joint_names(self) -> tuple[str, ...]:
        """The arm's joint names, joints 1..7."""
        return tuple(f"{self.arm_id}_joint{i}" for i in range(1, 8))


class FrankaBridge:
    """The simulated arm plus its ROS publishers and subscribers. Create with rospy initialised."""

    def __init__(self, config: BridgeConfig) -> None:
        import rospy
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64

        from communicators.sim.physics.franka_physics import FrankaPhysics, FrankaPhysicsConfig

        self.config = config
        self._rospy = rospy
        self._msgs = load_franka_msgs()
        self.physics = FrankaPhysics(
            FrankaPhysicsConfig(timestep=1.0 / config.rate_hz, initial_qpos=config.initial_qpos)
        )
        self._lock = threading.Lock()
        self._command = np.zeros(7)
        self._command_time = -np.inf  # time.monotonic() of the last accepted command
        self._command_timeout = T.COMMAND_TIMEOUT_S
        self._reflex = False
        self._errors = self._msgs.Errors()
        self.reflexes = 0
        self.recoveries = 0

        names = T.FrankaTopics(config.namespace)
        kw = dict(queue_size=1, tcp_nodelay=True)
        self._pub_joints = rospy.Publisher(names.joint_states, JointState, **kw)
        self._pub_robot = rospy.Publisher(names.robot_state, self._msgs.RobotState, **kw)
        self._pub_tip = rospy.Publisher(names.tip_state, self._msgs.EndPointState, **kw)
        rospy.Subscriber(names.joint_commands, self._msgs.JointCommand, self._on_command, **kw)
        rospy.Subscriber(names.joint_command_timeout, Float64, self._on_timeout, queue_size=10)
        rospy.Subscriber(names.error_recovery_goal, self._msgs.ErrorRecoveryActionGoal,
                         self._on_recovery, queue_size=10)
        self._joint_msg = JointState(name=list(config.joint_names))
        self._robot_msg = self._msgs.RobotState()
        self._tip_msg = self._msgs.EndPointState()

    # ---------------------------------------------------------------- callbacks (rospy threads)
    def _on_command(self, msg) -> None:  # noqa: ANN001 - a JointCommand
        with self._lock:
            if self._reflex:
                return  # the real robot ignores motion until the error is recovered
            if msg.mode != self._msgs.JointCommand.VELOCITY_MODE:
                self._command[:] = 0.0  # only velocity control is simulated: hold still
                self._command_time = time.monotonic()
                return
            try:
                names = self.config.joint_names
                order = [list(msg.names).index(n) for n in names] if msg.names else range(7)
                dq = np.array([msg.velocity[i] for i in order], dtype=np.float64)
            except (ValueError, IndexError):
                self._rospy.logerr_throttle(1.0, f"bridge: malformed JointCommand names={msg.names} "
                                            f"velocity={msg.velocity}; expected {self.config.joint_names}")
                return
            if not np.all(np.isfinite(dq)) or np.any(np.abs(dq) > PANDA_JOINT_VEL_MAX):
                self._enter_reflex()
                return
            self._command[:] = dq
            self._command_time = time.monotonic()

    def _enter_reflex(self) -> None:
        self._reflex = True
        self.reflexes += 1
        self._errors = self._msgs.Errors(joint_velocity_violation=True)
        self._command[:] = 0.0
        self._rospy.logwarn("bridge: joint velocity limit violated -> reflex; publish an "
                            "ErrorRecoveryActionGoal to recover")

    def _on_timeout(self, msg) -> None:  # noqa: ANN001 - a Float64
        with self._lock:
            self._command_timeout = min(1.0, max(0.0, float(msg.data)))  # as the real interface

    def _on_recovery(self, msg) -> None:  # noqa: ANN001, ARG002 - an ErrorRecoveryActionGoal
        with self._lock:
            if self._reflex:
                self.recoveries += 1
            self._reflex = False
            self._errors = self._msgs.Errors()
            self._command[:] = 0.0
            self._command_time = -np.inf

    # ---------------------------------------------------------------- real-time loop
    def _active_command(self, now: float) -> tuple[np.ndarray, int]:
        with self._lock:
            if self._reflex:
                return np.zeros(7), T.ROBOT_MODE_REFLEX
            if now - self._command_time > self._command_timeout:
                return np.zeros(7), T.ROBOT_MODE_IDLE
            return self._command.copy(), T.ROBOT_MODE_MOVE

    def _publish(self, stamp_wall: float, mode: int, dq_d: np.ndarray) -> None:
        state = self.physics.state()
        stamp = self._rospy.Time.from_sec(stamp_wall)
        j = self._joint_msg
        j.header.stamp, j.position, j.velocity = stamp, state.q.tolist(), state.dq.tolist()
        j.effort = [0.0] * 7
        self._pub_joints.publish(j)

        pose = np.eye(4)
        w, x, y, z = state.ee_quat
        pose[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
        pose[:3, 3] = state.ee_pos
        tip = self._tip_msg
        tip.header.stamp, tip.O_T_EE = stamp, pose.flatten(order="F").tolist()  # column-major
        self._pub_tip.publish(tip)

        r = self._robot_msg
        jac = jacobian(state.q)
        r.header.stamp, r.time, r.robot_mode = stamp, self.physics.sim_time, mode
        r.q_d, r.dq_d = state.q.tolist(), dq_d.tolist()
        r.O_Jac_EE = jac.flatten(order="F").tolist()
        r.O_dP_EE = (jac @ state.dq).tolist()
        with self._lock:
            r.current_errors = self._errors
            if self._reflex:
                r.last_motion_errors = self._errors
        self._pub_robot.publish(r)

    def spin(self, stop: threading.Event, on_ready=None) -> None:  # noqa: ANN001
        """Run the sim in real time and publish until `stop` is set or rospy shuts down."""
        period = 1.0 / self.config.rate_hz
        t0 = time.monotonic()
        wall_offset = time.time() - t0
        steps_done = 0
        tick = 0
        while not stop.is_set() and not self._rospy.is_shutdown():
            now = time.monotonic()
            dq, mode = self._active_command(now)
            self.physics.set_joint_velocity(dq)
            # Sim time follows wall time; after a stall catch up by at most 50 ms of physics.
            due = int((now - t0) / self.physics.timestep)
            n = min(due - steps_done, 50)
            if n > 0:
                self.physics.step(n)
            steps_done = due
            self._publish(now + wall_offset, mode, dq)
            if tick == 0 and on_ready is not None:
                on_ready()
            tick += 1
            sleep = t0 + tick * period - time.monotonic()
            if sleep > 0:
                time.sleep(sleep)
            elif sleep < -0.1:  # far behind (machine overloaded): skip ahead, don't burst
                tick = int((time.monotonic() - t0) / period) + 1


def _parse_args(argv: list[str] | None) -> BridgeConfig:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--master-uri", default=os.environ.get("ROS_MASTER_URI"),
                   help="ROS master URI (default: $ROS_MASTER_URI)")
    p.add_argument("--namespace", default=T.DEFAULT_NAMESPACE, help="franka_ros_interface namespace")
    p.add_argument("--rate-hz", type=float, default=T.STATE_PUBLISH_RATE_HZ,
                   help="state publish and physics rate, Hz")
    p.add_argument("--initial-qpos", type=float, nargs=7, default=None, metavar="Q",
                   help="7 initial joint angles, rad (default: Franka's ready pose)")
    p.add_argument("--ros-ip", default="127.0.0.1", help="address advertised to the master")
    p.add_argument("--arm-id", default="panda", help="joint name prefix, e.g. panda or fr3")
    a = p.parse_args(argv)
    if not a.master_uri:
        p.error("no ROS master: pass --master-uri http://HOST:PORT or set ROS_MASTER_URI")
    qpos = READY_POSE.copy() if a.initial_qpos is None else np.array(a.initial_qpos)
    return BridgeConfig(master_uri=a.master_uri, namespace=a.namespace, rate_hz=a.rate_hz,
                        initial_qpos=qpos, ros_ip=a.ros_ip, arm_id=a.arm_id)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the bridge until SIGINT/SIGTERM."""
    from communicators.franka.ros.ros_master import master_is_up

    config = _parse_args(argv)
    if not master_is_up(config.master_uri, timeout=2.0):
        print(f"bridge: no ROS master answers at {config.master_uri}; start one with "
              "`rosmaster --core -p PORT` or fix --master-uri", file=sys.stderr)
        return 2
    os.environ["ROS_MASTER_URI"] = config.master_uri
    os.environ["ROS_IP"] = config.ros_ip
    os.environ.pop("ROS_HOSTNAME", None)
    import rospy

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    rospy.init_node("franka_sim_bridge", anonymous=True, disable_signals=True)
    try:
        bridge = FrankaBridge(config)
        bridge.spin(stop, on_ready=lambda: print("bridge ready", flush=True))
    finally:
        rospy.signal_shutdown("bridge stopped")
    print(f"bridge stopped: reflexes={bridge.reflexes} recoveries={bridge.recoveries}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
