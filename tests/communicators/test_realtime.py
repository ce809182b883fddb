"""Pacer: deadline pacing does not drift, relative pacing does, overruns skip ahead, the spin margin
learns from late sleeps; enable_realtime with its two refusal policies; the scheduler given back;
run_in_background lowers every thread of a process, without privileges."""

from __future__ import annotations

import ctypes
import doctest
import math
import os
import json
import re
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

from communicators import realtime as pacing
from communicators.errors import DeviceError, RealtimeError
from communicators.realtime import (Pacer, PacingMode, SpinMargin, enable_realtime, precise_timer_slack,
                                    restore_scheduler, run_in_background, scheduler_state)

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


# ----- the learned spin margin -----

def oversleeping(extra_s: float):
    """A real sleep that wakes ``extra_s`` late, as a busy core's scheduler would."""
    return lambda seconds: time.sleep(seconds + extra_s)


def lateness_of(pacer: Pacer, cycles: int) -> list[float]:
    pacer.start()
    late = []
    for _ in range(cycles):
        pacer.wait()
        late.append(pacer.lateness)
    return late


def test_a_learned_margin_grows_to_cover_late_sleeps_and_wakes_on_time():
    extra = 0.001  # every sleep wakes 1 ms late
    learned = Pacer(0.01, spin_s=None, max_spin_s=0.005, sleep=oversleeping(extra))
    late = lateness_of(learned, 60)[20:]  # after the warm-up
    assert extra <= learned.spin_s <= 0.005, f"margin {learned.spin_s * 1e3:.2f} ms does not cover a 1 ms oversleep"
    fixed = Pacer(0.01, spin_s=0.0, sleep=oversleeping(extra))
    fixed_late = lateness_of(fixed, 20)
    # Without a margin no wake-up can be on time; with the learned one most are. Counted loosely:
    # other work on this machine can preempt any single wake-up, margin or not.
    assert min(fixed_late) >= extra, "the oversleeping sleep did not oversleep"
    on_time = sum(lateness < 0.0002 for lateness in late)
    assert on_time >= len(late) // 4, f"only {on_time} of {len(late)} wake-ups within 0.2 ms of their deadline"


def test_the_margin_shrinks_back_when_sleeps_wake_on_time_and_never_passes_its_cap():
    margin = SpinMargin(cap=0.002, window=50, quantile=0.99)
    for _ in range(50):
        margin.observe(0.001)
    assert 0.001 < margin.value < 0.0015
    for _ in range(50):
        margin.observe(20e-6)
    assert margin.value < 0.0001, f"{margin.value * 1e6:.0f} us after 50 on-time wake-ups"
    for _ in range(50):
        margin.observe(0.5)
    assert margin.value == 0.002


def test_a_learning_pacer_sets_its_thread_to_precise_timers():
    seen = {}

    def in_thread() -> None:
        libc = ctypes.CDLL(None)
        libc.prctl(29, 50_000, 0, 0, 0)  # PR_SET_TIMERSLACK: Linux's default (a thread inherits its creator's)
        seen["before"] = libc.prctl(30, 0, 0, 0, 0)  # PR_GET_TIMERSLACK
        lateness_of(Pacer(0.005, spin_s=None), 5)
        seen["after"] = libc.prctl(30, 0, 0, 0, 0)

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(10)
    assert seen["before"] == 50_000 and seen["after"] == 1, seen
    assert precise_timer_slack() in (True, False)


def test_the_default_cap_is_one_percent_of_the_period_up_to_half_a_ms():
    assert Pacer(0.04, spin_s=None).spin_s == pytest.approx(0.0004)  # before learning: the cap
    assert Pacer(1.0, spin_s=None).spin_s == pytest.approx(0.0005)
    assert Pacer(0.04, spin_s=0.0003).spin_s == 0.0003


def test_lateness_is_how_late_the_last_wake_up_came():
    pacer = Pacer(0.005, spin_s=0.0, sleep=oversleeping(0.002))
    late = lateness_of(pacer, 10)
    assert min(late) >= 0.002 and pacer.lateness == late[-1]


# ----- real-time scheduling: one function, two policies -----

