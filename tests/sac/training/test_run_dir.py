"""One live process per run directory: a real second process is refused by name and PID; a lock
left by a killed process is taken over."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from sac.training.run_dir import RunDirectory, RunInUseError

pytestmark = pytest.mark.timeout(60)

HOLD = """
import sys, time
from sac.training.run_dir import RunDirectory
run = RunDirectory(sys.argv[1])
run.lock()
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path):
    """A real process holding the lock of a run directory."""
    run = RunDirectory(str(tmp_path / "run"))
    run.create_and_lock()
    run.release()
    proc = subprocess.Popen([sys.executable, "-c", HOLD, run.path], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    yield run, proc
    proc.kill()
    proc.wait()


def test_a_second_process_is_refused_naming_the_run_and_the_pid_holding_it(holder):
    run, proc = holder
    assert run.holder() == proc.pid
    with pytest.raises(RunInUseError, match=re.escape(f"{run.path} is running (PID {proc.pid}); "
                                                      f"wait for it to end, or stop it with kill -TERM {proc.pid}")):
        RunDirectory(run.path).lock()


def test_a_lock_left_by_a_killed_process_is_taken_over(holder):
    run, proc = holder
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert run.holder() is None
    again = RunDirectory(run.path)
    again.lock()
    try:
        assert again.holder() == os.getpid()
    finally:
        again.release()


def test_a_new_run_cannot_be_created_where_one_exists(tmp_path):
    RunDirectory(str(tmp_path / "run")).create_and_lock()
    with pytest.raises(FileExistsError):
        RunDirectory(str(tmp_path / "run")).create_and_lock()
