"""RTRLBaseEnv: a task over communicators, stepped at a fixed, drift-free action cycle.

``step(action)`` checks the action, hands it to the polling loop (which turns it into commands
with the task's ``actuate``), waits for the cycle's deadline ``t0 + k * dt`` on the monotonic
clock, then reads the freshest sensation (act, wait, sense) and lets the task observe and score
it. The env owns the device processes and the polling loop: it starts them, watches them on
every call (a dead process raises; a sensor stream older than its budget triggers the freshness
policy, rtrl_env/freshness.py), and stops them all (the robot first commanded to rest) however the
program ends. A stop command that cannot be sent is logged at once and raised, never dropped.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from communicators.communicator import Communicator, close_all
from communicators.errors import CommunicatorError
from communicators.realtime import Pacer, PacingMode, enable_realtime, restore_scheduler, scheduler_state
from rtrl_env.action_check import check_action
from rtrl_env.env_args import RUN_MODES, check_env_args, window_lengths  # noqa: F401 - RUN_MODES re-exported
from rtrl_env.errors import EnvError
from rtrl_env.freshness import FreshnessConfig, FreshnessMonitor, StalePolicy, StaleStream
from rtrl_env.polling_loop import PollingLoop, PollingThread, SensationPoller, send_commands
from rtrl_env.sensation import SensationCodec
from rtrl_env.task import Devices, Task
from rtrl_env.timing import CycleTelemetry, TimingReport

_FIRST_DATA_TIMEOUT_S = 60.0  # a loaded machine can take long to bring up a renderer
logger = logging.getLogger(__name__)


class RTRLBaseEnv(gym.Env):
    """A real-time Gymnasium env: a :class:`~rtrl_env.task.Task` over communicators.

    Runs in the agent's process (the one that calls ``reset`` and ``step``). The communicators'
    processes, and in multiprocess mode the polling loop's, are started by :meth:`start` (or the
    first ``reset``) and stopped by :meth:`close`.

    Args:
        task: what to read, what to send, the reward and the episode start (see rtrl_env/task.py).
        communicators: name -> communicator, built and not started. The env owns them: it closes
            them on :meth:`close`, and at once if its own construction fails.
        dt: the action cycle, seconds.
        windows: name -> how many of the newest sensor slots ``task.sense`` gets (default 1).
        run_mode: ``multiprocess`` (the polling loop in its own process, the default),
            ``multithread`` (in a thread of this process) or ``singlethread`` (inline in
            ``step``).
        max_episode_steps: truncate episodes after this many steps; None never truncates.
        pacing: ``deadline`` (default: ``t0 + k * dt``, no drift) or ``relative`` (sleep dt minus
            the time used, as SenseAct and the seed pace; for comparison).
        spin_s: seconds before a deadline at which sleeping stops and waiting spins; None (the
            default) learns it from how late sleeps wake (see communicators/realtime.py).
        sleep_time: the polling loop's idle sleep, seconds, where nothing wakes it (bounds the age
            it adds to a sensation): in singlethread and multithread modes, and in multiprocess
            mode where sensor writes cannot wake it (no futex_waitv). Actions wake the loop's process.
        realtime_priority: SCHED_FIFO priority (1..99) of the stepping thread and the polling
            loop; None keeps the normal scheduler. Falls back with one warning where not permitted.
        cpu_affinity: CPUs to pin the stepping thread to; None leaves it free.
        start_method: multiprocessing start method of the polling loop;
            ``communicators.communicator.DEFAULT_START_METHOD`` (never fork) if None.
        freshness: the sensor streams' age budgets and what a step does when one is exceeded
            (``FreshnessConfig()`` if None: raise, 3 expected periods + 0.1 s per stream).

    Raises:
        ValueError: a bad argument; nothing is started and the communicators are closed.
    """

    def __init__(
        self,
        task: Task,
        communicators: Mapping[str, Communicator],
        *,
        dt: float,
        windows: Mapping[str, int] | None = None,
        run_mode: str = "multiprocess",
        max_episode_steps: int | None = None,
        pacing: PacingMode | str = PacingMode.DEADLINE,
        spin_s: float | None = None,
        sleep_time: float = 0.0001,
        realtime_priority: int | None = None,
        cpu_affinity: set[int] | None = None,
        start_method: str | None = None,
        freshness: FreshnessConfig | None = None,
    ) -> None:
        self._comms: dict[str, Communicator] = dict(communicators)
        self._closed, self._running, self._loop = False, False, None
        self._owner_pid = os.getpid()
        try:
            check_env_args(task, self._comms, dt, run_mode, max_episode_steps)
            for name, comm in self._comms.items():
                if comm.pid is None:
                    comm.name = f"{name} ({type(comm).__name__})"  # two cameras of one class stay apart
            self._windows = window_lengths(self._comms, windows or {})
            self._pacer = Pacer(dt, pacing, spin_s)
            self._freshness = FreshnessMonitor(freshness, {name: self._comms[name] for name in self._windows})
        except BaseException:
            self._close_communicators()
            raise
        self.task = task
        self.action_space, self.observation_space = task.action_space, task.observation_space
        self._dt, self._run_mode, self._max_episode_steps = float(dt), run_mode, max_episode_steps
        self._sleep_time, self._start_method = sleep_time, start_method
        self._realtime_priority, self._cpu_affinity = realtime_priority, cpu_affinity
        self._caller_scheduler = None  # the stepping thread's scheduling before start()
        self._telemetry = CycleTelemetry(dt)
        self._poller: SensationPoller | None = None  # singlethread mode's inline loop
        self._codec: SensationCodec | None = None
        self._last_sensation: tuple[Any, float] | None = None
        self._last_wake = self._write_time = math.nan
        self._episode_step = 0
        self._episode_running = False
        self._failure: EnvError | None = None
        self._stop_failures: list[str] = []  # failed stop commands not yet raised: close() raises them
        self.devices = Devices(self._comms, self._raise_if_failed,
                               lambda name: self._enforce_freshness(self._freshness.check(names=[name])))

    # ===== Construction =====

    def _sensor_buffers(self) -> dict:
        return {name: self._comms[name].sensor_buffer for name in self._windows}

    def _actuator_buffers(self) -> dict:
        return {name: comm.actuator_buffer for name, comm in self._comms.items() if comm.use_actuator}

    # ===== Life cycle =====

    def start(self) -> None:
        """Starts the communicators (and the polling loop) and waits for their first data.

        Raises:
            EnvError: a communicator failed or sent nothing within 20 s; everything is closed.
        """
        if self._running:
            return
        if self._closed:
            raise EnvError(f"{self._label()} is closed: its processes are gone; make a new env")
        self._running = True
        try:
            for comm in self._comms.values():
                comm.start()
            self._wait_for_first_data()
            self._start_loop()
            if self._realtime_priority is not None or self._cpu_affinity:
                # The stepping thread is the caller's: close() gives it its scheduler back.
                self._caller_scheduler = scheduler_state()
            enable_realtime(self._realtime_priority, self._cpu_affinity)
        except BaseException:
            self.close()
            raise

    def _wait_for_first_data(self) -> None:
        deadline = time.monotonic() + _FIRST_DATA_TIMEOUT_S
        for name, buffer in self._sensor_buffers().items():
            while buffer.num_writes == 0:
                self._raise_if_failed()
                if time.monotonic() > deadline:
                    raise EnvError(f"communicator {name!r} sent no data within {_FIRST_DATA_TIMEOUT_S:.0f} s of "
                                   "starting; is its device connected and its sensor handler writing?")
                time.sleep(0.005)

    def _start_loop(self) -> None:
        self._poller = SensationPoller(self.task.sense, self._sensor_buffers(), self._windows)
        self._last_sensation = self._poller.poll(force=True)
        if self._run_mode == "singlethread":
            return
        self._codec = SensationCodec(self._last_sensation[0])
        loop_class = PollingLoop if self._run_mode == "multiprocess" else PollingThread
        self._loop = loop_class(self.task.sense, self.task.actuate, self._sensor_buffers(), self._windows,
                                self._actuator_buffers(), self._codec, self.action_space.shape[0], self._sleep_time,
                                realtime_priority=self._realtime_priority, cpu_affinity=self._cpu_affinity,
                                name=f"{self._label()} polling loop", start_method=self._start_method)
        self._loop.start()
        self._wait_for_sensations(1)

    def _wait_for_sensations(self, count: int) -> None:
        """Waits until the polling loop has written ``count`` more sensations than now."""
        target = self._loop.sensor_buffer.num_writes + count
        deadline = time.monotonic() + _FIRST_DATA_TIMEOUT_S
        while self._loop.sensor_buffer.num_writes < target:
            self._raise_if_failed()
            if time.monotonic() > deadline:
                raise EnvError(f"the polling loop computed no sensation within {_FIRST_DATA_TIMEOUT_S:.0f} s")
            time.sleep(0.0005)

    def close(self) -> None:
        """Commands every actuator to rest, then stops the polling loop and every communicator.

        Idempotent. Each process gets its own patience (a robot may ramp to rest first).

        Raises:
            EnvError: the stop commands could not be sent, or a process could not be closed; the
                others are closed all the same.
        """
        if os.getpid() != self._owner_pid or self._closed:  # a child never closes the parent's processes
            return
        if self._running and self._failure is None:
            self._try_stop_commands()  # a failure is logged, and raised below once everything is closed
        errors, self._stop_failures = [f"stop commands failed: {e}" for e in self._stop_failures], []
        self._running, self._closed, self._episode_running = False, True, False
        procs = ([self._loop] if self._loop is not None else []) + list(self._comms.values())
        errors += close_all(procs)
        self._restore_caller_scheduler()  # after the processes: nothing may keep them running
        if errors:
            raise EnvError("closing left errors: " + "; ".join(errors))

    def _close_communicators(self) -> None:
        # A constructor error may be about a non-communicator: close only the real ones.
        close_all(comm for comm in self._comms.values() if isinstance(comm, Communicator))

    def _restore_caller_scheduler(self) -> None:
        state, self._caller_scheduler = self._caller_scheduler, None
        restore_scheduler(state)

    def __enter__(self) -> RTRLBaseEnv:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ===== Gymnasium API =====

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Runs the task's reset and returns the episode's first observation and an info dict.

        Args:
            seed: seeds ``np_random``, which the task's reset receives.
            options: unused.

        Raises:
            EnvError: a communicator or the polling loop died, the task's reset failed, or (policy
                "raise") a sensor stream stayed older than its budget for that budget.
        """
        super().reset(seed=seed)
        self._raise_if_failed()
        self.start()
        self._episode_running = False
        self._enforce_freshness(self._freshness.wait_until_fresh(self._raise_if_failed))
        self.task.reset(self.devices, self.np_random)
        sensation, obs_time = self._sense_after_reset()
        now = self._restart_cycle()
        self._episode_step = 0
        self._episode_running = True
        obs = self.task.observe(sensation, None)
        info = {**self.task.info(sensation, 0.0), "episode_step": 0,
                "timing": {"start": now, "obs_timestamp": obs_time, "obs_age": now - obs_time}}
        return obs, info

    def _sense_after_reset(self) -> tuple[Any, float]:
        if self._loop is None:
            return self._poller.poll(force=True)
        # The second sensation written from now was computed entirely after the reset: its windows
        # hold whatever the reset waited for.
        self._wait_for_sensations(2)
        return self._sense()

    def _restart_cycle(self) -> float:
        now = time.monotonic()
        self._pacer.start(now)
        self._telemetry.restart(now)
        self._last_wake = math.nan  # the first period after a reset is not a cycle
        return now

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Sends the action, waits for the cycle's deadline, returns the freshest observation.

        Raises:
            ValueError: the action is not an element of ``action_space`` (real numbers of its
                shape and bounds); nothing is sent.
            EnvError: a communicator or the polling loop died, ``reset`` was not called, or (policy
                "raise") a sensor stream is older than its budget: the stop commands are sent and
                the episode ends first.
        """
        action = self._check_action(action)
        self._raise_if_failed()
        if not self._episode_running:
            raise EnvError(f"{self._label()}.step() before reset(), or after the episode ended: call reset() first")
        self._send_action(action)
        sensation, timing = self.sense_wait()
        self._episode_step += 1
        obs = self.task.observe(sensation, action)
        reward = float(self.task.reward(sensation, action))
        terminated = bool(self.task.terminated(sensation))
        truncated = self._max_episode_steps is not None and self._episode_step >= self._max_episode_steps
        if terminated or truncated:
            self._episode_running = False
            stop_error = self._try_stop_commands()  # do not leave the robot moving until its watchdog fires
            if stop_error is not None:
                raise EnvError(f"{self._label()}: the episode ended but its stop commands failed: {stop_error} "
                               "(raised again at close); the robot's own watchdog must stop it")
        info = {**self.task.info(sensation, reward), "episode_step": self._episode_step, "timing": timing}
        return obs, reward, terminated, truncated, info

    def act(self, action: Any) -> np.ndarray:
        """Checks ``action`` and hands it to the devices now, without waiting: ``step``'s first half.

        Runs in the agent's process. ``step(action)`` is ``act(action)``, ``sense_wait()``, then
        the task's observe, reward and terminated; the two halves are public for agents that
        split them (SenseAct's ``act``/``sense_wait``, rtrl_env/senseact.py).

        Returns:
            The action as sent (float64, the action space's shape).

        Raises:
            ValueError: the action is not an element of ``action_space``; nothing is sent.
            EnvError: a process died, or the env was not started.
        """
        action = self._check_action(action)
        self._raise_if_failed()
        if not self._running:
            raise EnvError(f"{self._label()}.act() before start() or reset(): the devices are not running")
        self._send_action(action)
        return action

    def sense_wait(self) -> tuple[Any, dict[str, Any]]:
        """Waits for the cycle's next deadline, then returns the freshest sensation: ``step``'s second half.

        Runs in the agent's process; records the step's timing (see ``timing_report``) and checks
        every sensor stream's age (the freshness policy: under "raise" a stale stream sends the
        stop commands and raises EnvError).

        Returns:
            ``(sensation, timing)``: the task's sensation (before ``observe``) and the
            ``info["timing"]`` dict of the cycle.
        """
        overrun = self._pacer.wait()
        wake = time.monotonic()
        sensation, obs_time = self.latest_sensation()
        ages = self._freshness.ages()
        stale = self._enforce_freshness(self._freshness.stale(ages))
        period, self._last_wake = wake - self._last_wake, wake
        timing = self._telemetry.record(wake, period, self._write_time, obs_time, overrun, self._pacer.grid_index,
                                        stale=[s.name for s in stale])
        timing["stale"] = {s.name: s.age_s for s in stale}
        timing["ages"] = ages  # every checked stream's age at this step, s
        return sensation, timing

    def latest_sensation(self) -> tuple[Any, float]:
        """The freshest sensation, without waiting, and its timestamp (its stalest stream's).

        Runs in the agent's process (in singlethread mode it polls the sensors first).
        """
        return self._sense()

    def timing_report(self) -> TimingReport:
        """p50/p90/p99/max of |period - dt|, overruns, drift and observation age so far."""
        return self._telemetry.report()

    def timing_records(self) -> dict[str, np.ndarray]:
        """Every recorded step's timing, one array per field (seconds)."""
        return self._telemetry.records()

    @property
    def freshness_budgets(self) -> dict[str, float]:
        """Sensor stream name -> the age (s) it may reach at a step; streams without a budget are not checked."""
        return self._freshness.budgets

    @property
    def processes(self) -> list:
        """The env's started processes: every communicator, then the polling loop (multiprocess)."""
        procs = [c for c in self._comms.values() if c.pid is not None]
        if isinstance(self._loop, PollingLoop) and self._loop.pid is not None:
            procs.append(self._loop)
        return procs

    # ===== Internals =====

    def _label(self) -> str:
        return getattr(self.spec, "id", None) or type(self).__name__

    def _check_action(self, action: Any) -> np.ndarray:
        return check_action(action, self.action_space, self._label())

    def _sense(self) -> tuple[Any, float]:
        """The freshest sensation and its timestamp (that of its stalest stream)."""
        if self._loop is not None:
            record, obs_time, _ = self._loop.sensor_buffer.latest()
            return self._codec.unpack(record), obs_time
        polled = self._poller.poll()
        if polled is not None:  # else nothing new since the last step: the last one is still the newest
            self._last_sensation = polled
        return self._last_sensation

    def _send_action(self, action: np.ndarray) -> None:
        self._write_time = time.monotonic()
        if self._loop is not None:
            self._loop.post_action(action, timestamp=self._write_time)
        else:
            send_commands(self.task.actuate(action), self._actuator_buffers())

    def _send_stop_commands(self) -> None:
        if self._loop is not None and not self._loop.actuator_buffer.closed:
            # First drop an action the loop has not forwarded yet: it must not land after the stop.
            self._loop.post_action(np.full(self._loop.actuator_buffer.shape, np.nan))
        send_commands(self.task.stop_commands(), self._actuator_buffers())

    def _try_stop_commands(self) -> str | None:
        """Sends the stop commands; a failure is logged, kept for close() to raise, and returned."""
        try:
            self._send_stop_commands()
        except Exception as err:  # noqa: BLE001 - logged now, raised by close(); the robot's watchdog stops it
            logger.error("%s: the stop commands could not be sent: %s; the robot's own watchdog must stop it",
                         self._label(), err)
            self._stop_failures.append(str(err))
            return str(err)
        return None

    def _enforce_freshness(self, stale: list[StaleStream]) -> list[StaleStream]:
        """Under policy "raise", stale streams end the episode: stop commands, then EnvError."""
        if stale and self._freshness.config.policy is StalePolicy.RAISE:
            self._episode_running = False
            raise self._freshness.error(stale, self._label(), self._try_stop_commands())
        return stale

    def _raise_if_failed(self) -> None:
        if self._failure is not None:  # a dead env stays dead: say why on every call
            raise EnvError(str(self._failure)) from self._failure.__cause__
        if self._closed:
            raise EnvError(f"{self._label()} is closed: its processes are gone; make a new env")
        procs = list(self._comms.values()) + ([self._loop] if self._loop is not None else [])
        for proc in procs:
            try:
                proc.raise_if_failed()
            except CommunicatorError as err:
                self._fail(f"{proc.name!r} died", err)

    def _fail(self, what: str, cause: BaseException) -> None:
        """Stops the robot, closes every process and raises EnvError; later calls repeat it."""
        stop_error = self._try_stop_commands()  # logged; said in the message below
        if stop_error is not None:
            self._stop_failures.remove(stop_error)
            what += f" (and the stop commands failed: {stop_error}; the robot's watchdog stops it)"
        self._failure = EnvError(f"{self._label()} stopped: {what}; all its processes were closed. "
                                 f"Make a new env to go on. Cause: {cause}")
        self._failure.__cause__ = cause
        try:
            self.close()
        except EnvError as err:  # a process that would not close: part of the same failure
            self._failure = EnvError(f"{self._failure}; {err}")
            self._failure.__cause__ = cause
        raise self._failure from cause
