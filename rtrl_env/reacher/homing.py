"""Move the arm smoothly to a joint-space goal with joint-velocity commands (the env's reset).

A proportional controller with a speed cap: dq = clip(gain * (goal - q), +-max_velocity), scaled
down uniformly when any joint would exceed the cap, so all joints arrive together along a straight
line in joint space (no joint races ahead and swings the camera). It stops when every joint is
within `tolerance` of the goal and fails loudly after `timeout_s`: a reset that cannot reach home
means a blocked arm or a broken backend, and the episode must not start from an unknown pose.

The loop takes callables for "read q", "send dq" and "wait one period", so the env runs it against
the shared buffers in real time and a test runs it against MuJoCo physics stepped in-process.

Example:
    >>> import numpy as np
    >>> ctrl = HomingController(HomingConfig(gain=2.0, max_velocity=0.5))
    >>> ctrl.command(np.zeros(7), np.full(7, 0.1)).round(3).tolist()
    [0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from rtrl_env.errors import EnvError
from communicators.franka.kinematics import NUM_JOINTS


@dataclass(frozen=True)
class HomingConfig:
    """How the reset moves the arm.

    Attributes:
        gain: proportional gain, 1/s (the joint-space error shrinks at this rate near the goal).
        max_velocity: speed cap of the largest joint motion, rad/s.
        tolerance: every joint within this many rad of the goal counts as arrived.
        settle_velocity: and every joint slower than this, rad/s.
        timeout_s: give up after this many seconds.
        period_s: command period, s (the communicator's watchdog must be longer).
    """

    gain: float = 3.0
    max_velocity: float = 0.8
    tolerance: float = 0.01
    settle_velocity: float = 0.05
    timeout_s: float = 8.0
    period_s: float = 0.02

    def __post_init__(self) -> None:
        for name in ("gain", "max_velocity", "tolerance", "settle_velocity", "timeout_s",
                     "period_s"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"HomingConfig.{name}={value!r}: expected a number > 0")


class HomingController:
    """Computes homing commands and runs the homing loop.

    Args:
        config: gains, tolerance and time limit.
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

    def run(self, goal: np.ndarray, read_state: Callable[[], tuple[np.ndarray, np.ndarray]],
            send: Callable[[np.ndarray], None], wait: Callable[[], None],
            clock: Callable[[], float] = time.monotonic) -> float:
        """Drive the arm to `goal`, then command zero velocity.

        Args:
            goal: joint angles, shape (7,), rad.
            read_state: returns the latest (q (7,) rad, dq (7,) rad/s).
            send: sends a joint-velocity command (7,), rad/s.
            wait: blocks for one command period.
            clock: seconds, for the timeout (time.monotonic in real time).

        Returns:
            Seconds the move took (by `clock`).

        Raises:
            EnvError: the goal was not reached within `timeout_s`; the arm is stopped first.
            ValueError: goal is not 7 finite numbers.
        """
        goal = np.asarray(goal, dtype=np.float64)
        if goal.shape != (NUM_JOINTS,) or not np.all(np.isfinite(goal)):
            raise ValueError(f"homing goal {goal!r}: expected 7 finite joint angles in rad")
        start = clock()
        try:
            while True:
                q, dq = read_state()
                if self.arrived(q, dq, goal):
                    return clock() - start
                if clock() - start > self.config.timeout_s:
                    worst = int(np.argmax(np.abs(goal - q)))
                    raise EnvError(
                        f"reset could not bring the arm home within {self.config.timeout_s} s: "
                        f"joint A{worst + 1} is {abs(goal[worst] - q[worst]):.3f} rad from its "
                        f"goal (tolerance {self.config.tolerance} rad); check that the arm is "
                        "not blocked, that the goal is inside the joint limits, and that the "
                        "robot communicator is running")
                send(self.command(q, goal))
                wait()
        finally:
            send(np.zeros(NUM_JOINTS))  # never leave the arm moving, whatever happened
