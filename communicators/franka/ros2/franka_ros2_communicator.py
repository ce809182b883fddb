"""Franka arm over ROS 2 (franka_ros2 / ros2_control): JointState in, joint velocities out.

Rate: every JointState message becomes one sensor slot (franka_ros2's joint_state_broadcaster
publishes at the controller manager's rate, 1 kHz). Commands go out at `actuator_rate_hz` (100 Hz)
as std_msgs/Float64MultiArray to a JointGroupVelocityController.

Buffers (the layout every arm backend shares, `communicators/franka/state.py`):
    sensor_buffer: float64 (21,) = q (7, rad), dq (7, rad/s), TCP position (3, m, base frame) and
        orientation (4, quaternion w, x, y, z), both computed from q with
        `communicators.franka.kinematics` since JointState carries no pose; timestamp =
        time.monotonic() at which the robot measured the state (the header stamp moved onto the
        monotonic clock).
    actuator_buffer: float64 (7,) joint velocity command, rad/s.

Safety: every command passes the shared `SafetyFilter` (velocity limits, joint limits, workspace
box) on the latest measured q before it is published, re-filtered at every actuator tick.
Watchdogs: no new command for `actuator_timeout` s (100 ms) -> zero velocity is published; no new
joint state for `state_timeout` s (100 ms) -> zero velocity is published and the communicator
fails, so the env raises EnvError. The JointGroupVelocityController keeps its last command for
ever, so these are the only stop: zero is also published on close and when the parent dies.

rclpy lives in the child process only (`ros2_link.py`), with its own context and executor thread.
When ROS 2 comes from a separate venv (`ros2_runtime.py`), the child is spawned (not forked) with
that venv's libraries on LD_LIBRARY_PATH.
"""
from __future__ import annotations

import threading
import time

import numpy as np

from communicators.communicator import Communicator
from communicators.errors import CommunicatorError
from communicators.franka.kinematics import fk, rotmat_to_quat_wxyz
from communicators.franka.ros2 import topics as T
from communicators.franka.ros2.franka_ros2_config import FrankaROS2Config
from communicators.franka.ros2.ros2_runtime import find_ros2_runtime
from communicators.franka.safety import SafetyFilter
from communicators.franka.state import DQ, EE_POS, EE_QUAT, NUM_JOINTS, Q, STATE_DIM

_STAMP_TRUST_S = 1.0
"""A header stamp this far from our wall clock (or in the future) is a clock offset, not an age."""


