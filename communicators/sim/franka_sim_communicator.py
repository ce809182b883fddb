"""Simulated Franka arm: MuJoCo physics in its own process, locked to wall-clock time.

Device: `FrankaPhysics` (communicators/sim/physics/franka_physics.py), stepped at its timestep (0.002 s by
default) in small batches. The base class's sensor loop wakes the batches on the deadline grid
of the project's one Pacer (communicators/realtime.py) at `publish_rate_hz`; each batch runs as
many physics steps as wall time says are due, so simulated time tracks wall time (real-time
factor 1.0) without drifting, and a late wake-up is caught up by the next batch.

Buffers:
    sensor_buffer: float64 (21,), the arm's state in the shared layout of
        communicators/franka/state.py (q rad, dq rad/s, TCP position m, TCP quaternion wxyz),
        published after every batch (at `publish_rate_hz`, 500 Hz by default). Timestamp: the
        time.monotonic() instant the simulated state corresponds to.
    actuator_buffer: float64 (7,), joint-velocity command, rad/s. Every batch passes the latest
        command through `SafetyFilter` (joint position/velocity limits, workspace box) with the
        current joint angles, so a held command is still stopped at a limit.
    stats_buffer: float64 (3,) = (real-time factor since start, worst batch lateness in the last
        `stats_period` in ms, physics steps since start), written every `stats_period` seconds.

Watchdog: the Communicator base's (communicators/watchdog.py): a command older than
`watchdog_timeout` (0.1 s by default; age measured from the timestamp the writer gave it) is
replaced by zero velocity, so the arm stops when its controller stops sending.
"""
from __future__ import annotations

import multiprocessing
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from communicators.communicator import DEFAULT_START_METHOD, Communicator
from communicators.franka.kinematics import NUM_JOINTS
from communicators.franka.safety import SafetyFilter, SafetyLimits
from communicators.franka.state import STATE_DIM
from communicators.realtime import enable_realtime
from communicators.shared_buffer import SharedBuffer
from communicators.sim.physics.franka_physics import FrankaPhysics, FrankaPhysicsConfig

STATS_DIM = 3
STATS_RTF, STATS_LATENESS_MS, STATS_STEPS = 0, 1, 2


def check_start_method(method: str, owner: str) -> None:
    """Raise ValueError unless `method` is a start method this platform has."""
    methods = multiprocessing.get_all_start_methods()
    if method not in methods:
        raise ValueError(f"{owner}.start_method={method!r}; choose one of {methods}")


@dataclass
class FrankaSimConfig:
    """Settings of the simulated arm's process.

    Attributes:
        physics: the MuJoCo model (timestep, servo gain, initial joint angles).
        safety: limits the safety filter enforces on every command.
        publish_rate_hz: batches (and state publications) per second, Hz; at most 1 / timestep.
        watchdog_timeout: a command older than this many seconds becomes zero velocity.
        max_lag: s; if the process falls further behind wall time than this (a stall), it skips
            the lost time instead of fast-forwarding, and the real-time factor shows the loss.
        stats_period: s between writes of stats_buffer.
        sensor_buffer_len: slots kept in sensor_buffer (window the env can read).
        fifo_priority: None keeps the default scheduler; 1..99 runs the physics thread under
            SCHED_FIFO at that priority (needs root or CAP_SYS_NICE). dependencies.md measured
            deadline-sleep p99 errors of 3-4 ms with the default scheduler and 40-80 us with FIFO.
        start_method: how the child process starts: "forkserver" or "spawn"
            (`communicators.communicator.DEFAULT_START_METHOD` by default, never fork: see there),
            or "fork" explicitly.
    """

    physics: FrankaPhysicsConfig = field(default_factory=FrankaPhysicsConfig)
    safety: SafetyLimits = field(default_factory=SafetyLimits)
    publish_rate_hz: float = 500.0
    watchdog_timeout: float = 0.1
    max_lag: float = 0.05
    stats_period: float = 0.1
    sensor_buffer_len: int = 16
    fifo_priority: int | None = None
    start_method: str = DEFAULT_START_METHOD

    def __post_init__(self) -> None:
        if not isinstance(self.physics, FrankaPhysicsConfig):
            raise TypeError(f"FrankaSimConfig.physics must be a FrankaPhysicsConfig, got {self.physics!r}")
        if not isinstance(self.safety, SafetyLimits):
            raise TypeError(f"FrankaSimConfig.safety must be a SafetyLimits, got {self.safety!r}")
        max_rate = 1.0 / self.physics.timestep
        if not 1.0 <= self.publish_rate_hz <= max_rate + 1e-9:
            raise ValueError(
                f"FrankaSimConfig.publish_rate_hz={self.publish_rate_hz} must be in [1, {max_rate:g}] Hz: "
                f"the state cannot change faster than the physics step {self.physics.timestep} s"
            )
        for name in ("watchdog_timeout", "max_lag", "stats_period"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"FrankaSimConfig.{name}={getattr(self, name)} s must be positive")
        if self.fifo_priority is not None and not (
            isinstance(self.fifo_priority, int) and 1 <= self.fifo_priority <= 99
        ):
            raise ValueError(
                f"FrankaSimConfig.fifo_priority={self.fifo_priority!r} must be None or an int in 1..99"
            )
        check_start_method(self.start_method, "FrankaSimConfig")
        if not isinstance(self.sensor_buffer_len, int) or self.sensor_buffer_len < 1:
            raise ValueError(
                f"FrankaSimConfig.sensor_buffer_len={self.sensor_buffer_len!r} must be a positive integer"
            )


