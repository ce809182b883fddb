"""The communicator: one process per device, exchanging data through shared ring buffers.

A communicator polls its device into ``sensor_buffer`` and sends the commands it finds in
``actuator_buffer``, through public hooks a device class implements (``read_sensor``,
``send_command``, ``on_command_timeout``, ``open_device``, ``close_device``). It adds what real
robots need: fixed-rate loops paced by deadlines, a stale-command watchdog, device resources
opened in the child, crash reports that reach the parent with the child's traceback, and an exit
within a second of the parent's death. SenseAct's underscore hooks are mapped onto these by
``communicators.senseact``.
"""

from __future__ import annotations

import ctypes
import itertools
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections.abc import Iterable
from typing import Any

import numpy as np

from communicators import bootstrap
from communicators.errors import CommunicatorError
from communicators.realtime import Pacer
from communicators.shared_buffer import SharedBuffer
from communicators.watchdog import CommandWatchdog

DEFAULT_START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
"""How every communicator and the env's polling loop start their process unless told otherwise.

Never ``fork``: the parent of a training run holds threads (torch's, a learner's, a logger's), and
a child forked from a multi-threaded process can deadlock on a lock some other thread held at the
fork (Python 3.12 warns about it; 3.14 moved Linux's default away from fork). A process forked from
one that created a MuJoCo/EGL context hangs before it runs a line (docs/dependencies.md).
``forkserver`` forks children from a clean single-threaded server, so a start costs no
interpreter start-up; platforms without it (Windows) use ``spawn``. Both re-import the main
script in the child: create envs and communicators under ``if __name__ == "__main__":``.
Pass ``start_method="fork"`` explicitly where forking is the point (SenseAct-style code)."""

bootstrap.install_reporter()  # in a child re-importing its main script: report a bootstrap failure
_serials = itertools.count()

_ERROR_BYTES = 16384
_SUPERVISE_PERIOD_S = 0.05
_STOP_FLAG_LOOK_S = 0.02
_THREAD_JOIN_S = 1.0  # per loop thread at shutdown; close() waits longer than both together
_STATS_FIELDS = ("sensor_overruns", "actuator_overruns", "sensor_cycles", "actuator_cycles", "watchdog_trips")


class _StopFlag:
    """An Event-like stop flag in shared memory, set and read without any lock.

    A ``multiprocessing.Event``'s ``set()`` waits for every process sleeping in ``wait()`` to
    acknowledge the wake-up, and takes a lock the loops hold in ``is_set()``: a child killed while
    its supervisor sat in ``wait()`` made the parent's ``close()`` block forever.
    """

    def __init__(self) -> None:
        self._value = multiprocessing.get_context("spawn").RawValue(ctypes.c_bool, False)

    def set(self) -> None:
        self._value.value = True

    def is_set(self) -> bool:
        return bool(self._value.value)

    def wait(self, timeout: float) -> bool:
        """Waits up to ``timeout`` seconds for the flag; returns whether it is set.

        It looks every 20 ms: each look wakes the process, and every communicator's supervisor
        waits here all its life (at 5 ms, five sim processes spent ~3 % of a core waking up).
        """
        end = time.monotonic() + timeout
        while not self._value.value:
            left = end - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, _STOP_FLAG_LOOK_S))
        return True


def close_all(processes: Iterable[Any]) -> list[str]:
    """Stops processes together: asks every one to stop, then closes each, whatever fails.

    The one cleanup path for a set of communicators (and polling loops): a failed start, a failed
    construction and an env's close all come here. Their shutdowns overlap, and a process that
    fails to close does not keep the others running.

    Args:
        processes: objects with ``request_stop()`` and ``close()`` (communicators, polling loops).

    Returns:
        One ``"name: error"`` line per process whose close raised; empty if all closed cleanly.
    """
    processes = list(processes)
    for proc in processes:
        proc.request_stop()  # all at once, so their shutdowns overlap
    errors = []
    for proc in processes:
        try:
            proc.close()
        except Exception as err:  # noqa: BLE001 - close the others whatever happens
            errors.append(f"{getattr(proc, 'name', type(proc).__name__)}: {err}")
    return errors


