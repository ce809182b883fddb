"""Small real communicators for testing the core (real processes, real shared memory).

They stand in for no device: the thing under test is the communicator/env machinery itself.
Module-level classes so spawn and forkserver children can import them.
"""

from __future__ import annotations

import os
import time

import numpy as np

from communicators import Communicator


class CounterSensor(Communicator):
    """Writes [count, pid, last command...] at ``rate_hz``; stores each command it receives."""

    def __init__(self, rate_hz: float = 200.0, dim: int = 2, crash_after: int | None = None,
                 actuator_timeout: float | None = None, start_method: str | None = None) -> None:
        super().__init__({"shape": (2 + dim,), "dtype": np.float64, "buffer_len": 8},
                         {"shape": (dim,), "dtype": np.float64, "buffer_len": 2},
                         sensor_rate_hz=rate_hz, actuator_rate_hz=rate_hz,
                         actuator_timeout=actuator_timeout, start_method=start_method)
        self.dim, self.crash_after = dim, crash_after

    def _open_device(self) -> None:
        self.count = 0
        self.command = np.zeros(self.dim)

    def _sensor_handler(self) -> None:
        self.count += 1
        if self.crash_after is not None and self.count > self.crash_after:
            raise RuntimeError(f"toy device failure after {self.crash_after} readings")
        self.sensor_buffer.write(np.concatenate([[self.count, os.getpid()], self.command]))

    def _actuator_handler(self) -> None:
        data, _, _ = self.actuator_buffer.read_update()
        self.command = data[0].copy()

    def _on_actuator_timeout(self) -> None:
        self.command = np.zeros(self.dim)  # stale commands mean zero velocity


class SlowOpen(CounterSensor):
    """Takes ``delay`` seconds to open its device (as a camera may)."""

    def __init__(self, delay: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.delay = delay

    def _open_device(self) -> None:
        time.sleep(self.delay)
        super()._open_device()