class FrankaROS2Communicator(Communicator):
    """The Franka arm behind franka_ros2 / ros2_control, as a communicator process.

    Args:
        config: topics, joint names, QoS, domain, rates, watchdogs and safety limits.
        start_method: multiprocessing start method of the child. With ROS 2 in a separate venv
            only "spawn" works (the default then); otherwise any, None meaning the platform's.

    Raises:
        ImportError: ROS 2's rclpy is not installed anywhere this interpreter can use.
        ValueError: a start method that cannot load a separate venv's libraries.
    """

    def __init__(self, config: FrankaROS2Config | None = None, *,
                 start_method: str | None = None) -> None:
        self.config = FrankaROS2Config() if config is None else config
        if not isinstance(self.config, FrankaROS2Config):
            raise ValueError(f"FrankaROS2Communicator needs a FrankaROS2Config, got {type(config).__name__}")
        self.runtime = find_ros2_runtime(self.config.ros2_venv)
        if self.runtime.needs_exec:
            if start_method not in (None, "spawn"):
                raise ValueError(
                    f"start_method={start_method!r}: ROS 2 comes from {self.runtime.venv}, whose C "
                    "libraries a process finds only if it is exec'd with them on LD_LIBRARY_PATH; "
                    "use 'spawn' (or None), or install '.[ros2]' into this interpreter's venv")
            start_method = "spawn"
        super().__init__(
            sensor_args={"shape": (STATE_DIM,), "dtype": np.float64, "buffer_len": 8},
            actuator_args={"shape": (NUM_JOINTS,), "dtype": np.float64, "buffer_len": 2},
            use_sensor=True,
            use_actuator=True,
            sensor_rate_hz=None,  # the sensor loop blocks until the robot's next message
            actuator_rate_hz=self.config.actuator_rate_hz,
            actuator_timeout=self.config.actuator_timeout,
            start_method=start_method,
        )

    def start(self) -> None:
        """Starts the child process (parent process); it connects to the graph in its own time."""
        with self.runtime.exec_environment():
            super().start()

    # ----- hooks (run in the child process) -----

    def open_device(self) -> None:
        self.runtime.activate()
        from communicators.franka.ros2.ros2_link import Ros2ArmLink

        self._filter = SafetyFilter(self.config.safety)
        self._lock = threading.Lock()
        self._q: np.ndarray | None = None
        self._state_recv = -np.inf
        self._seen_seq = 0
        self._names: tuple[str, ...] | None = None
        self._link = Ros2ArmLink(self.config)
        self._connect()

    def _connect(self) -> None:
        from communicators.franka.ros2.ros2_link import describe_missing_controller, describe_missing_state

        cfg, link = self.config, self._link
        deadline = time.monotonic() + cfg.connect_timeout
        got = link.wait_for_state(0, cfg.connect_timeout)
        if got is None:
            why = describe_missing_state(link, cfg.connect_timeout)
            raise CommunicatorError(f"FrankaROS2Communicator: {why}")
        self._joint_order(tuple(got[0].name))  # a wrong joint name fails here, at start
        # Commands published before the controller has matched would be lost.
        while link.command_subscribers() == 0:
            if time.monotonic() > deadline:
                raise CommunicatorError(
                    f"FrankaROS2Communicator: {describe_missing_controller(link, cfg.connect_timeout)}")
            time.sleep(0.01)

    def close_device(self) -> None:
        link = getattr(self, "_link", None)
        if link is None:
            return
        self._link = None
        try:
            link.publish(np.zeros(NUM_JOINTS))  # leave the arm commanded to stand still
        finally:
            link.close()

    def _joint_order(self, names: tuple[str, ...]) -> list[int]:
        if names != self._names:
            try:
                self._order = T.joint_order(names, self.config.joint_names, self._link.joint_states_topic)
            except ValueError as err:
                raise CommunicatorError(f"FrankaROS2Communicator: {err}") from None
            self._names = names
        return self._order

    def read_sensor(self) -> None:
        got = self._link.wait_for_state(self._seen_seq, self.config.state_timeout)
        if got is None:
            self._send(np.zeros(NUM_JOINTS))  # at once, not at the next actuator tick
            if self._stop_event.is_set():
                return  # closing anyway: a robot gone quiet meanwhile is no failure of ours
            raise CommunicatorError(
                f"FrankaROS2Communicator: no JointState on {self._link.joint_states_topic!r} for "
                f"{self.config.state_timeout} s; the robot (joint_state_broadcaster) or its graph "
                "stopped; zero velocity was published")
        msg, recv, self._seen_seq = got
        order = self._joint_order(tuple(msg.name))
        if len(msg.position) != len(msg.name) or len(msg.velocity) != len(msg.name):
            raise CommunicatorError(
                f"FrankaROS2Communicator: the JointState on {self._link.joint_states_topic!r} has "
                f"{len(msg.name)} names, {len(msg.position)} positions and {len(msg.velocity)} "
                "velocities; the arm's state needs a position and a velocity per joint")
        state = np.empty(STATE_DIM)
        state[Q] = np.asarray(msg.position, dtype=np.float64)[order]
        state[DQ] = np.asarray(msg.velocity, dtype=np.float64)[order]
        pos, rot = fk(state[Q])
        state[EE_POS], state[EE_QUAT] = pos, rotmat_to_quat_wxyz(rot)
        # The stamp is the robot's wall clock; move it onto time.monotonic(), never into the future.
        age = time.time() - (msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec)
        stamp = recv - age if 0.0 <= age < _STAMP_TRUST_S else recv
        self.sensor_buffer.write(state, timestamp=stamp)
        with self._lock:
            self._q, self._state_recv = state[Q].copy(), recv

    def send_command(self) -> None:
        data, _, _ = self.actuator_buffer.read_update()
        self._send(data[-1])

    def on_command_timeout(self) -> None:
        if getattr(self, "_link", None) is None:
            return  # the device never opened, or is closed (the base class calls this at shutdown)
        self._send(np.zeros(NUM_JOINTS))

    def _send(self, dq_cmd: np.ndarray) -> None:
        with self._lock:
            q, state_recv = self._q, self._state_recv
        if q is None or time.monotonic() - state_recv > self.config.state_timeout:
            dq = np.zeros(NUM_JOINTS)  # no fresh state to check the command against: stand still
        else:
            dq = self._filter.filter(q, dq_cmd)
        link = self._link
        if link is not None:
            link.publish(dq)


__all__ = ["FrankaROS2Communicator", "FrankaROS2Config"]
