"""Fixed-rate loop pacing on the monotonic clock, and real-time scheduling: the one copy of each.

Two pacing modes, so the benchmark can compare them on the same code path:

* ``deadline`` (the default): the k-th wake-up is due at ``t0 + k * period``. Lateness does not
  accumulate (no drift). After an overrun the next deadline is the next point on the grid: no
  burst of catch-up cycles.
* ``relative``: sleep ``period`` minus the time used since the last wake-up, as SenseAct and the
  seed do. Every late wake-up shifts the whole schedule, so it drifts.

How a wait ends: it sleeps until a margin before the deadline, then spins on the clock to the
deadline itself. The normal scheduler wakes a sleeper tens of microseconds late, and up to
milliseconds late on a busy core; the spin absorbs that lateness, so a wake-up lands within
microseconds of its deadline as long as the sleep overshoots by less than the margin. The margin
is either fixed (``spin_s``) or learned (``spin_s=None``): a high quantile of the sleep overshoots
seen in the last cycles, capped at 1 % of the period (at most 0.5 ms) so pacing stays cheap; a learning
pacer also sets its thread's timer slack to 1 ns (``precise_timer_slack``), so that sleeps overshoot
by tens of microseconds rather than up to the default 50 us slack plus the wake-up latency.
"""

from __future__ import annotations

import ctypes
import enum
import math
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from communicators.errors import RealtimeError


class PacingMode(str, enum.Enum):
    """How a loop keeps its period."""

    DEADLINE = "deadline"
    RELATIVE = "relative"

    @classmethod
    def _missing_(cls, value: object) -> "PacingMode":
        raise ValueError(f"unknown pacing mode {value!r}; choose one of {[m.value for m in cls]}")


class SpinMargin:
    """Learns how long before a deadline sleeping must stop, from the sleeps' observed overshoot.

    The margin is the ``quantile`` of the last ``window`` overshoots plus ``guard``, within
    ``[floor, cap]``. Until ``warmup`` overshoots are seen it is ``cap``: start safe, then shrink.

    Args:
        cap: the largest margin, s (the most a cycle spins).
        window: overshoots remembered.
        quantile: which quantile of them the margin covers.
        guard: s added to the quantile.
        floor: the smallest margin, s.
        warmup: overshoots needed before the margin is learned.
    """

    def __init__(self, cap: float, window: int = 400, quantile: float = 0.995, guard: float = 30e-6,
                 floor: float = 30e-6, warmup: int = 10) -> None:
        self.cap, self.quantile, self.guard = cap, quantile, guard
        self.floor, self.warmup = min(floor, cap), warmup
        self._samples = np.zeros(window)
        self._count = 0
        self.value = cap

    def observe(self, overshoot: float) -> None:
        """Records how late (s) one sleep woke after the time it was asked to wake."""
        self._samples[self._count % len(self._samples)] = max(overshoot, 0.0)
        self._count += 1
        if self._count >= self.warmup:
            seen = self._samples[: min(self._count, len(self._samples))]
            k = math.ceil(self.quantile * (len(seen) - 1))  # np.partition: a few us; np.quantile costs ~80
            learned = float(np.partition(seen, k)[k]) + self.guard
            self.value = min(self.cap, max(self.floor, learned))