class FrankaSimCommunicator(Communicator):
    """The simulated Franka arm as a communicator (see the module docstring for the buffers).

    Args:
        config: settings; None gives the defaults.
    """

    def __init__(self, config: FrankaSimConfig | None = None) -> None:
        self.config = config if config is not None else FrankaSimConfig()
        super().__init__(
            sensor_args={"shape": (STATE_DIM,), "dtype": np.float64,
                         "buffer_len": self.config.sensor_buffer_len},
            actuator_args={"shape": (NUM_JOINTS,), "dtype": np.float64, "buffer_len": 2},
            use_sensor=True,
            use_actuator=True,
            sensor_rate_hz=self.config.publish_rate_hz,  # one batch of physics steps per period
            actuator_rate_hz=self.config.publish_rate_hz,
            actuator_timeout=self.config.watchdog_timeout,
            start_method=self.config.start_method,
            expected_period_s=1.0 / self.config.publish_rate_hz,  # one state per physics batch
        )
        self.stats_buffer = SharedBuffer(shape=(STATS_DIM,), dtype=np.float64, buffer_len=2)

    # ----- hooks (run in the child process) -----

    def open_device(self) -> None:
        # MuJoCo state lives in the child: nothing of it is shared with the parent.
        self._physics = FrankaPhysics(self.config.physics)
        self._filter = SafetyFilter(self.config.safety)
        self._command_lock = threading.Lock()
        self._command = np.zeros(NUM_JOINTS)
        self._steps = 0
        self._fifo_pending = self.config.fifo_priority is not None
        self._t0 = time.monotonic()  # wall time of simulated time zero
        self._lost = 0.0  # wall time skipped after stalls, s
        self._worst_lateness = 0.0
        self._next_stats = self._t0
        self._publish(self._t0)

    def close_device(self) -> None:
        physics = getattr(self, "_physics", None)
        if physics is not None:
            physics.set_joint_velocity(np.zeros(NUM_JOINTS))

    def send_command(self) -> None:
        if not self.actuator_buffer.updated():
            return  # the command held is still the newest (commands come at the env's 25 Hz, ticks at 500)
        data, _, _ = self.actuator_buffer.read_update()
        command = np.array(data[-1], dtype=np.float64)
        if not np.all(np.isfinite(command)):
            command = np.zeros(NUM_JOINTS)  # never pass NaN to the arm; the filter would too
        with self._command_lock:
            self._command = command

    def on_command_timeout(self) -> None:
        if not hasattr(self, "_command_lock"):  # open_device failed: there is no arm to stop
            return
        with self._command_lock:
            self._command = np.zeros(NUM_JOINTS)

    def read_sensor(self) -> None:
        """One batch, at its deadline: step the physics up to wall time, publish."""
        if self._fifo_pending:  # in the sensor thread: only the physics thread gets FIFO
            self._fifo_pending = False
            enable_realtime(self.config.fifo_priority, on_refusal="raise", owner="FrankaSimCommunicator",
                            fix="set FrankaSimConfig.fifo_priority=None")
        now = time.monotonic()
        if self.sensor_pacer is not None:
            self._worst_lateness = max(self._worst_lateness, self.sensor_pacer.lateness)
        timestep = self._physics.timestep
        behind = (now - self._t0 - self._lost) - self._steps * timestep
        if behind > self.config.max_lag:
            # A stall (machine overloaded, process stopped): skip the lost time rather than
            # fast-forward the arm; the real-time factor records it.
            skipped = behind - self.config.max_lag
            self._lost += skipped
            behind -= skipped
        due = int(behind / timestep + 1e-9)
        if due > 0:  # none due: an early wake-up; the last published state is still current
            self._apply_command()
            self._physics.step(due)
            self._steps += due
            self._publish(now)

    # ----- helpers (child) -----

    def _apply_command(self) -> None:
        with self._command_lock:
            command = self._command
        self._physics.set_joint_velocity(self._filter.filter(self._physics.joint_positions(), command))

    def _publish(self, now: float) -> None:
        sim_wall_time = self._t0 + self._lost + self._steps * self._physics.timestep
        self.sensor_buffer.write(self._physics.state().to_array(), timestamp=sim_wall_time)
        if now >= self._next_stats:
            elapsed = now - self._t0
            rtf = self._steps * self._physics.timestep / elapsed if elapsed > 0 else 1.0
            self.stats_buffer.write(
                np.array([rtf, 1e3 * self._worst_lateness, float(self._steps)]), timestamp=now
            )
            self._worst_lateness = 0.0
            self._next_stats = now + self.config.stats_period

    # ----- parent side -----

    def stats(self) -> dict[str, float]:
        """Latest figures from the child: real-time factor, lateness (ms), physics steps.

        Returns:
            {'real_time_factor': ..., 'lateness_ms': ..., 'physics_steps': ...}; NaNs before the
            child first reports.
        """
        if self.stats_buffer.num_writes == 0:
            return {"real_time_factor": np.nan, "lateness_ms": np.nan, "physics_steps": np.nan}
        data, _, _ = self.stats_buffer.latest()
        return {
            "real_time_factor": float(data[STATS_RTF]),
            "lateness_ms": float(data[STATS_LATENESS_MS]),
            "physics_steps": float(data[STATS_STEPS]),
        }

    def close(self, timeout: float = 2.0) -> None:
        """Stop the process (its last act zeroes the arm's velocity) and free the stats buffer.

        Args:
            timeout: seconds to wait for a graceful exit before terminating the child.
        """
        super().close(timeout)
        if os.getpid() == self._owner_pid:
            self.stats_buffer.close()
