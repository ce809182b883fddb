"""SenseAct 0.1.x's ``RTRLBaseEnv``, built on this project's RTRLBaseEnv and a Task that wraps its hooks.

A SenseAct env ports by changing its imports::

    from senseact.rtrl_base_env import RTRLBaseEnv    ->  from rtrl_env.senseact import RTRLBaseEnv
    from senseact.communicator import Communicator    ->  from communicators.senseact import Communicator
    from senseact.sharedbuffer import SharedBuffer    ->  from communicators.senseact import SharedBuffer

It keeps SenseAct's public behaviour (read from SenseAct 0.1.x's source): the constructor
``(communicator_setups, action_dim, observation_dim, run_mode, dt, dt_tol, sleep_time, busy_loop,
random_state)``; run modes ``singlethread``, ``multithread`` and ``multiprocess``; the hooks
``_compute_sensation_(name, sensor_window, timestamp_window, index_window)`` returning a flat
``[observation..., reward, done]``, ``_compute_actuation_(action, timestamp, index)`` filling
``self._actuation_packet_``, ``_reset_()`` and ``_check_done(env_done)``; ``start``, ``close``,
``act``, ``sense``, ``sense_wait``, ``step`` returning ``(obs, reward, done, info)``, ``reset``
returning the observation, ``reset(blocking=False)``; scalar actions; ``_rand_obj_``.

Where each hook runs, as in SenseAct: ``_compute_sensation_``, ``_compute_actuation_`` and
``_reset_`` run in the polling loop, one at a time (the loop's process in multiprocess mode, its
thread in multithread mode, the caller's thread in singlethread mode), so state ``_reset_`` sets
is seen by the other two. ``_check_done`` runs in the agent's process. Under multiprocess, the
polling loop is forked (SenseAct's start method) with a copy of the env, so state shared with the
agent's process must live in shared memory (``multiprocessing.Value``/``Array``), as in SenseAct.

What a SenseAct env gains: the cycle keeps the grid ``t0 + k * dt`` (no drift), actions with
NaN or inf are refused before they reach a device, a crashed communicator or polling loop raises
EnvError with its traceback (and everything is closed, the robot commanded to rest by its
communicator), no process or shared memory outlives the program, and ``timing_report()``.

Not provided: SenseAct's ``_shared_rstate_array_`` and ``senseact.utils`` (random state copied
back from the polling loop); the agent's process seeds its own ``_rand_obj_``.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from communicators.communicator import Communicator, close_all
from communicators.senseact import wrap_positions
from rtrl_env.base_env import RTRLBaseEnv as CoreEnv
from rtrl_env.errors import EnvError
from rtrl_env.task import Devices, SensorWindow, Task
from rtrl_env.timing import TimingReport

logger = logging.getLogger(__name__)
_CORE_OPTIONS = ("start_method", "realtime_priority", "cpu_affinity", "pacing")


class SenseActTask(Task):
    """The Task protocol over a SenseAct env's hooks (see the module docstring for where each runs).

    Args:
        env: the SenseAct-style env whose hooks it calls.
        observation_dim: length of the observation (the sensation has two more: reward, done).
        action_dim: length of the action.
        windows: communicator name -> SenseAct's ``num_sensor_packets`` (may exceed buffer_len).
        loop_resets: run ``_reset_`` in the polling loop (multithread, multiprocess) rather than
            in ``reset`` itself (singlethread).
        sleep_time: seconds between checks while waiting for the loop's reset.
    """

    def __init__(self, env: RTRLBaseEnv, observation_dim: int, action_dim: int, windows: Mapping[str, int],
                 loop_resets: bool, sleep_time: float) -> None:
        self.env = env
        self.observation_space = spaces.Box(-np.inf, np.inf, (observation_dim,), np.float64)
        # SenseAct checks no bounds: the env's own _compute_actuation_ clips if it wants to.
        self.action_space = spaces.Box(-np.inf, np.inf, (action_dim,), np.float64)
        self.sensation_len = observation_dim + 2
        self.windows = dict(windows)
        self.loop_resets, self.sleep_time = loop_resets, sleep_time
        self.next_reset = "wait"
        """What the next ``reset`` does: ``"wait"`` runs ``_reset_`` (in the loop, waiting for it),
        ``"async"`` leaves it to the env to ask the loop afterwards, ``"none"`` skips it."""
        self._reset_flag = multiprocessing.get_context("spawn").RawValue(ctypes.c_int, 0)
        self._lock = threading.Lock()  # the loop's hooks run one at a time, as in SenseAct's one loop
        self._seen: dict[str, int] = {}
        self._actions = 0
        self._last: np.ndarray | None = None
        self.last_sensation: np.ndarray | None = None
        """The agent process's newest sensation, ``[observation..., reward, done]``."""

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_lock"] = None  # a lock does not pickle; each process gets its own
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ===== Polling loop =====

    def sense(self, windows: Mapping[str, SensorWindow]) -> np.ndarray:
        with self._lock:
            if self.loop_resets and self._reset_flag.value:
                self._run_reset()
                self._reset_flag.value = 0  # reset() may be waiting on this
            for name, window in windows.items():
                newest = int(window.indices[-1])
                if self._seen.get(name) != newest:  # SenseAct computes a sensation per updated buffer
                    self._seen[name] = newest
                    self._last = self._flat(self.env._compute_sensation_(name, *self._senseact_window(name, window)))
            return self._last

    def _run_reset(self) -> None:
        self.env._reset_()
        self._seen.clear()  # what a sensation means may have changed (a new target): recompute them all

    def _senseact_window(self, name: str, window: SensorWindow) -> tuple[list, list, list]:
        data, stamps, indices = window
        wanted = self.windows[name]
        if wanted > len(indices):  # longer than the buffer: wrap round it as SenseAct does
            positions = wrap_positions(wanted, len(indices))
            data, stamps, indices = np.asarray(data)[positions], np.asarray(stamps)[positions], \
                np.asarray(indices)[positions]
        return list(data), [float(t) for t in stamps], [int(i) for i in indices]

    def _flat(self, sensation: Any) -> np.ndarray:
        flat = np.asarray(sensation, dtype=np.float64).ravel()
        if flat.size != self.sensation_len:
            raise ValueError(f"{type(self.env).__name__}._compute_sensation_ returned {flat.size} values; expected "
                             f"observation_dim + 2 = {self.sensation_len}: [observation..., reward, done]")
        return flat

    def actuate(self, action: np.ndarray) -> dict[str, Any]:
        with self._lock:
            index, self._actions = self._actions, self._actions + 1
            # SenseAct passes the action buffer's timestamp and index windows (lists of one).
            self.env._compute_actuation_(action, [time.monotonic()], [index])
            return dict(self.env._actuation_packet_)

    # ===== Agent's process =====

    def reset(self, devices: Devices, rng: np.random.Generator) -> None:
        if self.next_reset == "none" or (self.next_reset == "async" and self.loop_resets):
            return  # async: the env asks the loop once the cycle has restarted
        if not self.loop_resets:
            self._run_reset()
            return
        self.request_loop_reset()
        while self._reset_flag.value:  # a robot's reset may take minutes: no timeout, but no hang on a death
            devices.check()
            time.sleep(self.sleep_time)

    def request_loop_reset(self) -> None:
        """Asks the polling loop to run ``_reset_`` before its next sensation."""
        self._reset_flag.value = 1

    def observe(self, sensation: np.ndarray, action: np.ndarray | None) -> np.ndarray:
        self.last_sensation = sensation
        return sensation[:-2]

    def reward(self, sensation: np.ndarray, action: np.ndarray) -> float:
        return float(sensation[-2])


