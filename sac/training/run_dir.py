"""A run's directory: its name, its settings file, and the lock that keeps one live process in it.

``<work_dir>/results/<version>_<target>_dt=<dt>_bs=<batch>_dim=<W>*<H>_<seed>/`` (the seed's naming;
version SACv0 serial, SACv1 async with --lock, SACv2 async, EVAL) holds ``args.json`` (every
setting), ``run.lock``, ``model/`` (checkpoints) and the logs. The lock is an ``flock`` on
``run.lock`` held for the process's lifetime: the kernel drops it when the process dies, however it
dies, so a lock left by a dead run is simply taken over; the file holds the PID for messages.
"""
from __future__ import annotations

import fcntl
import json
import os
from typing import Any

ARGS_FILE = "args.json"
LOCK_FILE = "run.lock"
MODEL_DIR = "model"


class RunInUseError(RuntimeError):
    """Another live process holds the run's lock."""


def run_name(version: str, target_type: str, dt: float, batch_size: int, width: int, height: int, seed: int) -> str:
    """The seed's run directory name."""
    return f"{version}_{target_type}_dt={dt}_bs={batch_size}_dim={width}*{height}_{seed}"


class RunDirectory:
    """One run's directory (acting process).

    Args:
        path: the directory.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock_fd: int | None = None

    @property
    def model_dir(self) -> str:
        return os.path.join(self.path, MODEL_DIR)

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def holder(self) -> int | None:
        """The PID holding the run's lock, or None if no live process holds it."""
        path = os.path.join(self.path, LOCK_FILE)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _pid_in(fd)
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def create_and_lock(self) -> None:
        """Creates the directory (it must not exist) and takes its lock.

        Raises:
            FileExistsError: the directory exists (another run, or a live one: see :meth:`holder`).
        """
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        os.mkdir(self.path)  # atomic: of two concurrent starts, one wins
        os.mkdir(self.model_dir)
        self.lock()

    def lock(self) -> None:
        """Takes the run's lock for this process's lifetime.

        Raises:
            RunInUseError: a live process holds it; the message names the run and the PID.
        """
        fd = os.open(os.path.join(self.path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _pid_in(fd)
            os.close(fd)
            raise RunInUseError(f"{self.path} is running (PID {pid}); wait for it to end, or stop it with "
                                f"kill -TERM {pid} (it saves first)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._lock_fd = fd  # held open until the process exits (or release())

    def release(self) -> None:
        """Drops the lock (the process's exit does too)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def read_args(self) -> dict[str, Any]:
        """The settings the run was started with (and changed by later resumes).

        Raises:
            FileNotFoundError: no args.json (not a run directory).
        """
        with open(os.path.join(self.path, ARGS_FILE)) as f:
            return json.load(f)

    def write_args(self, values: dict[str, Any]) -> None:
        """Replaces args.json atomically."""
        final = os.path.join(self.path, ARGS_FILE)
        tmp = f"{final}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(values, f, sort_keys=True, indent=4)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)


def _pid_in(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 32).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None
