"""Small real communicators for testing the core (real processes, real shared memory).

They stand in for no device: the thing under test is the communicator/env machinery itself.
Module-level classes so spawn and forkserver children can import them.
"""

from __future__ import annotations

import os
import time

import numpy as np

from communicators import Communicator, SharedBuffer

FRAME_SHAPE = (120, 160, 3)


class CounterSensor(Communicator):
    """Writes ``[count, open_pid, timeouts, last command...]`` at ``rate_hz``, echoing the newest command.

    ``open_pid`` is the pid of the process that ran ``open_device``, so a test can see where the
    device was opened; ``timeouts`` counts ``on_command_timeout`` calls, which zero the command.
    """

    HEADER = 3  # count, open_pid, timeouts

    def __init__(self, rate_hz: float = 200.0, dim: int = 2, crash_after: int | None = None,
                 actuator_timeout: float | None = None, start_method: str | None = None) -> None:
        super().__init__({"shape": (self.HEADER + dim,), "dtype": np.float64, "buffer_len": 8},
                         {"shape": (dim,), "dtype": np.float64, "buffer_len": 2},
                         sensor_rate_hz=rate_hz, actuator_rate_hz=rate_hz,
                         actuator_timeout=actuator_timeout, start_method=start_method)
        self.dim, self.crash_after = dim, crash_after

    def open_device(self) -> None:
        self.count = 0
        self.open_pid = os.getpid()
        self.timeouts = 0
        self.command = np.zeros(self.dim)

    def read_sensor(self) -> None:
        self.count += 1
        if self.crash_after is not None and self.count > self.crash_after:
            raise RuntimeError(f"toy device failure after {self.crash_after} readings")
        self.sensor_buffer.write(np.concatenate([[self.count, self.open_pid, self.timeouts], self.command]))

    def send_command(self) -> None:
        data, _, _ = self.actuator_buffer.read_update()
        self.command = data[0].copy()

    def on_command_timeout(self) -> None:
        self.timeouts += 1
        self.command = np.zeros(self.dim)  # stale commands mean zero velocity


class SlowOpen(CounterSensor):
    """Takes ``delay`` seconds to open its device (as a camera may)."""

    def __init__(self, delay: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.delay = delay

    def open_device(self) -> None:
        time.sleep(self.delay)
        super().open_device()


class CrashOnDemand(CounterSensor):
    """A CounterSensor whose sensor handler raises once the parent calls :meth:`crash`."""

    MESSAGE = "toy device failure on demand"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        # Created in the parent, so the parent can pull the trigger after start().
        self.trigger = SharedBuffer(shape=(1,), dtype=np.uint8, buffer_len=1)

    def crash(self) -> None:
        """Makes the child's next sensor reading raise (call from the parent)."""
        self.trigger.write(np.ones(1, np.uint8))

    def read_sensor(self) -> None:
        if self.trigger.num_writes:
            raise RuntimeError(self.MESSAGE)
        super().read_sensor()

    def close(self, timeout: float = 2.0) -> None:
        super().close(timeout)
        if os.getpid() == self._owner_pid:
            self.trigger.close()


class SlowHandler(CounterSensor):
    """A sensor handler that takes ``handler_s`` seconds, longer than its period: every cycle overruns."""

    def __init__(self, handler_s: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.handler_s = handler_s

    def read_sensor(self) -> None:
        time.sleep(self.handler_s)
        super().read_sensor()


class FrameSensor(Communicator):
    """A sensor-only stand-in camera: (120, 160, 3) uint8 frames filled with ``count % 256``."""

    def __init__(self, rate_hz: float = 100.0, start_method: str | None = None) -> None:
        super().__init__({"shape": FRAME_SHAPE, "dtype": np.uint8, "buffer_len": 4}, None,
                         use_sensor=True, use_actuator=False, sensor_rate_hz=rate_hz,
                         start_method=start_method)

    def open_device(self) -> None:
        self.count = 0
        self.frame = np.zeros(FRAME_SHAPE, np.uint8)

    def read_sensor(self) -> None:
        self.count += 1
        self.frame.fill(self.count % 256)
        self.sensor_buffer.write(self.frame)