def test_a_refusal_raises_with_the_owner_and_the_fix_under_the_raise_policy():
    with pytest.raises(RealtimeError, match=re.escape("FrankaSimCommunicator: SCHED_FIFO priority 10000 was refused")
                       + ".*set FrankaSimConfig.fifo_priority=None"):
        enable_realtime(10_000, on_refusal="raise", owner="FrankaSimCommunicator",
                        fix="set FrankaSimConfig.fifo_priority=None")
    assert issubclass(RealtimeError, DeviceError)


def test_an_unknown_refusal_policy_is_refused():
    with pytest.raises(ValueError, match=re.escape("on_refusal='ignore'; choose one of ('warn', 'raise')")):
        enable_realtime(None, on_refusal="ignore")


@pytest.mark.skipif(os.geteuid() != 0, reason="SCHED_FIFO needs root or CAP_SYS_NICE")
def test_the_scheduler_recorded_before_is_given_back():
    seen = {}

    def in_thread() -> None:
        before = scheduler_state()
        seen["on"] = enable_realtime(5, {0})
        seen["during"] = os.sched_getscheduler(0)
        restore_scheduler(before)
        seen["after"] = (os.sched_getscheduler(0), os.sched_getaffinity(0))
        seen["before"] = before

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(10)
    assert seen["on"] and seen["during"] == os.SCHED_FIFO
    assert seen["after"] == (seen["before"].policy, set(seen["before"].cpus))


# ----- background scheduling: the learner's policy -----

_BACKGROUND_CHILD = """
import json, os, sys, threading
from communicators.realtime import run_in_background
if os.geteuid() == 0:
    os.setuid(65534)  # nobody: lowering one's own policy must need no privilege
stop = threading.Event()
before = threading.Thread(target=stop.wait, daemon=True)  # a thread running before the call
before.start()
run_in_background(sys.argv[1], int(sys.argv[2]))
seen = {}
def report():
    seen["after"] = (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
after = threading.Thread(target=report)  # a thread started after it, like torch's pool
after.start(); after.join()
threads, nices = {}, {}
for tid in map(int, os.listdir("/proc/self/task")):
    try:  # a joined thread can still be listed for a moment after it ended
        threads[tid], nices[tid] = os.sched_getscheduler(tid), os.getpriority(os.PRIO_PROCESS, tid)
    except ProcessLookupError:
        pass
stop.set(); before.join()
print(json.dumps({"uid": os.geteuid(), "threads": threads, "nices": nices, "after": seen["after"]}))
"""


@pytest.mark.parametrize("scheduler, policy, nice", [("batch", "SCHED_BATCH", 5), ("idle", "SCHED_IDLE", 0),
                                                     ("other", "SCHED_OTHER", 7)])
def test_a_process_puts_all_its_threads_in_the_background_without_privileges(scheduler, policy, nice):
    done = subprocess.run([sys.executable, "-c", _BACKGROUND_CHILD, scheduler, str(nice)], capture_output=True,
                          text=True, timeout=20, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["uid"] != 0
    # The main thread, the one started before, and any pool numpy started at import: all of them.
    assert len(seen["threads"]) >= 2 and set(seen["threads"].values()) == {getattr(os, policy)}
    assert set(seen["nices"].values()) == {nice}, "every thread gets the nice increment (the parent's is 0)"
    assert seen["after"] == [getattr(os, policy), nice], "a thread started afterwards inherits both"


def test_an_unknown_background_scheduler_is_refused_by_name_and_nothing_changes():
    with pytest.raises(ValueError, match=re.escape("scheduler='fifo'; choose one of ('other', 'batch', 'idle')")):
        run_in_background("fifo")
    with pytest.raises(ValueError, match=re.escape("nice=20 must be a whole number in 0..19")):
        run_in_background("batch", 20)
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


def test_this_thread_only_leaves_the_other_threads_of_the_process_alone():
    seen = {}
    other_ready, done = threading.Event(), threading.Event()

    def other() -> None:
        seen["other"] = threading.get_native_id()
        other_ready.set()
        done.wait(10)

    def lowered() -> None:
        run_in_background("idle", this_thread_only=True)
        seen["lowered"] = os.sched_getscheduler(0)

    first = threading.Thread(target=other)
    first.start()
    other_ready.wait(10)
    second = threading.Thread(target=lowered)
    second.start()
    second.join(10)
    try:
        assert seen["lowered"] == os.SCHED_IDLE
        assert os.sched_getscheduler(seen["other"]) == os.sched_getscheduler(0) == os.SCHED_OTHER
    finally:
        done.set()
        first.join(10)
