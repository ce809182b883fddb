"""The task protocol: what an env computes, split by the process each part runs in.

dm_control's Physics + Task split: the communicators are the physics (devices in their own
processes), a :class:`Task` says what to read, what to send, what the reward is and how an
episode starts, and :class:`~rtrl_env.base_env.RTRLBaseEnv` owns the action cycle and the
processes. Every hook is public and has a default except :meth:`Task.sense` and
:meth:`Task.actuate`.

Where each hook runs:

================================  ==========================================================
hook                              process
================================  ==========================================================
``sense``, ``actuate``            the polling loop: its own process in
                                  ``run_mode="multiprocess"`` (the task is pickled into it
                                  when the env starts, so state the agent's process sets later,
                                  in ``reset`` say, is not seen there), a thread of the agent's
                                  process in ``"multithread"``, or inline in ``step`` in
                                  ``"singlethread"``. Keep them pure functions of their
                                  arguments and of what the task held at start.
``reset``, ``observe``,           the agent's process: the one that calls ``env.reset()`` and
``reward``, ``terminated``,       ``env.step()``. They may keep per-episode state (a frame
``info``, ``stop_commands``       stack, the previous action).
================================  ==========================================================

Example: a task over one sensor ``"arm"`` (7 joint angles) and the same device's actuator,
checked against real communicators in ``tests/rtrl_env/test_base_env.py``::

    class HoldStill(Task):
        observation_space = spaces.Box(-np.pi, np.pi, (7,), np.float64)
        action_space = spaces.Box(-1.0, 1.0, (7,), np.float32)

        def sense(self, windows):
            return {"q": windows["arm"].data[-1]}

        def actuate(self, action):
            return {"arm": 0.1 * action}              # rad/s

        def observe(self, sensation, action):
            return sensation["q"]

        def reward(self, sensation, action):
            return -float(np.abs(sensation["q"]).sum())

        def stop_commands(self):
            return {"arm": np.zeros(7)}
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np
from gymnasium import spaces

from communicators.communicator import Communicator
from rtrl_env.errors import EnvError

Sensation = Any
"""What :meth:`Task.sense` returns: a dict of arrays and numbers (uint8 frames stay uint8), or a
flat float array. In multiprocess mode it crosses processes as one shared-memory record, so its
keys, shapes and dtypes must stay those of the first sensation."""


class SensorWindow(NamedTuple):
    """The newest slots of one communicator's sensor buffer, oldest first.

    Attributes:
        data: ``(window_len, *slot_shape)``, the slot dtype.
        timestamps: ``(window_len,)`` capture times, ``time.monotonic()`` seconds (NaN for a slot
            never written).
        indices: ``(window_len,)`` write indices (-1 for a slot never written).
    """

    data: np.ndarray
    timestamps: np.ndarray
    indices: np.ndarray


class Devices(Mapping[str, Communicator]):
    """The env's communicators as :meth:`Task.reset` sees them, in the agent's process.

    A read-only mapping from name to communicator, plus helpers that check every process on the
    way, so a device that dies during a reset raises :class:`EnvError` at once instead of leaving
    the reset waiting.

    Args:
        communicators: name -> communicator (started).
        check: raises EnvError if any process of the env failed (the env's own check).
        check_fresh: ``check_fresh(name)`` applies the env's freshness policy to one sensor stream
            (raises EnvError under "raise" if it is older than its budget); None checks nothing.
    """

    def __init__(self, communicators: Mapping[str, Communicator], check: Callable[[], None],
                 check_fresh: Callable[[str], None] | None = None) -> None:
        self._comms = dict(communicators)
        self._check = check
        self._check_fresh = check_fresh

    def __getitem__(self, name: str) -> Communicator:
        if name not in self._comms:
            raise KeyError(f"no communicator named {name!r}; the env has {sorted(self._comms)}")
        return self._comms[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._comms)

    def __len__(self) -> int:
        return len(self._comms)

    def check(self) -> None:
        """Raises EnvError if any process of the env has failed."""
        self._check()

    def check_fresh(self, name: str) -> None:
        """Raises EnvError if a process failed, or if stream ``name`` is older than its budget.

        The env's freshness policy decides (rtrl_env/freshness.py): under "raise" the stop
        commands are sent first; under "warn" nothing is raised. A reset that drives the robot
        from its state calls this on every read, so a hung arm stops the reset at once.
        """
        self._check()
        if self._check_fresh is not None:
            self._check_fresh(name)

    def latest(self, name: str) -> tuple[np.ndarray, float]:
        """The newest sensor slot of ``name`` and its capture time (``time.monotonic()`` s).

        Raises:
            EnvError: a process failed, or ``name`` has published nothing yet.
        """
        self._check()
        buffer = self[name].sensor_buffer
        if buffer is None or buffer.num_writes == 0:
            raise EnvError(f"communicator {name!r} has no sensor data yet")
        data, stamp, _ = buffer.latest()
        return data, stamp

    def send(self, name: str, command: Any) -> None:
        """Writes ``command`` into the actuator buffer of ``name`` (timestamped now).

        Raises:
            EnvError: a process failed (the env closed its buffers), or ``name`` has no actuator.
        """
        self._check()
        buffer = self[name].actuator_buffer
        if buffer is None:
            raise EnvError(f"communicator {name!r} has no actuator to send to")
        buffer.write(command)

    def wait_for_data(self, name: str, after: float, timeout: float, what: str) -> float:
        """Waits until ``name`` publishes a slot captured after ``after`` (monotonic s).

        Args:
            name: the communicator.
            after: the capture time to beat, ``time.monotonic()`` seconds.
            timeout: seconds to wait.
            what: what the slot is, for the message ("frame showing the new target").

        Returns:
            The capture time of that slot.

        Raises:
            EnvError: a process failed, or nothing new arrived within ``timeout``.
        """
        buffer, deadline = self[name].sensor_buffer, time.monotonic() + timeout
        while True:
            self._check()
            if buffer.num_writes > 0:
                stamp = float(buffer.latest()[1])
                if stamp > after:
                    return stamp
            if time.monotonic() > deadline:
                raise EnvError(f"communicator {name!r} gave no new {what} within {timeout:.1f} s; is its "
                               "device delivering at its configured rate?")
            time.sleep(0.002)

    def sleep(self, seconds: float) -> None:
        """Sleeps ``seconds``, checking every process on the way (at least once)."""
        end = time.monotonic() + seconds
        while True:
            self._check()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.01))


class Task:
    """Base class of tasks: the hooks an :class:`~rtrl_env.base_env.RTRLBaseEnv` calls.

    Subclasses set ``observation_space`` and ``action_space`` (Gymnasium spaces) and implement
    :meth:`sense` and :meth:`actuate`; the other hooks have working defaults. See the module
    docstring for which process runs each hook.
    """

    observation_space: spaces.Space
    """The space of what :meth:`observe` returns."""
    action_space: spaces.Space
    """The space of the actions ``step`` takes; the env checks every action against it."""

    # ===== Polling loop: pure functions =====

    def sense(self, windows: Mapping[str, SensorWindow]) -> Sensation:
        """Turns the newest sensor windows into one sensation.

        Runs in the polling loop, whenever any sensor has new data.

        Args:
            windows: communicator name -> its newest window (length set by the env's ``windows``).

        Returns:
            A dict of arrays and numbers, or a flat float array (see :data:`Sensation`).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement sense(windows)")

    def actuate(self, action: np.ndarray) -> Mapping[str, np.ndarray]:
        """Turns a checked action into one command per communicator.

        Runs in the polling loop, once per new action. Communicators not in the result are sent
        nothing.

        Args:
            action: inside ``action_space``, float64.

        Returns:
            name -> command (an array that fits that communicator's actuator slot).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement actuate(action)")

    # ===== Agent's process =====

    def reset(self, devices: Devices, rng: np.random.Generator) -> None:
        """Brings the world to an episode's start state, and clears per-episode state.

        Runs in the agent's process at ``env.reset()``, with the devices running. It may move the
        robot (``devices.send``), wait for data (``devices.wait_for_data``) and read it
        (``devices.latest``); the env's cycle starts after it returns.

        Args:
            devices: the env's communicators, with failure-checking helpers.
            rng: the env's seeded generator (``env.np_random``).
        """

    def observe(self, sensation: Sensation, action: np.ndarray | None) -> Any:
        """The agent's observation (an element of ``observation_space``).

        Runs in the agent's process after every reset (``action`` None) and step (``action`` the
        action just applied). The default returns the sensation unchanged.
        """
        return sensation

    def reward(self, sensation: Sensation, action: np.ndarray) -> float:
        """The reward of the step that led to ``sensation``. Default 0."""
        return 0.0

    def terminated(self, sensation: Sensation) -> bool:
        """Whether ``sensation`` is a terminal state (not a time limit). Default False."""
        return False

    def info(self, sensation: Sensation, reward: float) -> dict[str, Any]:
        """Extra entries of the step's and the reset's ``info`` (reward terms, ground truth). Default {}."""
        return {}

    def stop_commands(self) -> Mapping[str, np.ndarray]:
        """Commands that bring every actuator to rest (a robot: zero velocity).

        Sent at the end of every episode, before a failure is raised, and when the env closes,
        so the robot is never left moving until its watchdog fires. Default: none.
        """
        return {}
