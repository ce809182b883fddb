"""Franka arm over ROS 1 through franka_ros_interface: state in, joint velocities out.

Rate: state arrives at the robot's publish rate (1 kHz on a real franka_ros_interface); every
joint_states message becomes one sensor slot. Commands go out at `actuator_rate_hz` (100 Hz).

Buffers (the layout every arm backend shares, `communicators/franka/state.py`):
    sensor_buffer: float64 (21,) = q (7, rad), dq (7, rad/s), TCP position (3, m, base frame),
        TCP orientation (4, quaternion w, x, y, z); timestamp = time.monotonic() at which the robot
        measured the state (the message's header stamp moved onto the monotonic clock).
    actuator_buffer: float64 (7,) joint velocity command, rad/s.
    stats_buffer: float64 (4,) = robot_mode (franka_core_msgs/RobotState), reflexes seen,
        error-recovery requests sent, state age at the last actuator tick (s).

Every command passes the shared `SafetyFilter` (velocity limits, joint limits, workspace box) on the
latest measured q before it is published, re-filtered at every actuator tick. Watchdog: when no new
command arrived for `actuator_timeout` s (100 ms), the communicator publishes zero velocity.
franka_ros_interface's own command timeout (0.2 s) then backs it up if this process dies.

Stale state: once the newest joint_states is older than `state_timeout` less one actuator period,
every command becomes zero velocity, so zero has gone out by `state_timeout` (100 ms) after the
robot's last state; at `state_timeout` without a message the communicator fails (CommunicatorError
in the parent, EnvError from the env). The ROS master: existing connections outlive it, so a dead
master would go unnoticed; a health thread asks it for its pid every `master_check_period` s, and
after `master_timeout` s without an answer the arm is commanded to zero velocity and the
communicator fails, naming the master (about 1.3 s after it died, by default).

Transport: `franka_interface.ArmInterface` sends the commands when it is importable (a catkin
workspace with franka_ros_interface); otherwise rospy publishes the same JointCommand messages
itself, with franka_core_msgs classes generated at run time (`msg_loader.py`). State is read from
the topics directly in both cases, so its timestamps are the robot's.
"""
from __future__ import annotations

import enum
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from communicators.communicator import Communicator
from communicators.errors import CommunicatorError
from communicators.franka.kinematics import rotmat_to_quat_wxyz
from communicators.franka.safety import SafetyFilter, SafetyLimits
from communicators.franka.state import DQ, EE_POS, EE_QUAT, Q, STATE_DIM
from communicators.franka.ros import topics as T
from communicators.franka.ros.ros_command_link import RospyCommandLink, make_command_link

STATS_ROBOT_MODE = 0
"""stats_buffer index: the latest RobotState.robot_mode (topics.ROBOT_MODE_*)."""
STATS_REFLEXES = 1
"""stats_buffer index: reflexes seen (transitions into ROBOT_MODE_REFLEX)."""
STATS_RECOVERY_REQUESTS = 2
"""stats_buffer index: error-recovery goals sent."""
STATS_STATE_AGE = 3
"""stats_buffer index: age of the latest state at the last actuator tick, s."""
STATS_DIM = 4


class RosTransport(str, enum.Enum):
    """How commands reach franka_ros_interface."""

    AUTO = "auto"                    # ArmInterface if importable, else rospy
    ARM_INTERFACE = "arm_interface"  # require franka_interface.ArmInterface
    ROSPY = "rospy"                  # publish JointCommand with rospy directly

    @classmethod
    def _missing_(cls, value: object) -> None:
        raise ValueError(f"transport {value!r} is not one of {[m.value for m in cls]}")


