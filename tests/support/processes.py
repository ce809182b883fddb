"""Process and shared-memory helpers for the core tests: liveness, leftovers, scripts run as parents.

Other engineers run tests on the same machine at the same time, so leftovers are counted only for
pids of this test session (the pytest process and the scripts it ran, registered here). Core
segments are named ``rtrl_<creator pid>_...``; other packages' segments end in ``_<pid>``.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SHM_DIR = Path("/dev/shm")
# Helper processes multiprocessing keeps for the whole session on purpose; not leftovers.
_MP_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")

_session_pids: set[int] = {os.getpid()}


def register_pid(pid: int) -> None:
    """Counts ``pid``'s segments as this session's in :func:`session_segments`."""
    _session_pids.add(int(pid))


def session_pids() -> set[int]:
    return set(_session_pids)


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.005) -> bool:
    """Polls ``predicate`` until it is true or ``timeout_s`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return bool(predicate())
        time.sleep(interval_s)


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition",
             interval_s: float = 0.005) -> Any:
    """Polls ``condition`` until it returns something truthy, and returns that; raises
    AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def cmdline(pid: int) -> str:
    """The command line of ``pid``, or "" if it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def child_pids(parent: int | None = None) -> set[int]:
    """Live child processes of ``parent`` (this process if None).

    multiprocessing's helpers (resource tracker, forkserver) are left out, but the children of
    the forkserver count: processes started with forkserver are its children, not ours.
    """
    parent = os.getpid() if parent is None else parent
    parent_of = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] not in ("Z", "X"):
                parent_of[int(entry.name)] = int(fields[1])
    found = set()
    for pid in [p for p, pp in parent_of.items() if pp == parent]:
        if any(helper in cmdline(pid) for helper in _MP_HELPERS):
            found |= {p for p, pp in parent_of.items() if pp == pid}
        else:
            found.add(pid)
    return found


def _segment_pid(name: str) -> int | None:
    parts = name.split("_")
    for token in (parts[1] if len(parts) > 1 else "", parts[-1]):
        if token.isdigit():
            return int(token)
    return None


def segments_of(pids: set[int]) -> set[str]:
    """Names of ``rtrl_*`` segments in /dev/shm created by one of ``pids``."""
    return {p.name for p in SHM_DIR.glob("rtrl_*") if _segment_pid(p.name) in pids}


def own_segments() -> set[str]:
    """``rtrl_*`` segments created by this process."""
    return segments_of({os.getpid()})


def session_segments() -> set[str]:
    """``rtrl_*`` segments created by this session's processes."""
    return segments_of(session_pids())


# Every script also gets Ctrl-C as a user at a terminal does (KeyboardInterrupt): a test runner
# started in the background by a non-interactive shell ignores SIGINT, and Python keeps an
# inherited SIG_IGN, so a script's SIGINT would otherwise do nothing.
_PRELUDE = ("import faulthandler, signal; faulthandler.register(signal.SIGUSR1, all_threads=True); "
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n")


class Script:
    """A Python program run as a separate parent process, read line by line with deadlines.

    Args:
        code: the program's source; it runs with the repository on ``sys.path``. SIGUSR1 makes
            it print every thread's stack (faulthandler), which :meth:`wait` uses on a timeout.
        args: its command-line arguments (``sys.argv[1:]``).
    """

    def __init__(self, code: str, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-c", _PRELUDE + code, *args], cwd=REPO_ROOT,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        register_pid(self.proc.pid)
        self.pid = self.proc.pid
        self._buffer = b""
        self._stderr = b""

    def read_line(self, timeout_s: float = 20.0) -> str:
        """The next line the program printed; fails with its stderr if none comes in time."""
        deadline = time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                chunk = os.read(fd, 65536) if left > 0 and sel.select(left) else b""
                if not chunk:
                    self.kill()
                    err = self.proc.stderr.read().decode(errors="replace")
                    raise AssertionError(f"script printed no line within {timeout_s} s; stderr:\n{err}")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def wait(self, timeout_s: float) -> int:
        """Waits for the program to exit, reading its output meanwhile; returns its exit code.

        Reading matters: its children inherit the pipes, and a full pipe would block whoever
        writes to it. On a timeout it fails with the program's stderr and its threads' stacks.
        """
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as sel:
            for pipe in (self.proc.stdout, self.proc.stderr):
                sel.register(pipe.fileno(), selectors.EVENT_READ)
            while self.proc.poll() is None:
                if time.monotonic() > deadline:
                    os.kill(self.proc.pid, signal.SIGUSR1)
                    end = time.monotonic() + 2.0
                    while time.monotonic() < end:
                        self._read_ready(sel, 0.1)
                    self.kill()
                    raise AssertionError(f"script did not exit within {timeout_s} s; its stderr and stacks:\n"
                                         + self._stderr.decode(errors="replace")[-6000:])
                self._read_ready(sel, 0.05)
        return self.proc.returncode

    def _read_ready(self, sel: selectors.BaseSelector, timeout_s: float) -> None:
        for key, _ in sel.select(timeout_s):
            chunk = os.read(key.fd, 65536)
            if not chunk:  # closed: the program and every child that inherited it are gone
                sel.unregister(key.fd)
            elif key.fd == self.proc.stderr.fileno():
                self._stderr += chunk
            else:
                self._buffer += chunk

    def kill(self) -> None:
        """SIGKILLs the program and reaps it."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def __enter__(self) -> "Script":
        return self

    def __exit__(self, *exc) -> None:
        self.kill()
        self.proc.stdout.close()
        self.proc.stderr.close()