class Communicator(multiprocessing.Process):
    """Base class of all device communicators (a ``multiprocessing.Process``).

    Hooks to implement (every one runs in the communicator's own child process, never in the
    process that built it):

    * ``open_device()``: the child's main thread, once, before either loop starts. Open sockets,
      cameras, GL contexts and simulators here: such handles do not survive a fork and cannot be
      pickled for spawn. Default: nothing.
    * ``read_sensor()``: the child's sensor thread. Read the device once and
      ``self.sensor_buffer.write(data, timestamp)``. With ``sensor_rate_hz`` set it is called once
      per period; otherwise back to back, and it should block on the device.
    * ``send_command()``: the child's actuator thread, on every actuator tick while commands are
      fresh: take the newest command from ``self.actuator_buffer`` and send it.
    * ``on_command_timeout()``: the child's actuator thread, on every tick instead of
      ``send_command`` while no command is fresh (none yet, or the newest is older than
      ``actuator_timeout`` by its timestamp), and once more from the main thread at shutdown. A
      robot commands zero velocity here. Default: nothing.
    * ``close_device()``: the child's main thread, once, after both loops have stopped (also after
      a failure). Default: nothing.

    Args:
        sensor_args: ``SharedBuffer`` arguments of the sensor buffer (``shape``, ``dtype``,
            ``buffer_len``).
        actuator_args: the same for the actuator buffer.
        use_sensor: run the sensor loop and create ``sensor_buffer``.
        use_actuator: run the actuator loop and create ``actuator_buffer``.
        sensor_rate_hz: sensor loop rate in Hz; None calls the handler back to back.
        actuator_rate_hz: actuator loop rate in Hz; None calls the handler back to back.
        actuator_timeout: seconds a command stays fresh, from its timestamp; after that
            ``on_command_timeout`` replaces ``send_command`` until a new one arrives (the watchdog,
            communicators/watchdog.py). None: a command never goes stale.
        name: a name for messages; the class name if None.
        start_method: ``fork``, ``spawn`` or ``forkserver``; :data:`DEFAULT_START_METHOD` if None.
        expected_period_s: seconds between two sensor slots the device delivers, for the env's
            freshness check (see :attr:`expected_period_s`); None: ``1 / sensor_rate_hz``.
    """

    def __init__(
        self,
        sensor_args: dict[str, Any] | None,
        actuator_args: dict[str, Any] | None,
        use_sensor: bool = True,
        use_actuator: bool = True,
        *,
        sensor_rate_hz: float | None = None,
        actuator_rate_hz: float | None = None,
        actuator_timeout: float | None = None,
        name: str | None = None,
        start_method: str | None = None,
        expected_period_s: float | None = None,
    ) -> None:
        bootstrap.install_reporter()  # a child re-running its main script may build communicators
        super().__init__(name=name or type(self).__name__, daemon=True)
        for label, rate in (("sensor_rate_hz", sensor_rate_hz), ("actuator_rate_hz", actuator_rate_hz)):
            if rate is not None and not rate > 0:
                raise ValueError(f"{label}={rate!r} must be a positive rate in Hz, or None for a free-running loop")
        if actuator_timeout is not None and not actuator_timeout > 0:
            raise ValueError(f"actuator_timeout={actuator_timeout!r} must be positive seconds, or None to disable")
        if start_method is not None and start_method not in multiprocessing.get_all_start_methods():
            raise ValueError(f"start_method={start_method!r}; choose one of {multiprocessing.get_all_start_methods()}")
        if expected_period_s is not None and not (isinstance(expected_period_s, (int, float))
                                                  and 0 < expected_period_s < float("inf")):
            raise ValueError(f"expected_period_s={expected_period_s!r} must be positive seconds, or None")
        self.use_sensor, self.use_actuator = use_sensor, use_actuator
        self.sensor_rate_hz, self.actuator_rate_hz = sensor_rate_hz, actuator_rate_hz
        self.actuator_timeout = actuator_timeout
        self.start_method = start_method or DEFAULT_START_METHOD
        self._expected_period_s = expected_period_s
        self._bootstrap_report = bootstrap.report_path(os.getpid(), next(_serials))
        self.sensor_buffer = self._make_buffer("sensor_args", sensor_args) if use_sensor else None
        self.actuator_buffer = self._make_buffer("actuator_args", actuator_args) if use_actuator else None
        self._error_buffer = SharedBuffer(shape=(_ERROR_BYTES,), dtype=np.uint8, buffer_len=1)
        self._stats_buffer = SharedBuffer(shape=(len(_STATS_FIELDS),), dtype=np.int64, buffer_len=1)
        self._stop_event = _StopFlag()  # pickles under every start method; never blocks the parent
        self._started_flag = _StopFlag()  # set when the child's run() begins: bootstrap is over
        self._owner_pid = os.getpid()
        self._stopped = False
        self.sensor_pacer: Pacer | None = None
        """Child side: the Pacer of the sensor loop (its ``lateness`` is the last wake-up's), or
        None when ``sensor_rate_hz`` is None."""

    buffer_class: type[SharedBuffer] = SharedBuffer
    """The class of ``sensor_buffer`` and ``actuator_buffer`` (SenseAct's in communicators.senseact)."""

    def _make_buffer(self, label: str, args: dict[str, Any] | None) -> SharedBuffer:
        args = dict(args or {})
        args.setdefault("buffer_len", self.buffer_class.DEFAULT_BUFFER_LEN)
        try:
            return self.buffer_class(**args)
        except TypeError as err:
            raise TypeError(f"{type(self).__name__}: {label}={args!r} are not SharedBuffer arguments ({err}); give "
                            "shape=, dtype=, buffer_len=, or derive from communicators.senseact.Communicator for "
                            "SenseAct's array_len=, array_type=, np_array_type=") from err

    # ===== Hooks to implement =====

    def read_sensor(self) -> None:
        """Reads the device once into ``sensor_buffer`` (child's sensor thread)."""
        raise NotImplementedError(f"{type(self).__name__} uses a sensor but does not implement read_sensor")

    def send_command(self) -> None:
        """Sends the newest command of ``actuator_buffer`` to the device (child's actuator thread)."""
        raise NotImplementedError(f"{type(self).__name__} uses an actuator but does not implement send_command")

    def on_command_timeout(self) -> None:
        """Commands are stale (child's actuator thread, and once at shutdown). Robots stop here."""

    def open_device(self) -> None:
        """Opens the device (child's main thread, before the loops start)."""

    def close_device(self) -> None:
        """Releases the device (child's main thread, after the loops stopped)."""

    # ===== Parent side =====

    @property
    def expected_period_s(self) -> float | None:
        """Seconds between two sensor slots when the device delivers as it should.

        The env's freshness check budgets each stream in these periods. The default is the
        ``expected_period_s`` given at construction, else ``1 / sensor_rate_hz``; a communicator
        whose sensor loop is free-running (it blocks on its device) states its device's rate by
        passing ``expected_period_s`` or overriding this property. None: no stated rate, and the
        stream is not checked. Read in any process.
        """
        if self._expected_period_s is not None:
            return float(self._expected_period_s)
        if self.use_sensor and self.sensor_rate_hz:
            return 1.0 / self.sensor_rate_hz
        return None

    def _Popen(self, process_obj):  # noqa: N802 (multiprocessing's name)
        # Lets each communicator choose its start method without changing the global default.
        context = multiprocessing.get_context(self.start_method)
        if context.get_start_method() == "fork":
            return context.Process._Popen(process_obj)
        # The name is all a spawned child knows of us while it re-imports the main script: it
        # carries the path where a failure of that bootstrap is reported (communicators/bootstrap.py).
        name = process_obj._name
        process_obj._name = bootstrap.tagged_name(name, self._bootstrap_report)
        try:
            return context.Process._Popen(process_obj)
        finally:
            process_obj._name = name

    def raise_if_failed(self) -> None:
        """Raises ``CommunicatorError`` if the child process has failed or died.

        The message names the communicator and carries the child's traceback text. A child that
        died while it started (before its ``run()`` began), for example re-importing a main script
        that has no ``if __name__ == "__main__":`` guard, is reported with that cause.
        """
        text = self._child_traceback()
        if text:
            raise CommunicatorError(f"communicator {self.name!r} failed in its process:\n{text}")
        if self._popen is not None and not self._stopped and not self.is_alive():
            code = self.exitcode
            if code is not None and code > 0 and not self._started_flag.is_set():
                raise CommunicatorError(bootstrap.explain(self.name, code, bootstrap.read_report(self._bootstrap_report)))
            how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
            raise CommunicatorError(f"communicator {self.name!r} {how} without reporting an error")

    def _child_traceback(self) -> str:
        if self._error_buffer.closed:  # after close(): what was read then
            return self._final_traceback
        if not self._error_buffer.num_writes:
            return ""
        raw, _, _ = self._error_buffer.read()
        return bytes(raw[0]).rstrip(b"\0").decode("utf-8", "replace")

    def overruns(self) -> dict[str, int]:
        """Overrun counts of the sensor and actuator loops, and other loop counters."""
        if self._stats_buffer.closed:  # after close(): the last published counts
            return dict(self._final_stats)
        if self._stats_buffer.num_writes == 0:
            return dict.fromkeys(_STATS_FIELDS, 0)
        values, _, _ = self._stats_buffer.read()
        return dict(zip(_STATS_FIELDS, (int(v) for v in values[0])))

    def request_stop(self) -> None:
        """Tells the child to stop, without waiting (``close`` waits). Lets several stop at once."""
        self._stop_event.set()

    def stop_requested(self) -> bool:
        """True once the child was asked to stop (close, SIGTERM, the parent's death, a failure).

        Either side may ask; a hook that loops inside itself (waiting for a device, say) checks it.
        """
        return self._stop_event.is_set()

    def close(self, timeout: float = 3.0) -> None:
        """Stops the child gracefully (stop flag, join), then terminates it. Idempotent.

        Args:
            timeout: seconds to wait for the child's own shutdown (its last act commands the
                actuator to stop) before it is terminated.
        """
        if self._stopped or os.getpid() != self._owner_pid:
            return
        self._stopped = True
        self._stop_event.set()
        if self._popen is not None:
            self.join(timeout)
            if self.is_alive():
                self.terminate()
                self.join(1.0)
            if self.is_alive():
                self.kill()
                self.join(1.0)
        try:  # a child killed mid-write can leave a slot unreadable: keep what can be read
            self._final_traceback = self._child_traceback()
        except Exception as err:  # noqa: BLE001
            self._final_traceback = f"(its error report could not be read: {err})"
        try:
            self._final_stats = self.overruns()
        except Exception:  # noqa: BLE001
            self._final_stats = dict.fromkeys(_STATS_FIELDS, 0)
        finally:
            for buf in (self.sensor_buffer, self.actuator_buffer, self._error_buffer, self._stats_buffer):
                if buf is not None:
                    buf.close()
            bootstrap.read_report(self._bootstrap_report, remove=True)  # the child may have left one

    def terminate(self) -> None:
        """Sends SIGTERM, on which the child stops gracefully; nothing if it is not running."""
        if self._popen is not None and self.is_alive():
            super().terminate()

    def __getstate__(self) -> dict:
        # A started communicator may be pickled into another spawned process (the env's polling
        # loop); only its buffers and settings travel, not the handle to the child.
        state = self.__dict__.copy()
        state["_popen"] = None
        state["_name"] = bootstrap.clean_name(state["_name"])
        return state

    # ===== Child side =====

    def run(self) -> None:
        self._started_flag.set()
        self._parent_pid = os.getppid()  # before the device opens: the parent may die meanwhile
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides how to stop on Ctrl-C
        signal.signal(signal.SIGTERM, lambda *_: self._stop_event.set())
        self._counters = dict.fromkeys(_STATS_FIELDS, 0)
        self._counters_lock = threading.Lock()
        self._stats_time = 0.0
        self._thread_error: BaseException | None = None
        try:
            self.open_device()
            sensor = threading.Thread(target=self._loop, args=("sensor",), daemon=True) if self.use_sensor else None
            actuator = threading.Thread(target=self._loop, args=("actuator",), daemon=True) if self.use_actuator else None
            for thread in (sensor, actuator):
                if thread is not None:
                    thread.start()
            self._supervise()
            if actuator is not None:
                # Command the stop as soon as the actuator loop is out, before waiting on a sensor
                # read that may block: the parent's patience is finite.
                actuator.join(_THREAD_JOIN_S)
                self.on_command_timeout()
            if sensor is not None:
                sensor.join(_THREAD_JOIN_S)
            if self._thread_error is not None:
                raise self._thread_error
        except BaseException as err:  # noqa: BLE001 (every failure must reach the parent)
            try:
                self._report(err)
            finally:
                try:
                    self._shutdown_device()
                finally:
                    os._exit(1)
        self.close_device()

    def _supervise(self) -> None:
        # The parent died if this process was re-parented (fork, spawn), or if the pipe the parent
        # holds open for it closed: under forkserver the parent is the forkserver, which lives on
        # as long as its children do, so only the pipe tells.
        parent = multiprocessing.parent_process()
        while not self._stop_event.wait(_SUPERVISE_PERIOD_S):
            if os.getppid() != self._parent_pid or (parent is not None and not parent.is_alive()):
                self._stop_event.set()
        self._publish_stats()

    def _loop(self, which: str) -> None:
        rate = self.sensor_rate_hz if which == "sensor" else self.actuator_rate_hz
        tick = self.read_sensor if which == "sensor" else self._actuator_tick
        pacer = Pacer(1.0 / rate) if rate else None
        if which == "sensor":
            self.sensor_pacer = pacer
        else:
            self.watchdog = CommandWatchdog(self.actuator_timeout)
            self._commands_seen = 0
        try:
            while not self._stop_event.is_set():
                tick()
                self._count(f"{which}_cycles")
                if pacer is not None and pacer.wait():
                    self._count(f"{which}_overruns")
        except BaseException as err:  # noqa: BLE001
            self._thread_error = err
            self._stop_event.set()

    def _actuator_tick(self) -> None:
        now = time.monotonic()
        count = self.actuator_buffer.num_writes
        if count > self._commands_seen:
            self._commands_seen = count
            stamp = float(self.actuator_buffer.read(1)[1][0]) if self.actuator_timeout is not None else now
            # A stamp from another clock (time.time(), say) or NaN would keep a command fresh for
            # ever: such a command counts from now.
            self.watchdog.command_arrived(stamp if stamp <= now else now)
        trips = self.watchdog.trips
        if self.watchdog.check(now):
            if self.watchdog.trips > trips:
                self._count("watchdog_trips")
            self.on_command_timeout()
        else:
            self.send_command()

    def _count(self, field: str) -> None:
        with self._counters_lock:
            self._counters[field] += 1
            # Publish every overrun at once, and the cycle counts a few times a second.
            now = time.monotonic()
            if not field.endswith("cycles") or now - self._stats_time > 0.1:
                self._stats_time = now
                self._publish_stats()

    def _publish_stats(self) -> None:
        self._stats_buffer.write(np.array([self._counters[f] for f in _STATS_FIELDS], np.int64))

    def _report(self, err: BaseException) -> None:
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        raw = text.encode("utf-8")[-(_ERROR_BYTES - 1):]
        slot = np.zeros(_ERROR_BYTES, np.uint8)
        slot[: len(raw)] = np.frombuffer(raw, np.uint8)
        self._error_buffer.write(slot)

    def _shutdown_device(self) -> None:
        try:
            if self.use_actuator:
                self.on_command_timeout()  # leave the device commanded to stop
        finally:
            self.close_device()
