"""A relay: another communicator's sensor stream, republished by a process of its own.

For a sensor derived from a device that already runs, e.g. the target's position offered to the
agent as an extra observation while the target communicator keeps serving the env's own reads.
Each reading is passed on once, with the source's timestamp, so a window of the relay holds the
source's readings and the stream's age is the data's age, not the relay's.

Rate: polls the source at ``rate_hz`` (default 100 Hz) and publishes what arrived since its last
poll (the newest slot). It sends nothing anywhere: no actuator buffer, no watchdog.

sensor_buffer slot: the source's shape and dtype; timestamp = the source slot's timestamp
(``time.monotonic()`` seconds).
"""
from __future__ import annotations

from communicators.communicator import Communicator
from communicators.shared_buffer import SharedBuffer


class RelayCommunicator(Communicator):
    """Republishes the newest readings of ``source``.

    Args:
        source: the sensor buffer to relay (another communicator's ``sensor_buffer``).
        rate_hz: polls per second of the source; at least the source's own rate, so no reading
            waits long.
        buffer_len: slots of the relay's sensor buffer (at least the window an env reads).
        name: a name for messages; "Relay" if None.
        start_method: multiprocessing start method of the child; None: the project's default.

    Example:
        >>> import numpy as np, time
        >>> source = SharedBuffer(shape=(3,), dtype=np.float64, buffer_len=4)
        >>> relay = RelayCommunicator(source, rate_hz=200.0)
        >>> relay.start()
        >>> source.write(np.array([0.5, 0.1, 0.0]), timestamp=12.5)
        >>> while relay.sensor_buffer.num_writes == 0:
        ...     time.sleep(0.01)
        >>> data, stamp, _ = relay.sensor_buffer.latest()
        >>> data.tolist(), stamp
        ([0.5, 0.1, 0.0], 12.5)
        >>> relay.close(); source.close()
    """

    def __init__(self, source: SharedBuffer, rate_hz: float = 100.0, buffer_len: int = 8,
                 name: str | None = None, start_method: str | None = None) -> None:
        if not isinstance(source, SharedBuffer):
            raise TypeError(f"RelayCommunicator source must be a communicator's SharedBuffer, got "
                            f"{type(source).__name__}")
        self.source = source  # pickled by segment name; the child attaches to it
        super().__init__(sensor_args={"shape": source.shape, "dtype": source.dtype, "buffer_len": buffer_len},
                         actuator_args=None, use_sensor=True, use_actuator=False, sensor_rate_hz=rate_hz,
                         name=name or "Relay", start_method=start_method)

    def open_device(self) -> None:
        """Starts from the source's newest reading, also one written before this process began."""
        self._next_index = 0

    def read_sensor(self) -> None:
        """Passes on the source's newest slot if this relay has not yet (child's sensor thread)."""
        if self.source.num_writes <= self._next_index:
            return
        data, stamps, indices = self.source.read(1)
        self.sensor_buffer.write(data[0], timestamp=float(stamps[0]))
        self._next_index = int(indices[0]) + 1
