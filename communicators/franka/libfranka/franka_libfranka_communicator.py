"""Franka FR3 through libfranka (pylibfranka): 1 kHz state out, 25 Hz velocity commands in.

The robot's joint-velocity control loop runs at 1 kHz in a thread of this communicator's child
process (`LibfrankaControlLoop`): every millisecond it publishes the state and sends a velocity that the
`VelocityShaper` moves toward the env's latest command within the FR3's acceleration and jerk
limits, after the shared `SafetyFilter` (workspace box, joint limits, velocity limits).

Buffers (same layout as the sim and ROS backends):
    sensor_buffer:   float64 (21,) per slot, `communicators/franka/state.py` layout (q rad, dq rad/s,
                     ee_pos m, ee_quat wxyz), about 1000 slots/s; timestamp = time.monotonic() when
                     the robot's state packet was read.
    actuator_buffer: float64 (7,) joint-velocity command, rad/s; timestamp = when it was issued.
    stats_buffer:    float64 (STATS_DIM,) counters (reflexes, missed cycles, watchdog, ...), see
                     `libfranka_control_loop`; read them with `stats()` / `reflex_count()`.

Lost state: `raise_if_failed()` (which the env calls every step) fails once the newest state is
older than `config.state_timeout` (100 ms) outside an automatic recovery; the env's own freshness
check of the arm's state (at most 100 ms) stops the arm at the same time. libfranka alone took
about 2 s to report a robot that stopped answering.

Watchdog: a command older than `config.shaper.command_timeout` (default 100 ms) is replaced by zero
velocity, reached along the jerk-limited ramp (about 0.2 s from 0.5 rad/s with the defaults), not by
a step. Reflexes are recovered from automatically (`automatic_error_recovery`), logged with the
robot's error names, and counted.

Requires pylibfranka (libfranka >= 0.10, so an FR3; a Panda/FER needs libfranka < 0.10: use the
ROS backend). Try it without a robot against franka-sim: see `franka_sim_process.py`.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from communicators.communicator import Communicator
from communicators.errors import CommunicatorError, DeviceError
from communicators.franka.state import STATE_DIM
from communicators.franka.libfranka.libfranka_config import LibfrankaConfig
from communicators.franka.libfranka.libfranka_control_loop import (
    STATS_COMM_REFLEXES,
    STATS_CYCLES,
    STATS_DIM,
    STATS_MISSED_CYCLES,
    STATS_MOTION_LIMIT_REFLEXES,
    STATS_PICKUP_LATENCY,
    STATS_RECOVERING,
    STATS_RECOVERY_TIME,
    STATS_REFLEXES,
    STATS_WATCHDOG,
    LibfrankaControlLoop,
)
from communicators.shared_buffer import SharedBuffer

FrankaLibfrankaConfig = LibfrankaConfig
"""The same class under the name the env's backend table uses."""



@dataclass(frozen=True)
class LibfrankaStats:
    """Counters of the 1 kHz loop, as last published (about every 10 ms).

    Attributes:
        cycles: control cycles run.
        missed_cycles: 1 ms robot cycles that passed without a command from us.
        reflexes: reflexes recovered from automatically, all kinds.
        motion_limit_reflexes: of which joint motion generator / limit violations.
        comm_reflexes: of which communication_constraints_violation (the loop was late 20 times).
        watchdog_active: the command is stale and the arm ramps to (or stays at) rest.
        pickup_latency: s from the newest command's timestamp to the cycle that took it.
        last_recovery_time: s the last automatic recovery took.
        recovering: an automatic recovery is running now.
    """

    cycles: int
    missed_cycles: int
    reflexes: int
    motion_limit_reflexes: int
    comm_reflexes: int
    watchdog_active: bool
    pickup_latency: float
    last_recovery_time: float
    recovering: bool = False


