"""Runs last (tests/conftest.py orders it): nothing the test session started outlives it.

Only this session's processes count (their pids are registered as they start), since other
engineers run tests on the same machine at the same time.
"""

from __future__ import annotations

import multiprocessing

import pytest

from tests.support.processes import child_pids, cmdline, session_segments, wait_until

pytestmark = pytest.mark.timeout(30)


def test_no_shared_memory_segment_of_this_session_is_left():
    # Resource trackers of killed programs unlink their segments a moment after the kill.
    assert wait_until(lambda: not session_segments(), 5.0), \
        f"segments left in /dev/shm by this test session: {sorted(session_segments())}"


def test_no_child_process_of_this_session_is_left():
    multiprocessing.active_children()  # reaps children that already ended
    assert wait_until(lambda: not child_pids(), 5.0), \
        "child processes left running: " + "; ".join(f"{pid}: {cmdline(pid)[:120]}" for pid in child_pids())
