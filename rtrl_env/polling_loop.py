"""The polling loop: sensor windows -> the task's sensation, and actions -> the task's commands.

:class:`SensationPoller` and :func:`send_commands` are the loop's two halves, used inline by
singlethread run mode. :class:`PollingThread` runs them in a thread (multithread run mode) and
:class:`PollingLoop` in a process of its own (multiprocess run mode); seen from the agent's process it is just another device: its sensor buffer holds
sensations, its actuator buffer takes actions. Being a Communicator it inherits crash reports with
tracebacks, exit on parent death and graceful close. It receives only the task's two pure
functions and the buffers they need, never the env.

News wakes the loop's process instead of it polling (on the 2-core machine, polling every 0.1 ms
cost a quarter of a core): the agent hands each action over with ``post_action``, which writes the
actuator buffer and posts a semaphore the actuator thread waits on; the sensor thread sleeps until
a sensor buffer is written (``shared_buffer.wait_for_update``: the writers wake it). Both react as
soon as their thread is scheduled. Where the system cannot wake the sensor thread on a write (no
futex_waitv), it polls every ``sleep_time``.
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from communicators.communicator import Communicator
from communicators.errors import CommunicatorError
from communicators.realtime import enable_realtime
from communicators.shared_buffer import SharedBuffer, wait_for_update
from rtrl_env.errors import EnvError
from rtrl_env.sensation import SensationCodec
from rtrl_env.task import Sensation, SensorWindow

SenseFn = Callable[[Mapping[str, SensorWindow]], Sensation]
ActuateFn = Callable[[np.ndarray], Mapping[str, np.ndarray]]

ACTION_WAIT_S = 0.05
"""The longest the loop's threads sleep waiting for an action or for sensor news before they check
again whether they were asked to stop (a stop request wakes the actuator thread at once)."""


def is_stop_marker(action: np.ndarray) -> bool:
    """Whether ``action`` is the env's "stopped" marker (all NaN, which no checked action is).

    The env writes it before its stop commands, so an action the loop has not forwarded yet is
    dropped instead of landing on an actuator after the stop.
    """
    return bool(np.all(np.isnan(action)))


class SensationPoller:
    """Reads the sensor windows that changed and computes a sensation from all of them.

    Args:
        sense: the task's ``sense``.
        sensor_buffers: name -> sensor buffer.
        windows: name -> window length (slots per read).
    """

    def __init__(self, sense: SenseFn, sensor_buffers: Mapping[str, SharedBuffer], windows: Mapping[str, int]) -> None:
        self._sense = sense
        self._buffers = dict(sensor_buffers)
        self._window_lens = dict(windows)
        self._windows: dict[str, SensorWindow] = {}

    def poll(self, force: bool = False) -> tuple[Sensation, float] | None:
        """The sensation of the newest windows and its timestamp, or None if no sensor has news.

        Args:
            force: read every window even if none changed.

        Returns:
            ``(sensation, timestamp)``; the timestamp is the capture time of the stalest stream's
            newest slot (an observation is as old as its oldest part).
        """
        # A window never read yet is read at once: every sensation sees every sensor.
        updated = [n for n, b in self._buffers.items() if force or n not in self._windows or b.updated()]
        if not updated:
            return None
        for name in updated:
            self._windows[name] = SensorWindow(*self._buffers[name].read_update(self._window_lens[name]))
        sensation = self._sense(dict(self._windows))
        return sensation, min(float(w.timestamps[-1]) for w in self._windows.values())

    def wait(self, timeout: float, poll_s: float) -> None:
        """Sleeps until a sensor buffer is written or ``timeout`` s pass (polling every ``poll_s``
        where writes cannot wake it); returns at once if one has news."""
        wait_for_update(list(self._buffers.values()), timeout, poll_s)


def send_commands(commands: Mapping[str, Any], actuator_buffers: Mapping[str, SharedBuffer]) -> None:
    """Writes each command into its communicator's actuator buffer.

    Raises:
        KeyError: a command names a communicator that has no actuator.
    """
    unknown = sorted(set(commands) - set(actuator_buffers))
    if unknown:
        raise KeyError(f"the task's actuate() returned commands for {unknown}, which have no actuator; "
                       f"actuators: {sorted(actuator_buffers)}")
    for name, command in commands.items():
        actuator_buffers[name].write(command)


class PollingLoop(Communicator):
    """Runs the polling loop in its own process (multiprocess run mode).

    Args:
        sense: the task's ``sense`` (pickled into the child with its task).
        actuate: the task's ``actuate``.
        sensor_buffers: name -> sensor buffer the sensation is computed from.
        windows: name -> window length.
        actuator_buffers: name -> actuator buffer ``actuate`` may write.
        codec: packs a sensation into one slot of the loop's sensor buffer.
        action_dim: length of the action vector.
        sleep_time: where sensor writes cannot wake the loop (no futex_waitv), seconds between its
            looks for news, bounding the age it adds to a sensation. Actions always wake it.
        realtime_priority: SCHED_FIFO priority of the loop's threads; None keeps the scheduler.
        cpu_affinity: CPUs to pin the loop to; None leaves it free.
        name: for messages.
        start_method: as for Communicator.
    """

    def __init__(self, sense: SenseFn, actuate: ActuateFn, sensor_buffers: Mapping[str, SharedBuffer],
                 windows: Mapping[str, int], actuator_buffers: Mapping[str, SharedBuffer],
                 codec: SensationCodec, action_dim: int, sleep_time: float,
                 realtime_priority: int | None = None, cpu_affinity: set[int] | None = None,
                 name: str = "polling loop", start_method: str | None = None) -> None:
        super().__init__({**codec.slot_args, "buffer_len": 2}, {"shape": (action_dim,), "dtype": "f8", "buffer_len": 2},
                         name=name, start_method=start_method)
        self._poller = SensationPoller(sense, sensor_buffers, windows)
        self._actuate = actuate
        self._actuator_buffers = dict(actuator_buffers)
        self.sleep_time = sleep_time
        self._realtime = (realtime_priority, cpu_affinity)
        self.codec = codec
        # Posted once per action; a semaphore's post never blocks, whatever state the child is in.
        self._action_posted = multiprocessing.get_context(self.start_method).Semaphore(0)

    def post_action(self, action: np.ndarray, timestamp: float | None = None) -> None:
        """Hands ``action`` (or the stop marker) to the loop and wakes it (agent's process)."""
        self.actuator_buffer.write(action, timestamp=timestamp)
        self._action_posted.release()

    def request_stop(self) -> None:
        """Tells the child to stop and wakes its actuator thread, without waiting."""
        super().request_stop()
        self._action_posted.release()

    def close(self, timeout: float = 3.0) -> None:
        """Stops the loop's process (see Communicator.close), waking it first."""
        if not self._stopped and self._popen is not None:
            self.request_stop()
        super().close(timeout)

    def start(self) -> None:
        """Starts the loop's process (the task's functions travel to it pickled).

        Raises:
            EnvError: the task does not pickle (a lambda or a local function in it, say).
        """
        try:
            super().start()
        except (pickle.PicklingError, AttributeError, TypeError) as err:
            task = getattr(self._actuate, "__self__", self._actuate)
            raise EnvError(f"{type(task).__name__} cannot be sent to the polling loop's process (start method "
                           f"{self.start_method!r} pickles the task with its sense() and actuate()): {err}. Define "
                           "the functions and classes it holds at module level (no lambdas or local functions), "
                           "or use run_mode='multithread'") from err

    def open_device(self) -> None:
        # The loop that carries actions to the actuators gets the env's real-time priority too.
        enable_realtime(*self._realtime)

    def read_sensor(self) -> None:
        polled = self._poller.poll()
        if polled is None:
            self._poller.wait(ACTION_WAIT_S, self.sleep_time)
            return
        sensation, timestamp = polled
        self.sensor_buffer.write(self.codec.pack(sensation), timestamp=timestamp)

    def send_command(self) -> None:
        if not self.actuator_buffer.updated():
            self._wait_for_action()
            return
        action, _, _ = self.actuator_buffer.read_update()
        if not is_stop_marker(action[0]):
            send_commands(self._actuate(action[0]), self._actuator_buffers)

    def on_command_timeout(self) -> None:
        self._wait_for_action()  # no action yet: nothing to actuate

    def _wait_for_action(self) -> None:
        if not self.stop_requested():  # at shutdown (main thread): no wait
            self._action_posted.acquire(timeout=ACTION_WAIT_S)


class PollingThread:
    """The polling loop as a thread of the agent's process (multithread run mode).

    Same arguments and buffers as :class:`PollingLoop`, so the env drives both alike; one thread
    does both halves. A failure in the thread is raised by :meth:`raise_if_failed` as
    CommunicatorError with its traceback.
    """

    def __init__(self, sense: SenseFn, actuate: ActuateFn, sensor_buffers: Mapping[str, SharedBuffer],
                 windows: Mapping[str, int], actuator_buffers: Mapping[str, SharedBuffer],
                 codec: SensationCodec, action_dim: int, sleep_time: float,
                 realtime_priority: int | None = None, cpu_affinity: set[int] | None = None,
                 name: str = "polling thread", start_method: str | None = None) -> None:
        del realtime_priority, cpu_affinity, start_method  # the thread shares the caller's scheduler
        self.name = name
        self.codec = codec
        self.sensor_buffer = SharedBuffer(**codec.slot_args, buffer_len=2)
        self.actuator_buffer = SharedBuffer(shape=(action_dim,), dtype=np.float64, buffer_len=2)
        self._poller = SensationPoller(sense, sensor_buffers, windows)
        self._actuate, self._actuator_buffers = actuate, dict(actuator_buffers)
        self.sleep_time = sleep_time
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        # The thread polls both halves every sleep_time; an action waits for the next poll.
        self._error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def post_action(self, action: np.ndarray, timestamp: float | None = None) -> None:
        """Hands ``action`` (or the stop marker) to the loop (agent's process)."""
        self.actuator_buffer.write(action, timestamp=timestamp)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                polled = self._poller.poll()
                if polled is not None:
                    self.sensor_buffer.write(self.codec.pack(polled[0]), timestamp=polled[1])
                if self.actuator_buffer.updated():
                    action, _, _ = self.actuator_buffer.read_update()
                    if not is_stop_marker(action[0]):
                        send_commands(self._actuate(action[0]), self._actuator_buffers)
                elif polled is None:
                    time.sleep(self.sleep_time)
        except BaseException:  # noqa: BLE001 - raised in the agent's thread by raise_if_failed
            self._error = traceback.format_exc()

    def raise_if_failed(self) -> None:
        """Raises CommunicatorError with the thread's traceback if it failed."""
        if self._error is not None:
            raise CommunicatorError(f"{self.name!r} failed in its thread:\n{self._error}")

    def request_stop(self) -> None:
        self._stop.set()

    def close(self, timeout: float = 2.0) -> None:
        """Stops the thread and frees its buffers. Idempotent."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.sensor_buffer.close()
        self.actuator_buffer.close()
