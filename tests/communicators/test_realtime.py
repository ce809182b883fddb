"""Pacer: deadline pacing does not drift, relative pacing does, overruns skip ahead; enable_realtime."""

from __future__ import annotations

import doctest
import math
import os
import re
import threading
import time
import warnings

import pytest

from communicators import realtime as pacing
from communicators.realtime import Pacer, PacingMode, enable_realtime

pytestmark = pytest.mark.timeout(30)


def busy(seconds: float) -> None:
    """Stands in for a cycle's work (agent compute) without sleeping."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def run_cycles(mode: str, period: float, cycles: int, work_s: float) -> tuple[Pacer, list[float], list[float]]:
    """Runs ``cycles`` paced cycles; returns the pacer, each wake-up time and the deadline it aimed at."""
    pacer = Pacer(period, mode)
    pacer.start()
    wakes, aimed = [], []
    for _ in range(cycles):
        busy(work_s)
        pacer.wait()
        wakes.append(time.monotonic())
        aimed.append(pacer.next_deadline - period)
    return pacer, wakes, aimed


def test_deadline_pacing_does_not_drift_and_relative_pacing_does():
    period, cycles = 0.005, 100
    deadline, d_wakes, d_aimed = run_cycles("deadline", period, cycles, work_s=0.0015)
    relative, r_wakes, _ = run_cycles("relative", period, cycles, work_s=0.0015)
    # Deadline mode aims at the grid t0 + k*period; how late it lands does not add up. A single wake
    # can be late on a loaded machine, so drift is the smallest lateness of the last ten.
    for aimed in d_aimed:
        k = (aimed - deadline.t0) / period
        assert abs(k - round(k)) < 1e-6, "a deadline off the grid t0 + k*period"
    assert round((d_aimed[-1] - deadline.t0) / period) >= cycles, "fewer grid points than cycles: a catch-up burst"
    d_drift = min(w - a for w, a in zip(d_wakes[-10:], d_aimed[-10:]))
    assert 0 <= d_drift < 0.005, f"deadline pacing drifted {d_drift * 1e3:.2f} ms over {cycles} cycles"
    if deadline.overruns == 0:
        assert abs(d_wakes[-1] - (deadline.t0 + cycles * period)) < 0.005
    # Relative mode measures each period from the last (late) wake-up, so lateness accumulates.
    r_drift = min(w - (relative.t0 + (k + 1) * period) for k, w in enumerate(r_wakes) if k >= cycles - 10)
    assert r_drift > d_drift and r_drift > 0.001, \
        f"relative drift {r_drift * 1e3:.2f} ms vs deadline {d_drift * 1e3:.2f} ms"
    assert deadline.cycles == relative.cycles == cycles


def test_an_overrun_skips_to_the_next_grid_point_without_a_burst():
    period = 0.01
    pacer = Pacer(period)
    pacer.start()
    for _ in range(2):
        pacer.wait()
    time.sleep(5.5 * period)  # a deliberate stall: five and a half cycles missed
    stall_end = time.monotonic()
    assert pacer.wait() is True, "the missed deadline was not reported as an overrun"
    for _ in range(4):
        pacer.wait()
    # Five wake-ups after the stall land on five distinct grid points after it: >= 4 periods.
    # A burst of catch-up cycles would return at once.
    assert time.monotonic() - stall_end >= 4 * period
    assert pacer.overruns >= 1 and pacer.cycles == 7
    k = (pacer.next_deadline - pacer.t0) / period
    assert abs(k - round(k)) < 1e-6 and round(k) >= 2 + 5 + 5


@pytest.mark.parametrize("period", [0, -0.01, math.nan, math.inf, "0.01", None],
                         ids=["zero", "negative", "nan", "inf", "string", "none"])
def test_bad_period_raises(period):
    with pytest.raises(ValueError, match=re.escape(f"period={period!r} s must be a positive finite number")):
        Pacer(period)


def test_bad_mode_and_spin_raise():
    with pytest.raises(ValueError, match=re.escape("unknown pacing mode 'adaptive'; choose one of ['deadline', 'relative']")):
        Pacer(0.01, "adaptive")
    with pytest.raises(ValueError, match=re.escape("spin_s=-0.001 must be >= 0")):
        Pacer(0.01, spin_s=-0.001)
    assert Pacer(0.01, "relative").mode is PacingMode.RELATIVE


def test_spin_wait_still_never_wakes_before_the_deadline():
    pacer = Pacer(0.004, spin_s=0.001)
    pacer.start()
    for _ in range(20):
        aimed = pacer.next_deadline
        pacer.wait()
        assert time.monotonic() >= aimed


def test_docstring_example_runs():
    assert doctest.testmod(pacing).failed == 0


# ----- enable_realtime -----

def test_realtime_without_priority_is_off_and_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert enable_realtime(None) is False


def test_realtime_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setattr(pacing, "_warned_realtime", False)
    with pytest.warns(RuntimeWarning, match="real-time scheduling unavailable.*falling back"):
        assert enable_realtime(10_000) is False  # no such SCHED_FIFO priority: refused everywhere
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert enable_realtime(10_000) is False, "the fallback warned twice"


def test_realtime_applies_to_the_calling_thread_where_permitted(monkeypatch):
    monkeypatch.setattr(pacing, "_warned_realtime", False)
    seen = {}

    def in_thread() -> None:  # scheduling is per thread: keep it off the test's own thread
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            seen["on"] = enable_realtime(1, {0})
        seen["warned"] = any(issubclass(w.category, RuntimeWarning) for w in caught)
        seen["policy"] = os.sched_getscheduler(0)

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(10)
    if seen["on"]:
        assert seen["policy"] == os.SCHED_FIFO and not seen["warned"]
    else:
        assert seen["warned"], "real-time scheduling was refused without a warning"
    assert os.sched_getscheduler(0) == os.SCHED_OTHER, "the test's own thread changed scheduler"
