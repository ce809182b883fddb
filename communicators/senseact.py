"""SenseAct 0.1.x's ``Communicator`` and ``SharedBuffer``, over this project's core.

A SenseAct device class ports by changing its imports::

    from senseact.communicator import Communicator    ->  from communicators.senseact import Communicator
    from senseact.sharedbuffer import SharedBuffer    ->  from communicators.senseact import SharedBuffer

What keeps SenseAct's behaviour (read from SenseAct 0.1.x's public source):

* ``SharedBuffer(array_len, array_type, np_array_type, buffer_len=10, array_lock=True)``;
  ``write`` broadcasts like ``np.copyto`` (a scalar fills the slot); ``read``/``read_update``
  return three lists (data arrays, timestamps, indices), oldest first, and a window longer than
  the buffer wraps round it as SenseAct's does instead of raising.
* ``Communicator(sensor_args, actuator_args, use_sensor, use_actuator, start_timeout)`` runs
  ``_sensor_handler`` and ``_actuator_handler`` back to back in two threads of its own process;
  ``_actuator_handler`` runs on every loop, command or not (it checks ``actuator_buffer.updated()``
  itself); ``_sensor_running``/``_actuator_running`` say whether to keep going; ``_close()`` runs
  in the child when it stops; ``is_ready()``; ``terminate()`` then ``join()`` stops it.

What differs, on purpose:

* Timestamps are ``time.monotonic()`` seconds, not ``time.time()``: every clock of the framework
  (watchdog, observation age, the env's cycle) is monotonic.
* Slots never written read as zeros with timestamp NaN and index -1 (SenseAct: 0 and 0).
* ``updated()`` is tracked per reader (each process's copy of the buffer), not in one flag all
  readers share, so two readers no longer steal each other's updates.
* ``array_lock`` is accepted and kept as an attribute but changes nothing: in SenseAct it chose
  between ctypes ``Array`` and ``RawArray`` storage, whose own lock SenseAct's buffer never took
  (it serialises on a lock of its own either way). Here writers always serialise on one lock and
  readers never block (a seqlock).

What a SenseAct device gains: any start method (``start_method=``; SenseAct's fork is the
default), crash reports with the child's traceback (``raise_if_failed``), an exit within a second
of the parent's death, and an optional stale-command watchdog (pass ``actuator_timeout=`` and
override ``on_command_timeout``).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import threading
from typing import Any

import numpy as np

from communicators import communicator as core
from communicators import shared_buffer


def wrap_positions(window_len: int, buffer_len: int) -> list[int]:
    """Where each slot of a SenseAct window comes from in a read of the whole buffer.

    SenseAct reads slot ``(pointer + i - window_len) % buffer_len`` for ``i`` in
    ``range(window_len)``; a read of the whole buffer, oldest first, holds slot
    ``(pointer + j) % buffer_len`` at position ``j``. So position ``i`` of the window is position
    ``(i - window_len) % buffer_len`` of the whole read, whatever the pointer: a window longer
    than the buffer repeats slots, wrapping round as SenseAct's does.
    """
    return [(i - window_len) % buffer_len for i in range(window_len)]


class SharedBuffer(shared_buffer.SharedBuffer):
    """SenseAct's SharedBuffer: a ring of flat arrays (see the module docstring for differences).

    Args:
        array_len: number of elements of one slot.
        array_type: ctypes type code (``'d'``, ``'f'``, ``'B'``...), kept as ``array_type``;
            ``np_array_type`` decides how the data is stored and read, as in SenseAct.
        np_array_type: numpy dtype of one slot, e.g. ``'float64'`` or ``'d'``.
        buffer_len: number of slots (SenseAct's default, 10).
        array_lock: accepted for SenseAct compatibility; it changes nothing (module docstring).
    """

    DEFAULT_BUFFER_LEN = 10

    def __init__(self, array_len: int, array_type: str, np_array_type: Any,
                 buffer_len: int = DEFAULT_BUFFER_LEN, array_lock: bool = True) -> None:
        super().__init__(shape=(int(array_len),), dtype=np_array_type, buffer_len=buffer_len)
        self.array_type, self.np_array_type, self.array_lock = array_type, np_array_type, bool(array_lock)

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "senseact": (self.array_type, self.np_array_type, self.array_lock)}

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.array_type, self.np_array_type, self.array_lock = state["senseact"]

    def write(self, data: Any, timestamp: float | None = None) -> None:
        """Writes one slot; data broadcasts to the slot as ``np.copyto`` would (a scalar fills it).

        Args:
            data: array-like that broadcasts to ``(array_len,)``, or has that many elements.
            timestamp: capture time, ``time.monotonic()`` seconds; now if None.
        """
        try:
            data = np.broadcast_to(np.asarray(data, dtype=self.dtype), self.shape)
        except ValueError:
            pass  # not broadcastable: the core reshapes a same-size array or says why it cannot
        super().write(data, timestamp)

    def read(self, window_len: int = 1) -> tuple[list[np.ndarray], list[float], list[int]]:
        """The newest ``window_len`` slots, oldest first, as SenseAct's three lists.

        A ``window_len`` longer than ``buffer_len`` wraps round the ring (slots repeat).
        """
        if not isinstance(window_len, (int, np.integer)) or window_len < 1:
            raise shared_buffer.SharedBufferError(f"window_len={window_len!r} must be a positive integer")
        if window_len <= self.buffer_len:
            data, stamps, indices = super().read(window_len)
        else:
            data, stamps, indices = super().read(self.buffer_len)
            positions = wrap_positions(int(window_len), self.buffer_len)
            data, stamps, indices = data[positions], stamps[positions], indices[positions]
        return list(data), stamps.tolist(), indices.tolist()

    def set_data_update(self, value: bool | int) -> None:
        """Marks the newest slot as unread (1/True) or everything as read (0/False), for this reader."""
        count = self.num_writes
        self._last_seen = count - 1 if value and count > 0 else count


class Communicator(core.Communicator):
    """SenseAct's Communicator: implement ``_sensor_handler`` and/or ``_actuator_handler``.

    Both handlers run in the communicator's own process, each in its own thread, called back to
    back (a handler paces itself, e.g. by blocking on its device or sleeping). Devices opened in
    an overridden ``run()`` before ``super().run()`` stay open for both, as in SenseAct; an
    overridden ``_close()`` runs in the child once both threads have stopped.

    Args:
        sensor_args: SenseAct SharedBuffer arguments of ``sensor_buffer`` (``array_len``,
            ``array_type``, ``np_array_type``, optional ``buffer_len``).
        actuator_args: the same for ``actuator_buffer``.
        use_sensor: run the sensor thread.
        use_actuator: run the actuator thread.
        start_timeout: kept as an attribute, as SenseAct does (it never enforces it either).
        start_method: ``fork`` (SenseAct's, the default), ``spawn`` or ``forkserver``.
        actuator_timeout: None (SenseAct: no watchdog), or seconds after which a command is stale;
            a subclass that overrides ``on_command_timeout`` (to stop its device) then has that
            run instead of ``_actuator_handler`` on every tick while commands are stale.
    """

    buffer_class = SharedBuffer

    def __init__(self, sensor_args: dict[str, Any] | None, actuator_args: dict[str, Any] | None,
                 use_sensor: bool = True, use_actuator: bool = True, start_timeout: float = 1.0, *,
                 start_method: str | None = "fork", actuator_timeout: float | None = None) -> None:
        super().__init__(sensor_args, actuator_args, use_sensor, use_actuator, actuator_timeout=actuator_timeout,
                         start_method=start_method)
        self.start_timeout = start_timeout
        self._ready = multiprocessing.get_context("spawn").RawValue(ctypes.c_bool, False)

    # ===== SenseAct's hooks =====

    def _sensor_handler(self) -> None:
        """Reads the device once into ``sensor_buffer`` (the child's sensor thread)."""
        raise NotImplementedError(f"{type(self).__name__} uses a sensor but does not implement _sensor_handler")

    def _actuator_handler(self) -> None:
        """Sends the newest command if ``actuator_buffer.updated()`` (the child's actuator thread)."""
        raise NotImplementedError(f"{type(self).__name__} uses an actuator but does not implement _actuator_handler")

    def _close(self, *args: Any) -> None:
        """Releases the device in the child once both threads have stopped (SenseAct's clean-up).

        Args:
            *args: SenseAct installs ``_close`` as a signal handler, which passes the signal
                number and frame; they are ignored.
        """

    def is_ready(self) -> bool:
        """True once the child has started its threads."""
        return bool(self._ready.value)

    @property
    def _sensor_running(self) -> bool:
        return not self.stop_requested()

    @_sensor_running.setter
    def _sensor_running(self, running: bool) -> None:
        if not running:
            self.request_stop()

    _actuator_running = _sensor_running

    # ===== The core's hooks, mapped onto SenseAct's =====

    def open_device(self) -> None:
        self._ready.value = True

    def read_sensor(self) -> None:
        self._sensor_handler()

    def send_command(self) -> None:
        self._actuator_handler()

    def on_command_timeout(self) -> None:
        # SenseAct calls _actuator_handler on every loop, command or not: so does every actuator
        # tick here. The core's last call, at shutdown, comes from the child's main thread, where
        # SenseAct runs nothing.
        if threading.current_thread() is not threading.main_thread():
            self._actuator_handler()

    def close_device(self) -> None:
        self._close()