class RTRLBaseEnv:
    """SenseAct's RTRLBaseEnv; subclass it as in SenseAct (see the module docstring).

    Runs in the agent's process. Not a Gymnasium env by itself, like SenseAct's: mix in
    ``gymnasium.Env`` after it if you want one.

    Args:
        communicator_setups: name -> ``{"Communicator": class, "kwargs": dict,
            "num_sensor_packets": int (optional, default 1)}``.
        action_dim: length of the action.
        observation_dim: length of the observation.
        run_mode: ``singlethread``, ``multithread`` or ``multiprocess`` (default).
        dt: the action cycle, seconds.
        dt_tol: an agent that took more than ``dt + dt_tol`` since the last observation is warned
            about (SenseAct's overrun warning).
        sleep_time: the polling loop's idle sleep, seconds.
        busy_loop: spin before each deadline (a learned margin); False sleeps all the way.
        random_state: a ``numpy.random.RandomState().get_state()`` tuple for ``_rand_obj_``.
        **core_options: ``start_method`` (of the polling loop; SenseAct's fork by default),
            ``realtime_priority``, ``cpu_affinity``, ``pacing``: passed to the core env.

    Raises:
        TypeError: an unknown keyword argument.
        ValueError: a malformed communicator setup or run mode.
    """

    def __init__(self, communicator_setups: Mapping[str, Mapping[str, Any]], action_dim: int, observation_dim: int,
                 run_mode: str = "multiprocess", dt: float = 0.1, dt_tol: float = 1e-5, sleep_time: float = 0.0001,
                 busy_loop: bool = True, random_state: tuple | None = None, **core_options: Any) -> None:
        unknown = sorted(set(core_options) - set(_CORE_OPTIONS))
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown keyword argument(s) {unknown}; SenseAct's are "
                            f"run_mode, dt, dt_tol, sleep_time, busy_loop, random_state, and the core's {_CORE_OPTIONS}")
        core_options.setdefault("start_method", "fork")
        self._run_mode, self._dt, self._dt_tol, self._sleep_time = run_mode, dt, dt_tol, sleep_time
        self._rand_obj_ = np.random.RandomState()
        if random_state is not None:
            self._rand_obj_.set_state(random_state)
        self._all_comms = self._build_communicators(communicator_setups)
        try:
            self._sensor_comms = {n: c for n, c in self._all_comms.items() if c.use_sensor}
            self._actuator_comms = {n: c for n, c in self._all_comms.items() if c.use_actuator}
            self._actuation_packet_ = {n: np.zeros(c.actuator_buffer.array_len, c.actuator_buffer.dtype)
                                       for n, c in self._actuator_comms.items()}
            self._num_sensor_packets = {n: int(communicator_setups[n].get("num_sensor_packets", 1))
                                        for n in self._sensor_comms}
            self._task = SenseActTask(self, int(observation_dim), int(action_dim), self._num_sensor_packets,
                                      loop_resets=run_mode != "singlethread", sleep_time=sleep_time)
            windows = {n: min(k, self._sensor_comms[n].sensor_buffer.buffer_len)
                       for n, k in self._num_sensor_packets.items()}
            self._env = CoreEnv(self._task, self._all_comms, dt=dt, windows=windows, run_mode=run_mode,
                                spin_s=None if busy_loop else 0.0, sleep_time=sleep_time, **core_options)
        except BaseException:
            close_all(c for c in self._all_comms.values())
            raise
        self._running = False
        self._failure: Exception | None = None
        self._obs_time = time.monotonic()

    @staticmethod
    def _build_communicators(setups: Mapping[str, Mapping[str, Any]]) -> dict[str, Communicator]:
        built: dict[str, Communicator] = {}
        try:
            for name, setup in setups.items():
                if not isinstance(setup, Mapping) or "Communicator" not in setup:
                    raise ValueError(f"communicator_setups[{name!r}] = {setup!r}: expected "
                                     "{'Communicator': SomeCommunicator, 'kwargs': {...}}")
                built[name] = setup["Communicator"](**setup.get("kwargs", {}))
        except BaseException:
            close_all(built.values())
            raise
        return built

    def __getstate__(self) -> dict:
        # A spawned polling loop needs the hooks and their state, not the agent's cycle.
        state = self.__dict__.copy()
        state.pop("_env", None)
        return state

    # ===== SenseAct's main interfaces =====

    def start(self) -> None:
        """Starts every communicator and the polling loop, and the action cycle."""
        if not self._sensor_comms:
            raise EnvError(f"{type(self).__name__} has no communicator with a sensor: observations come from "
                           "sensors, so at least one setup needs use_sensor=True")
        self._task.next_reset = "none"  # start the cycle without running _reset_, as SenseAct's start
        try:
            with self._closing_on_failure():
                self._env.reset()
        finally:
            self._task.next_reset = "wait"
        self._running = True
        self._obs_time = time.monotonic()

    def reset(self, blocking: bool = True) -> np.ndarray:
        """Runs ``_reset_`` (in the polling loop unless singlethread) and returns the observation.

        Args:
            blocking: wait for ``_reset_`` to finish (the default). False asks the polling loop to
                reset and returns the newest observation at once, as SenseAct's does; the loop
                then resets while the agent goes on (its actions wait until the reset is done).
                Singlethread mode always blocks, as in SenseAct.
        """
        self._ensure_running()
        self._task.next_reset = "wait" if blocking else "async"
        try:
            with self._closing_on_failure():
                self._env.reset()
        finally:
            self._task.next_reset = "wait"
        if not blocking and self._run_mode != "singlethread":
            self._task.request_loop_reset()
        self._obs_time = time.monotonic()
        return self._read()[0]

    def act(self, action: Any) -> None:
        """Hands the action to the polling loop (or, in singlethread mode, to the actuators) now.

        Raises:
            ValueError: a malformed or non-finite action; nothing is sent and the env goes on.
            Exception: whatever a hook raised; as in SenseAct, the env is closed first.
        """
        self._ensure_running()
        action = self._action_vector(action)
        if not np.all(np.isfinite(action)):
            bad = int(np.flatnonzero(~np.isfinite(action))[0])
            raise ValueError(f"action[{bad}]={action[bad]} is not finite; nothing was sent to any device")
        with self._closing_on_failure():
            self._env.act(action)

    def sense(self) -> tuple[np.ndarray, float, Any]:
        """The newest ``(observation, reward, done)``; ``done`` is ``_check_done``'s verdict."""
        self._ensure_running()
        with self._closing_on_failure():
            sensation, _ = self._env.latest_sensation()
        self._task.observe(sensation, None)
        return self._read()

    def sense_wait(self) -> tuple[np.ndarray, float, Any]:
        """Waits for the next deadline of the cycle (``t0 + k * dt``), then ``sense()``."""
        self._ensure_running()
        used = time.monotonic() - self._obs_time
        if used > self._dt + self._dt_tol:
            logger.warning("Agent has over-run its allocated dt, it has been %.4f s since the last observation, "
                           "%.4f s more than allowed", used, used - self._dt)
        with self._closing_on_failure():
            sensation, self._timing = self._env.sense_wait()
        self._obs_time = time.monotonic()
        self._task.observe(sensation, None)
        return self._read()

    def step(self, action: Any) -> tuple[np.ndarray, float, Any, dict[str, Any]]:
        """``act(action)``, then ``sense_wait()``: returns ``(observation, reward, done, info)``.

        ``info`` holds the cycle's ``timing`` (SenseAct's is empty).
        """
        self.act(action)
        obs, reward, done = self.sense_wait()
        return obs, reward, done, {"timing": self._timing}

    def close(self) -> None:
        """Stops the polling loop and every communicator; idempotent."""
        self._running = False
        self._env.close()

    @property
    def processes(self) -> list:
        """The started processes: every communicator, then the polling loop (multiprocess)."""
        return self._env.processes

    def timing_report(self) -> TimingReport:
        """p50/p99/max of |period - dt|, overruns and drift of the cycle so far (the core env's)."""
        return self._env.timing_report()

    def timing_records(self) -> dict[str, np.ndarray]:
        """Every step's timing, one array per field (seconds; the core env's)."""
        return self._env.timing_records()

    # ===== SenseAct's hooks: implement in the subclass =====

    def _reset_(self) -> None:
        """Brings the task to an episode's start (polling loop; see the module docstring)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _reset_()")

    def _check_done(self, env_done: Any) -> Any:
        """Whether the episode is over, given the sensation's done flag (agent's process)."""
        return env_done

    def _compute_sensation_(self, name: str, sensor_window: list, timestamp_window: list,
                            index_window: list) -> Any:
        """``[observation..., reward, done]`` from communicator ``name``'s newest window (polling loop)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _compute_sensation_()")

    def _compute_actuation_(self, action: np.ndarray, timestamp: list, index: list) -> None:
        """Fills ``self._actuation_packet_[name]`` for each actuator from ``action`` (polling loop)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _compute_actuation_()")

    # ===== Internals =====

    @contextlib.contextmanager
    def _closing_on_failure(self) -> Iterator[None]:
        try:
            yield
        except Exception as err:
            self._failure = err
            self.close()  # as SenseAct's act and sense do: a failed env leaves nothing running
            raise

    def _ensure_running(self) -> None:
        if self._failure is not None:  # a dead env stays dead: say why on every call
            raise EnvError(f"{type(self).__name__} stopped: {self._failure}") from self._failure
        if not self._running:
            raise EnvError(f"{type(self).__name__}: call start() first (or it was closed)")

    def _action_vector(self, action: Any) -> np.ndarray:
        arr = np.asarray(action, dtype=np.float64)
        dim = self._task.action_space.shape[0]
        if arr.size == 1:
            return np.full(dim, arr.reshape(()))  # a scalar fills the action, as SenseAct's np.copyto does
        if arr.size != dim:
            raise ValueError(f"action has {arr.size} elements (shape {arr.shape}), expected action_dim={dim}; "
                             "nothing was sent to any device")
        return arr.reshape(dim)

    def _read(self) -> tuple[np.ndarray, float, Any]:
        sensation = self._task.last_sensation
        return sensation[:-2], float(sensation[-2]), self._check_done(sensation[-1])
