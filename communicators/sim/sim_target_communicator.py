"""Simulated visual target: publishes where the red target is, for the sim camera to render.

Rate: `TargetConfig.rate_hz` (default 100 Hz).

Buffers:
    sensor_buffer: float64 (3,) target position in the world frame, metres; timestamp =
        time.monotonic() the position is for.
    actuator_buffer: float64 (1,): the env writes an episode number (0, 1, 2, ...) at reset to
        request a new target: a new random position in reaching mode, a new start and
        direction in tracking mode; static mode keeps its position. With `TargetConfig.seed`
        set, episode n always gets the same target.

There is no watchdog (a target has nothing to stop). The real-world twin is
`communicators.target.target_display_communicator.TargetDisplayCommunicator`, with the same buffers.
"""
from __future__ import annotations

import threading

import numpy as np

from communicators.communicator import Communicator
from communicators.target.target_motion import TargetConfig, TargetEpisodes


class SimTargetCommunicator(Communicator):
    """Moves the target per `TargetMotion` and publishes its position.

    Args:
        config: mode, box (world frame, m), speed (m/s), publish rate and seed; None for defaults.
        start_method: multiprocessing start method of the child ("fork", "spawn",
            "forkserver"); None: `communicators.communicator.DEFAULT_START_METHOD` (never fork).

    Example:
        >>> import time
        >>> comm = SimTargetCommunicator(TargetConfig(mode="static"))
        >>> comm.start()
        >>> while comm.sensor_buffer.num_writes == 0:
        ...     time.sleep(0.01)
        >>> comm.sensor_buffer.latest()[0].tolist()
        [0.5, 0.0, 0.0]
        >>> comm.close()
    """

    def __init__(self, config: TargetConfig | None = None, *, start_method: str | None = None) -> None:
        self.config = TargetConfig() if config is None else config
        super().__init__(
            sensor_args={"shape": (3,), "dtype": np.float64, "buffer_len": 4},
            actuator_args={"shape": (1,), "dtype": np.float64, "buffer_len": 2},
            use_sensor=True,
            use_actuator=True,
            sensor_rate_hz=self.config.rate_hz,
            actuator_rate_hz=self.config.rate_hz,
            actuator_timeout=None,  # a target needs no watchdog: a stale request changes nothing
            name="SimTarget",
            start_method=start_method,
        )

    # ----- hooks (run in the child process) -----

    def open_device(self) -> None:
        # Episode 0 starts with the process, so the target is valid before the first reset.
        self._target = TargetEpisodes(self.config)
        # Both threads publish (the actuator thread right after a new episode, so the new
        # target shows up without waiting a publish period); the lock keeps slots in time order.
        self._publish_lock = threading.Lock()

    def _publish(self) -> None:
        with self._publish_lock:
            position, now = self._target.position()
            self.sensor_buffer.write(position, timestamp=now)

    def read_sensor(self) -> None:
        self._publish()

    def send_command(self) -> None:
        if self.actuator_buffer.updated():
            data, _, _ = self.actuator_buffer.read_update()
            self._target.start_episode(float(data[-1, 0]))
            self._publish()
