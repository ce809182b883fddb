"""The 1 kHz joint-velocity loop on one pylibfranka connection: state out, shaped commands in.

Each cycle: `readOnce` (blocks until the robot's next 1 ms state packet), publish the state in the
shared Franka layout (`communicators/franka/state.py`) with timestamp = time.monotonic() when the
packet was read, pick up the newest env command from the command buffer, make the target safe
with the shared `SafetyFilter` at the current joint angles, shape it with `VelocityShaper`
(velocity, acceleration and jerk limits; stale command -> ramp to zero) and `writeOnce` it.

A reflex (the robot aborts the motion, e.g. `joint_motion_generator_acceleration_discontinuity`
or `communication_constraints_violation`) is logged with the robot's error names, counted in
the stats buffer, and recovered from with `automatic_error_recovery()`; the motion restarts from
rest. pylibfranka is imported here only, so this module is loaded only in the communicator's
child process (and pylibfranka cannot share a process with franky).

Stats buffer slot: float64 (STATS_DIM,), indexed by the STATS_* constants below.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from communicators.errors import DeviceError
from communicators.franka.kinematics import rotmat_to_quat_wxyz
from communicators.franka.safety import SafetyFilter
from communicators.franka.state import DQ, EE_POS, EE_QUAT, Q, STATE_DIM
from communicators.franka.libfranka.libfranka_config import LibfrankaConfig
from communicators.franka.libfranka.velocity_shaper import VelocityShaper
from communicators.realtime import enable_realtime
from communicators.shared_buffer import SharedBuffer

logger = logging.getLogger(__name__)

STATS_DIM = 9
STATS_CYCLES = 0                # control cycles run
STATS_MISSED_CYCLES = 1         # 1 ms cycles lost between two reads (robot time)
STATS_REFLEXES = 2              # reflexes recovered from, all kinds
STATS_MOTION_LIMIT_REFLEXES = 3  # of which motion generator / limit violations
STATS_COMM_REFLEXES = 4         # of which communication_constraints_violation
STATS_WATCHDOG = 5              # 1.0 while the command is stale and the arm ramps to / stays at rest
STATS_PICKUP_LATENCY = 6        # s from the newest command's timestamp to the loop taking it (it
                                # reaches the robot with the next cycle's answer, <= 1 ms later)
STATS_RECOVERY_TIME = 7         # s the last recovery took
STATS_RECOVERING = 8            # 1.0 while an automatic recovery runs (the state comes slower then)

_REALTIME_FLAG = Path("/sys/kernel/realtime")


def kernel_is_realtime() -> bool:
    """True on a PREEMPT_RT kernel (the check libfranka itself makes)."""
    try:
        return _REALTIME_FLAG.read_text().strip() == "1"
    except OSError:
        return False


def state_vector(robot_state) -> np.ndarray:
    """A pylibfranka RobotState in the shared layout: float64 (21,) q, dq, ee_pos, ee_quat.

    The end effector is O_T_EE, the frame the robot is configured with in Desk (the Franka Hand's
    TCP on a real FR3 with a hand; franka-sim reports its hand-less link-7 frame instead).
    """
    out = np.empty(STATE_DIM)
    out[Q] = robot_state.q
    out[DQ] = robot_state.dq
    pose = np.asarray(robot_state.O_T_EE)
    out[EE_POS] = pose[12:15]
    out[EE_QUAT] = rotmat_to_quat_wxyz(pose.reshape(4, 4).T[:3, :3])  # column-major 4x4
    return out


class LibfrankaControlLoop:
    """One robot connection and its joint-velocity loop; run `cycle()` back to back.

    Args:
        config: robot address, limits and timeouts.
        state_buffer: float64 (21,) slots; receives the state every cycle.
        command_buffer: float64 (7,) slots; the env's joint-velocity commands (rad/s).
        stats_buffer: float64 (STATS_DIM,) slots; counters, see the module docstring.
    """

    def __init__(self, config: LibfrankaConfig, state_buffer: SharedBuffer,
                 command_buffer: SharedBuffer, stats_buffer: SharedBuffer) -> None:
        self.config = config
        self._state_buffer, self._command_buffer, self._stats_buffer = state_buffer, command_buffer, stats_buffer
        self._shaper = VelocityShaper(config.shaper)
        self._safety = SafetyFilter(config.safety)
        self._stats = np.zeros(STATS_DIM)
        self._commands_seen = 0
        self._safe_target = np.zeros(7)
        self._robot = None
        self._control = None  # pylibfranka ActiveControlBase while a motion runs
        self._franka = None   # the pylibfranka module
        self._errors: tuple = ()
        self._stop_requested = False

    # ----- life cycle -----

    def open(self) -> None:
        """Connect to the robot, recover it if it is in a reflex, and start the velocity motion.

        Raises:
            DeviceError: the robot cannot be reached or refuses the motion.
        """
        import pylibfranka  # here, not at module level: only the child process needs it

        self._franka = pylibfranka
        # pylibfranka's exceptions do not share a base class (FrankaException is not theirs).
        self._errors = (pylibfranka.FrankaException, pylibfranka.ControlException,
                        pylibfranka.CommandException, pylibfranka.NetworkException,
                        pylibfranka.InvalidOperationException, pylibfranka.RealtimeException)
        cfg = self.config
        if cfg.require_realtime_kernel:
            realtime = pylibfranka.RealtimeConfig.kEnforce
        else:
            realtime = pylibfranka.RealtimeConfig.kIgnore
            if not kernel_is_realtime():
                logger.warning(
                    "FrankaLibfranka(%s): the kernel is not real-time (no PREEMPT_RT); running the "
                    "1 kHz loop anyway (RealtimeConfig.kIgnore). Expect communication_constraints_"
                    "violation reflexes under load; use a PREEMPT_RT kernel on a real robot.",
                    cfg.robot_ip,
                )
        # This thread runs every cycle from here on; a configured priority that is refused is an error.
        enable_realtime(cfg.realtime_priority, on_refusal="raise", owner=f"FrankaLibfranka({cfg.robot_ip})",
                        fix="set LibfrankaConfig.realtime_priority=None")
        try:
            self._robot = pylibfranka.Robot(cfg.robot_ip, realtime)
        except self._errors as exc:
            raise DeviceError(
                f"FrankaLibfranka({cfg.robot_ip}): cannot connect: {exc}. Check the IP, that FCI is "
                "enabled in Desk and the brakes are open"
            ) from exc
        state = self._robot.read_once()
        self._publish(state, time.monotonic())
        if state.robot_mode == pylibfranka.RobotMode.Reflex:
            self._recover(reason="robot was in a reflex at connect")
        else:
            self._start_motion()

    def cycle(self) -> None:
        """One 1 ms control cycle (blocks until the robot's next state packet).

        Only the shaper step lies between reading the state and answering it, so the answer
        leaves within tens of microseconds; publishing the state, taking a new command and the
        safety filter (which needs the joint angles) run after the answer, while waiting for the
        next packet, and their target is used from the next cycle on (1 ms later).
        """
        try:
            state, period = self._control.readOnce()
            read_time = time.monotonic()
            seconds = period.to_sec()
            # Limit against what the robot applied (dq_d, ddq_d), one 1 ms step, as libfranka's
            # own rate limiter does: robust to late and extrapolated cycles.
            self._shaper.sync(state.dq_d, state.ddq_d)
            dq = self._shaper.step(self._safe_target)
            self._control.writeOnce(self._franka.JointVelocities(dq.tolist()))
        except self._franka.ControlException as exc:
            self._on_reflex(exc)
            return
        except self._franka.NetworkException as exc:
            raise DeviceError(f"FrankaLibfranka({self.config.robot_ip}): lost the connection: {exc}") from exc
        self._publish(state, read_time)
        self._update_target(np.asarray(state.q), read_time, seconds)

    def close(self) -> None:
        """Ramp the arm to rest (at most `stop_timeout` s), finish the motion, disconnect."""
        if self._control is not None:
            deadline = time.monotonic() + self.config.stop_timeout
            try:
                while time.monotonic() < deadline:
                    state, _ = self._control.readOnce()
                    self._publish(state, time.monotonic())
                    self._shaper.sync(state.dq_d, state.ddq_d)
                    dq = self._shaper.step(np.zeros(7))
                    if not np.any(dq) and np.max(np.abs(state.dq)) < 1e-3:
                        break
                    self._control.writeOnce(self._franka.JointVelocities(dq))
                finished = self._franka.JointVelocities([0.0] * 7)
                finished.motion_finished = True
                self._control.writeOnce(finished)
            except Exception as exc:  # a reflex or a lost connection: the robot has stopped itself
                logger.warning("FrankaLibfranka(%s): motion ended while stopping: %s", self.config.robot_ip, exc)
            self._control = None
        if self._robot is not None:
            try:
                self._robot.stop()
            except Exception as exc:  # best effort: the connection may already be gone
                logger.warning("FrankaLibfranka(%s): stop failed: %s", self.config.robot_ip, exc)
            self._robot = None

    def request_stop(self) -> None:
        """Ask a running recovery to give up, so shutdown does not wait out `recovery_timeout`.

        Thread-safe (one flag); `close()` then ramps down whatever motion is running.
        """
        self._stop_requested = True

    # ----- internals -----

    def _publish(self, state, now: float) -> None:
        self._state_buffer.write(state_vector(state), timestamp=now)

    def _update_target(self, q: np.ndarray, now: float, period: float) -> None:
        stats = self._stats
        writes = self._command_buffer.num_writes
        if writes != self._commands_seen:
            command, stamp, _ = self._command_buffer.latest()
            self._shaper.set_command(command, stamp)
            self._commands_seen = writes
            stats[STATS_PICKUP_LATENCY] = time.monotonic() - stamp
        # The safety filter sees the raw target (zero when stale), the shaper smooths what the
        # filter allows.
        self._safe_target = self._safety.filter(q, self._shaper.target(now))
        stats[STATS_CYCLES] += 1
        stats[STATS_MISSED_CYCLES] += max(round(period * 1000) - 1, 0)
        stats[STATS_WATCHDOG] = float(self._shaper.is_stale(now))
        if stats[STATS_CYCLES] % 10 == 0:  # 100 Hz is plenty for counters
            self._stats_buffer.write(stats, timestamp=now)

    def _start_motion(self) -> None:
        state = self._robot.read_once()
        # The first command must continue from the velocity the robot last commanded (dq_d).
        self._shaper.reset(np.asarray(state.dq_d))
        self._safe_target = np.zeros(7)  # until the first cycle has run the safety filter
        self._control = self._robot.start_joint_velocity_control(self._franka.ControllerMode.JointImpedance)

    def _on_reflex(self, exc: Exception) -> None:
        message = str(exc)
        self._stats[STATS_REFLEXES] += 1
        if "communication_constraints_violation" in message:
            self._stats[STATS_COMM_REFLEXES] += 1
        elif "motion_generator" in message or "limits_violation" in message or "velocity_violation" in message:
            self._stats[STATS_MOTION_LIMIT_REFLEXES] += 1
        self._control = None  # the aborted motion must be released before recovery
        self._stats_buffer.write(self._stats, timestamp=time.monotonic())  # the parent sees it now
        self._recover(reason=message)

    def _recover(self, reason: str) -> None:
        # Published at once: the parent does not count a recovery's slow state as a lost robot.
        self._stats[STATS_RECOVERING] = 1.0
        self._stats_buffer.write(self._stats, timestamp=time.monotonic())
        try:
            self._recover_until_done(reason)
        finally:
            self._stats[STATS_RECOVERING] = 0.0
            self._stats_buffer.write(self._stats, timestamp=time.monotonic())

    def _recover_until_done(self, reason: str) -> None:
        cfg = self.config
        logger.warning("FrankaLibfranka(%s): reflex, recovering automatically: %s", cfg.robot_ip, reason)
        start = time.monotonic()
        attempts = 0
        while not self._stop_requested:
            attempts += 1
            try:
                self._robot.automatic_error_recovery()
                self._start_motion()
                break
            except self._errors as exc:
                if time.monotonic() - start > cfg.recovery_timeout:
                    raise DeviceError(
                        f"FrankaLibfranka({cfg.robot_ip}): automatic error recovery failed for "
                        f"{cfg.recovery_timeout} s ({attempts} attempts), last error: {exc}. Release "
                        "the user stop / check Desk, then restart"
                    ) from exc
                # Keep the state flowing while waiting (e.g. user stop pressed): the env sees it.
                self._publish(self._robot.read_once(), time.monotonic())
                time.sleep(0.1)
        else:
            logger.warning("FrankaLibfranka(%s): recovery abandoned: shutting down", cfg.robot_ip)
            return
        self._stats[STATS_RECOVERY_TIME] = time.monotonic() - start
        self._stats_buffer.write(self._stats, timestamp=time.monotonic())
        logger.warning("FrankaLibfranka(%s): recovered after %.3f s (%d reflexes so far)",
                       cfg.robot_ip, self._stats[STATS_RECOVERY_TIME], int(self._stats[STATS_REFLEXES]))