@dataclass
class FrankaROSConfig:
    """Where the robot is on the ROS graph, and how the communicator treats it.

    Attributes:
        master_uri: ROS master, e.g. "http://172.16.0.1:11311"; None uses $ROS_MASTER_URI.
        ros_ip: this machine's address as the robot PC reaches it (ROS_IP); None keeps $ROS_IP.
        namespace: franka_ros_interface's namespace.
        transport: "auto", "arm_interface" or "rospy" (see RosTransport).
        actuator_rate_hz: how often the latest (filtered) command is published, Hz.
        actuator_timeout: watchdog, s: older commands become zero velocity.
        connect_timeout: s to wait for the first joint_states and tip_state at start.
        state_rate_hz: the rate the robot publishes joint_states at (franka_ros_interface: 1 kHz),
            for the env's freshness check.
        state_timeout: s without joint_states after which the communicator fails; commands are
            zero velocity by then.
        master_check_period: s between two health checks of the ROS master.
        master_timeout: s without an answer from the ROS master after which the arm is commanded
            to zero velocity and the communicator fails.
        auto_recover: publish an error-recovery goal when the robot reports a reflex.
        recovery_interval: s between recovery requests while the reflex persists.
        safety: limits of the shared safety filter.
    """

    master_uri: str | None = None
    ros_ip: str | None = None
    namespace: str = T.DEFAULT_NAMESPACE
    transport: RosTransport = RosTransport.AUTO
    actuator_rate_hz: float = 100.0
    actuator_timeout: float = 0.1
    connect_timeout: float = 5.0
    state_rate_hz: float = 1000.0
    state_timeout: float = 0.1
    master_check_period: float = 0.25
    master_timeout: float = 1.0
    auto_recover: bool = True
    recovery_interval: float = 1.0
    safety: SafetyLimits = field(default_factory=SafetyLimits)

    def __post_init__(self) -> None:
        if self.master_uri is None:
            self.master_uri = os.environ.get("ROS_MASTER_URI")
        if not self.master_uri or not self.master_uri.startswith("http://"):
            raise ValueError(
                f"FrankaROSConfig.master_uri={self.master_uri!r}: expected 'http://HOST:PORT' "
                "(the robot PC's ROS master); pass master_uri= or set ROS_MASTER_URI"
            )
        T.FrankaTopics(self.namespace)
        self.transport = RosTransport(self.transport)
        for name in ("actuator_rate_hz", "actuator_timeout", "connect_timeout", "state_rate_hz", "state_timeout",
                     "master_check_period", "master_timeout", "recovery_interval"):
            if not getattr(self, name) > 0:
                raise ValueError(f"FrankaROSConfig.{name}={getattr(self, name)} must be positive")
        if self.state_timeout <= 1.0 / self.actuator_rate_hz:
            raise ValueError(
                f"FrankaROSConfig.state_timeout={self.state_timeout} s must be longer than one actuator "
                f"period ({1.0 / self.actuator_rate_hz:.3f} s), which sends the zero velocity in time"
            )
        if self.actuator_timeout < 2.0 / self.actuator_rate_hz:
            raise ValueError(
                f"FrankaROSConfig.actuator_timeout={self.actuator_timeout} s is shorter than two "
                f"actuator periods ({2.0 / self.actuator_rate_hz:.3f} s); raise it or the rate"
            )