class FrankaLibfrankaCommunicator(Communicator):
    """The FR3 arm over libfranka; see the module docstring for buffers and behaviour.

    Args:
        config: robot address, command shaping, safety limits. There is no default: the robot's
            IP address must be given.
        start_method: "fork", "spawn" or "forkserver"; None:
            `communicators.communicator.DEFAULT_START_METHOD` (never fork).
    """

    def __init__(self, config: LibfrankaConfig, start_method: str | None = None) -> None:
        if config is None:
            raise ValueError(
                "the libfranka backend needs the robot's address: pass "
                "LibfrankaConfig(robot_ip='172.16.0.2') (your FR3's IP, see Desk), e.g. as "
                "robot_config of the env"
            )
        if not isinstance(config, LibfrankaConfig):
            raise ValueError(
                f"FrankaLibfrankaCommunicator needs a LibfrankaConfig, got {type(config).__name__}"
            )
        self.config = config
        super().__init__(
            sensor_args={"shape": (STATE_DIM,), "dtype": np.float64, "buffer_len": config.state_buffer_len},
            actuator_args={"shape": (7,), "dtype": np.float64, "buffer_len": 4},
            use_sensor=True,
            use_actuator=True,
            sensor_rate_hz=20.0,    # health check only: the 1 kHz loop has its own thread
            actuator_rate_hz=10.0,  # commands are read by the 1 kHz loop, not by the actuator thread
            actuator_timeout=None,  # the shaper's watchdog ramps to zero; a step would cause a reflex
            start_method=start_method,
            expected_period_s=0.001,  # the robot's 1 kHz state, published by the control loop
        )
        self.stats_buffer = SharedBuffer(shape=(STATS_DIM,), dtype=np.float64, buffer_len=4)
        self._control_loop: LibfrankaControlLoop | None = None
        self._control_thread: threading.Thread | None = None

    # ----- hooks (child process) -----

    def open_device(self) -> None:
        # The connection lives in the child: a libfranka socket must not cross a fork. The 1 kHz
        # loop gets a thread of its own that runs from connect to the final ramp-down without a
        # pause: the robot aborts a motion after 20 ms without commands, so the loop must not wait
        # for the base class to stop and join its sensor and actuator threads at shutdown.
        self._control_loop = LibfrankaControlLoop(self.config, self.sensor_buffer, self.actuator_buffer, self.stats_buffer)
        self._control_error: BaseException | None = None
        self._stop_control = threading.Event()
        opened = threading.Event()
        self._control_thread = threading.Thread(target=self._run_control_loop, args=(opened,), name="libfranka-1kHz", daemon=True)
        self._control_thread.start()
        opened.wait()
        if self._control_error is not None:
            raise self._control_error

    def _run_control_loop(self, opened: threading.Event) -> None:
        try:
            self._control_loop.open()
            opened.set()
            while not self._stop_control.is_set():
                self._control_loop.cycle()
        except BaseException as exc:  # handed to the sensor thread, which reports it to the parent
            self._control_error = exc
        finally:
            opened.set()
            self._control_loop.close()  # ramps to rest, then finishes the motion

    def close_device(self) -> None:
        if getattr(self, "_control_thread", None) is not None:
            self._stop_control.set()
            self._control_loop.request_stop()
            self._control_thread.join(self.config.stop_timeout + 5.0)
            self._control_thread = None

    def read_sensor(self) -> None:
        # The state is published by the 1 kHz loop; this 20 Hz check only brings its failure
        # (e.g. recovery impossible, connection lost) to the parent.
        thread = self._control_thread
        if self._control_error is not None:
            raise self._control_error
        if thread is not None and not thread.is_alive():
            raise DeviceError(f"FrankaLibfranka({self.config.robot_ip}): the 1 kHz control loop stopped")

    def send_command(self) -> None:
        # Commands are taken from actuator_buffer by the 1 kHz loop itself, so that a new command
        # reaches the robot in the next millisecond, not at this thread's pace.
        pass

    # ----- parent side -----

    def stats(self) -> LibfrankaStats:
        """The loop's counters (all zero before the loop first published them)."""
        if self.stats_buffer.num_writes == 0:
            values = np.zeros(STATS_DIM)
        else:
            values = self.stats_buffer.latest()[0]
        return LibfrankaStats(
            cycles=int(values[STATS_CYCLES]),
            missed_cycles=int(values[STATS_MISSED_CYCLES]),
            reflexes=int(values[STATS_REFLEXES]),
            motion_limit_reflexes=int(values[STATS_MOTION_LIMIT_REFLEXES]),
            comm_reflexes=int(values[STATS_COMM_REFLEXES]),
            watchdog_active=bool(values[STATS_WATCHDOG]),
            pickup_latency=float(values[STATS_PICKUP_LATENCY]),
            last_recovery_time=float(values[STATS_RECOVERY_TIME]),
            recovering=bool(values[STATS_RECOVERING]),
        )

    def raise_if_failed(self) -> None:
        """Raises CommunicatorError if the child failed or died, or if the robot's state stopped coming.

        The state check runs here, in the parent: while the robot or the network is gone,
        pylibfranka's readOnce blocks in the child without releasing the GIL, so none of the
        child's threads can notice (libfranka's own network timeout said so after about 2 s).
        A state older than `config.state_timeout` outside an automatic recovery fails it.
        """
        super().raise_if_failed()
        if self._popen is None or self._stopped or self.sensor_buffer.num_writes == 0:
            return
        age = time.monotonic() - self.sensor_buffer.latest()[1]
        if age > self.config.state_timeout and not self.stats().recovering:
            raise CommunicatorError(
                f"communicator {self.name!r}: FrankaLibfranka({self.config.robot_ip}): no robot state for "
                f"{age * 1e3:.0f} ms (state_timeout {self.config.state_timeout * 1e3:.0f} ms): the robot, "
                "franka-sim or the network stopped answering; close the communicator (the arm gets no further "
                "command; a real FR3 stops itself without commands)"
            )

    def reflex_count(self) -> int:
        """Reflexes the robot raised and the loop recovered from so far."""
        return self.stats().reflexes

    def wait_for_state(self, timeout: float = 10.0) -> np.ndarray:
        """Block until the first state arrives; return it (float64 (21,)).

        Raises:
            CommunicatorError: the child died (e.g. the robot was unreachable).
            TimeoutError: no state within `timeout` s.
        """
        deadline = time.monotonic() + timeout
        while self.sensor_buffer.num_writes == 0:
            self.raise_if_failed()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"FrankaLibfranka({self.config.robot_ip}): no robot state within {timeout} s"
                )
            time.sleep(0.01)
        return self.sensor_buffer.latest()[0]

    def close(self, timeout: float | None = None) -> None:
        """Stop the child (the arm ramps to rest first) and release the buffers. Idempotent.

        Args:
            timeout: s to wait for the child before it is terminated; by default long enough for
                the ramp to rest (`config.stop_timeout`) plus the loop threads' shutdown.
        """
        super().close(self.config.stop_timeout + 3.0 if timeout is None else timeout)
        self.stats_buffer.close()
