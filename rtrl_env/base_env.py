"""RTRLBaseEnv: composes communicators and steps them at a fixed, drift-free action cycle.

``step(action)`` writes the action, waits for the cycle's deadline ``t0 + k * dt`` on the
monotonic clock, then reads the freshest sensation (act, wait, sense). The subclass hooks keep
SenseAct's names, so a SenseAct env ports by changing its imports, and the outside is Gymnasium's.
"""

from __future__ import annotations

import inspect
import math
import os
import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from communicators.communicator import Communicator
from communicators.errors import CommunicatorError, EnvError
from communicators.pacing import Pacer, PacingMode, enable_realtime
from rtrl_env import sensation as sensation_codec
from rtrl_env.polling_loop import PollingLoop
from rtrl_env.timing import CycleTelemetry, TimingReport

RUN_MODES = ("singlethread", "multiprocess")
_FIRST_DATA_TIMEOUT_S = 20.0


class RTRLBaseEnv(gym.Env):
    """Base class of real-time environments built from communicators.

    Hooks to implement (SenseAct's names):

    * ``_compute_sensation_``: either SenseAct's per-communicator form
      ``_compute_sensation_(name, sensor_window, timestamp_window, index_window)`` returning a flat
      array ``[obs..., reward, done]``, or the all-at-once form
      ``_compute_sensation_(name_to_sensor_window)`` (a dict of ``(data, timestamps, indices)``
      windows) returning a flat array as above or a dict (``reward`` and ``done`` keys optional).
    * ``_compute_actuation_(action, timestamp, index)``: fill ``self._actuation_packet_[name]``
      (SenseAct) or write actuator buffers directly; a packet is sent only for communicators whose
      buffer the hook did not write itself.
    * ``_reset_()``: bring the task to a start state. It runs in the agent's process in both run
      modes, so it sees the env's seeded ``np_random``.
    * ``_check_done(env_done)``: the episode's termination flag.

    Args:
        communicator_setups: ``{name: {'Communicator': cls_or_factory, 'kwargs': {...},
            'num_sensor_packets': n}}``; each entry builds one Communicator. An optional
            ``'actuated': False`` keeps its actuator out of the per-step actuation packets.
        action_dim: length of the action vector.
        observation_dim: length of a flat observation (SenseAct form); None if the subclass sets
            ``observation_space`` itself.
        run_mode: ``singlethread`` (sensing and actuating inline in ``step``) or ``multiprocess``
            (a polling loop process does both).
        dt: the action cycle in seconds.
        dt_tol: SenseAct compatibility; unused (deadline pacing needs no tolerance).
        sleep_time: the polling loop's idle sleep in seconds (bounds its added latency).
        busy_loop: wait the last ``spin_s`` before each deadline without sleeping.
        random_state: SenseAct compatibility: a ``np.random.RandomState`` state tuple.
        pacing: ``deadline`` (default) or ``relative`` (SenseAct's and the seed's pacing, for
            comparison).
        spin_s: seconds before a deadline at which sleeping stops.
        realtime_priority: SCHED_FIFO priority for the stepping thread and the polling loop;
            None keeps the normal scheduler. Falls back with one warning where not permitted.
        cpu_affinity: CPUs to pin the stepping thread to; None leaves it free.
        start_method: multiprocessing start method of the polling loop; the default if None.
    """

    def __init__(
        self,
        communicator_setups: dict[str, dict[str, Any]],
        action_dim: int,
        observation_dim: int | None,
        run_mode: str = "multiprocess",
        dt: float = 0.1,
        dt_tol: float = 1e-5,
        sleep_time: float = 0.0001,
        busy_loop: bool = True,
        random_state: Any = None,
        *,
        pacing: PacingMode | str = PacingMode.DEADLINE,
        spin_s: float = 0.0003,
        realtime_priority: int | None = None,
        cpu_affinity: set[int] | None = None,
        start_method: str | None = None,
    ) -> None:
        if run_mode not in RUN_MODES:
            raise ValueError(f"run_mode={run_mode!r}; choose one of {RUN_MODES}")
        if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt={dt!r} must be a positive number of seconds, e.g. dt=0.04")
        if not isinstance(action_dim, (int, np.integer)) or action_dim < 1:
            raise ValueError(f"action_dim={action_dim!r} must be a positive integer")
        self._run_mode, self._dt, self._sleep_time = run_mode, float(dt), sleep_time
        self._pacer = Pacer(dt, pacing, spin_s if busy_loop else 0.0)
        self._realtime_priority, self._cpu_affinity, self._start_method = realtime_priority, cpu_affinity, start_method
        self._caller_scheduler: tuple | None = None  # the stepping thread's scheduler before start()
        self._rand_obj_ = np.random.RandomState()
        if random_state is not None:
            self._rand_obj_.set_state(random_state)
        if not isinstance(getattr(self, "action_space", None), spaces.Space):
            self.action_space = spaces.Box(-1.0, 1.0, (int(action_dim),), np.float32)
        if not isinstance(getattr(self, "observation_space", None), spaces.Space):
            if observation_dim is None:
                raise ValueError("observation_dim is None and the subclass set no observation_space")
            self.observation_space = spaces.Box(-np.inf, np.inf, (int(observation_dim),), np.float64)
        self._telemetry = CycleTelemetry(dt)
        self._sensation_is_dict = self._hook_takes_all_windows()
        self._sensor_comms: dict[str, Communicator] = {}
        self._actuator_comms: dict[str, Communicator] = {}
        self._all_comms: dict[str, Communicator] = {}
        self._actuation_packet_: dict[str, np.ndarray] = {}
        self._num_sensor_packets: dict[str, int] = {}
        self._build_communicators(communicator_setups)
        self._polling_loop: PollingLoop | None = None
        self._running = False
        self._windows: dict[str, tuple] = {}
        self._last_sensation: Any = None
        self._last_wake = math.nan
        self._sensation_dtype: np.dtype | None = None
        self._owner_pid = os.getpid()
        self._failure: EnvError | None = None
        self._closed = False

    # ===== Hooks to implement =====

    def _compute_sensation_(self, *args: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement _compute_sensation_")

    def _compute_actuation_(self, action: np.ndarray, timestamp: float, index: int) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _compute_actuation_")

    def _reset_(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _reset_")

    def _check_done(self, env_done: bool) -> bool:
        return bool(env_done)

    # ===== Construction =====

    def _hook_takes_all_windows(self) -> bool:
        params = [p for p in inspect.signature(self._compute_sensation_).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
        return len(params) != 4  # SenseAct's form takes (name, sensor, timestamps, indices)

    def _build_communicators(self, setups: dict[str, dict[str, Any]]) -> None:
        try:
            for name, setup in setups.items():
                self._build_one(name, setup)
        except BaseException:
            self._close_built()  # free the shared memory of those already built
            raise

    def _build_one(self, name: str, setup: dict[str, Any]) -> None:
        factory = setup.get("Communicator")
        if inspect.isclass(factory) and not issubclass(factory, Communicator):
            raise TypeError(f"communicator {name!r}: {factory.__name__} is not a subclass of communicators.Communicator")
        if not callable(factory):
            raise TypeError(f"communicator {name!r}: 'Communicator' must be a Communicator class, got {factory!r}")
        comm = factory(**setup.get("kwargs", {}))
        if not isinstance(comm, Communicator):
            raise TypeError(f"communicator {name!r}: the factory returned {type(comm).__name__}, not a Communicator")
        if comm.pid is None:
            comm.name = f"{name} ({type(comm).__name__})"  # two cameras of one class stay apart
        self._all_comms[name] = comm
        # 'actuated': False keeps a communicator out of the per-step actuation packets (its actuator
        # buffer is written by the env's own code, e.g. a target that takes one request per episode).
        if comm.use_actuator and setup.get("actuated", True):
            self._actuator_comms[name] = comm
            self._actuation_packet_[name] = np.zeros(comm.actuator_buffer.shape, comm.actuator_buffer.dtype)
        if comm.use_sensor:
            window = int(setup.get("num_sensor_packets", 1))
            if not 1 <= window <= comm.sensor_buffer.buffer_len:
                raise ValueError(f"communicator {name!r}: num_sensor_packets={window} must be between 1 and its "
                                 f"sensor buffer_len={comm.sensor_buffer.buffer_len}")
            self._sensor_comms[name] = comm
            self._num_sensor_packets[name] = window

    def _close_built(self) -> None:
        for comm in self._all_comms.values():
            comm.close()

    # ===== Life cycle =====

    def start(self) -> None:
        """Starts the communicators (and the polling loop) and waits for their first data."""
        if self._running:
            return
        self._running = True
        try:
            for comm in self._all_comms.values():
                comm.start()
            self._wait_for_first_data()
            if self._run_mode == "multiprocess":
                self._start_polling_loop()
            if (self._realtime_priority is not None or self._cpu_affinity) and hasattr(os, "sched_getscheduler"):
                # The stepping thread is the caller's: close() gives it its scheduler back.
                self._caller_scheduler = (os.sched_getscheduler(0), os.sched_getparam(0), os.sched_getaffinity(0))
            enable_realtime(self._realtime_priority, self._cpu_affinity)
        except BaseException:
            self.close()
            raise

    def _wait_for_first_data(self) -> None:
        deadline = time.monotonic() + _FIRST_DATA_TIMEOUT_S
        for name, comm in self._sensor_comms.items():
            while comm.sensor_buffer.num_writes == 0:
                self._raise_if_failed()
                if time.monotonic() > deadline:
                    raise EnvError(f"communicator {name!r} sent no data within {_FIRST_DATA_TIMEOUT_S:.0f} s of starting; "
                                   "is its device connected and its sensor handler writing?")
                time.sleep(0.005)

    def _start_polling_loop(self) -> None:
        first = self._poll_sensation(force=True)
        value, _ = first
        if isinstance(value, dict):
            self._sensation_dtype = sensation_codec.record_dtype(value)
            args = {"shape": (), "dtype": self._sensation_dtype, "buffer_len": 2}
        else:
            value = np.asarray(value, np.float64)
            self._sensation_dtype = None
            args = {"shape": value.shape, "dtype": np.float64, "buffer_len": 2}
        self._polling_loop = PollingLoop(self, args, self.action_space.shape[0], self._sleep_time, self._start_method)
        self._polling_loop.start()
        deadline = time.monotonic() + _FIRST_DATA_TIMEOUT_S
        while self._polling_loop.sensor_buffer.num_writes == 0:
            self._raise_if_failed()
            if time.monotonic() > deadline:
                raise EnvError(f"the polling loop computed no sensation within {_FIRST_DATA_TIMEOUT_S:.0f} s of starting")
            time.sleep(0.002)

    def close(self) -> None:
        """Stops the polling loop and every communicator (stop flags first, then joins). Idempotent."""
        if os.getpid() != self._owner_pid:  # a polling-loop child never closes the parent's processes
            return
        self._running, self._closed = False, True
        procs = list(self._all_comms.values())
        if self._polling_loop is not None:
            procs.insert(0, self._polling_loop)
        for proc in procs:
            proc._stop_event.set()
        errors = []
        for proc in procs:  # each with its own default patience (a robot may ramp to rest first)
            try:
                proc.close()
            except Exception as err:  # noqa: BLE001 - close the others whatever happens
                errors.append(f"{proc.name}: {err}")
        self._restore_caller_scheduler()  # after the processes: nothing may keep them running
        if errors:
            raise EnvError("closing left errors: " + "; ".join(errors))

    def _restore_caller_scheduler(self) -> None:
        if self._caller_scheduler is None:
            return
        policy, param, cpus = self._caller_scheduler
        self._caller_scheduler = None
        os.sched_setscheduler(0, policy, param)  # lowering one's own priority is always allowed
        os.sched_setaffinity(0, cpus)

    def __enter__(self) -> "RTRLBaseEnv":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getstate__(self) -> dict:
        # Only the polling loop's child needs the env, and it must not carry its own handle.
        state = self.__dict__.copy()
        state["_polling_loop"] = None
        state["_telemetry"] = None  # the polling loop records no steps; don't ship the big array
        return state

    # ===== Gymnasium API =====

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Runs ``_reset_`` and returns the first observation of the episode and an info dict.

        Raises:
            EnvError: a communicator or the polling loop died.
        """
        super().reset(seed=seed)
        self._raise_if_failed()
        if not self._running:
            self.start()
        self._raise_if_failed()
        self._reset_()
        obs, _, _, obs_time = self._sense()
        now = self._restart_cycle()
        return obs, {"timing": {"start": now, "obs_timestamp": obs_time, "obs_age": now - obs_time}}

    def _restart_cycle(self) -> float:
        """Starts the deadline grid now; a subclass that waits after ``reset`` calls it again."""
        now = time.monotonic()
        self._pacer.start(now)
        self._telemetry.restart(now)
        self._last_wake = math.nan  # the first period after a reset is not a cycle
        return now

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Writes the action, waits for the cycle's deadline, returns the freshest observation.

        Raises:
            ValueError: the action has the wrong shape, is not finite, or is outside the action
                space; nothing is sent to the actuators.
            EnvError: a communicator or the polling loop died.
        """
        action = self._check_action(action)
        self._raise_if_failed()
        if not self._running:
            raise EnvError(f"{type(self).__name__}.step() before reset(): call reset() first")
        self._raise_if_failed()
        write_time = time.monotonic()
        if self._polling_loop is not None:
            self._polling_loop.actuator_buffer.write(action, timestamp=write_time)
        else:
            self._actuate(action, write_time, -1)
        overrun = self._pacer.wait()
        wake = time.monotonic()
        obs, reward, done, obs_time = self._sense()
        period, self._last_wake = wake - self._last_wake, wake
        timing = self._telemetry.record(wake, period, write_time, obs_time, overrun, self._pacer.grid_index)
        return obs, reward, self._check_done(done), False, {"timing": timing}

    def timing_report(self) -> TimingReport:
        """p50/p90/p99/max of |period - dt|, overruns, drift and observation age so far."""
        return self._telemetry.report()

    def timing_records(self) -> dict[str, np.ndarray]:
        """Every recorded step's timing, one array per field (seconds)."""
        return self._telemetry.records()

    # ===== Internals shared by both run modes =====

    def _check_action(self, action: Any) -> np.ndarray:
        space = self.action_space
        arr = np.asarray(action, dtype=np.float64)
        name = getattr(self.spec, "id", None) or type(self).__name__
        if arr.shape != space.shape:
            raise ValueError(f"action has shape {arr.shape}, expected {space.shape} for {name}; nothing was sent")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"action {arr.tolist()} contains NaN or inf; nothing was sent")
        if isinstance(space, spaces.Box) and (np.any(arr < space.low) or np.any(arr > space.high)):
            raise ValueError(f"action {np.round(arr, 4).tolist()} is outside the action space "
                             f"[{space.low.min()}, {space.high.max()}]; nothing was sent")
        return arr

    def _actuate(self, action: np.ndarray, timestamp: float, index: int) -> None:
        counts = {n: c.actuator_buffer.num_writes for n, c in self._actuator_comms.items()}
        self._compute_actuation_(action, timestamp, index)
        for name, comm in self._actuator_comms.items():
            if comm.actuator_buffer.num_writes == counts[name]:  # the hook did not write it itself
                comm.actuator_buffer.write(self._actuation_packet_[name])

    def _poll_sensation(self, force: bool = False) -> tuple[Any, float] | None:
        """Reads new sensor windows and computes a sensation; None if nothing is new."""
        updated = [n for n, c in self._sensor_comms.items() if force or c.sensor_buffer.updated()]
        if not updated:
            return None
        for name in updated:
            self._windows[name] = self._sensor_comms[name].sensor_buffer.read_update(self._num_sensor_packets[name])
        if self._sensation_is_dict:
            self._last_sensation = self._compute_sensation_(self._windows)
        else:
            for name in updated:
                self._last_sensation = self._compute_sensation_(name, *self._windows[name])
        # The observation is as old as its stalest stream.
        obs_time = min(float(w[1][-1]) for w in self._windows.values())
        return self._last_sensation, obs_time

    def _pack_sensation(self, value: Any) -> np.ndarray:
        if self._sensation_dtype is not None:
            return sensation_codec.pack(value, self._sensation_dtype)
        return np.asarray(value, np.float64)

    def _sense(self) -> tuple[Any, float, bool, float]:
        """The freshest sensation, split into (observation, reward, done, timestamp)."""
        if self._polling_loop is not None:
            record, obs_time, _ = self._polling_loop.sensor_buffer.latest()
            value = sensation_codec.unpack(record) if self._sensation_dtype is not None else record
        else:
            polled = self._poll_sensation()
            if polled is None:  # nothing new since the last step: the newest is still the last one
                polled = self._last_sensation, min(float(w[1][-1]) for w in self._windows.values())
            value, obs_time = polled
        if isinstance(value, dict):
            # reward and done ride along in the sensation but are not observations.
            obs = {k: v for k, v in value.items() if k not in ("reward", "done")}
            return obs, float(value.get("reward", 0.0)), bool(value.get("done", False)), obs_time
        flat = np.asarray(value)
        return flat[:-2], float(flat[-2]), bool(flat[-1]), obs_time

    def _raise_if_failed(self) -> None:
        if self._closed and self._failure is None:
            raise EnvError(f"{type(self).__name__} is closed: its processes are gone; make a new env")
        if self._failure is not None:  # a dead env stays dead: say why on every call
            raise EnvError(str(self._failure)) from self._failure.__cause__
        procs = list(self._all_comms.values())
        if self._polling_loop is not None:
            procs.append(self._polling_loop)
        for proc in procs:
            try:
                proc.raise_if_failed()
            except CommunicatorError as err:
                self.close()
                self._failure = EnvError(f"{type(self).__name__} stopped: {proc.name!r} died; all its processes "
                                         f"were closed. Make a new env to go on. Cause: {err}")
                raise self._failure from err