class FrankaROSCommunicator(Communicator):
    """The Franka arm behind franka_ros_interface, as a communicator process.

    Args:
        config: ROS master, namespace, rates, watchdog and safety limits.
        start_method: multiprocessing start method of the child ("fork", "spawn",
            "forkserver"); None: `communicators.communicator.DEFAULT_START_METHOD` (never fork).

    Attributes:
        stats_buffer: SharedBuffer float64 (4,), see the module docstring.
    """

    def __init__(self, config: FrankaROSConfig | None = None, *,
                 start_method: str | None = None) -> None:
        from communicators.shared_buffer import SharedBuffer

        self.config = FrankaROSConfig() if config is None else config
        super().__init__(
            sensor_args={"shape": (STATE_DIM,), "dtype": np.float64, "buffer_len": 8},
            actuator_args={"shape": (7,), "dtype": np.float64, "buffer_len": 2},
            use_sensor=True,
            use_actuator=True,
            sensor_rate_hz=None,  # the sensor loop blocks until the robot's next message
            actuator_rate_hz=self.config.actuator_rate_hz,
            actuator_timeout=self.config.actuator_timeout,
            start_method=start_method,
            expected_period_s=1.0 / self.config.state_rate_hz,
        )
        self.stats_buffer = SharedBuffer(shape=(STATS_DIM,), dtype=np.float64, buffer_len=2)

    # ----- hooks (run in the child process) -----

    def open_device(self) -> None:
        from communicators.franka.ros.ros_master import master_is_up

        cfg = self.config
        if not master_is_up(cfg.master_uri, timeout=2.0):
            raise CommunicatorError(
                f"FrankaROSCommunicator: no ROS master answers at {cfg.master_uri}; is "
                "franka_ros_interface running on the robot PC and ROS_MASTER_URI right?"
            )
        # rospy reads these at init_node; set them here so the parent's environment is untouched.
        os.environ["ROS_MASTER_URI"] = cfg.master_uri
        if cfg.ros_ip:
            os.environ["ROS_IP"] = cfg.ros_ip
            os.environ.pop("ROS_HOSTNAME", None)
        import rospy
        from sensor_msgs.msg import JointState

        # In the child only: a ROS node belongs to one process, and rospy cannot re-init after fork.
        rospy.init_node("rtrl_franka_communicator", anonymous=True, disable_signals=True)
        self._rospy = rospy
        self._topics = T.FrankaTopics(cfg.namespace)
        self._filter = SafetyFilter(cfg.safety)
        self._cond = threading.Condition()
        self._joint_msg, self._joint_recv, self._joint_seq, self._seen_seq = None, 0.0, 0, 0
        self._tip_pose: np.ndarray | None = None
        self._q: np.ndarray | None = None
        self._state_time = -np.inf
        self._robot_mode = float(T.ROBOT_MODE_OTHER)
        self._reflexes, self._recovery_requests, self._last_recovery = 0, 0, -np.inf
        kw = dict(queue_size=1, tcp_nodelay=True)
        self._subs = [
            rospy.Subscriber(self._topics.joint_states, JointState, self._on_joints, **kw),
            rospy.Subscriber(self._topics.tip_state, rospy.AnyMsg, self._on_tip, **kw),
            rospy.Subscriber(self._topics.robot_state, rospy.AnyMsg, self._on_robot_state, **kw),
        ]
        self._link = make_command_link(cfg.transport, self._topics)
        self._master_lost: str | None = None
        self._master_watch = threading.Thread(target=self._watch_master, name="ros-master-health", daemon=True)
        self._master_watch.start()
        self._wait_for_first_state()

    def _watch_master(self) -> None:
        # Its own thread: an XML-RPC call may block for its timeout, which neither loop can afford.
        from communicators.franka.ros.ros_master import master_is_up

        cfg = self.config
        last_answer = time.monotonic()
        while not self._stop_event.wait(cfg.master_check_period):
            # A dead master refuses at once; a slow one (starved on a loaded machine) may take up
            # to master_timeout to answer and still counts as alive.
            if master_is_up(cfg.master_uri, timeout=cfg.master_timeout):
                last_answer = time.monotonic()
            elif time.monotonic() - last_answer > cfg.master_timeout:
                self._master_lost = (
                    f"FrankaROSCommunicator: the ROS master at {cfg.master_uri} has not answered for "
                    f"{time.monotonic() - last_answer:.1f} s (master_timeout {cfg.master_timeout} s); the arm "
                    "was commanded to zero velocity. Restart the master (roscore / franka_ros_interface) and the run"
                )
                return

    def _wait_for_first_state(self) -> None:
        deadline = time.monotonic() + self.config.connect_timeout
        with self._cond:
            while self._joint_msg is None or self._tip_pose is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = [t for t, v in ((self._topics.joint_states, self._joint_msg),
                                              (self._topics.tip_state, self._tip_pose)) if v is None]
                    raise CommunicatorError(
                        f"FrankaROSCommunicator: no message on {missing} within "
                        f"{self.config.connect_timeout} s from master {self.config.master_uri}; "
                        "is franka_ros_interface (or the sim bridge) running in namespace "
                        f"{self.config.namespace!r}?"
                    )
                self._cond.wait(timeout=min(left, 0.1))
        # Commands published before the motion controller has connected would be lost.
        while not self._link.connected():
            if time.monotonic() > deadline:
                raise CommunicatorError(
                    f"FrankaROSCommunicator: nothing subscribes to {self._topics.joint_commands} "
                    f"within {self.config.connect_timeout} s; is franka_ros_interface's motion "
                    "controller running?"
                )
            time.sleep(0.01)

    def close_device(self) -> None:
        rospy = getattr(self, "_rospy", None)
        if rospy is None:
            return
        link = getattr(self, "_link", None)
        if link is not None:
            link.send_velocity(np.zeros(7))  # leave the arm commanded to stand still
            time.sleep(0.05)  # rospy sends from its own thread; let the zero leave first
            link.close()
        for sub in getattr(self, "_subs", []):
            sub.unregister()
        rospy.signal_shutdown("FrankaROSCommunicator closed")

    # rospy callbacks (rospy's threads): store, notify, return quickly.
    def _on_joints(self, msg) -> None:  # noqa: ANN001 - sensor_msgs/JointState
        recv = time.monotonic()
        with self._cond:
            self._joint_msg, self._joint_recv = msg, recv
            self._joint_seq += 1
            self._cond.notify_all()

    def _on_tip(self, msg) -> None:  # noqa: ANN001 - AnyMsg carrying an EndPointState
        cls = self._decoder(msg)
        tip = cls().deserialize(msg._buff)
        with self._cond:
            self._tip_pose = np.asarray(tip.O_T_EE, dtype=np.float64).reshape(4, 4, order="F")

    def _on_robot_state(self, msg) -> None:  # noqa: ANN001 - AnyMsg carrying a RobotState
        state = self._decoder(msg)().deserialize(msg._buff)
        mode = int(state.robot_mode)
        with self._cond:
            if mode == T.ROBOT_MODE_REFLEX and self._robot_mode != T.ROBOT_MODE_REFLEX:
                self._reflexes += 1
            self._robot_mode = float(mode)

    def _decoder(self, msg) -> type:  # noqa: ANN001
        # Decode with the publisher's own definition: franka_msgs/Errors differs across
        # franka_ros releases, which changes RobotState's md5 and would block a typed subscriber.
        from communicators.franka.ros.msg_loader import class_from_connection_header

        h = msg._connection_header
        return class_from_connection_header(h["type"], h["md5sum"], h["message_definition"])

    def read_sensor(self) -> None:
        with self._cond:
            deadline = time.monotonic() + self.config.state_timeout
            while self._joint_seq == self._seen_seq:
                if self._master_lost is not None:
                    raise CommunicatorError(self._master_lost)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CommunicatorError(
                        f"FrankaROSCommunicator: no joint_states on {self._topics.joint_states} "
                        f"for {self.config.state_timeout * 1e3:.0f} ms; the robot or its ROS node stopped, "
                        "and the arm was commanded to zero velocity"
                    )
                self._cond.wait(timeout=min(left, 0.01))
            if self._master_lost is not None:
                raise CommunicatorError(self._master_lost)
            self._seen_seq = self._joint_seq
            msg, recv, pose = self._joint_msg, self._joint_recv, self._tip_pose
        order = self._joint_order(tuple(msg.name))
        state = np.empty(STATE_DIM)
        state[Q] = [msg.position[i] for i in order]
        state[DQ] = [msg.velocity[i] for i in order]
        state[EE_POS] = pose[:3, 3]
        state[EE_QUAT] = rotmat_to_quat_wxyz(pose[:3, :3])
        # The stamp is the robot's wall clock; move it onto time.monotonic(), never into the future.
        age = time.time() - msg.header.stamp.to_sec()
        stamp = recv - age if 0.0 <= age < 1.0 else recv
        self.sensor_buffer.write(state, timestamp=stamp)
        with self._cond:
            self._q, self._state_time = state[Q].copy(), stamp

    def _joint_order(self, names: tuple[str, ...]) -> list[int]:
        """Indices of joints 1..7 in a JointState's names ("panda_joint1", "fr3_joint1", ...)."""
        if names == getattr(self, "_names", None):
            return self._order
        order = []
        for i in range(1, 8):
            hits = [k for k, n in enumerate(names) if n.endswith(f"joint{i}") and "finger" not in n]
            if len(hits) != 1:
                raise CommunicatorError(
                    f"FrankaROSCommunicator: joint_states names {list(names)} do not name arm "
                    f"joint {i} exactly once (expected names like {T.JOINT_NAMES[i - 1]!r})"
                )
            order.append(hits[0])
        self._names, self._order = names, order
        # Command the joints by the names the robot uses (the arm_id may be "panda" or "fr3").
        self._link.set_joint_names([names[k] for k in order])
        return order

    def send_command(self) -> None:
        data, _, _ = self.actuator_buffer.read_update()
        self._send(data[-1])

    def on_command_timeout(self) -> None:
        if getattr(self, "_link", None) is None:
            return  # the device never opened (the base class also calls this at shutdown)
        self._send(np.zeros(7))

    def _send(self, dq_cmd: np.ndarray) -> None:
        now = time.monotonic()
        with self._cond:
            q, state_time, mode = self._q, self._state_time, self._robot_mode
        # One actuator period early, so the zero has left by state_timeout after the last state.
        stale_after = self.config.state_timeout - 1.0 / self.config.actuator_rate_hz
        if q is None or now - state_time > stale_after or self._master_lost is not None:
            dq = np.zeros(7)  # no fresh state to check the command against, or no master: stand still
        else:
            dq = self._filter.filter(q, dq_cmd)
        if mode in (T.ROBOT_MODE_REFLEX, T.ROBOT_MODE_USER_STOPPED):
            dq = np.zeros(7)  # so the arm does not jump to a stale command when it comes back
        if mode == T.ROBOT_MODE_REFLEX:
            if self.config.auto_recover and now - self._last_recovery >= self.config.recovery_interval:
                self._link.recover()
                self._recovery_requests += 1
                self._last_recovery = now
        self._link.send_velocity(dq)
        stats = np.empty(STATS_DIM)
        stats[STATS_ROBOT_MODE], stats[STATS_REFLEXES] = mode, self._reflexes
        stats[STATS_RECOVERY_REQUESTS] = self._recovery_requests
        stats[STATS_STATE_AGE] = now - state_time if np.isfinite(state_time) else np.inf
        self.stats_buffer.write(stats)

    def stats(self) -> dict[str, float]:
        """The latest stats_buffer values by name (empty before the first actuator tick)."""
        if self.stats_buffer.num_writes == 0:
            return {}
        values = self.stats_buffer.latest()[0]
        return {"robot_mode": float(values[STATS_ROBOT_MODE]),
                "reflexes": float(values[STATS_REFLEXES]),
                "recovery_requests": float(values[STATS_RECOVERY_REQUESTS]),
                "state_age_s": float(values[STATS_STATE_AGE])}

    def close(self, timeout: float = 2.0) -> None:
        """Stop the process (the arm is left commanded to zero velocity) and free the buffers.

        Args:
            timeout: seconds to wait for the child to stop before terminating it.
        """
        super().close(timeout)
        self.stats_buffer.close()


__all__ = ["FrankaROSCommunicator", "FrankaROSConfig", "RosTransport", "RospyCommandLink",
           "STATS_DIM", "STATS_ROBOT_MODE", "STATS_REFLEXES", "STATS_RECOVERY_REQUESTS",
           "STATS_STATE_AGE"]
