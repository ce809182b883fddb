"""Move the arm smoothly to a joint-space goal with joint-velocity commands (the env's reset).

A proportional controller with a speed cap: dq = clip(gain * (goal - q), +-max_velocity), scaled
down uniformly when any joint would exceed the cap, so all joints arrive together along a straight
line in joint space (no joint races ahead and swings the camera). It stops when every joint is
within `tolerance` of the goal and slower than `settle_velocity`.

It fails only when the arm makes no progress: when the distance to go (the largest joint error)
has not shrunk by `min_progress` for `stall_timeout_s`. A fixed deadline failed the main job on a
loaded machine: the loop sends a command per period from the agent's process, the arm's watchdog
zeroes each command after 100 ms, and with the agent's process starved (measured: 804 ms per
homing period, nice 19 against 14 busy processes on 2 cores) the arm moved an eighth of the time
and an 8 s deadline ran out with joints still converging. A blocked arm, a goal behind a
safety-filter wall or a frozen state stops the progress, and only then does the reset fail, saying
how far each joint is from its goal and how fast it was moving.

The time a move should take follows from the speed cap, the gain and the distance to go
(:meth:`HomingController.expected_duration`); the failure message states it beside the time spent.

The loop takes callables for "read q", "send dq" and "wait one period", so the env runs it against
the shared buffers in real time and a test runs it against MuJoCo physics stepped in-process.

Example:
    >>> import numpy as np
    >>> ctrl = HomingController(HomingConfig(gain=2.0, max_velocity=0.5))
    >>> ctrl.command(np.zeros(7), np.full(7, 0.1)).round(3).tolist()
    [0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]
    >>> round(ctrl.expected_duration(1.0), 2)   # 0.75 rad at the 0.5 rad/s cap, then 0.25 rad at rate 2/s
    3.11
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from communicators.franka.kinematics import NUM_JOINTS
from rtrl_env.errors import EnvError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HomingConfig:
    """How the reset moves the arm.

    Attributes:
        gain: proportional gain, 1/s (the joint-space error shrinks at this rate near the goal).
        max_velocity: speed cap of the largest joint motion, rad/s.
        tolerance: every joint within this many rad of the goal counts as arrived. At that error
            the command (gain * tolerance) must be below `settle_velocity`, or the arm could not
            settle while arriving.
        settle_velocity: and every joint slower than this, rad/s.
        stall_timeout_s: fail when the distance to go has not shrunk by `min_progress` for this
            many seconds.
        min_progress: rad; smaller improvements of the distance to go do not count as progress.
        period_s: command period, s (the communicator's watchdog must be longer).
    """

    gain: float = 3.0
    max_velocity: float = 0.8
    tolerance: float = 0.01
    settle_velocity: float = 0.05
    stall_timeout_s: float = 2.0
    min_progress: float = 0.002
    period_s: float = 0.02

    def __post_init__(self) -> None:
        for name in ("gain", "max_velocity", "tolerance", "settle_velocity", "stall_timeout_s",
                     "min_progress", "period_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"HomingConfig.{name}={value!r}: expected a number > 0")
        if self.gain * self.tolerance > self.settle_velocity:
            raise ValueError(
                f"HomingConfig: gain * tolerance = {self.gain * self.tolerance:.3g} rad/s exceeds "
                f"settle_velocity={self.settle_velocity} rad/s: at the tolerance the arm is still "
                "commanded faster than it may move to count as arrived; lower gain or tolerance")
        if self.min_progress >= self.tolerance:
            raise ValueError(f"HomingConfig.min_progress={self.min_progress} rad must be below "
                             f"tolerance={self.tolerance} rad, or the last stretch never counts as progress")
        if self.stall_timeout_s < 5 * self.period_s:
            raise ValueError(f"HomingConfig.stall_timeout_s={self.stall_timeout_s} s must span at least 5 "
                             f"command periods ({5 * self.period_s:.3g} s)")


class _Progress:
    """The best distance to go so far, and when it last improved by ``min_progress``."""

    def __init__(self, distance: float, now: float, min_progress: float) -> None:
        self.best, self.since, self._step = distance, now, min_progress

    def update(self, distance: float, now: float) -> None:
        if distance < self.best - self._step:
            self.best, self.since = distance, now


class HomingController:
    """Computes homing commands and runs the homing loop.

    Args:
        config: gains, tolerance and the stall timeout.
    """

    def __init__(self, config: HomingConfig = HomingConfig()) -> None:
        self.config = config

    def command(self, q: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Joint-velocity command (7,), rad/s, towards `goal` from `q` (both (7,), rad)."""
        dq = self.config.gain * (np.asarray(goal, np.float64) - np.asarray(q, np.float64))
        peak = float(np.max(np.abs(dq)))
        if peak > self.config.max_velocity:
            dq *= self.config.max_velocity / peak
        return dq

    def arrived(self, q: np.ndarray, dq: np.ndarray, goal: np.ndarray) -> bool:
        """Whether q (rad) is within tolerance of goal and the arm is nearly still (dq, rad/s)."""
        return bool(np.all(np.abs(np.asarray(goal) - q) <= self.config.tolerance)
                    and np.all(np.abs(dq) <= self.config.settle_velocity))

    def expected_duration(self, distance: float) -> float:
        """Seconds a move of ``distance`` rad (largest joint error) takes on an arm that follows.

        At the speed cap until the proportional command falls below it (at ``max_velocity /
        gain`` rad to go), then exponentially at rate ``gain`` down to the tolerance.
        """
        c = self.config
        knee = c.max_velocity / c.gain
        capped = max(distance - knee, 0.0) / c.max_velocity
        return capped + math.log(max(min(distance, knee), c.tolerance) / c.tolerance) / c.gain

    def run(self, goal: np.ndarray, read_state: Callable[[], tuple[np.ndarray, np.ndarray]],
            send: Callable[[np.ndarray], None], wait: Callable[[], None],
            clock: Callable[[], float] = time.monotonic) -> float:
        """Drive the arm to `goal`, then command zero velocity.

        Args:
            goal: joint angles, shape (7,), rad.
            read_state: returns the latest (q (7,) rad, dq (7,) rad/s).
            send: sends a joint-velocity command (7,), rad/s.
            wait: blocks for one command period.
            clock: seconds, for the stall timeout (time.monotonic in real time).

        Returns:
            Seconds the move took (by `clock`).

        Raises:
            EnvError: the arm made no progress for `stall_timeout_s`; the arm is stopped first.
                Any error of the callables propagates, after the stop command.
            ValueError: goal is not 7 finite numbers.
        """
        goal = np.asarray(goal, dtype=np.float64)
        if goal.shape != (NUM_JOINTS,) or not np.all(np.isfinite(goal)):
            raise ValueError(f"homing goal {goal!r}: expected 7 finite joint angles in rad")
        start = clock()
        try:
            q, dq = read_state()
            first = float(np.max(np.abs(goal - q)))
            progress = _Progress(first, start, self.config.min_progress)
            while not self.arrived(q, dq, goal):
                now = clock()
                progress.update(float(np.max(np.abs(goal - q))), now)
                if now - progress.since > self.config.stall_timeout_s:
                    raise EnvError(self._stall_message(goal, q, dq, first, now - start))
                send(self.command(q, goal))
                wait()
                q, dq = read_state()
        except BaseException as err:
            self._stop_after(err, send)
            raise
        send(np.zeros(NUM_JOINTS))  # arrived: hold still (a failure here propagates)
        return clock() - start

    def _stop_after(self, err: BaseException, send: Callable[[np.ndarray], None]) -> None:
        try:
            send(np.zeros(NUM_JOINTS))  # never leave the arm moving, whatever happened
        except Exception as stop_err:  # noqa: BLE001 - kept on the error being raised, and logged
            if str(stop_err) == str(err):
                return  # the env failed and refuses sends: it stopped every actuator itself
            logger.error("homing: the stop command failed after %s: %s", type(err).__name__, stop_err)
            if hasattr(err, "add_note"):  # Python >= 3.11
                err.add_note(f"and the homing's stop command failed: {stop_err}; the arm's watchdog must stop it")

    def _stall_message(self, goal: np.ndarray, q: np.ndarray, dq: np.ndarray, first: float, spent: float) -> str:
        c = self.config
        joints = ", ".join(f"A{i + 1} {abs(goal[i] - q[i]):.3f} rad to go at {dq[i]:+.3f} rad/s"
                           for i in range(NUM_JOINTS))
        return (f"reset could not bring the arm home: it made no progress for {c.stall_timeout_s} s (the distance "
                f"to go did not shrink by {c.min_progress} rad; tolerance {c.tolerance} rad). After {spent:.1f} s "
                f"the largest joint error is {float(np.max(np.abs(goal - q))):.3f} rad, from {first:.3f} rad at "
                f"the start (a move that takes about {self.expected_duration(first):.1f} s at "
                f"{c.max_velocity} rad/s and gain {c.gain}/s). Joints: {joints}. Check that the arm is not "
                "blocked (contact, or a workspace wall of the safety filter between it and the goal), that "
                "the goal is inside the joint limits, and that the robot communicator is running")