class Pacer:
    """Wakes a loop once per ``period`` seconds.

    Args:
        period: loop period in seconds (> 0).
        mode: ``deadline`` or ``relative`` (see the module docstring).
        spin_s: how long before a deadline sleeping stops and waiting continues on the clock, in
            seconds. 0 sleeps all the way (cheapest; wake-ups are as late as the scheduler makes
            them). None learns the margin from the observed sleep overshoot, up to ``max_spin_s``.
        max_spin_s: the cap of a learned margin, s; by default 1 % of the period, at most 0.5 ms.
            Spinning longer does not pay on a busy machine: the scheduler then wakes a thread that
            has used more CPU later, so a long spin makes the next sleep overshoot more.
        sleep: the sleep function (``time.sleep``). Tests pass one that oversleeps on purpose to
            see the learned margin follow.

    Example:
        >>> pacer = Pacer(0.001)
        >>> pacer.start()
        >>> overruns = sum(pacer.wait() for _ in range(5))
        >>> pacer.cycles
        5
    """

    def __init__(self, period: float, mode: PacingMode | str = PacingMode.DEADLINE, spin_s: float | None = 0.0,
                 *, max_spin_s: float | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        if not (isinstance(period, (int, float)) and math.isfinite(period) and period > 0):
            raise ValueError(f"period={period!r} s must be a positive finite number")
        if spin_s is not None and not spin_s >= 0:
            raise ValueError(f"spin_s={spin_s!r} must be >= 0, or None to learn the margin")
        if max_spin_s is not None and not max_spin_s > 0:
            raise ValueError(f"max_spin_s={max_spin_s!r} must be > 0, or None for 1 % of the period")
        self.period = float(period)
        self.mode = PacingMode(mode)
        cap = min(0.01 * self.period, 0.0005) if max_spin_s is None else float(max_spin_s)
        self._margin = SpinMargin(cap) if spin_s is None else None
        self._fixed_spin = 0.0 if spin_s is None else float(spin_s)
        self._sleep = sleep
        self._overshoot: float | None = None  # of the last sleep, learned from at the next wait
        self.overruns = 0
        self.cycles = 0
        self.lateness = 0.0
        """How late (s) the last wake-up came after its deadline."""
        self.t0 = time.monotonic()
        self._k = 0
        self._last_wake = self.t0

    def start(self, t0: float | None = None) -> None:
        """Starts the grid at ``t0`` (now if None)."""
        self.t0 = time.monotonic() if t0 is None else t0
        self._k = 0
        self._last_wake = self.t0

    @property
    def spin_s(self) -> float:
        """The margin before a deadline at which sleeping stops, s (learned or fixed)."""
        return self._margin.value if self._margin is not None else self._fixed_spin

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
        if self._overshoot is not None:
            # Learned now, far from the deadline, not right after the last one: the caller
            # timestamps its wake-up at once, and even a few microseconds of numpy would show.
            self._margin.observe(self._overshoot)
            self._overshoot = None
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
        self._last_wake = self._wait_until(deadline)
        self._k += 1
        self.cycles += 1
        self.lateness = self._last_wake - deadline
        return overrun

    def _wait_until(self, deadline: float) -> float:
        if self._margin is not None and not getattr(_this_thread, "precise", False):
            _this_thread.precise = True  # once per thread: the setting is the thread's
            precise_timer_slack()
        wake = deadline - self.spin_s
        left = wake - time.monotonic()
        woke = None
        if left > 0:
            self._sleep(left)
            woke = time.monotonic()
        while (arrived := time.monotonic()) < deadline:
            pass
        if woke is not None and self._margin is not None:
            self._overshoot = woke - wake
        return arrived


_PR_SET_TIMERSLACK = 29
_this_thread = threading.local()  # not thread ids: a new thread may reuse a finished one's


def precise_timer_slack() -> bool:
    """Asks the kernel to wake the calling thread's sleeps on time, not up to 50 us late.

    Linux lets timers of normal (SCHED_OTHER) threads fire up to their "timer slack" late (50 us by
    default) so that wake-ups can be batched; ``prctl(PR_SET_TIMERSLACK, 1)`` sets it to 1 ns for
    the calling thread. No privilege is needed and it costs no CPU; threads and processes the thread
    starts afterwards inherit it. Returns False where the call is not available (not Linux).
    """
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


# ===== Real-time scheduling =====

_warned_realtime = False
REFUSAL_POLICIES = ("warn", "raise")


def enable_realtime(priority: int | None, cpus: set[int] | None = None, *, on_refusal: str = "warn",
                    owner: str | None = None, fix: str = "run without a real-time priority") -> bool:
    """Puts the calling thread under SCHED_FIFO at ``priority`` and pins it to ``cpus``.

    Every real-time path of the project calls this one function; ``on_refusal`` says what a
    refusal (no root, no CAP_SYS_NICE, not Linux) means for it.

    Args:
        priority: SCHED_FIFO priority 1..99; None leaves the scheduling policy alone.
        cpus: CPUs to pin the calling thread to; None or empty leaves the affinity alone.
        on_refusal: ``"warn"``: warn once per process and carry on under the normal scheduler (a
            loop that is better with real time but works without it); ``"raise"``: raise
            RealtimeError (a device that was configured to need it).
        owner: who asked, for the message (e.g. ``"FrankaSimCommunicator"``).
        fix: what the user can do instead, for the message.

    Returns:
        True if the thread now runs under SCHED_FIFO.

    Raises:
        RealtimeError: refused and ``on_refusal="raise"``.
        ValueError: ``on_refusal`` is neither policy.
    """
    global _warned_realtime
    if on_refusal not in REFUSAL_POLICIES:
        raise ValueError(f"on_refusal={on_refusal!r}; choose one of {REFUSAL_POLICIES}")
    try:
        if cpus:
            os.sched_setaffinity(0, cpus)
        if priority is not None:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(int(priority)))
    except (PermissionError, AttributeError, OSError) as err:
        what = f"SCHED_FIFO priority {priority}" + (f" on CPUs {sorted(cpus)}" if cpus else "")
        prefix = f"{owner}: " if owner else ""
        if on_refusal == "raise":
            raise RealtimeError(f"{prefix}{what} was refused ({err}); run as root or grant CAP_SYS_NICE, "
                                f"or {fix}") from err
        if not _warned_realtime:
            _warned_realtime = True
            warnings.warn(f"{prefix}real-time scheduling unavailable ({err}); falling back to the normal "
                          "scheduler. Run as root or grant CAP_SYS_NICE for tighter timing.",
                          RuntimeWarning, stacklevel=2)
        return False
    return priority is not None


