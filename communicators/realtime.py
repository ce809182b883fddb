"""Fixed-rate loop pacing on the monotonic clock, and optional real-time scheduling.

Two modes, so the benchmark can compare them on the same code path:

* ``deadline`` (the default): the k-th wake-up is due at ``t0 + k * period``. Sleeping ends a
  little before the deadline and a short wait finishes the job, so lateness does not accumulate
  (no drift). After an overrun the next deadline is the next point on the grid: no burst of
  catch-up cycles.
* ``relative``: sleep ``period`` minus the time used since the last wake-up, as SenseAct and the
  seed do. Every late wake-up shifts the whole schedule, so it drifts.
"""

from __future__ import annotations

import enum
import math
import os
import time
import warnings


class PacingMode(str, enum.Enum):
    """How a loop keeps its period."""

    DEADLINE = "deadline"
    RELATIVE = "relative"

    @classmethod
    def _missing_(cls, value: object) -> "PacingMode":
        raise ValueError(f"unknown pacing mode {value!r}; choose one of {[m.value for m in cls]}")


class Pacer:
    """Wakes a loop once per ``period`` seconds.

    Args:
        period: loop period in seconds (> 0).
        mode: ``deadline`` or ``relative`` (see the module docstring).
        spin_s: how long before a deadline sleeping stops and waiting continues without
            sleeping, in seconds. 0 sleeps all the way.

    Example:
        >>> pacer = Pacer(0.001)
        >>> pacer.start()
        >>> overruns = sum(pacer.wait() for _ in range(5))
        >>> pacer.cycles
        5
    """

    def __init__(self, period: float, mode: PacingMode | str = PacingMode.DEADLINE, spin_s: float = 0.0) -> None:
        if not (isinstance(period, (int, float)) and math.isfinite(period) and period > 0):
            raise ValueError(f"period={period!r} s must be a positive finite number")
        if spin_s < 0:
            raise ValueError(f"spin_s={spin_s!r} must be >= 0")
        self.period = float(period)
        self.mode = PacingMode(mode)
        self.spin_s = float(spin_s)
        self.overruns = 0
        self.cycles = 0
        self.t0 = time.monotonic()
        self._k = 0
        self._last_wake = self.t0

    def start(self, t0: float | None = None) -> None:
        """Starts the grid at ``t0`` (now if None)."""
        self.t0 = time.monotonic() if t0 is None else t0
        self._k = 0
        self._last_wake = self.t0

    @property
    def grid_index(self) -> int:
        """How many grid points (``t0 + k * period``) have passed; skipped ones included."""
        return self._k

    @property
    def next_deadline(self) -> float:
        if self.mode is PacingMode.RELATIVE:
            return self._last_wake + self.period
        return self.t0 + (self._k + 1) * self.period

    def wait(self) -> bool:
        """Sleeps until the next wake-up. Returns True if that wake-up was already missed."""
        deadline = self.next_deadline
        now = time.monotonic()
        overrun = now > deadline
        if overrun:
            self.overruns += 1
            if self.mode is PacingMode.DEADLINE:
                # Skip to the next grid point still ahead: lateness is not paid back in a burst.
                self._k = int((now - self.t0) // self.period)
                deadline = self.t0 + (self._k + 1) * self.period
            else:
                deadline = now
        self._sleep_until(deadline)
        self._k += 1
        self.cycles += 1
        self._last_wake = time.monotonic()
        return overrun

    def _sleep_until(self, deadline: float) -> None:
        remaining = deadline - time.monotonic() - self.spin_s
        if remaining > 0:
            time.sleep(remaining)
        while time.monotonic() < deadline:
            pass


_warned_realtime = False


def enable_realtime(priority: int | None, cpus: set[int] | None = None) -> bool:
    """Puts the calling thread under SCHED_FIFO at ``priority`` and pins it to ``cpus``.

    Where the process is not permitted (no root, no CAP_SYS_NICE, not Linux), it warns once and
    carries on with the normal scheduler. Returns True if real-time scheduling is on.
    """
    global _warned_realtime
    ok = True
    try:
        if cpus:
            os.sched_setaffinity(0, cpus)
        if priority is not None:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(int(priority)))
    except (PermissionError, AttributeError, OSError) as err:
        ok = False
        if not _warned_realtime:
            _warned_realtime = True
            warnings.warn(
                f"real-time scheduling unavailable ({err}); falling back to the normal scheduler. "
                "Run as root or grant CAP_SYS_NICE for tighter timing.",
                RuntimeWarning,
                stacklevel=2,
            )
    return ok and priority is not None