BACKGROUND_SCHEDULERS = ("other", "batch", "idle")
"""The scheduling policies a background process may take without privileges, by name:
``other`` (SCHED_OTHER, the normal one), ``batch`` (SCHED_BATCH: CPU-bound, never preempts on
wake-up), ``idle`` (SCHED_IDLE: runs only on CPU time no normal thread wants)."""


def run_in_background(scheduler: str, nice: int = 0, this_thread_only: bool = False) -> None:
    """Puts every thread of the calling process under ``scheduler`` and adds ``nice`` to each.

    For a process that should soak up idle CPU and never delay a time-critical one (the learner
    beside the action cycle). Lowering one's own policy needs no privilege. On Linux policy and
    nice value are per thread; threads the process starts afterwards inherit the calling thread's,
    so calling this before a thread pool starts (torch's intra-op threads) covers the pool too.
    Threads already running are set here as well. A thread under SCHED_FIFO (a process started
    from a real-time loop) is brought down too. Under ``idle`` the nice value has no effect.

    Args:
        scheduler: one of :data:`BACKGROUND_SCHEDULERS`.
        nice: nice increment, 0..19, added to each thread's nice value.
        this_thread_only: only the calling thread (and the threads it starts from now on, such as
            the intra-op pool of the torch calls it makes): for a process whose other threads must
            answer promptly (the Ray learner's call threads).

    Raises:
        ValueError: an unknown ``scheduler`` or a nice increment outside 0..19.
        RealtimeError: the system refused (not Linux).
    """
    if scheduler not in BACKGROUND_SCHEDULERS:
        raise ValueError(f"scheduler={scheduler!r}; choose one of {BACKGROUND_SCHEDULERS}")
    if isinstance(nice, bool) or not isinstance(nice, int) or not 0 <= nice <= 19:
        raise ValueError(f"nice={nice!r} must be a whole number in 0..19 (a nice increment)")
    policy = {"other": "SCHED_OTHER", "batch": "SCHED_BATCH", "idle": "SCHED_IDLE"}[scheduler]
    try:
        policy = getattr(os, policy)
        for tid in [threading.get_native_id()] if this_thread_only else _own_threads():
            try:
                os.sched_setscheduler(tid, policy, os.sched_param(0))
                if nice:
                    # setpriority with a thread id sets that thread's nice value (Linux).
                    os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
            except ProcessLookupError:
                pass  # the thread ended meanwhile
    except (AttributeError, OSError) as err:
        raise RealtimeError(f"cannot put this process under SCHED_{scheduler.upper()} with nice +{nice} ({err}); "
                            "use scheduler='other' and nice=0 where the OS has no such policies") from err


def _own_threads() -> list[int]:
    """Thread ids of the calling process (the process id alone where /proc is missing)."""
    try:
        return sorted(int(tid) for tid in os.listdir("/proc/self/task"))
    except FileNotFoundError:
        return [0]


@dataclass(frozen=True)
class SchedulerState:
    """A thread's scheduling policy, its parameters and its CPU affinity."""

    policy: int
    param: os.sched_param
    cpus: frozenset[int]


def scheduler_state() -> SchedulerState | None:
    """The calling thread's scheduling, to give back later; None where the OS has no such calls."""
    if not hasattr(os, "sched_getscheduler"):
        return None
    return SchedulerState(os.sched_getscheduler(0), os.sched_getparam(0), frozenset(os.sched_getaffinity(0)))


def restore_scheduler(state: SchedulerState | None) -> None:
    """Gives the calling thread back the scheduling ``state`` recorded (lowering is always allowed)."""
    if state is not None:
        os.sched_setscheduler(0, state.policy, state.param)
        os.sched_setaffinity(0, state.cpus)
